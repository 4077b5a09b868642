"""Full handshakes for every method, suite and credential transfer; EAD; negotiation; misuse."""

from __future__ import annotations

import itertools

import pytest

from gateway.edhoc import (
    CipherSuite,
    CipherSuiteMismatchError,
    CipherSuiteRejectedError,
    Credential,
    CredentialTransfer,
    Curve,
    EadItem,
    HandshakeCompleted,
    Initiator,
    LocalEdhocError,
    Message1Received,
    Message2Received,
    Message3Received,
    Message4Received,
    Method,
    Responder,
    State,
    UnknownCredentialError,
    UnsupportedCriticalEadError,
)
from gateway.edhoc._endpoint import Injection
from tests.edhoc.helpers import credentials_for, handshake, lookup_from, make_pair

CASES = list(itertools.product(Method, CipherSuite, CredentialTransfer))


@pytest.mark.parametrize(("method", "suite", "transfer"), CASES)
def test_every_method_suite_and_transfer(
    method: Method, suite: CipherSuite, transfer: CredentialTransfer
) -> None:
    pair = make_pair(method, suite, transfer=transfer)
    handshake(pair, message_4=True)
    for party in (pair.initiator, pair.responder):
        assert party.state is State.CONFIRMED
        assert party.c_i == b"\x37"
        assert party.c_r == b"\x27"
    assert pair.initiator.exporter(0, b"", 16) == pair.responder.exporter(0, b"", 16)
    assert pair.initiator.exporter(2, b"ctx", 40) == pair.responder.exporter(2, b"ctx", 40)
    assert pair.initiator.exporter(2, b"ctx", 40) != pair.initiator.exporter(2, b"cty", 40)
    assert pair.initiator.peer_credential is not None
    assert pair.responder.peer_credential is not None
    assert pair.initiator.peer_credential.subject == "gateway"
    assert pair.responder.peer_credential.subject == "device"


def test_static_dh_by_kid_matches_rfc_figure_1_sizes() -> None:
    """RFC 9528 Figure 1: method 3, kid, suite 2 takes 37 + 45 + 19 = 101 bytes."""
    messages = handshake(make_pair(Method.STATIC_DH_STATIC_DH, CipherSuite.SUITE_2))
    assert [len(m) for m in messages] == [37, 45, 19]
    messages = handshake(make_pair(Method.SIGNATURE_SIGNATURE, CipherSuite.SUITE_0))
    assert [len(m) for m in messages] == [37, 102, 77]


def test_events_carry_ead_and_credentials() -> None:
    pair = make_pair(known_ead_labels=[7])
    ead_1 = (EadItem(-7, b"auth"), EadItem(0, b"\x00\x00"), EadItem(9))
    m1 = pair.initiator.message_1(ead=ead_1)
    (event_1,) = pair.responder.receive_message_1(m1)
    assert event_1 == Message1Received(
        Method.STATIC_DH_STATIC_DH, CipherSuite.SUITE_2, b"\x37", (EadItem(-7, b"auth"), EadItem(9))
    )
    m2 = pair.responder.message_2(ead=(EadItem(7, b"voucher"),))
    (event_2,) = pair.initiator.receive_message_2(m2)
    assert isinstance(event_2, Message2Received)
    assert event_2.ead == (EadItem(7, b"voucher"),)
    assert event_2.c_r == b"\x27"
    m3 = pair.initiator.message_3(ead=(EadItem(3),))
    event_3, done = pair.responder.receive_message_3(m3)
    assert isinstance(event_3, Message3Received)
    assert event_3.ead == (EadItem(3),)
    assert isinstance(done, HandshakeCompleted)
    assert done.c_i == b"\x37"
    assert done.c_r == b"\x27"
    m4 = pair.responder.message_4(ead=(EadItem(1, b"x"),))
    assert pair.initiator.receive_message_4(m4) == [Message4Received((EadItem(1, b"x"),))]


@pytest.mark.parametrize("where", [1, 2, 3])
def test_unknown_critical_ead_aborts_with_error_message(where: int) -> None:
    pair = make_pair()
    critical = (EadItem(-42, b"?"),)

    def run() -> None:
        m1 = pair.initiator.message_1(ead=critical if where == 1 else ())
        pair.responder.receive_message_1(m1)
        m2 = pair.responder.message_2(ead=critical if where == 2 else ())
        pair.initiator.receive_message_2(m2)
        m3 = pair.initiator.message_3(ead=critical if where == 3 else ())
        pair.responder.receive_message_3(m3)

    with pytest.raises(UnsupportedCriticalEadError) as caught:
        run()
    assert caught.value.error_message is not None
    assert caught.value.error_message[0] == 0x01  # error code 1 (§3.8: send an error, abort)
    assert State.ERROR in (pair.initiator.state, pair.responder.state)


