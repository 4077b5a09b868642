"""Interoperability with lakers (an independent Rust EDHOC implementation), both roles.

lakers implements method 3 with cipher suite 2 and CCS credentials; the credentials are sent by
reference (kid) or by value (kccs). Both sides must agree on PRK_out-derived exporter output.
"""

from __future__ import annotations

import lakers
import pytest

from gateway.edhoc import (
    CipherSuite,
    Credential,
    CredentialTransfer,
    Curve,
    EadItem,
    HandshakeCompleted,
    Initiator,
    Message2Received,
    Method,
    Responder,
    State,
    UnknownCredentialError,
)
from tests.edhoc.helpers import lookup_from

# RFC 9529 trace 2's keys and credentials (as used by lakers' own tests).
SK_I = bytes.fromhex("fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b")
SK_R = bytes.fromhex("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac")
CRED_I = Credential.new_ccs(curve=Curve.P256, private_key=SK_I, kid=b"\x2b", subject="device")
CRED_R = Credential.new_ccs(curve=Curve.P256, private_key=SK_R, kid=b"\x0a", subject="")

TRANSFERS = [
    (CredentialTransfer.BY_REFERENCE, lakers.CredentialTransfer.ByReference),
    (CredentialTransfer.BY_VALUE, lakers.CredentialTransfer.ByValue),
]


def _exports(party: object) -> list[bytes]:
    exporter = party.edhoc_exporter  # type: ignore[attr-defined]
    return [bytes(exporter(0, b"", 16)), bytes(exporter(1, b"", 8)), bytes(exporter(7, b"ab", 32))]


@pytest.mark.parametrize(("ours", "theirs"), TRANSFERS)
def test_lakers_initiator_with_our_responder(
    ours: CredentialTransfer, theirs: lakers.CredentialTransfer
) -> None:
    lakers_initiator = lakers.EdhocInitiator()
    responder = Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=b"\x27",
        credential=CRED_R,
        credential_lookup=lookup_from(CRED_I),
        credential_transfer=ours,
    )
    m1 = lakers_initiator.prepare_message_1(c_i=b"\x37", ead_1=None)
    (event,) = responder.receive_message_1(bytes(m1))
    assert event.method is Method.STATIC_DH_STATIC_DH
    assert event.suite is CipherSuite.SUITE_2
    m2 = responder.message_2()
    c_r, id_cred_r, _ead_2 = lakers_initiator.parse_message_2(m2)
    assert bytes(c_r) == b"\x27"
    valid_cred_r = lakers.credential_check_or_fetch(id_cred_r, lakers.Credential(CRED_R.encoded))
    lakers_initiator.verify_message_2(SK_I, lakers.Credential(CRED_I.encoded), valid_cred_r)
    m3, _prk_out = lakers_initiator.prepare_message_3(theirs, None)
    events = responder.receive_message_3(bytes(m3))
    assert isinstance(events[-1], HandshakeCompleted)
    assert events[-1].peer_credential == CRED_I.public()
    lakers_initiator.completed_without_message_4()
    assert _exports(_OurExporter(responder)) == _exports(lakers_initiator)


@pytest.mark.parametrize(("ours", "theirs"), TRANSFERS)
def test_our_initiator_with_lakers_responder(
    ours: CredentialTransfer, theirs: lakers.CredentialTransfer
) -> None:
    lakers_responder = lakers.EdhocResponder(SK_R, lakers.Credential(CRED_R.encoded))
    initiator = Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_2],
        c_i=b"\x37",
        credential=CRED_I,
        credential_lookup=lookup_from(CRED_R),
        credential_transfer=ours,
    )
    m1 = initiator.message_1()
    c_i, _ead_1 = lakers_responder.process_message_1(m1)
    assert bytes(c_i) == b"\x37"
    m2 = lakers_responder.prepare_message_2(theirs, b"\x27", None)
    (event,) = initiator.receive_message_2(bytes(m2))
    assert isinstance(event, Message2Received)
    assert event.peer_credential == CRED_R.public()
    m3 = initiator.message_3()
    id_cred_i, _ead_3 = lakers_responder.parse_message_3(m3)
    valid_cred_i = lakers.credential_check_or_fetch(id_cred_i, lakers.Credential(CRED_I.encoded))
    lakers_responder.verify_message_3(valid_cred_i)
    m4 = lakers_responder.prepare_message_4(None)
    initiator.receive_message_4(bytes(m4))
    assert initiator.state is State.CONFIRMED
    assert _exports(_OurExporter(initiator)) == _exports(lakers_responder)
    # Key update moves both sides to the same new keys.
    context = bytes(range(16))
    initiator.key_update(context)
    lakers_responder.edhoc_key_update(context)
    assert _exports(_OurExporter(initiator)) == _exports(lakers_responder)


def test_lakers_ead_reaches_our_responder() -> None:
    lakers_initiator = lakers.EdhocInitiator()
    responder = Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=b"\x27",
        credential=CRED_R,
        credential_lookup=lookup_from(CRED_I),
    )
    m1 = lakers_initiator.prepare_message_1(
        c_i=b"\x37", ead_1=[lakers.EADItem(5, False, b"\x01\x02")]
    )
    (event,) = responder.receive_message_1(bytes(m1))
    assert event.ead == (EadItem(5, b"\x01\x02"),)


def test_our_responder_refuses_unknown_lakers_initiator() -> None:
    lakers_initiator = lakers.EdhocInitiator()
    stranger = Credential.new_ccs(curve=Curve.P256, private_key=SK_R, kid=b"\x2c", subject="x")
    responder = Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=b"\x27",
        credential=CRED_R,
        credential_lookup=lookup_from(stranger),
    )
    responder.receive_message_1(bytes(lakers_initiator.prepare_message_1(c_i=b"\x37", ead_1=None)))
    m2 = responder.message_2()
    _c_r, id_cred_r, _ = lakers_initiator.parse_message_2(m2)
    valid = lakers.credential_check_or_fetch(id_cred_r, lakers.Credential(CRED_R.encoded))
    lakers_initiator.verify_message_2(SK_I, lakers.Credential(CRED_I.encoded), valid)
    m3, _ = lakers_initiator.prepare_message_3(lakers.CredentialTransfer.ByReference, None)
    with pytest.raises(UnknownCredentialError) as caught:
        responder.receive_message_3(bytes(m3))
    assert caught.value.error_message == b"\x03\xf5"  # error code 3, ERR_INFO true (§6.4)
    assert responder.state is State.ERROR


class _OurExporter:
    """Adapts our ``exporter`` to lakers' ``edhoc_exporter`` name for comparison."""

    def __init__(self, party: Initiator | Responder) -> None:
        self.edhoc_exporter = party.exporter
