"""The XMPP error tree: hierarchy, wire conditions, and reading/writing error elements."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.xmpp.errors import (
    STANZAS_NS,
    STREAMS_NS,
    AuthenticationFailed,
    LocalXmppError,
    PeerStreamError,
    RemoteXmppError,
    SaslCondition,
    StanzaError,
    StanzaErrorCondition,
    StanzaErrorType,
    StreamCondition,
    StreamError,
    XmppError,
)
from gateway.xmpp.parser import StanzaReceived, XmlStreamParser
from gateway.xmpp.serializer import serialize, stream_header

HEADER = (
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    b"version='1.0'>"
)


def parse(first_level: bytes) -> ET.Element:
    events = XmlStreamParser().feed(HEADER + first_level)
    assert isinstance(events[1], StanzaReceived)
    return events[1].element


def test_hierarchy_splits_local_from_remote() -> None:
    assert issubclass(LocalXmppError, XmppError)
    assert issubclass(RemoteXmppError, XmppError)
    for remote in (StreamError, PeerStreamError, AuthenticationFailed):
        assert issubclass(remote, RemoteXmppError)
        assert not issubclass(remote, LocalXmppError)
    # A received stream error must never be answered with one (RFC 6120 §4.9.1.1).
    assert not issubclass(PeerStreamError, StreamError)
    assert issubclass(StanzaError, XmppError)
    assert not issubclass(StanzaError, RemoteXmppError)


def test_condition_lists_are_the_rfc_ones() -> None:
    # RFC 6120 §4.9.3 has 25 stream conditions, §8.3.3 has 22 stanza conditions, §6.5 has 11.
    assert len(StreamCondition) == 25
    assert len(StanzaErrorCondition) == 22
    assert len(SaslCondition) == 11
    assert {t.value for t in StanzaErrorType} == {"auth", "cancel", "continue", "modify", "wait"}


def test_stream_error_condition_and_text() -> None:
    error = StreamError("policy-violation", "stanza too large")
    assert error.condition is StreamCondition.POLICY_VIOLATION
    assert str(error.condition) == "policy-violation"
    assert str(error) == "policy-violation: stanza too large"
    assert StreamError(StreamCondition.RESET).text == ""
    with pytest.raises(LocalXmppError):
        StreamError("not-a-condition")


def test_stream_error_element_matches_rfc_6120_example() -> None:
    """RFC 6120 §4.9.3.13 example: <stream:error><not-well-formed .../></stream:error>."""
    data = serialize(StreamError("not-well-formed").to_element())
    assert data == (
        b'<stream:error><not-well-formed xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>'
        b"</stream:error>"
    )
    with_text = StreamError("bad-format", "why").to_element(include_text=False)
    assert len(with_text) == 1


def test_peer_stream_error_see_other_host() -> None:
    # RFC 6120 §4.9.3.19 example.
    element = parse(
        b"<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
        b"[2001:db8::a1]:5222</see-other-host></stream:error>"
    )
    error = PeerStreamError.from_element_untrusted(element)
    assert error.condition is StreamCondition.SEE_OTHER_HOST
    assert error.see_other_host == "[2001:db8::a1]:5222"


def test_peer_stream_error_text_and_application_condition() -> None:
    # RFC 6120 §4.9.4 example, with a <text/>.
    element = parse(
        b"<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xml:lang='en' xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
        b"Some special application diagnostic information!</text>"
        b"<escape-your-data xmlns='http://example.org/ns'/></stream:error>"
    )
    error = PeerStreamError.from_element_untrusted(element)
    assert error.condition is StreamCondition.NOT_WELL_FORMED
    assert error.text == "Some special application diagnostic information!"
    assert error.application_condition == "{http://example.org/ns}escape-your-data"
    assert error.see_other_host is None


@pytest.mark.parametrize(
    "element",
    [
        b"<stream:error/>",
        b"<stream:error><made-up xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    ],
)
def test_peer_stream_error_degrades_to_undefined_condition(element: bytes) -> None:
    error = PeerStreamError.from_element_untrusted(parse(element))
    assert error.condition is StreamCondition.UNDEFINED_CONDITION


def test_sasl_failure() -> None:
    # RFC 6120 §6.4.5 example.
    element = parse(
        b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>"
        b"<text xml:lang='en'>Wrong password</text></failure>"
    )
    error = AuthenticationFailed.from_failure_untrusted(element)
    assert error.condition is SaslCondition.NOT_AUTHORIZED
    assert error.text == "Wrong password"
    aborted = AuthenticationFailed.from_failure_untrusted(
        parse(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>")
    )
    assert aborted.condition is SaslCondition.ABORTED
    empty = AuthenticationFailed.from_failure_untrusted(
        parse(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
    )
    assert empty.condition is SaslCondition.NOT_AUTHORIZED
    unknown = AuthenticationFailed.from_failure_untrusted(
        parse(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><new-thing/></failure>")
    )
    assert unknown.condition is SaslCondition.NOT_AUTHORIZED


def test_stanza_error_from_rfc_6120_example() -> None:
    # RFC 6120 §8.3.2 example (service-unavailable in reply to a message).
    stanza = parse(
        b"<message from='romeo@example.net/orchard' id='ud7n1f4h' "
        b"to='juliet@im.example.com/balcony' type='error'>"
        b"<error type='cancel' by='example.net'>"
        b"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Not here</text>"
        b"<special xmlns='urn:example:app'/>"
        b"</error></message>"
    )
    error = StanzaError.from_element_untrusted(stanza)
    assert error.type is StanzaErrorType.CANCEL
    assert error.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE
    assert error.text == "Not here"
    assert error.by == "example.net"
    assert error.application_condition == "{urn:example:app}special"


def test_stanza_error_redirect() -> None:
    # RFC 6120 §8.3.3.14 example.
    error = StanzaError.from_element_untrusted(
        parse(
            b"<iq type='error' id='x'><error type='modify'>"
            b"<redirect xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>"
            b"xmpp:characters@conference.example.org</redirect></error></iq>"
        )
    )
    assert error.condition is StanzaErrorCondition.REDIRECT
    assert error.redirect == "xmpp:characters@conference.example.org"


@pytest.mark.parametrize(
    "stanza",
    [
        b"<iq type='error'/>",
        b"<iq type='error'><error/></iq>",
        b"<iq type='error'><error type='sideways'>"
        b"<bogus xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
    ],
)
def test_malformed_stanza_errors_still_end_as_errors(stanza: bytes) -> None:
    error = StanzaError.from_element_untrusted(parse(stanza))
    assert error.type is StanzaErrorType.CANCEL
    assert error.condition is StanzaErrorCondition.UNDEFINED_CONDITION


def test_stanza_error_round_trip_through_the_wire() -> None:
    original = StanzaError(
        "wait",
        "resource-constraint",
        "busy",
        application_condition="{urn:example:app}later",
        by="gateway.example",
    )
    iq = ET.Element("{jabber:client}iq", {"type": "error", "id": "1"})
    iq.append(original.to_element())
    data = serialize(iq)
    assert b'<resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>' in data
    events = XmlStreamParser().feed(stream_header() + data)
    assert isinstance(events[1], StanzaReceived)
    back = StanzaError.from_element_untrusted(events[1].element)
    assert (back.type, back.condition, back.text, back.application_condition, back.by) == (
        original.type,
        original.condition,
        original.text,
        original.application_condition,
        original.by,
    )
    gone = StanzaError("cancel", "gone", redirect="xmpp:new@example.org").to_element()
    assert gone.find(f"{{{STANZAS_NS}}}gone").text == "xmpp:new@example.org"  # type: ignore[union-attr]


def test_stanza_error_misuse() -> None:
    with pytest.raises(LocalXmppError):
        StanzaError("sideways", "bad-request")
    with pytest.raises(LocalXmppError):
        StanzaError("modify", "not-a-condition")
    with pytest.raises(LocalXmppError):
        AuthenticationFailed("y", condition="not-a-sasl-condition")


# Total readers: any element tree gives an error object, never an exception.

TAGS = st.sampled_from(
    [
        "error",
        "{jabber:client}error",
        f"{{{STANZAS_NS}}}text",
        f"{{{STANZAS_NS}}}gone",
        f"{{{STANZAS_NS}}}bad-request",
        f"{{{STANZAS_NS}}}nonsense",
        f"{{{STREAMS_NS}}}text",
        f"{{{STREAMS_NS}}}see-other-host",
        f"{{{STREAMS_NS}}}conflict",
        "{urn:ietf:params:xml:ns:xmpp-sasl}aborted",
        "{urn:other}thing",
        "text",
    ]
)


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> ET.Element:
    element = ET.Element(draw(TAGS))
    if draw(st.booleans()):
        element.set("type", draw(st.sampled_from(["cancel", "wait", "", "bogus"])))
    element.text = draw(st.none() | st.text(max_size=5))
    if depth < 2:
        for _ in range(draw(st.integers(0, 3))):
            element.append(draw(trees(depth + 1)))
    return element


@settings(max_examples=200)
@given(tree=trees())
def test_readers_are_total(tree: ET.Element) -> None:
    assert isinstance(StanzaError.from_element_untrusted(tree), StanzaError)
    assert isinstance(PeerStreamError.from_element_untrusted(tree), PeerStreamError)
    assert isinstance(AuthenticationFailed.from_failure_untrusted(tree), AuthenticationFailed)
