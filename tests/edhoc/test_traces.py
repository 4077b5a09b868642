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
    Injection,
    Message1Received,
    Method,
    Responder,
    State,
)
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
    _check_exporter_and_key_update(t, initiator, responder)


def _check_exporter_and_key_update(
    t: dict[str, bytes], initiator: Initiator, responder: Responder
) -> None:
    for party in (initiator, responder):
        assert party.state is State.CONFIRMED
        assert party.exporter(0, b"", 16) == t["OSCORE Master Secret (Raw Value)"]
        assert party.exporter(1, b"", 8) == t["OSCORE Master Salt (Raw Value)"]
        party.key_update(t["context for KeyUpdate (Raw Value)"])
        assert party.exporter(0, b"", 16) == t["OSCORE Master Secret after KeyUpdate (Raw Value)"]
        assert party.exporter(1, b"", 8) == t["OSCORE Master Salt after KeyUpdate (Raw Value)"]


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
    _check_exporter_and_key_update(t, initiator, responder)
