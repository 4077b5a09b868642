"""RFC 9529's two traces reproduced byte for byte through the test-only injection seam."""

from __future__ import annotations

import pytest

from gateway.edhoc import (
    CipherSuite,
    CipherSuiteMismatchError,
    CipherSuiteRejectedError,
    Credential,
    CredentialTransfer,
    Initiator,
    Message1Received,
    Method,
    Responder,
    State,
    key_schedule,
)
from gateway.edhoc._endpoint import Injection
from tests.edhoc.helpers import lookup_from
from tests.edhoc.vectors_rfc9529 import TRACE_1, TRACE_2


def _check(trace: dict[str, bytes], recorded: dict[str, bytes], names: dict[str, str]) -> None:
    for ours, theirs in names.items():
        assert recorded[ours].hex() == trace[theirs].hex(), ours


def _run(
    initiator: Initiator, responder: Responder
) -> tuple[bytes, bytes, bytes, bytes, list[object]]:
    m1 = initiator.message_1()
    events: list[object] = list(responder.receive_message_1(m1))
    m2 = responder.message_2()
    events += initiator.receive_message_2(m2)
    m3 = initiator.message_3()
    events += responder.receive_message_3(m3)
    m4 = responder.message_4()
    events += initiator.receive_message_4(m4)
    return m1, m2, m3, m4, events


def test_trace_1_signatures_x509_x5t() -> None:
    t = TRACE_1
    cred_i = Credential.from_x509(t["CRED_I (Raw Value)"], private_key=t["SK_I (Raw Value)"])
    cred_r = Credential.from_x509(t["CRED_R (Raw Value)"], private_key=t["SK_R (Raw Value)"])
    assert cred_i.public_key == t["PK_I (Raw Value)"]
    assert cred_r.encoded == t["CRED_R (CBOR Data Item)"]
    assert cred_r.id_cred(CredentialTransfer.BY_REFERENCE) == t["ID_CRED_R (CBOR Data Item)"]
    i_trace: dict[str, bytes] = {}
    r_trace: dict[str, bytes] = {}
    initiator = Initiator(
        method=Method.SIGNATURE_SIGNATURE,
        suites=[CipherSuite.SUITE_0],
        c_i=t["C_I (Raw Value)"],
        credential=cred_i,
        credential_lookup=lookup_from(cred_r),
        _injection=Injection(ephemeral_private_key=t["X (Raw Value)"], trace=i_trace),
    )
    responder = Responder(
        suites=[CipherSuite.SUITE_0],
        c_r=t["C_R (Raw Value)"],
        credential=cred_r,
        credential_lookup=lookup_from(cred_i),
        _injection=Injection(ephemeral_private_key=t["Y (Raw Value)"], trace=r_trace),
    )
    m1, m2, m3, m4, events = _run(initiator, responder)
    assert m1 == t["message_1 (CBOR Sequence)"]
    assert m2 == t["message_2 (CBOR Sequence)"]
    assert m3 == t["message_3 (CBOR Sequence)"]
    assert m4 == t["message_4 (CBOR Sequence)"]
    assert events[0] == Message1Received(Method(0), CipherSuite.SUITE_0, b"\x2d", ())
    common = {
        "TH_2": "TH_2 (Raw Value)",
        "PRK_3e2m": "PRK_3e2m (Raw Value)",
        "MAC_2": "MAC_2 (Raw Value)",
        "PLAINTEXT_2": "PLAINTEXT_2 (CBOR Sequence)",
        "TH_3": "TH_3 (Raw Value)",
        "PRK_4e3m": "PRK_4e3m (Raw Value)",
        "MAC_3": "MAC_3 (Raw Value)",
        "TH_4": "TH_4 (Raw Value)",
        "PRK_out": "PRK_out (Raw Value)",
        "PRK_exporter": "PRK_exporter (Raw Value)",
    }
    _check(t, r_trace, common)
    _check(t, i_trace, common)
    _check(
        t,
        r_trace,
        {
            "PRK_2e": "PRK_2e (Raw Value)",
            "KEYSTREAM_2": "KEYSTREAM_2 (Raw Value)",
            "CIPHERTEXT_2": "CIPHERTEXT_2 (Raw Value)",
            "Signature_or_MAC_2": "Signature_or_MAC_2 (Raw Value)",
            "K_4": "K_4 (Raw Value)",
            "IV_4": "IV_4 (Raw Value)",
        },
    )
    _check(
        t,
        i_trace,
        {
            "G_X": "G_X (Raw Value)",
            "G_XY": "G_XY (Raw Value) (ECDH shared secret)",
            "PRK_2e": "PRK_2e (Raw Value)",
            "Signature_or_MAC_3": "Signature_or_MAC_3 (Raw Value)",
            "PLAINTEXT_3": "PLAINTEXT_3 (CBOR Sequence)",
            "K_3": "K_3 (Raw Value)",
            "IV_3": "IV_3 (Raw Value)",
        },
    )
    assert cred_i.id_cred(CredentialTransfer.BY_REFERENCE) == t["ID_CRED_I (CBOR Data Item)"]
    assert cred_i.encoded == t["CRED_I (CBOR Data Item)"]
    signed = {"Message to be signed 2", "Message to be signed 3"}
    _check_every_value(t, i_trace, r_trace, _REQUIRED | signed)
    _check_exporter_and_key_update(t, initiator, responder, (i_trace, r_trace))


