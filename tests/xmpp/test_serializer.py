"""serialize() and stream_header(): exact output, refusals, and serialize -> parse round trips."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.xmpp.errors import STREAM_NS, XML_LANG, LocalXmppError, StreamError
from gateway.xmpp.parser import StanzaReceived, StreamClosed, StreamOpened, XmlStreamParser
from gateway.xmpp.serializer import STREAM_CLOSE, serialize, stream_header
from tests.xmpp.test_parser import canonical

RECEIPTS = "urn:xmpp:receipts"


def parse_one(data: bytes, *, namespace: str = "jabber:client") -> ET.Element:
    """Parse ``data`` as the only first-level element of a stream we opened."""
    parser = XmlStreamParser(inherit_stream_lang=False)
    events = parser.feed(stream_header(to="example.com", namespace=namespace) + data)
    assert len(events) == 2
    assert isinstance(events[1], StanzaReceived)
    return events[1].element


def test_content_namespace_has_no_prefix_and_no_declaration() -> None:
    message = ET.Element("{jabber:client}message", {"to": "romeo@example.net", "type": "chat"})
    ET.SubElement(message, "{jabber:client}body").text = "Wherefore art thou?"
    assert serialize(message) == (
        b'<message to="romeo@example.net" type="chat"><body>Wherefore art thou?</body></message>'
    )


def test_foreign_namespace_declared_where_introduced() -> None:
    message = ET.Element("{jabber:client}message", {"id": "m1"})
    request = ET.SubElement(message, f"{{{RECEIPTS}}}request")
    ET.SubElement(request, f"{{{RECEIPTS}}}inner")
    ET.SubElement(request, "{jabber:client}body").text = "back"
    assert serialize(message) == (
        b'<message id="m1"><request xmlns="urn:xmpp:receipts"><inner/>'
        b'<body xmlns="jabber:client">back</body></request></message>'
    )


def test_stream_namespace_uses_the_stream_prefix() -> None:
    error = StreamError("not-well-formed", "bad input").to_element()
    assert serialize(error) == (
        b"<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bad input</text></stream:error>"
    ).replace(b"'", b'"')


def test_lang_and_namespaced_attributes() -> None:
    presence = ET.Element("{jabber:client}presence", {XML_LANG: "en", "{urn:example:a}flag": "1"})
    ET.SubElement(presence, "{jabber:client}status", {XML_LANG: "cs"}).text = "Dvořák"
    data = serialize(presence)
    assert (
        data
        == (
            '<presence xmlns:ns2="urn:example:a" xml:lang="en" ns2:flag="1">'
            '<status xml:lang="cs">Dvořák</status></presence>'
        ).encode()
    )
    assert canonical(parse_one(data)) == canonical(presence)


def test_no_namespace_below_a_default_namespace() -> None:
    iq = ET.Element("{jabber:client}iq", {"type": "get"})
    query = ET.SubElement(iq, "{jabber:iq:roster}query")
    ET.SubElement(query, "plain")
    assert serialize(iq) == (
        b'<iq type="get"><query xmlns="jabber:iq:roster"><plain xmlns=""/></query></iq>'
    )
    assert canonical(parse_one(serialize(iq))) == canonical(iq)


def test_escaping_of_text_and_attributes() -> None:
    message = ET.Element("{jabber:client}message", {"to": "a&b<c>\"'\t\n\r"})
    body = ET.SubElement(message, "{jabber:client}body")
    body.text = "1 < 2 & 3 > 2 ]]> \r\n end"
    data = serialize(message)
    assert data == (
        b'<message to="a&amp;b&lt;c&gt;&quot;&apos;&#9;&#10;&#13;">'
        b"<body>1 &lt; 2 &amp; 3 &gt; 2 ]]&gt; &#13;\n end</body></message>"
    )
    assert canonical(parse_one(data)) == canonical(message)


def test_tails_and_mixed_content() -> None:
    body = ET.Element("{http://www.w3.org/1999/xhtml}body")
    body.text = "a "
    ET.SubElement(body, "{http://www.w3.org/1999/xhtml}em").text = "b"
    body[0].tail = " c"
    body.tail = "ignored: the tail of the first-level element is not part of it"
    assert serialize(body) == b'<body xmlns="http://www.w3.org/1999/xhtml">a <em>b</em> c</body>'


def test_other_content_namespace() -> None:
    handshake = ET.Element("{jabber:component:accept}handshake")
    handshake.text = "aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e"
    data = serialize(handshake, stream_namespace="jabber:component:accept")
    assert data == b"<handshake>aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake>"


def test_stream_header_and_close() -> None:
    header = stream_header(to="im.example.com", from_="juliet@im.example.com", lang="en")
    assert header == (
        b"<?xml version='1.0'?><stream:stream xmlns=\"jabber:client\" "
        b'xmlns:stream="http://etherx.jabber.org/streams" from="juliet@im.example.com" '
        b'to="im.example.com" version="1.0" xml:lang="en">'
    )
    assert STREAM_CLOSE == b"</stream:stream>"
    events = XmlStreamParser().feed(header + STREAM_CLOSE)
    assert isinstance(events[0], StreamOpened)
    assert events[0].to == "im.example.com"
    assert events[0].from_ == "juliet@im.example.com"
    assert events[0].lang == "en"
    assert events[0].version == "1.0"
    assert events[0].content_namespace == "jabber:client"
    assert isinstance(events[1], StreamClosed)


def test_stream_header_options() -> None:
    header = stream_header(
        namespace="jabber:server", id="++TR84Sm6A3hnt3Q065SnAbbk3Y=", xml_declaration=False
    )
    assert header == (
        b'<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams" '
        b'id="++TR84Sm6A3hnt3Q065SnAbbk3Y=" version="1.0">'
    )
    with pytest.raises(LocalXmppError):
        stream_header(namespace=STREAM_NS)


@pytest.mark.parametrize(
    "element",
    [
        ET.Element("{jabber:client}message", {"to": "a\x00b"}),
        ET.Element("{jabber:client}bad name"),
        ET.Element("{jabber:client}1digit"),
        ET.Element("{jabber:client}a:b"),
        ET.Element("{jabber:client"),
        ET.Element("{urn:\x01}x"),
        ET.Element("{jabber:client}message", {"bad attr": "1"}),
        ET.Element("message", {"xmlns": "jabber:client"}),  # the ElementTree habit
        ET.Element("{jabber:client}message", {"{http://www.w3.org/2000/xmlns/}p": "urn:x"}),
        ET.Comment("no comments on the wire"),
        ET.ProcessingInstruction("pi", "no"),
    ],
)
def test_unserializable_elements_are_local_errors(element: ET.Element) -> None:
    with pytest.raises(LocalXmppError):
        serialize(element)


@pytest.mark.parametrize("text", ["\x00", "\x0b", "\ud800", "\ufffe", "\uffff"])
def test_characters_xml_cannot_carry(text: str) -> None:
    message = ET.Element("{jabber:client}message")
    ET.SubElement(message, "{jabber:client}body").text = f"a{text}b"
    with pytest.raises(LocalXmppError):
        serialize(message)


def test_comment_child_is_refused() -> None:
    message = ET.Element("{jabber:client}message")
    message.append(ET.Comment("x"))
    with pytest.raises(LocalXmppError):
        serialize(message)


def test_too_deep_to_serialize_is_a_local_error() -> None:
    root = element = ET.Element("{jabber:client}message")
    for _ in range(5000):
        element = ET.SubElement(element, "{jabber:client}x")
    with pytest.raises(LocalXmppError):
        serialize(root)


def test_serialize_takes_elements_only() -> None:
    with pytest.raises(LocalXmppError):
        serialize(b"<message/>")  # type: ignore[arg-type]


# -- round trip: serialize -> parse gives an equal element ---------------------------------------


def xml_char(codepoint: int) -> bool:
    """XML 1.0 §2.2 Char."""
    return (
        codepoint in (0x9, 0xA, 0xD)
        or 0x20 <= codepoint <= 0xD7FF
        or 0xE000 <= codepoint <= 0xFFFD
        or codepoint >= 0x10000
    )


TEXT = st.text(st.characters().filter(lambda c: xml_char(ord(c))), max_size=20)
NAMES = st.from_regex(r"[A-Za-z_\u00e9\u4e2d][A-Za-z0-9_.\-\u00b7\u00e9]{0,8}", fullmatch=True)
NAMESPACES = st.sampled_from(["jabber:client", "urn:a", "urn:b:c", "http://x/?a=1&b=<>", None])
ATTRIBUTE_NAMESPACES = st.sampled_from([None, None, "urn:attr", XML_LANG[1:].split("}")[0]])


def clark(namespace: str | None, local: str) -> str:
    return local if namespace is None else f"{{{namespace}}}{local}"


@st.composite
def elements(draw: st.DrawFn, depth: int = 0, top: bool = False) -> ET.Element:
    namespace = draw(st.sampled_from(["jabber:client", "urn:a", STREAM_NS]) if top else NAMESPACES)
    element = ET.Element(clark(namespace, draw(NAMES)))
    for _ in range(draw(st.integers(0, 3))):
        element.set(clark(draw(ATTRIBUTE_NAMESPACES), draw(NAMES)), draw(TEXT))
    element.text = draw(TEXT) or None
    if depth < 3:
        for _ in range(draw(st.integers(0, 3))):
            child = draw(elements(depth + 1))
            child.tail = draw(TEXT) or None
            element.append(child)
    return element


@settings(max_examples=300)
@given(element=elements(top=True))
def test_round_trip(element: ET.Element) -> None:
    assert canonical(parse_one(serialize(element))) == canonical(element)


@settings(max_examples=100)
@given(element=elements(top=True), chunk=st.integers(min_value=1, max_value=64))
def test_round_trip_in_chunks_after_a_restart(element: ET.Element, chunk: int) -> None:
    parser = XmlStreamParser(inherit_stream_lang=False)
    parser.feed(stream_header(to="example.com") + b"<proceed xmlns='urn:x'/>")
    parser.reset()
    data = stream_header(to="example.com") + serialize(element) + STREAM_CLOSE
    events = []
    for offset in range(0, len(data), chunk):
        events += parser.feed(data[offset : offset + chunk])
    assert [type(event) for event in events] == [StreamOpened, StanzaReceived, StreamClosed]
    assert isinstance(events[1], StanzaReceived)
    assert canonical(events[1].element) == canonical(element)