def test_suite_negotiation_round_trip() -> None:
    device = credentials_for("device", b"\x2b")
    gateway = credentials_for("gateway", b"\x0a")
    initiator = Initiator(
        method=Method.SIGNATURE_SIGNATURE,
        suites=[CipherSuite.SUITE_4, CipherSuite.SUITE_0, CipherSuite.SUITE_2],
        c_i=b"\x01",
        credential=device,
        credential_lookup=lookup_from(*gateway),
    )

    def responder() -> Responder:
        return Responder(
            suites=[CipherSuite.SUITE_2, CipherSuite.SUITE_0],
            c_r=b"\x02",
            credential=gateway,
            credential_lookup=lookup_from(*device),
        )

    first = responder()
    with pytest.raises(CipherSuiteMismatchError) as refused:
        first.receive_message_1(initiator.message_1())
    # SUITES_I = 4 holds no suite the Responder supports: it lists all of its own (§6.3).
    assert refused.value.suites_r == (2, 0)
    assert refused.value.error_message == b"\x02\x82\x02\x00"
    with pytest.raises(CipherSuiteRejectedError) as rejected:
        initiator.receive_message_2(refused.value.error_message)
    second = initiator.retry(rejected.value)
    m1 = second.message_1()
    assert m1[1:4] == b"\x82\x04\x00"  # SUITES_I = [4, 0]: preferred suites kept (§5.2.2)
    pair_responder = responder()
    pair_responder.receive_message_1(m1)
    second.receive_message_2(pair_responder.message_2())
    pair_responder.receive_message_3(second.message_3())
    assert second.exporter(0, b"", 16) == pair_responder.exporter(0, b"", 16)


def test_responder_refuses_suite_when_a_preferred_one_is_shared() -> None:
    pair = make_pair(responder_suites=[CipherSuite.SUITE_0, CipherSuite.SUITE_2])
    initiator = Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_0, CipherSuite.SUITE_2],
        selected_suite=CipherSuite.SUITE_2,
        c_i=b"\x37",
        credential=credentials_for("device", b"\x2b"),
        credential_lookup=lookup_from(*credentials_for("gateway", b"\x0a")),
    )
    with pytest.raises(CipherSuiteMismatchError) as caught:
        pair.responder.receive_message_1(initiator.message_1())
    assert caught.value.error_message == b"\x02\x00"


def test_selected_suite_repeated_in_suites_i_is_accepted() -> None:
    """§6.3.1 compares suites by value: SUITES_I = [2, 2] selects 2, the first supported suite."""
    pair = make_pair(Method.STATIC_DH_STATIC_DH, CipherSuite.SUITE_2)
    initiator = Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_2],
        c_i=b"\x37",
        credential=credentials_for("device", b"\x2b"),
        credential_lookup=lookup_from(*credentials_for("gateway", b"\x0a")),
        _injection=Injection(suites_i=[2, 2]),
    )
    m1 = initiator.message_1()
    assert m1[1:4] == b"\x82\x02\x02"
    (event,) = pair.responder.receive_message_1(m1)
    assert isinstance(event, Message1Received)
    assert event.suite is CipherSuite.SUITE_2
    initiator.receive_message_2(pair.responder.message_2())
    pair.responder.receive_message_3(initiator.message_3())
    assert initiator.exporter(0, b"", 16) == pair.responder.exporter(0, b"", 16)
    # A preferred suite the Responder supports still refuses it, whatever follows (§5.2.3).
    refusing = make_pair(responder_suites=[CipherSuite.SUITE_2, CipherSuite.SUITE_0]).responder
    bad = Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_2],
        c_i=b"\x37",
        credential=credentials_for("device", b"\x2b"),
        credential_lookup=lookup_from(*credentials_for("gateway", b"\x0a")),
        _injection=Injection(suites_i=[0, 2, 2]),
    )
    with pytest.raises(CipherSuiteMismatchError) as caught:
        refusing.receive_message_1(bad.message_1())
    assert caught.value.suites_r == (0,)


