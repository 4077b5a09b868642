"""The XEP-0077 registration core, sans-IO: canned server bytes in, our bytes and errors out."""

from __future__ import annotations

import pytest

from gateway.enroll.registration import InBandRegistration, RegistrationError, RegistrationState
from gateway.jid import Jid

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' from='impp.test' id='s1' version='1.0'>"
)
STARTTLS = b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"
PROCEED = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
REGISTER_FEATURES = (
    b"<stream:features><register xmlns='http://jabber.org/features/iq-register'/>"
    b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
    b"</mechanisms></stream:features>"
)
FIELDS = (
    b"<iq type='result' id='reg1'><query xmlns='jabber:iq:register'><instructions>hi"
    b"</instructions><username/><password/><x xmlns='jabber:x:data' type='form'/></query></iq>"
)
DONE = b"<iq type='result' id='reg2'/>"


def registration() -> InBandRegistration:
    machine = InBandRegistration(
        Jid.parse_untrusted("alice@impp.test"), "secret", peer_is_loopback=False
    )
    machine.start()
    assert b'to="impp.test"' in machine.data_to_send()
    return machine


def through_tls(machine: InBandRegistration) -> None:
    machine.receive_data_untrusted(HEADER + STARTTLS)
    assert b"starttls" in machine.data_to_send()
    machine.receive_data_untrusted(PROCEED)
    assert machine.state is RegistrationState.TLS_REQUESTED
    machine.tls_established()
    machine.data_to_send()


def test_the_whole_exchange_byte_by_byte() -> None:
    machine = registration()
    through_tls(machine)
    sent = b""
    for byte in HEADER + REGISTER_FEATURES + FIELDS:
        machine.receive_data_untrusted(bytes([byte]))
        sent += machine.data_to_send()
    assert b'type="get"' in sent
    assert b"<username>alice</username><password>secret</password>" in sent
    machine.receive_data_untrusted(DONE)
    assert machine.state is RegistrationState.DONE
    assert machine.data_to_send() == b"</stream:stream>"


AFTER_FIELDS = HEADER + REGISTER_FEATURES


@pytest.mark.parametrize(
    ("before_tls", "answer", "reason", "conflict"),
    [
        (True, HEADER + STARTTLS.replace(b"starttls", b"other"), "offers no STARTTLS", False),
        (
            False,
            HEADER + REGISTER_FEATURES.replace(b"iq-register", b"other"),
            "does not offer in-band registration",
            False,
        ),
        (False, AFTER_FIELDS + FIELDS.replace(b"<username/>", b"<email/>"), "more than", False),
        (
            False,
            AFTER_FIELDS + b"<iq type='error' id='reg1'><error type='cancel'><not-allowed "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
            "not-allowed",
            False,
        ),
        (
            False,
            AFTER_FIELDS + FIELDS.replace(b"<username/>", b"<registered/><username/>"),
            "already registered",
            True,
        ),
        (
            False,
            AFTER_FIELDS + b"<iq type='result' id='reg1'><query xmlns='jabber:iq:register'/></iq>",
            r"\(nothing\)",
            False,
        ),
        (False, HEADER + b"<iq><</iq>", "malformed", False),
        (
            False,
            HEADER + b"<stream:error><policy-violation "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
            "ended the stream",
            False,
        ),
        (False, b"", "closed the connection", False),
        (False, HEADER + b"</stream:stream>", "closed the stream", False),
    ],
)
def test_refusals_say_why(before_tls: bool, answer: bytes, reason: str, conflict: bool) -> None:
    machine = registration()
    if not before_tls:
        through_tls(machine)
    with pytest.raises(RegistrationError, match=reason) as raised:
        machine.receive_data_untrusted(answer)
    assert raised.value.conflict is conflict
    assert machine.state is RegistrationState.FAILED
    machine.receive_data_untrusted(b"anything")  # a failed machine ignores further input


def test_a_conflict_on_submit() -> None:
    machine = registration()
    through_tls(machine)
    machine.receive_data_untrusted(HEADER + REGISTER_FEATURES + FIELDS)
    with pytest.raises(RegistrationError, match="already exists") as raised:
        machine.receive_data_untrusted(
            b"<iq type='error' id='reg2'><error type='cancel'><conflict "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        )
    assert raised.value.conflict


def test_plaintext_only_when_allowed_on_loopback() -> None:
    machine = InBandRegistration(
        Jid.parse_untrusted("alice@impp.test"), "pw", allow_plaintext=True, peer_is_loopback=True
    )
    machine.start()
    machine.receive_data_untrusted(HEADER + REGISTER_FEATURES)
    assert b"jabber:iq:register" in machine.data_to_send()