def _check_exporter_and_key_update(
    t: dict[str, bytes],
    initiator: Initiator,
    responder: Responder,
    traces: tuple[dict[str, bytes], dict[str, bytes]],
) -> None:
    # RFC 9529 §2.5.4 / §3.5.4: the OSCORE Sender IDs are the connection identifiers.
    assert initiator.c_r == t["Client's OSCORE Sender ID (Raw Value)"]
    assert responder.c_i == t["Server's OSCORE Sender ID (Raw Value)"]
    for party, recorded in zip((initiator, responder), traces, strict=True):
        assert party.state is State.CONFIRMED
        assert party.exporter(0, b"", 16) == t["OSCORE Master Secret (Raw Value)"]
        assert party.exporter(1, b"", 8) == t["OSCORE Master Salt (Raw Value)"]
        party.key_update(t["context for KeyUpdate (Raw Value)"])
        assert recorded["PRK_out"] == t["PRK_out after KeyUpdate (Raw Value)"]
        assert recorded["PRK_exporter"] == t["PRK_exporter after KeyUpdate (Raw Value)"]
        assert party.exporter(0, b"", 16) == t["OSCORE Master Secret after KeyUpdate (Raw Value)"]
        assert party.exporter(1, b"", 8) == t["OSCORE Master Salt after KeyUpdate (Raw Value)"]


# Values both RFC 9529 traces list that the endpoints compute (each checked on every side that
# records it); keys and credentials are checked directly in the tests.
_REQUIRED = {
    "G_X",
    "message_1",
    "G_Y",
    "G_XY",
    "TH_2",
    "PRK_2e",
    "KEYSTREAM_2",
    "context_2",
    "PRK_3e2m",
    "MAC_2",
    "Signature_or_MAC_2",
    "PLAINTEXT_2",
    "CIPHERTEXT_2",
    "message_2",
    "TH_3",
    "K_3",
    "IV_3",
    "A_3",
    "context_3",
    "PRK_4e3m",
    "MAC_3",
    "Signature_or_MAC_3",
    "PLAINTEXT_3",
    "CIPHERTEXT_3",
    "message_3",
    "TH_4",
    "PRK_out",
    "PRK_exporter",
    "K_4",
    "IV_4",
    "A_4",
    "PLAINTEXT_4",
    "CIPHERTEXT_4",
    "message_4",
}

