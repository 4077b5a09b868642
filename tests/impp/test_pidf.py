"""PIDF (RFC 3863): RFC examples, round trips, strictness, safety, limits, fuzz."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.impp import (
    Basic,
    ImppAddress,
    Note,
    PidfContact,
    PidfDocument,
    PidfError,
    PidfTuple,
    parse_pidf_untrusted,
)
from gateway.impp.pidf import Tuple
from tests.impp import rfc_examples as ex

DECL = b"<?xml version='1.0' encoding='UTF-8'?>"
OPEN = b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@example.com'>"


def doc(inner: bytes) -> bytes:
    return DECL + OPEN + inner + b"</presence>"


def tup(inner: bytes = b"", status: bytes = b"<basic>open</basic>") -> bytes:
    return b"<tuple id='t1'><status>" + status + b"</status>" + inner + b"</tuple>"


@pytest.mark.parametrize("name", sorted(ex.PIDF_EXAMPLES))
def test_rfc_examples_parse_and_round_trip(name: str) -> None:
    parsed = parse_pidf_untrusted(ex.PIDF_EXAMPLES[name])
    assert parsed.tuples or parsed.notes
    again = parse_pidf_untrusted(parsed.to_bytes())
    assert again == parsed
    assert again.to_bytes() == parsed.to_bytes()


def test_rfc3863_4_3_1_contents() -> None:
    parsed = parse_pidf_untrusted(ex.RFC3863_4_3_1)
    assert parsed.entity == "pres:someone@example.com"
    assert parsed.entity_address == ImppAddress("someone", "example.com")
    first, second = parsed.tuples
    assert first.id == "bs35r9"
    assert first.basic is Basic.OPEN
    assert first.im_status == "busy"
    assert first.contact == PidfContact("im:someone@mobilecarrier.net", Decimal("0.8"))
    assert first.notes == (
        Note("Don't Disturb Please!", "en"),
        Note("Ne derangez pas, s'il vous plait", "fr"),
    )
    assert first.timestamp == datetime(2001, 10, 27, 16, 49, 29, tzinfo=UTC)
    assert len(first.status_extensions) == 1  # myex:location, ignored (RFC 3863 §4.2.3)
    assert "location" in first.status_extensions[0]
    assert second.contact == PidfContact("mailto:someone@example.com", Decimal("1.0"))
    assert parsed.notes == (Note("I'll be in Tokyo next week"),)


def test_rfc3863_4_3_2_whitespace_and_extensions() -> None:
    parsed = parse_pidf_untrusted(ex.RFC3863_4_3_2)
    assert parsed.tuples[1].contact == PidfContact("im:someone@mobilecarrier.net", Decimal("1"))
    assert len(parsed.tuples[0].extensions) == 1
    assert len(parsed.extensions) == 1


def test_rfc3863_4_3_3_must_understand_is_ignored_with_its_enclosing_extension() -> None:
    parsed = parse_pidf_untrusted(ex.RFC3863_4_3_3)
    (only,) = parsed.tuples
    assert only.basic is Basic.OPEN
    assert only.contact == PidfContact("tel:+09012345678", Decimal("0.725"))
    assert len(only.extensions) == 1


def test_im_status_with_must_understand_child_is_not_understood() -> None:
    status = (
        b"<basic>open</basic><im:im xmlns:im='urn:ietf:params:xml:ns:pidf:im'>away"
        b"<x:y xmlns:x='urn:x' xmlns:p='urn:ietf:params:xml:ns:pidf' p:mustUnderstand='true'/>"
        b"</im:im>"
    )
    (only,) = parse_pidf_untrusted(doc(tup(status=status))).tuples
    assert only.im_status is None
    assert len(only.status_extensions) == 1
    # Without mustUnderstand the unknown child is ignored and the value read.
    plain = status.replace(b" p:mustUnderstand='true'", b"")
    (only,) = parse_pidf_untrusted(doc(tup(status=plain))).tuples
    assert only.im_status == "away"


def test_inherited_note_language() -> None:
    data = (
        DECL
        + OPEN.replace(b">", b" xml:lang='de'>", 1)
        + tup(b"<note>Hallo</note>")
        + (b"<note xml:lang='en'>Hi</note></presence>")
    )
    parsed = parse_pidf_untrusted(data)
    assert parsed.tuples[0].notes == (Note("Hallo", "de"),)
    assert parsed.notes == (Note("Hi", "en"),)


def test_priority_out_of_range_is_ignored() -> None:
    for raw in (b"1.5", b"0.1234", b"-0", b"x"):
        data = doc(tup(b"<contact priority='" + raw + b"'>im:a@example.com</contact>"))
        (only,) = parse_pidf_untrusted(data).tuples
        assert only.contact == PidfContact("im:a@example.com")


def test_build() -> None:
    built = PidfDocument(
        entity="pres:juliet@example.com",
        tuples=(
            Tuple(
                id="balcony",
                basic=Basic.OPEN,
                im_status="away",
                contact=PidfContact("im:juliet@example.com", Decimal("0.102")),
                notes=(Note("retired to the chamber", "en"), Note("<&>'\"\r\n\t")),
                timestamp=datetime(2003, 12, 9, 23, 53, 11, 310000, tzinfo=UTC),
            ),
        ),
        notes=(Note("presentity note"),),
    )
    data = built.to_bytes()
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n")
    assert b"<im:im>away</im:im>" in data
    assert b"<contact priority='0.102'>im:juliet@example.com</contact>" in data
    assert b"<timestamp>2003-12-09T23:53:11.31Z</timestamp>" in data
    assert parse_pidf_untrusted(data) == built


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (OPEN + tup() + b"</presence>", "XML declaration"),
        (doc(b"<tuple><status><basic>open</basic></status></tuple>"), "'id'"),
        (doc(tup() + tup()), "unique"),
        (doc(b"<tuple id='t'/>"), "status"),
        (doc(tup(status=b"")), "no status value"),
        (doc(tup(status=b"<basic>maybe</basic>")), "not open or closed"),
        (doc(tup(b"<note>x</note><contact>im:a@b</contact>")), "out of order"),
        (doc(tup(b"<contact>im:a@b</contact><contact>im:a@b</contact>")), "two <contact>"),
        (doc(tup(b"<timestamp>2001-10-27t16:49:29z</timestamp>")), "capital"),
        (doc(tup(b"<timestamp>soon</timestamp>")), "RFC 3339"),
        (doc(tup(b"<contact>not a uri</contact>")), "not a URI"),
        (doc(tup(b"<bogus/>")), "may not appear"),
        (doc(b"<note>x</note>" + tup()), "out of order"),
        (DECL + b"<presence xmlns='urn:other' entity='pres:a@b'/>", "root element"),
        (DECL + b"<presence xmlns='urn:ietf:params:xml:ns:pidf'/>", "entity"),
        (doc(tup(b"<note xml:lang='!!'>x</note>")), "language tag"),
        (
            DECL + b"<!DOCTYPE presence [<!ENTITY x 'y'>]>" + OPEN + b"&x;</presence>",
            "document type",
        ),
        (
            DECL + b"<!DOCTYPE presence SYSTEM 'http://example.com/x.dtd'>" + OPEN + b"</presence>",
            "document type",
        ),
        (doc(b"&ext;"), "entity"),
        (b"<?xml version='1.0' encoding='ISO-8859-1'?>" + OPEN + b"</presence>", "not UTF-8"),
        (doc(b"<unclosed>"), "well-formed"),
        (b"\xff\xfe", "well-formed"),
    ],
)
def test_strict_parsing_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(PidfError, match=reason) as info:
        parse_pidf_untrusted(data)
    assert info.value.remote is True


def test_billion_laughs_refused() -> None:
    bomb = (
        b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
        b"<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>"
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'>&lol2;</presence>"
    )
    with pytest.raises(PidfError, match="document type"):
        parse_pidf_untrusted(bomb)


def test_limits() -> None:
    data = ex.RFC3863_4_3_1
    with pytest.raises(PidfError, match="larger than"):
        parse_pidf_untrusted(data, max_size=len(data) - 1)
    assert parse_pidf_untrusted(data, max_size=len(data)).tuples
    with pytest.raises(PidfError, match="deeper"):
        parse_pidf_untrusted(data, max_depth=3)
    with pytest.raises(PidfError, match="more than"):
        parse_pidf_untrusted(data, max_elements=10)
    deep = doc(tup(b"<x:a xmlns:x='urn:x'>" * 100 + b"</x:a>" * 100))
    with pytest.raises(PidfError, match="deeper"):
        parse_pidf_untrusted(deep)
    with pytest.raises(PidfError, match="larger than"):
        parse_pidf_untrusted(b" " * (1024 * 1024))


def test_byte_by_byte_and_trailing_data() -> None:
    data = ex.RFC3922_5_1_6
    end = data.rindex(b">")  # every prefix that stops before the root's closing ">" fails
    for cut in range(end):
        with pytest.raises(PidfError):
            parse_pidf_untrusted(data[:cut])
    with pytest.raises(PidfError, match="junk"):
        parse_pidf_untrusted(data + b"<x/>")
    assert parse_pidf_untrusted(data + b"\n  \n") == parse_pidf_untrusted(data)


def test_builder_rejects_as_local() -> None:
    with pytest.raises(PidfError) as info:
        PidfTuple(id="1bad")
    assert info.value.remote is False
    with pytest.raises(PidfError, match="at least one"):
        PidfTuple(id="t")
    with pytest.raises(PidfError):
        PidfContact("im:a@b", Decimal("1.5"))
    with pytest.raises(PidfError):
        Note("bell\x07")
    with pytest.raises(PidfError, match="unique"):
        PidfDocument("pres:a@b", (PidfTuple("t", Basic.OPEN), PidfTuple("t", Basic.OPEN)))


# -- property tests -------------------------------------------------------------------

_xml_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")) | st.sampled_from("\t\n&<>'\""),
    max_size=20,
)
_ids = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9._-]{0,8}", fullmatch=True)
_priorities = st.none() | st.integers(0, 1000).map(lambda n: Decimal(n) / 1000)
_notes = st.builds(Note, _xml_text, st.none() | st.sampled_from(["en", "fr", "cz", "en-GB"]))


@st.composite
def pidf_documents(draw: st.DrawFn) -> PidfDocument:
    ids = draw(st.lists(_ids, max_size=4, unique=True))
    tuples = tuple(
        PidfTuple(
            id=tuple_id,
            basic=draw(st.sampled_from([Basic.OPEN, Basic.CLOSED])),
            im_status=draw(st.none() | st.sampled_from(["away", "busy", "xa", "chat"])),
            contact=draw(
                st.none() | st.builds(PidfContact, st.just("im:a@example.com"), _priorities)
            ),
            notes=tuple(draw(st.lists(_notes, max_size=2))),
            timestamp=draw(st.none() | st.datetimes(timezones=st.just(UTC))),
        )
        for tuple_id in ids
    )
    return PidfDocument("pres:a@example.com", tuples, tuple(draw(st.lists(_notes, max_size=2))))


@given(pidf_documents())
@settings(max_examples=150)
def test_round_trip(built: PidfDocument) -> None:
    data = built.to_bytes()
    parsed = parse_pidf_untrusted(data)
    assert parsed == built
    assert parsed.to_bytes() == data


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_fuzz_garbage_raises_only_pidf_error(data: bytes) -> None:
    for candidate in (data, DECL + data, doc(data)):
        try:
            parse_pidf_untrusted(candidate)
        except PidfError:  # any other exception fails the test
            continue


@given(pidf_documents(), st.integers(min_value=0), st.integers(min_value=0, max_value=255))
@settings(max_examples=200)
def test_fuzz_mutated_documents(built: PidfDocument, position: int, value: int) -> None:
    data = bytearray(built.to_bytes())
    data[position % len(data)] = value
    try:
        parsed = parse_pidf_untrusted(bytes(data))
    except PidfError:  # any other exception fails the test
        return
    else:
        assert parse_pidf_untrusted(parsed.to_bytes()) == parsed
