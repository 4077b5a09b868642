"""XmlStreamParser on well-formed streams: whole, byte by byte, with trailing data, and restarts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

import pytest

from gateway.xmpp.errors import STREAM_NS, XML_LANG, LocalXmppError, StreamError
from gateway.xmpp.parser import (
    DEFAULT_MAX_STANZA_SIZE,
    StanzaReceived,
    StreamClosed,
    StreamEvent,
    StreamOpened,
    XmlStreamParser,
)

# The server's side of a client session, after the RFC 6120 §9.1 (TLS) and §9.2 (SASL) examples.
# The stream restarts after <proceed/> and after <success/>.
SERVER_STREAM_TLS = (
    b"<?xml version='1.0'?>"
    b"<stream:stream from='im.example.com' id='t7AMCin9zjMNwQKDnplntZPIDEI=' "
    b"to='juliet@im.example.com' version='1.0' xml:lang='en' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams'>"
    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    b"</stream:features>"
    b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
)
SERVER_STREAM_AFTER_BIND = (
    b"<?xml version='1.0'?>"
    b"<stream:stream from='im.example.com' id='gPybzaOzBmaADgxKXu9UClbprp0=' "
    b"to='juliet@im.example.com' version='1.0' xml:lang='en' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams'>\n"
    b"  <iq id='yhc13a95' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    b"<jid>juliet@im.example.com/balcony</jid></bind></iq> \n"
    b"<message from='romeo@example.net/orchard' to='juliet@im.example.com/balcony' type='chat'"
    b" xml:lang='fr'><body>Art thou not Romeo, &amp; a Montague?</body>"
    b"<thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread></message>"
    b"<presence from='romeo@example.net/orchard'><status>caf\xc3\xa9 &#x2615; &lt;3</status>"
    b"<x xmlns='urn:example:empty'/></presence>"
    b"</stream:stream>"
)


def canonical(element: ET.Element) -> tuple[object, ...]:
    """A comparable form of an element tree (text None and '' are the same)."""
    return (
        element.tag,
        tuple(sorted(element.attrib.items())),
        element.text or "",
        tuple(canonical(child) for child in element),
        element.tail or "",
    )


def describe(events: Iterable[StreamEvent]) -> list[tuple[object, ...]]:
    """Events in a comparable form (StanzaReceived compares by identity)."""
    described: list[tuple[object, ...]] = []
    for event in events:
        if isinstance(event, StreamOpened):
            described.append(
                ("opened", tuple(sorted(event.attributes.items())), event.content_namespace)
            )
        elif isinstance(event, StanzaReceived):
            described.append(("stanza", canonical(event.element)))
        else:
            assert isinstance(event, StreamClosed)
            described.append(("closed",))
    return described


def feed_in_chunks(parser: XmlStreamParser, data: bytes, size: int) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for offset in range(0, len(data), size):
        events += parser.feed(data[offset : offset + size])
    return events


def test_stream_header_and_first_level_elements() -> None:
    events = XmlStreamParser().feed(SERVER_STREAM_TLS)
    assert len(events) == 3
    opened, features, proceed = events
    assert isinstance(opened, StreamOpened)
    assert opened.from_ == "im.example.com"
    assert opened.to == "juliet@im.example.com"
    assert opened.id == "t7AMCin9zjMNwQKDnplntZPIDEI="
    assert opened.version == "1.0"
    assert opened.lang == "en"
    assert opened.content_namespace == "jabber:client"
    assert isinstance(features, StanzaReceived)
    assert features.element.tag == f"{{{STREAM_NS}}}features"
    starttls = features.element[0]
    assert starttls.tag == "{urn:ietf:params:xml:ns:xmpp-tls}starttls"
    assert starttls[0].tag == "{urn:ietf:params:xml:ns:xmpp-tls}required"
    assert isinstance(proceed, StanzaReceived)
    assert proceed.element.tag == "{urn:ietf:params:xml:ns:xmpp-tls}proceed"
    # Negotiation elements do not inherit the stream language; only stanzas do.
    assert XML_LANG not in proceed.element.attrib


def test_stanzas_namespaces_text_and_language() -> None:
    parser = XmlStreamParser()
    events = parser.feed(SERVER_STREAM_AFTER_BIND)
    assert [type(event) for event in events] == [
        StreamOpened,
        StanzaReceived,
        StanzaReceived,
        StanzaReceived,
        StreamClosed,
    ]
    assert parser.closed
    iq, message, presence = (event.element for event in events[1:4])  # type: ignore[union-attr]
    assert iq.tag == "{jabber:client}iq"
    bind = "{urn:ietf:params:xml:ns:xmpp-bind}"
    assert iq.findtext(f"{bind}bind/{bind}jid") == "juliet@im.example.com/balcony"
    assert iq.get(XML_LANG) == "en"  # RFC 6120 §4.7.4: inherited from the stream header
    assert message.get(XML_LANG) == "fr"  # its own xml:lang wins
    assert message.findtext("{jabber:client}body") == "Art thou not Romeo, & a Montague?"
    assert message.findtext("{jabber:client}thread") == "e0ffe42b28561960c6b12b944a092794b9683a38"
    assert presence.findtext("{jabber:client}status") == "café \u2615 <3"
    assert presence.find("{urn:example:empty}x") is not None
    assert presence.get(XML_LANG) == "en"


@pytest.mark.parametrize("stream", [SERVER_STREAM_TLS, SERVER_STREAM_AFTER_BIND])
def test_whole_equals_byte_by_byte_equals_odd_chunks(stream: bytes) -> None:
    whole = describe(XmlStreamParser().feed(stream))
    assert describe(feed_in_chunks(XmlStreamParser(), stream, 1)) == whole
    assert describe(feed_in_chunks(XmlStreamParser(), stream, 7)) == whole


def test_events_arrive_as_soon_as_each_stanza_ends() -> None:
    """Trailing data (the start of the next stanza) is held back, not lost and not early."""
    parser = XmlStreamParser()
    head, _, tail = SERVER_STREAM_AFTER_BIND.partition(b"<message")
    events = parser.feed(head + b"<mess")
    assert [type(event) for event in events] == [StreamOpened, StanzaReceived]
    assert parser.feed(b"age") == []
    events = parser.feed(b"<message"[len(b"<message") :] + tail)
    assert describe(events) == describe(XmlStreamParser().feed(SERVER_STREAM_AFTER_BIND))[2:]


def test_each_stanza_is_returned_the_moment_its_end_tag_completes() -> None:
    parser = XmlStreamParser()
    parser.feed(SERVER_STREAM_TLS.partition(b"<stream:features>")[0])
    stanza = b"<message><body>x</body></message>"
    for index in range(len(stanza) - 1):
        assert parser.feed(stanza[index : index + 1]) == []
    (event,) = parser.feed(stanza[-1:])
    assert isinstance(event, StanzaReceived)


def test_multibyte_utf8_split_across_feeds() -> None:
    parser = XmlStreamParser()
    parser.feed(SERVER_STREAM_TLS.partition(b"<stream:features>")[0])
    stanza = "<message><body>\U0001f600 é</body></message>".encode()
    split = stanza.index(b"\xf0") + 2
    assert parser.feed(stanza[:split]) == []
    (event,) = parser.feed(stanza[split:])
    assert isinstance(event, StanzaReceived)
    assert event.element.findtext("{jabber:client}body") == "\U0001f600 é"


def test_whitespace_keepalives_are_ignored() -> None:
    parser = XmlStreamParser()
    parser.feed(SERVER_STREAM_TLS.partition(b"<stream:features>")[0])
    for _ in range(100):
        assert parser.feed(b" \n\t\r") == []
    assert parser.buffered_size < 16


def test_reset_restarts_the_stream() -> None:
    """RFC 6120 §5.3.4: after <proceed/> (and §6.4.6 after <success/>) a new stream begins."""
    parser = XmlStreamParser()
    assert len(parser.feed(SERVER_STREAM_TLS)) == 3
    parser.reset()
    events = parser.feed(SERVER_STREAM_AFTER_BIND)
    assert isinstance(events[0], StreamOpened)
    assert events[0].id == "gPybzaOzBmaADgxKXu9UClbprp0="
    assert isinstance(events[-1], StreamClosed)


def test_without_reset_a_second_header_is_an_error() -> None:
    parser = XmlStreamParser()
    parser.feed(SERVER_STREAM_TLS)
    with pytest.raises(StreamError) as caught:
        parser.feed(SERVER_STREAM_AFTER_BIND)
    assert caught.value.condition in {"not-well-formed", "restricted-xml"}


def test_feed_after_failure_is_local_misuse_until_reset() -> None:
    parser = XmlStreamParser()
    with pytest.raises(StreamError):
        parser.feed(b"<not-a-stream/>")
    with pytest.raises(LocalXmppError):
        parser.feed(b"<stream:stream")
    parser.reset()
    assert len(parser.feed(SERVER_STREAM_TLS)) == 3


def test_prefix_free_canonicalization() -> None:
    """RFC 6120 §4.8.2: no default namespace; each first-level element carries its own."""
    parser = XmlStreamParser()
    events = parser.feed(
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        b"<message xmlns='jabber:client'><body>hi</body></message>"
    )
    assert isinstance(events[0], StreamOpened)
    assert events[0].content_namespace is None
    assert isinstance(events[1], StanzaReceived)
    assert events[1].element.findtext("{jabber:client}body") == "hi"


def test_other_stream_prefix_and_component_namespace() -> None:
    parser = XmlStreamParser()
    events = parser.feed(
        b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:component:accept'"
        b" from='component.example.com' id='3BF96D32'><handshake/><s:features/>"
    )
    assert isinstance(events[0], StreamOpened)
    assert events[0].content_namespace == "jabber:component:accept"
    assert [event.element.tag for event in events[1:]] == [  # type: ignore[union-attr]
        "{jabber:component:accept}handshake",
        f"{{{STREAM_NS}}}features",
    ]


def test_namespaced_attributes_and_undeclared_default() -> None:
    parser = XmlStreamParser(inherit_stream_lang=False)
    events = parser.feed(
        SERVER_STREAM_TLS.partition(b"<stream:features>")[0]
        + b"<message xmlns:e='urn:example:attrs' e:flag='1' to='a@b'>"
        b"<plain xmlns=''><body/></plain><body>x</body></message>"
    )
    message = events[1].element  # type: ignore[union-attr]
    assert message.attrib == {"{urn:example:attrs}flag": "1", "to": "a@b"}
    assert message[0].tag == "plain"
    assert message[0][0].tag == "body"  # no namespace: the default was undeclared
    assert message[1].tag == "{jabber:client}body"


def test_character_references_and_cdata() -> None:
    parser = XmlStreamParser()
    events = parser.feed(
        SERVER_STREAM_TLS.partition(b"<stream:features>")[0]
        + b"<message a='&#9;&#10;&quot;&apos;'><body>&#65;<![CDATA[<b>&amp;</b>]]></body></message>"
    )
    message = events[1].element  # type: ignore[union-attr]
    assert message.get("a") == "\t\n\"'"
    assert message.findtext("{jabber:client}body") == "A<b>&amp;</b>"


def test_a_stanza_of_exactly_the_limit_is_accepted() -> None:
    limit = 1024
    header = SERVER_STREAM_TLS.partition(b"<stream:features>")[0]
    opening, closing = b"<message><body>", b"</body></message>"
    body = b"x" * (limit - len(opening) - len(closing))
    stanza = opening + body + closing
    assert len(stanza) == limit
    events = XmlStreamParser(max_stanza_size=limit).feed(header + stanza)
    assert isinstance(events[1], StanzaReceived)
    assert events[1].element.findtext("{jabber:client}body") == body.decode()
    assert DEFAULT_MAX_STANZA_SIZE == 256 * 1024


def test_buffered_size_drops_back_after_each_stanza() -> None:
    parser = XmlStreamParser()
    parser.feed(SERVER_STREAM_TLS.partition(b"<stream:features>")[0])
    stanza = b"<message><body>" + b"y" * 100_000 + b"</body></message>"
    parser.feed(stanza[:50_000])
    assert parser.buffered_size == 50_000
    parser.feed(stanza[50_000:])
    assert parser.buffered_size <= len(b"</message>")


@pytest.mark.parametrize("bad", [-1, 0, True, 1.5])
def test_limits_must_be_positive_ints(bad: object) -> None:
    with pytest.raises(LocalXmppError):
        XmlStreamParser(max_depth=bad)  # type: ignore[arg-type]


def test_feed_takes_bytes_only() -> None:
    with pytest.raises(LocalXmppError):
        XmlStreamParser().feed("<stream:stream>")  # type: ignore[arg-type]