_SUFFIXES = (
    " (Raw Value)",
    " (CBOR Sequence)",
    " (CBOR Data Item)",
    " (Raw Value) (ECDH shared secret)",
    "",
)


def _listed(t: dict[str, bytes], name: str) -> bytes | None:
    """The trace's value for ``name``; " #2" marks the accepted second message_1 of trace 2."""
    for suffix in _SUFFIXES:
        for key in (f"{name}{suffix} #2", f"{name}{suffix}"):
            if key in t:
                return t[key]
    return None


def _check_every_value(
    t: dict[str, bytes],
    i_trace: dict[str, bytes],
    r_trace: dict[str, bytes],
    required: set[str],
) -> None:
    """Every value either side records is the trace's; the union covers ``required``."""
    for role, recorded in (("initiator", i_trace), ("responder", r_trace)):
        for name, value in recorded.items():
            expected = _listed(t, name)
            assert expected is not None, f"{role} recorded {name}, which the trace does not list"
            assert value.hex() == expected.hex(), f"{role}: {name}"
    assert required <= set(i_trace) | set(r_trace), required - set(i_trace) - set(r_trace)
    # The EDHOC_KDF info inputs the trace prints (RFC 9528 §4.1.2), from the recorded values.
    th_2, th_3, th_4 = (r_trace[name] for name in ("TH_2", "TH_3", "TH_4"))
    infos = {
        "KEYSTREAM_2": (key_schedule.KEYSTREAM_2, th_2, len(r_trace["PLAINTEXT_2"])),
        "SALT_3e2m": (key_schedule.SALT_3E2M, th_2, 32),
        "MAC_2": (key_schedule.MAC_2, r_trace["context_2"], len(r_trace["MAC_2"])),
        "K_3": (key_schedule.K_3, th_3, len(r_trace["K_3"])),
        "IV_3": (key_schedule.IV_3, th_3, len(r_trace["IV_3"])),
        "SALT_4e3m": (key_schedule.SALT_4E3M, th_3, 32),
        "MAC_3": (key_schedule.MAC_3, i_trace["context_3"], len(i_trace["MAC_3"])),
        "PRK_out": (key_schedule.PRK_OUT, th_4, 32),
        "K_4": (key_schedule.K_4, th_4, len(r_trace["K_4"])),
        "IV_4": (key_schedule.IV_4, th_4, len(r_trace["IV_4"])),
        "PRK_exporter": (key_schedule.PRK_EXPORTER, b"", 32),
        "OSCORE Master Secret": (0, b"", 16),
        "OSCORE Master Salt": (1, b"", 8),
    }
    checked = 0
    for name, (label, context, length) in infos.items():
        info = t.get(f"info for {name} (CBOR Sequence)")
        if info is not None:
            assert key_schedule.kdf_info(label, context, length).hex() == info.hex(), name
            checked += 1
    assert checked >= 11


def _trace_2_credentials() -> tuple[Credential, Credential]:
    t = TRACE_2
    cred_i = Credential.from_ccs(t["CRED_I (CBOR Data Item)"], private_key=t["SK_I (Raw Value)"])
    cred_r = Credential.from_ccs(t["CRED_R (CBOR Data Item)"], private_key=t["SK_R (Raw Value)"])
    return cred_i, cred_r


def test_trace_2_first_message_1_is_refused_with_suites_r() -> None:
    t = TRACE_2
    cred_i, cred_r = _trace_2_credentials()
    responder = Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=t["C_R (raw value)"],
        credential=cred_r,
        credential_lookup=lookup_from(cred_i),
    )
    with pytest.raises(CipherSuiteMismatchError) as caught:
        responder.receive_message_1(t["message_1 (CBOR Sequence)"])
    assert caught.value.error_message == t["error (CBOR Sequence)"]
    assert caught.value.suites_r == (2,)
    assert responder.state is State.ERROR
    # The Initiator reads the error as a rejection and moves on to suite 2.
    initiator = Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_2],
        c_i=t["C_I (Raw Value)"],
        credential=cred_i,
        credential_lookup=lookup_from(cred_r),
    )
    initiator.message_1()
    with pytest.raises(CipherSuiteRejectedError) as rejected:
        initiator.receive_message_2(t["error (CBOR Sequence)"])
    assert rejected.value.suites_r == (2,)
    assert rejected.value.error_message is None
    retry = initiator.retry(rejected.value)
    assert retry.suite is CipherSuite.SUITE_2
    assert retry.state is State.START