def test_retry_without_common_suite_is_local_error() -> None:
    pair = make_pair(Method.STATIC_DH_STATIC_DH, CipherSuite.SUITE_2)
    pair.initiator.message_1()
    with pytest.raises(CipherSuiteRejectedError) as rejected:
        pair.initiator.receive_message_2(b"\x02\x82\x00\x04")
    assert rejected.value.suites_r == (0, 4)
    with pytest.raises(LocalEdhocError):
        pair.initiator.retry(rejected.value)


def test_revoked_and_unknown_credentials_are_rejected() -> None:
    device = credentials_for("device", b"\x2b")
    gateway = credentials_for("gateway", b"\x0a")
    responder = Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=b"\x27",
        credential=gateway,
        credential_lookup=lookup_from(*device, revoked=device),
    )
    initiator = Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_2],
        c_i=b"\x37",
        credential=device,
        credential_lookup=lookup_from(*gateway),
    )
    responder.receive_message_1(initiator.message_1())
    initiator.receive_message_2(responder.message_2())
    with pytest.raises(UnknownCredentialError) as caught:
        responder.receive_message_3(initiator.message_3())
    assert caught.value.error_message == b"\x03\xf5"
    assert responder.state is State.ERROR
    with pytest.raises(LocalEdhocError):
        responder.exporter(0, b"", 16)


def test_unknown_credential_by_value_is_error_code_1() -> None:
    pair = make_pair(transfer=CredentialTransfer.BY_VALUE)
    stranger = Credential.new_ccs(
        curve=Curve.P256, private_key=b"\x05" * 32, kid=b"\x0a", subject="stranger"
    )
    pair.initiator._lookup = lookup_from(stranger)
    pair.responder.receive_message_1(pair.initiator.message_1())
    with pytest.raises(UnknownCredentialError) as caught:
        pair.initiator.receive_message_2(pair.responder.message_2())
    assert caught.value.error_message is not None
    assert caught.value.error_message[0] == 0x01


def test_wrong_state_calls_are_local_errors_and_terminal() -> None:
    pair = make_pair()
    with pytest.raises(LocalEdhocError):
        pair.initiator.message_3()
    assert pair.initiator.state is State.ERROR
    with pytest.raises(LocalEdhocError):
        pair.initiator.message_1()
    with pytest.raises(LocalEdhocError):
        pair.responder.message_2()
    with pytest.raises(LocalEdhocError):
        make_pair().responder.exporter(0, b"", 16)


def test_constructor_misuse() -> None:
    device = credentials_for("device", b"\x2b")
    lookup = lookup_from()
    with pytest.raises(LocalEdhocError):
        Initiator(method=Method(0), suites=[], c_i=b"", credential=device, credential_lookup=lookup)
    with pytest.raises(LocalEdhocError):
        Initiator(
            method=Method(0), suites=[6], c_i=b"", credential=device, credential_lookup=lookup
        )
    with pytest.raises(LocalEdhocError):
        Responder(suites=[2], c_r=b"", credential=device[0].public(), credential_lookup=lookup)
    with pytest.raises(LocalEdhocError):
        Initiator(
            method=Method(0),
            suites=[0],
            c_i=b"",
            credential=device[2],  # a P-256 key cannot sign with EdDSA
            credential_lookup=lookup,
        )
    with pytest.raises(LocalEdhocError):
        device[0].with_private_key(b"\x01" * 32)


def test_x509_credential_by_value_round_trip() -> None:
    from tests.edhoc.vectors_rfc9529 import TRACE_1 as T

    cred_i = Credential.from_x509(T["CRED_I (Raw Value)"], private_key=T["SK_I (Raw Value)"])
    cred_r = Credential.from_x509(T["CRED_R (Raw Value)"], private_key=T["SK_R (Raw Value)"])
    initiator = Initiator(
        method=Method.SIGNATURE_SIGNATURE,
        suites=[CipherSuite.SUITE_4],
        c_i=b"",
        credential=cred_i,
        credential_lookup=lookup_from(cred_r),
        credential_transfer=CredentialTransfer.BY_VALUE,
    )
    responder = Responder(
        suites=[CipherSuite.SUITE_4],
        c_r=b"\xab\xcd",
        credential=cred_r,
        credential_lookup=lookup_from(cred_i),
        credential_transfer=CredentialTransfer.BY_VALUE,
    )
    responder.receive_message_1(initiator.message_1())
    initiator.receive_message_2(responder.message_2())
    responder.receive_message_3(initiator.message_3())
    assert responder.peer_credential == cred_i.public()
    assert initiator.c_r == b"\xab\xcd"
    assert responder.c_i == b""
