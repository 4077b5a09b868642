"""XmlStreamParser against hostile and broken input: every case ends in the right StreamError."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.xmpp.errors import StreamCondition, StreamError
from gateway.xmpp.parser import FEED_SLICE, StanzaReceived, StreamEvent, XmlStreamParser

HEADER = (
    b"<?xml version='1.0'?><stream:stream from='im.example.com' id='abc' version='1.0' "
    b"xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)

# The "billion laughs" document (the classic XML entity-expansion attack, e.g. as shown in the
# Python documentation's "XML vulnerabilities" section), put in front of a stream header.
BILLION_LAUGHS = (
    b"<?xml version='1.0'?>\n"
    b"<!DOCTYPE lolz [\n"
    b' <!ENTITY lol "lol">\n'
    b' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
    b' <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">\n'
    b' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
    b' <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n'
    b' <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">\n'
    b' <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">\n'
    b' <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">\n'
    b' <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">\n'
    b' <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">\n'
    b"]>\n" + HEADER[len(b"<?xml version='1.0'?>") :] + b"<message><body>&lol9;</body></message>"
)


def condition_of(data: bytes, *, chunk: int | None = None, **limits: int) -> StreamCondition:
    """Feed ``data`` (whole, or in chunks of ``chunk`` bytes) and return the stream error raised."""
    parser = XmlStreamParser(**limits)  # type: ignore[arg-type]
    with pytest.raises(StreamError) as caught:
        feed_bounded(parser, data, chunk or max(len(data), 1), bound=None)
    return caught.value.condition


def feed_bounded(parser: XmlStreamParser, data: bytes, chunk: int, *, bound: int | None) -> int:
    """Feed ``data`` in chunks, checking ``buffered_size <= bound`` after each; return bytes fed."""
    fed = 0
    for offset in range(0, len(data), chunk):
        parser.feed(data[offset : offset + chunk])
        fed += chunk
        if bound is not None:
            assert parser.buffered_size <= bound
    return fed


def assert_condition(data: bytes, expected: StreamCondition, **limits: int) -> None:
    """Whole and byte by byte give the same stream error."""
    assert condition_of(data, **limits) is expected
    assert condition_of(data, chunk=1, **limits) is expected


# -- restricted XML (RFC 6120 §11.1) -------------------------------------------------------------


def test_billion_laughs_is_refused_at_the_doctype() -> None:
    assert_condition(BILLION_LAUGHS, StreamCondition.RESTRICTED_XML)


def test_billion_laughs_stops_before_any_entity_is_declared() -> None:
    """Fed line by line, the error comes with the DOCTYPE line, before the first <!ENTITY>."""
    parser = XmlStreamParser()
    lines = BILLION_LAUGHS.splitlines(keepends=True)
    parser.feed(lines[0])
    with pytest.raises(StreamError) as caught:
        parser.feed(lines[1] + b" ")
    assert caught.value.condition is StreamCondition.RESTRICTED_XML


@pytest.mark.parametrize(
    "document",
    [
        b"<!DOCTYPE stream>" + HEADER[21:],
        b"<?xml version='1.0'?><!DOCTYPE x SYSTEM 'http://example.com/evil.dtd'>" + HEADER[21:],
        b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>" + HEADER[21:],
        b"<!DOCTYPE x [<!ENTITY % p 'x'> %p;]>" + HEADER[21:],
    ],
)
def test_doctype_and_entity_declarations(document: bytes) -> None:
    assert_condition(document, StreamCondition.RESTRICTED_XML)


@pytest.mark.parametrize(
    "stanza",
    [
        b"<message><body>&lol9;</body></message>",  # entity never declared
        b"<message to='&ext;'/>",
        b"<message><?php evil()?></message>",
        b"<?xml-stylesheet href='x'?>",
        b"<message><!-- a comment --></message>",
        b"<!-- between stanzas -->",
    ],
)
def test_entities_processing_instructions_and_comments(stanza: bytes) -> None:
    assert_condition(HEADER + stanza, StreamCondition.RESTRICTED_XML)


@pytest.mark.parametrize(
    "prolog",
    [b"<!-- before the header -->", b"<?pi before the header?>"],
)
def test_comments_and_pis_before_the_header(prolog: bytes) -> None:
    assert_condition(prolog + HEADER[21:], StreamCondition.RESTRICTED_XML)


def test_standalone_declaration() -> None:
    """RFC 6120 §11.5: a standalone document declaration is closed with <restricted-xml/>."""
    assert_condition(
        b"<?xml version='1.0' standalone='no'?>" + HEADER[21:], StreamCondition.RESTRICTED_XML
    )


# -- encoding (RFC 6120 §11.6, §4.9.3.22) --------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff",
        b"\xc0\xaf",  # overlong '/'
        b"\xed\xa0\x80",  # UTF-16 surrogate encoded in UTF-8
        b"\xe2\x28\xa1",  # broken 3-byte sequence
        b"\xf4\x90\x80\x80",  # beyond U+10FFFF
        b"\x80",  # lone continuation byte
    ],
)
@pytest.mark.parametrize("where", ["text", "attribute", "header"])
def test_invalid_utf8(garbage: bytes, where: str) -> None:
    if where == "text":
        data = HEADER + b"<message><body>ok " + garbage + b" ok</body></message>"
    elif where == "attribute":
        data = HEADER + b"<message to='" + garbage + b"'/>"
    else:
        data = HEADER[:40] + garbage + HEADER[40:]
    assert_condition(data, StreamCondition.UNSUPPORTED_ENCODING)


def test_utf16_stream_with_bom() -> None:
    assert_condition(
        "\ufeff".encode("utf-16-le") + HEADER.decode().encode("utf-16-le"),
        StreamCondition.UNSUPPORTED_ENCODING,
    )


def test_declared_utf16() -> None:
    """The example of RFC 6120 §4.9.3.22."""
    declared = b"<?xml version='1.0' encoding='UTF-16'?>" + HEADER[21:]
    assert_condition(declared, StreamCondition.UNSUPPORTED_ENCODING)


# -- size and shape limits -----------------------------------------------------------------------


def test_ten_megabyte_stanza_is_refused_before_it_is_buffered() -> None:
    limit = 256 * 1024
    chunk = 64 * 1024
    stanza = b"<message><body>" + b"A" * (10 * 1024 * 1024) + b"</body></message>"
    parser = XmlStreamParser(max_stanza_size=limit)
    parser.feed(HEADER)
    prefix = stanza[: limit - chunk]  # within the limit: accepted, and held
    feed_bounded(parser, prefix, chunk, bound=limit + FEED_SLICE)
    assert parser.buffered_size == len(prefix)
    # The error comes within the next two chunks, long before the rest of the 10 MB is fed.
    with pytest.raises(StreamError) as caught:
        feed_bounded(parser, stanza[len(prefix) : len(prefix) + 2 * chunk], chunk, bound=None)
    assert caught.value.condition is StreamCondition.POLICY_VIOLATION


def test_ten_megabyte_stanza_in_one_feed_uses_bounded_memory() -> None:
    limit = 256 * 1024
    stanza = HEADER + b"<message><body>" + b"A" * (10 * 1024 * 1024) + b"</body></message>"
    parser = XmlStreamParser(max_stanza_size=limit)
    tracemalloc.start()
    try:
        with pytest.raises(StreamError) as caught:
            parser.feed(stanza)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.condition is StreamCondition.POLICY_VIOLATION
    # The parser held about one stanza's worth (text as str, plus expat's buffer), not 10 MB.
    assert peak < 8 * limit


@pytest.mark.parametrize(
    "opening",
    [
        b"<message to='",  # a start tag that never ends
        b"<message><body a='",
        b"<message><body>",
    ],
)
def test_unbounded_units_are_cut_off(opening: bytes) -> None:
    parser = XmlStreamParser(max_stanza_size=10_000)
    parser.feed(HEADER + opening)
    with pytest.raises(StreamError) as caught:
        feed_bounded(parser, b"x" * 1_000_000, 1000, bound=10_000 + FEED_SLICE)
    assert caught.value.condition is StreamCondition.POLICY_VIOLATION


def test_huge_stream_header_is_cut_off() -> None:
    parser = XmlStreamParser(max_stanza_size=10_000)
    with pytest.raises(StreamError) as caught:
        parser.feed(HEADER[:-1] + b" junk='" + b"j" * 100_000 + b"'>")
    assert caught.value.condition is StreamCondition.POLICY_VIOLATION


def test_oversized_stanza_inside_one_slice() -> None:
    stanza = b"<message><body>" + b"z" * 600 + b"</body></message>"
    assert_condition(HEADER + stanza, StreamCondition.POLICY_VIOLATION, max_stanza_size=500)


def test_deep_nesting() -> None:
    nested = b"<message>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</message>"
    assert condition_of(HEADER + nested) is StreamCondition.POLICY_VIOLATION
    assert condition_of(HEADER + nested, chunk=997) is StreamCondition.POLICY_VIOLATION


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = 8
    nested = b"<message>" + b"<a>" * (depth - 1) + b"</a>" * (depth - 1) + b"</message>"
    events = XmlStreamParser(max_depth=depth).feed(HEADER + nested)
    assert isinstance(events[-1], StanzaReceived)
    deeper = b"<message>" + b"<a>" * depth + b"</a>" * depth + b"</message>"
    assert_condition(HEADER + deeper, StreamCondition.POLICY_VIOLATION, max_depth=depth)


def test_attribute_limits() -> None:
    many = b"<message " + b" ".join(b"a%d='1'" % i for i in range(40)) + b"/>"
    assert_condition(HEADER + many, StreamCondition.POLICY_VIOLATION, max_attributes=32)
    declarations = b"<message " + b" ".join(b"xmlns:p%d='u:%d'" % (i, i) for i in range(40))
    assert_condition(HEADER + declarations + b"/>", StreamCondition.POLICY_VIOLATION)
    long_value = b"<message to='" + b"v" * 9000 + b"'/>"
    assert_condition(HEADER + long_value, StreamCondition.POLICY_VIOLATION)


# -- namespaces (RFC 6120 §4.8) and well-formedness (§11.3) --------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<stream:stream xmlns:stream='urn:wrong'>", StreamCondition.INVALID_NAMESPACE),
        (b"<stream xmlns='jabber:client'>", StreamCondition.INVALID_NAMESPACE),
        (
            b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'>",
            StreamCondition.BAD_FORMAT,
        ),
        (
            b"<stream xmlns='http://etherx.jabber.org/streams'>",
            StreamCondition.BAD_NAMESPACE_PREFIX,
        ),
        (b"<stream:stream>", StreamCondition.BAD_NAMESPACE_PREFIX),  # unbound prefix
        (
            b"<stream:stream xmlns='urn:other' xmlns:stream='http://etherx.jabber.org/streams'>",
            StreamCondition.INVALID_NAMESPACE,
        ),
        (
            HEADER + b"<foo:message xmlns:foo='jabber:client'/>",
            StreamCondition.BAD_NAMESPACE_PREFIX,
        ),
        (
            HEADER + b"<message><foo:body xmlns:foo='jabber:client'/></message>",
            StreamCondition.BAD_NAMESPACE_PREFIX,
        ),
        (HEADER + b"<message><x:y/></message>", StreamCondition.BAD_NAMESPACE_PREFIX),
        (HEADER + b"<message xmlns=''/>", StreamCondition.INVALID_NAMESPACE),
        (HEADER + b"<message xmlns='jabber:server'/>", StreamCondition.INVALID_NAMESPACE),
        (HEADER + b"<message xmlns:xml='urn:not-xml'/>", StreamCondition.BAD_NAMESPACE_PREFIX),
        (HEADER + b"<message xmlns='urn:{x}'/>", StreamCondition.BAD_FORMAT),  # not Clark-able
        (HEADER + b"<message xmlns:p='urn:}' p:a='1'/>", StreamCondition.BAD_FORMAT),
        (HEADER + b"<message></presence>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"<message><<body/></message>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"<message a='1' a='2'/>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"<message>&#0;</message>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"<message>\x01</message>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"</stream:stream><message/>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"hello<message/>", StreamCondition.BAD_FORMAT),
        (HEADER + b"<?xml version='1.0'?>", StreamCondition.NOT_WELL_FORMED),
        (b"<?xml version='1.1'?>" + HEADER[21:], StreamCondition.UNSUPPORTED_VERSION),
    ],
)
def test_namespace_and_well_formedness_errors(data: bytes, expected: StreamCondition) -> None:
    assert_condition(data, expected)


def test_restricted_content_namespaces() -> None:
    server_stream = HEADER.replace(b"jabber:client", b"jabber:server")
    assert_condition(
        server_stream,
        StreamCondition.INVALID_NAMESPACE,
        content_namespaces=frozenset({"jabber:client"}),  # type: ignore[arg-type]
    )


def test_stream_error_element_for_the_condition() -> None:
    with pytest.raises(StreamError) as caught:
        XmlStreamParser().feed(BILLION_LAUGHS)
    element = caught.value.to_element()
    assert element.tag == "{http://etherx.jabber.org/streams}error"
    assert element[0].tag == "{urn:ietf:params:xml:ns:xmpp-streams}restricted-xml"


# -- garbage: events or StreamError, nothing else -------------------------------------------------


def feed_total(data: bytes, cut: int) -> list[StreamEvent]:
    """Feed in two pieces; any exception other than StreamError fails the test."""
    parser = XmlStreamParser(max_stanza_size=4096, max_depth=8)
    events: list[StreamEvent] = []
    try:
        events += parser.feed(data[:cut])
        events += parser.feed(data[cut:])
    except StreamError as error:
        condition = error.condition
        assert isinstance(condition, StreamCondition)
    return events


@settings(max_examples=300)
@given(garbage=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=400))
def test_random_bytes_after_a_header(garbage: bytes, cut: int) -> None:
    feed_total(HEADER + garbage, len(HEADER) + cut)


XML_ALPHABET = st.sampled_from(
    [b"<", b">", b"/", b"'", b'"', b"=", b"&", b";", b"!", b"?", b"-", b"[", b"]", b" ",
     b"message", b"body", b"xmlns", b"stream:", b"x:", b"jabber:client", b"&amp;", b"&#x41;",
     b"<!--", b"<![CDATA[", b"<!DOCTYPE", b"<!ENTITY", b"\xc3\xa9", b"\xff", b"\x00"]
)  # fmt: skip


@settings(max_examples=300)
@given(pieces=st.lists(XML_ALPHABET, max_size=60), cut=st.integers(min_value=0, max_value=500))
def test_xml_shaped_garbage_after_a_header(pieces: list[bytes], cut: int) -> None:
    feed_total(HEADER + b"".join(pieces), len(HEADER) + cut)


@settings(max_examples=200)
@given(
    position=st.integers(min_value=0, max_value=400),
    replacement=st.binary(min_size=0, max_size=4),
    delete=st.integers(min_value=0, max_value=4),
)
def test_mutated_streams(position: int, replacement: bytes, delete: int) -> None:
    stream = (
        HEADER
        + b"<message to='a@b' xml:lang='de'><body>Gr\xc3\xbc\xc3\x9fe &amp; so</body></message>"
        + b"<presence><show>away</show></presence></stream:stream>"
    )
    position %= len(stream)
    mutated = stream[:position] + replacement + stream[position + delete :]
    feed_total(mutated, position)


# -- work per byte: a slow peer must not buy quadratic CPU (issue 10 point 8) ----------------------


def feed_bytewise(parser: XmlStreamParser, data: bytes) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for index in range(len(data)):
        events += parser.feed(data[index : index + 1])
    return events


class _RecordingExpat:
    """Wraps the parser's expat object and charges each Parse call the work expat must do:
    the new bytes, plus a re-scan of the still-open start tag handed over by earlier calls."""

    def __init__(self, real: object) -> None:
        self._real = real
        self.calls = 0
        self.handed = 0
        self.tag_closed = False
        self.work = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def Parse(self, data: bytes, final: bool = False) -> int:
        self.calls += 1
        self.work += len(data) + (0 if self.tag_closed else self.handed)
        self.handed += len(data)
        self.tag_closed = self.tag_closed or b">" in data
        return self._real.Parse(data, final)  # type: ignore[attr-defined, no-any-return]


def test_one_open_tag_fed_a_byte_at_a_time_costs_linear_work() -> None:
    size = 64 * 1024
    parser = XmlStreamParser(max_stanza_size=2 * size, max_attribute_length=2 * size)
    parser.feed(HEADER)
    recorder = _RecordingExpat(parser._expat)
    parser._expat = recorder  # type: ignore[assignment]
    data = b"<message to='" + b"a" * size + b"'/>"
    events = feed_bytewise(parser, data)
    assert [type(event) for event in events] == [StanzaReceived]
    # Quadratic would be about size**2 / 2 = 2.1e9 bytes scanned; linear is about size.
    assert recorder.work <= 2 * len(data)
    assert recorder.calls == 1
    assert parser.statistics().bytes_parsed == len(HEADER) + len(data)


def test_held_open_tag_counts_against_the_size_cap() -> None:
    parser = XmlStreamParser(max_stanza_size=1000)
    parser.feed(HEADER)
    parser.feed(b"<message to='")
    with pytest.raises(StreamError) as caught:
        feed_bytewise(parser, b"a" * 2000)
    assert caught.value.condition is StreamCondition.POLICY_VIOLATION
    assert parser.buffered_size <= 1001


def test_a_complete_stanza_is_delivered_while_the_next_tag_is_still_open() -> None:
    parser = XmlStreamParser()
    parser.feed(HEADER)
    events = parser.feed(b"<message to='a@b'><body>x</body></message><message to='half")
    assert [type(event) for event in events] == [StanzaReceived]
    assert parser.statistics().held == len(b"<message to='half")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4096])
def test_quotes_and_cdata_with_markup_characters_parse_in_any_chunking(chunk: int) -> None:
    stanza = (
        b"<message to='a@b' id='x>y\"z'><body>1 &lt; 2 > 0"
        b'<![CDATA[ a < b \' " > ]] ]]></body><subject a="q\'>"/></message>'
    )
    parser = XmlStreamParser()
    parser.feed(HEADER)
    events: list[StreamEvent] = []
    for offset in range(0, len(stanza), chunk):
        events += parser.feed(stanza[offset : offset + chunk])
    (received,) = events
    assert isinstance(received, StanzaReceived)
    assert received.element.get("id") == 'x>y"z'
    assert received.element.findtext("{jabber:client}body") == "1 < 2 > 0 a < b ' \" > ]] "
    assert parser.statistics().held == 0


@pytest.mark.parametrize("opening", [b"<!-- a comment ' ", b"<!DOCTYPE x", b"<!ENTITY"])
def test_markup_declarations_are_refused_as_they_start(opening: bytes) -> None:
    parser = XmlStreamParser()
    parser.feed(HEADER)
    with pytest.raises(StreamError) as caught:
        feed_bytewise(parser, opening)
    assert caught.value.condition is StreamCondition.RESTRICTED_XML