def test_trace_2_static_dh_ccs_kid() -> None:
    t = TRACE_2
    cred_i, cred_r = _trace_2_credentials()
    assert cred_r.kid == b"\x32"
    i_trace: dict[str, bytes] = {}
    r_trace: dict[str, bytes] = {}
    initiator = Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_2],
        c_i=t["C_I (Raw Value) #2"],
        credential=cred_i,
        credential_lookup=lookup_from(cred_r),
        _injection=Injection(
            ephemeral_private_key=t["X (Raw Value) #2"], suites_i=[6, 2], trace=i_trace
        ),
    )
    responder = Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=t["C_R (raw value)"],
        credential=cred_r,
        credential_lookup=lookup_from(cred_i),
        _injection=Injection(ephemeral_private_key=t["Y (Raw Value)"], trace=r_trace),
    )
    m1, m2, m3, m4, _ = _run(initiator, responder)
    assert m1 == t["message_1 (CBOR Sequence) #2"]
    assert m2 == t["message_2 (CBOR Sequence)"]
    assert m3 == t["message_3 (CBOR Sequence)"]
    assert m4 == t["message_4 (CBOR Sequence)"]
    common = {
        "TH_2": "TH_2 (Raw Value)",
        "PRK_3e2m": "PRK_3e2m (Raw Value)",
        "MAC_2": "MAC_2 (Raw Value)",
        "TH_3": "TH_3 (Raw Value)",
        "PRK_4e3m": "PRK_4e3m (Raw Value)",
        "MAC_3": "MAC_3 (Raw Value)",
        "TH_4": "TH_4 (Raw Value)",
        "PRK_out": "PRK_out (Raw Value)",
        "PRK_exporter": "PRK_exporter (Raw Value)",
    }
    _check(t, r_trace, common)
    _check(t, i_trace, common)
    _check(
        t,
        r_trace,
        {
            "PRK_2e": "PRK_2e (Raw Value)",
            "Signature_or_MAC_2": "Signature_or_MAC_2 (Raw Value)",
            "PLAINTEXT_2": "PLAINTEXT_2 (CBOR Sequence)",
            "KEYSTREAM_2": "KEYSTREAM_2 (Raw Value)",
            "CIPHERTEXT_2": "CIPHERTEXT_2 (Raw Value)",
        },
    )
    _check(
        t,
        i_trace,
        {
            "G_X": "G_X (Raw Value) #2",
            "G_XY": "G_XY (Raw Value) (ECDH shared secret)",
            "Signature_or_MAC_3": "Signature_or_MAC_3 (Raw Value)",
            "PLAINTEXT_3": "PLAINTEXT_3 (CBOR Sequence)",
            "K_3": "K_3 (Raw Value)",
            "IV_3": "IV_3 (Raw Value)",
        },
    )
    for cred, side in ((cred_i, "I"), (cred_r, "R")):
        assert (
            cred.id_cred(CredentialTransfer.BY_REFERENCE) == t[f"ID_CRED_{side} (CBOR Data Item)"]
        )
        assert cred.encoded == t[f"CRED_{side} (CBOR Data Item)"]
    static_dh = {"SALT_3e2m", "G_RX", "SALT_4e3m", "G_IY"}
    _check_every_value(t, i_trace, r_trace, _REQUIRED | static_dh)
    _check_exporter_and_key_update(t, initiator, responder, (i_trace, r_trace))
