"""Message/CPIM (RFC 3862): RFC examples, round trips, strictness, limits, fuzz."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.impp import (
    CpimAddress,
    CpimError,
    CpimHeader,
    CpimMessage,
    ImppAddress,
    Subject,
    parse_cpim_untrusted,
)
from gateway.impp.cpim import (
    CPIM_HEADERS_NS,
    escape_header_text,
    format_rfc3339,
    parse_rfc3339,
    unescape_header_text,
)
from tests.impp import rfc_examples as ex

HEAD = b"Content-type: Message/CPIM\r\n\r\n"
TAIL = b"\r\nContent-type: text/plain; charset=utf-8\r\n\r\nhi"


def message(*headers: str) -> bytes:
    return HEAD + b"".join(h.encode() + b"\r\n" for h in headers) + TAIL


def test_rfc3862_5_1_example() -> None:
    parsed = parse_cpim_untrusted(ex.RFC3862_5_1)
    assert parsed.sender == CpimAddress("im:piglet@100akerwood.com", "MR SANDERS")
    assert parsed.recipients == (CpimAddress("im:eeyore@100akerwood.com", "Depressed Donkey"),)
    assert parsed.date_time == datetime(2000, 12, 13, 21, 40, tzinfo=UTC)
    assert parsed.subjects == (
        Subject("the weather will be fine today"),
        Subject("beau temps prevu pour aujourd'hui", "fr"),
    )
    assert parsed.namespaces["MyFeatures"] == "mid:MessageFeatures@id.foo.com"
    assert parsed.required == (("mid:MessageFeatures@id.foo.com", "VitalMessageOption"),)
    assert [(ns, name, h.value) for ns, name, h in parsed.extensions] == [
        ("mid:MessageFeatures@id.foo.com", "VitalMessageOption", "Confirmation-requested"),
        ("mid:MessageFeatures@id.foo.com", "WackyMessageOption", "Use-silly-font"),
    ]
    assert parsed.content_type == ("text/xml", {"charset": "utf-8"})
    assert parsed.content_id == "1234567890@foo.com"
    assert parsed.body == b"<body>\r\nHere is the text of my message.\r\n</body>"
    assert parsed.to_bytes() == ex.RFC3862_5_1
    assert parsed.sender is not None
    assert parsed.sender.address == ImppAddress("piglet", "100akerwood.com")


def test_rfc3922_message_example() -> None:
    parsed = parse_cpim_untrusted(ex.RFC3922_4_MESSAGE)
    assert parsed.subjects == (Subject("Hi!"), Subject("Ahoj!", "cz"))
    assert parsed.body == b"Wherefore art thou, Romeo?"
    assert parsed.to_bytes() == ex.RFC3922_4_MESSAGE


@pytest.mark.parametrize("line", ex.RFC3862_HEADER_EXAMPLES + ex.RFC3862_2_2_HEADERS)
def test_rfc3862_header_examples(line: str) -> None:
    parsed = parse_cpim_untrusted(message(line))
    assert parsed.headers[0].to_line() == line
    assert parsed.to_bytes() == message(line)


@pytest.mark.parametrize("pair", ex.RFC3862_NS_EXAMPLES)
def test_rfc3862_namespace_examples(pair: list[str]) -> None:
    parsed = parse_cpim_untrusted(message(*pair))
    ((namespace, name, _),) = parsed.extensions
    assert namespace in {"mid:MessageFeatures@id.foo.com", "http://id.acme.widgets/wily-headers/"}
    assert name in {"WackyMessageOption", "runner-trap", "MyHeader"}


def test_rfc3862_2_4_content_and_no_mime_headers() -> None:
    data = b"From: <im:a@example.com>\r\n\r\n" + ex.RFC3862_2_4_CONTENT
    parsed = parse_cpim_untrusted(data, with_mime_headers=False)
    assert parsed.mime_headers == ()
    assert parsed.body == b"This is my encapsulated text message content"
    assert parsed.to_bytes() == data


def test_default_namespace_redeclared_hides_core_headers() -> None:
    parsed = parse_cpim_untrusted(message("NS: <http://x.example/>", "From: <im:a@example.com>"))
    assert parsed.sender is None
    assert parsed.extensions[0][:2] == ("http://x.example/", "From")


def test_build_and_round_trip() -> None:
    built = CpimMessage.build(
        sender=CpimAddress.of(ImppAddress.parse("juliet@example.com/balcony"), "Juliet Capulet"),
        recipients=[CpimAddress("im:romeo@example.net", 'Romeo "R" Montague')],
        cc=[CpimAddress("im:nurse@example.com")],
        date_time=datetime(2003, 12, 9, 11, 45, 36, 660000, tzinfo=UTC),
        subjects=[Subject("Imploring"), Subject("tab\there\\", "en")],
        namespaces=[("Ext", "urn:example:ext")],
        required=["Ext.Vital"],
        extensions=[CpimHeader.text_header("Ext.Vital", "yes\nreally")],
        content_id="1234567890@example.com",
        body=b"Wherefore art thou, Romeo?",
    )
    data = built.to_bytes()
    assert b"From: Juliet Capulet <im:juliet@example.com>\r\n" in data
    assert b'To: "Romeo \\"R\\" Montague"<im:romeo@example.net>\r\n' in data
    assert b"DateTime: 2003-12-09T11:45:36.66Z\r\n" in data
    assert b"Subject:;lang=en tab\\there\\\\\r\n" in data
    assert b"Require: Ext.Vital\r\nExt.Vital: yes\\nreally\r\n" in data
    parsed = parse_cpim_untrusted(data)
    assert parsed == built
    assert parsed.to_bytes() == data
    assert parsed.subjects[1] == Subject("tab\there\\", "en")
    assert parsed.required == (("urn:example:ext", "Vital"),)
    assert parsed.extensions[0][2].text == "yes\nreally"
    assert parsed.cc == (CpimAddress("im:nurse@example.com"),)


def test_escapes() -> None:
    assert escape_header_text('a\\b\x08\t\n\r\x01\x7f"') == 'a\\\\b\\b\\t\\n\\r\\u0001\\u007f"'
    assert escape_header_text('say "hi"', quote='"') == 'say \\"hi\\"'
    assert unescape_header_text("\\u0041\\q\\'\\") == "Aq'"
    assert unescape_header_text("\\u00zz") == "u00zz"


def test_rfc3339() -> None:
    assert parse_rfc3339("2001-02-01T12:16:49-05:00") == datetime(
        2001, 2, 1, 12, 16, 49, tzinfo=timezone(timedelta(hours=-5))
    )
    assert parse_rfc3339("1990-12-31T23:59:60Z").second == 59  # RFC 3339 §5.8 leap second
    assert parse_rfc3339("2003-12-09t11:45:36.6612345z").microsecond == 661234
    assert format_rfc3339(
        datetime(2001, 2, 1, 12, 16, 49, tzinfo=timezone(timedelta(hours=-5)))
    ) == ("2001-02-01T17:16:49Z")
    with pytest.raises(ValueError, match="time zone"):
        format_rfc3339(datetime(2001, 1, 1))
    for bad in (
        "2001-02-30T00:00:00Z",
        "2001-02-01 12:16:49Z",
        "2001-02-01T12:16:49",
        "٢٠٠١-02-01T12:16:49Z",
    ):
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the fault
            parse_rfc3339(bad)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (message("From:<im:a@example.com>"), "single space"),
        (message("From:  <im:a@example.com>"), "space"),
        (message("From: <im:a@example.com> "), "space"),
        (message(" From: <im:a@example.com>"), "header name"),
        (message("Fr om: x"), "header name"),
        (message("a.b.c: x"), "header name"),
        (message("From: im:a@example.com"), "formal-name"),
        (message("From: <not a uri>"), "URI"),
        (message("From: <im:a@example.com>", "From: <im:b@example.com>"), "more than one From"),
        (message("DateTime: yesterday"), "RFC 3339"),
        (message("x.Foo: bar"), "before its NS"),
        (message("Require: x.Foo"), "undeclared prefix"),
        (message("Subject:;lang=not_a_tag x"), "language tag"),
        (message("NS: bad prefix <urn:x>"), "NS prefix"),
        (message("Subject: a\tb"), "control"),
        (HEAD + b"From: <im:a@example.com>\n" + TAIL, "bare CR or LF"),
        (HEAD + b"From: <im:a@example.com>\r\n", "empty line"),
        (b"Content-type: text/plain\r\n\r\nFrom: <im:a@b>\r\n" + TAIL, "Message/CPIM"),
        (HEAD + b"\r\nX-Other: y\r\n\r\nbody", "Content-Type"),
        (HEAD + b"Subject: \xff\r\n" + TAIL, "malformed"),
        (b"", "empty line"),
    ],
)
def test_strict_parsing_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(CpimError, match=reason) as info:
        parse_cpim_untrusted(data)
    assert info.value.remote is True


def test_limits_enforced() -> None:
    big = message("Subject: " + "x" * 100)
    with pytest.raises(CpimError, match="larger than"):
        parse_cpim_untrusted(big, max_size=len(big) - 1)
    assert parse_cpim_untrusted(big, max_size=len(big)).subjects[0].text == "x" * 100
    with pytest.raises(CpimError, match="longer than"):
        parse_cpim_untrusted(big, max_line=50)
    many = message(*[f"Subject: s{i}" for i in range(10)])
    with pytest.raises(CpimError, match="too many"):
        parse_cpim_untrusted(many, max_headers=10)
    assert len(parse_cpim_untrusted(many, max_headers=12).subjects) == 10
    with pytest.raises(CpimError, match="larger than"):
        parse_cpim_untrusted(b"x" * (1024 * 1024))


def test_byte_by_byte_prefixes_and_trailing_data() -> None:
    data = ex.RFC3922_4_MESSAGE
    for cut in range(len(data)):
        try:
            parsed = parse_cpim_untrusted(data[:cut])
        except CpimError:
            continue
        # A prefix can only parse once the content headers are complete; the body is a prefix.
        assert data.startswith(parsed.to_bytes())
    trailing = parse_cpim_untrusted(data + b"\r\ntrailing")
    assert trailing.body == b"Wherefore art thou, Romeo?\r\ntrailing"


def test_builder_rejects_bad_values_as_local() -> None:
    with pytest.raises(CpimError) as info:
        CpimHeader("Subject", "")
    assert info.value.remote is False
    with pytest.raises(CpimError):
        CpimHeader("Subject", "line\nbreak")
    with pytest.raises(CpimError):
        CpimAddress("not a uri")
    with pytest.raises(CpimError):
        CpimMessage.build(sender=None, date_time=datetime(2001, 1, 1))
    with pytest.raises(CpimError, match="Content-Type"):
        CpimMessage(headers=(), content_headers=(), body=b"")


# -- property tests -------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30)
_formal = st.none() | _text
_uris = st.sampled_from(
    ["im:a@example.com", "im:b%2Dc@example.net", "pres:x@y.z", "sip:bob@b.example"]
)
_langs = st.none() | st.from_regex(r"[a-z]{2}(-[A-Z]{2})?", fullmatch=True)


@st.composite
def cpim_messages(draw: st.DrawFn) -> CpimMessage:
    subjects = draw(
        st.lists(st.builds(Subject, _text.map(str.strip).filter(bool), _langs), max_size=3)
    )
    stamp = draw(st.none() | st.datetimes(timezones=st.just(UTC)))
    return CpimMessage.build(
        sender=draw(st.none() | st.builds(CpimAddress, _uris, _formal)),
        recipients=draw(st.lists(st.builds(CpimAddress, _uris, _formal), max_size=3)),
        cc=draw(st.lists(st.builds(CpimAddress, _uris, _formal), max_size=2)),
        date_time=stamp,
        subjects=subjects,
        namespaces=[("E", "urn:example:e")],
        extensions=[
            CpimHeader.text_header("E.x", t)
            for t in draw(st.lists(_text.map(str.strip).filter(bool), max_size=2))
        ],
        body=draw(st.binary(max_size=64)),
        mime_headers=draw(st.booleans()),
    )


@given(cpim_messages())
@settings(max_examples=150)
def test_round_trip(built: CpimMessage) -> None:
    data = built.to_bytes()
    parsed = parse_cpim_untrusted(data, with_mime_headers=bool(built.mime_headers))
    assert parsed == built
    assert parsed.to_bytes() == data
    assert parsed.subjects == built.subjects
    assert parsed.sender == built.sender


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_fuzz_garbage_raises_only_cpim_error(data: bytes) -> None:
    for candidate in (data, HEAD + data, HEAD + b"From: <im:a@b>\r\n" + data):
        try:
            parsed = parse_cpim_untrusted(candidate)
        except CpimError:  # any other exception fails the test
            continue
        else:
            parsed.to_bytes()
            parsed.sender, parsed.recipients, parsed.subjects, parsed.required  # noqa: B018


@given(cpim_messages(), st.integers(min_value=0), st.integers(min_value=0, max_value=255))
@settings(max_examples=200)
def test_fuzz_mutated_messages(built: CpimMessage, position: int, value: int) -> None:
    data = bytearray(built.to_bytes())
    data[position % len(data)] = value
    try:
        parsed = parse_cpim_untrusted(bytes(data), with_mime_headers=bool(built.mime_headers))
    except CpimError:  # any other exception fails the test
        return
    else:
        assert parsed.namespaces[None] == CPIM_HEADERS_NS or parsed.namespaces[None]
        parsed.date_time, parsed.extensions, parsed.cc  # noqa: B018


def test_repr_never_shows_the_message_text() -> None:
    parsed = parse_cpim_untrusted(ex.RFC3862_5_1)
    assert b"Here is the text" in parsed.body
    assert "Here is the text" not in repr(parsed)
