"""XMPP <-> CPIM/PIDF mappings of RFC 3922 §4 and §5, both directions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element, SubElement, fromstring

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.impp import (
    Basic,
    CpimAddress,
    CpimMessage,
    ImppError,
    MappingError,
    PidfDocument,
    PidfTuple,
    cpim_to_messages,
    cpim_to_presences,
    message_to_cpim,
    parse_cpim_untrusted,
    parse_pidf_untrusted,
    pidf_to_presences,
    presence_to_cpim,
    presence_to_pidf,
)
from gateway.impp.mapping_presence import (
    pidf_priority_to_xmpp,
    resource_to_tuple_id,
    tuple_id_to_resource,
    xmpp_priority_to_pidf,
)
from tests.impp import rfc_examples as ex

C = "{jabber:client}"
LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def stanza(xml: str) -> Element:
    return fromstring(
        xml.replace("<message", "<message xmlns='jabber:client'", 1).replace(
            "<presence", "<presence xmlns='jabber:client'", 1
        )
    )


# -- messages, XMPP -> CPIM (RFC 3922 §4.1) -------------------------------------------


def test_message_to_cpim_rfc3922_4_1() -> None:
    msg = stanza(
        "<message from='juliet@example.com/balcony' to='romeo@example.net/orchard' "
        "type='chat' id='abc'><thread>t1</thread><subject>Hi!</subject>"
        "<subject xml:lang='cz'>Ahoj!</subject><body>Wherefore art thou, Romeo?</body>"
        "<x xmlns='urn:example:ignored'/></message>"
    )
    cpim = message_to_cpim(
        msg,
        sender_name="Juliet Capulet",
        recipient_name="Romeo Montague",
        date_time=datetime(2003, 12, 9, 11, 45, 36, 660000, tzinfo=UTC),
    )
    data = cpim.to_bytes()
    assert data == (
        b"Content-type: Message/CPIM\r\n\r\n"
        b"From: Juliet Capulet <im:juliet@example.com>\r\n"  # §4.1.1
        b"To: Romeo Montague <im:romeo@example.net>\r\n"  # §4.1.2
        b"DateTime: 2003-12-09T11:45:36.66Z\r\n"  # §4.1.9
        b"Subject: Hi!\r\n"  # §4.1.6
        b"Subject:;lang=cz Ahoj!\r\n"
        b"\r\n"
        b"Content-type: text/plain; charset=utf-8\r\n"  # §4.1
        b"\r\n"
        b"Wherefore art thou, Romeo?"  # §4.1.7
    )
    assert parse_cpim_untrusted(data) == cpim


def test_message_id_and_language() -> None:
    msg = stanza(
        "<message from='a@example.com' to='b@example.com' id='123456789@example.net' "
        "xml:lang='en'><body xml:lang='de'>Hallo</body><body>Hello</body></message>"
    )
    cpim = message_to_cpim(msg, stanza_id_is_unique=True)
    assert cpim.content_id == "123456789@example.net"  # §4.1.3
    assert cpim.body == b"Hello"
    assert cpim.content_header("Content-Language") == "en"
    assert message_to_cpim(msg).content_id is None


@pytest.mark.parametrize(
    "xml",
    [
        "<message to='b@example.com'><body>x</body></message>",
        "<message from='a@example.com'><body>x</body></message>",
        "<message from='a@example.com' to='b@example.com'/>",
        "<message from='a@example.com' to='b@example.com' type='error'><body>x</body></message>",
        "<message from='example.com' to='b@example.com'><body>x</body></message>",
        "<presence from='a@example.com' to='b@example.com'/>",
    ],
)
def test_message_to_cpim_refuses(xml: str) -> None:
    with pytest.raises(MappingError):
        message_to_cpim(stanza(xml))


# -- messages, CPIM -> XMPP (RFC 3922 §4.2) -------------------------------------------


def test_cpim_to_message_rfc3922_4_2() -> None:
    cpim = parse_cpim_untrusted(ex.RFC3922_4_MESSAGE)
    (msg,) = cpim_to_messages(cpim, recipient_resource="orchard", content_id_as_id=True)
    assert msg.tag == C + "message"
    assert msg.get("from") == "juliet@example.com"  # §4.2.1
    assert msg.get("to") == "romeo@example.net/orchard"  # §4.2.2
    assert msg.get("id") == "123456789@example.net"  # §4.2.8
    assert msg.get("type") is None  # §4.2.10
    subjects = msg.findall(C + "subject")
    assert [(s.text, s.get(LANG)) for s in subjects] == [("Hi!", None), ("Ahoj!", "cz")]
    assert msg.findtext(C + "body") == "Wherefore art thou, Romeo?"  # §4.2.9


def test_cpim_to_message_one_stanza_per_recipient_and_no_cc() -> None:
    cpim = CpimMessage.build(
        sender=CpimAddress("im:a@example.com"),
        recipients=[CpimAddress("im:b@example.com"), CpimAddress("im:c@example.com")],
        cc=[CpimAddress("im:d@example.com")],
        body=b"hi",
    )
    stanzas = cpim_to_messages(cpim, message_type="chat")
    assert [s.get("to") for s in stanzas] == ["b@example.com", "c@example.com"]
    assert all(s.get("type") == "chat" for s in stanzas)


def test_cpim_to_message_refusals() -> None:
    with pytest.raises(MappingError, match="requires feature"):  # §4.2.7
        cpim_to_messages(parse_cpim_untrusted(ex.RFC3862_5_1))
    base: dict[str, Any] = {
        "sender": CpimAddress("im:a@example.com"),
        "recipients": [CpimAddress("im:b@x.org")],
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"content_type": "text/html; charset=utf-8"}, "cannot become"),
        ({"content_type": "text/plain; charset=iso-8859-1"}, "charset"),
        ({"body": b"\xff"}, "not valid"),
        ({"body": b"bell\x07"}, "cannot carry"),
        ({"sender": CpimAddress("sip:a@example.com")}, "not an im: URI"),
        ({"sender": None}, "no From"),
        ({"recipients": []}, "no To"),
    ]
    for kwargs, reason in cases:
        with pytest.raises(MappingError, match=reason):
            cpim_to_messages(CpimMessage.build(**{**base, **kwargs}))


def test_cpim_require_understood_is_allowed() -> None:
    cpim = parse_cpim_untrusted(ex.RFC3862_5_1.replace(b"text/xml", b"text/plain"))
    (msg,) = cpim_to_messages(
        cpim, understood={("mid:MessageFeatures@id.foo.com", "VitalMessageOption")}
    )
    assert msg.get("to") == "eeyore@100akerwood.com"


_words = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=20
)


@given(
    body=_words,
    subjects=st.lists(
        st.tuples(_words.map(str.strip).filter(bool), st.none() | st.sampled_from(["en", "cz"])),
        max_size=2,
    ),
    resource=st.none() | st.sampled_from(["balcony", "my phone"]),
)
@settings(max_examples=100)
def test_message_round_trip(
    body: str, subjects: list[tuple[str, str | None]], resource: str | None
) -> None:
    msg = Element(C + "message", {"from": "juliet@example.com/balcony", "to": "romeo@example.net"})
    for text, lang in subjects:
        SubElement(msg, C + "subject", {LANG: lang} if lang else {}).text = text
    SubElement(msg, C + "body").text = body
    cpim = parse_cpim_untrusted(message_to_cpim(msg).to_bytes())
    (back,) = cpim_to_messages(cpim, recipient_resource=resource)
    assert back.get("from") == "juliet@example.com"
    assert back.get("to") == "romeo@example.net" + (f"/{resource}" if resource else "")
    assert back.findtext(C + "body") == body
    assert [(s.text, s.get(LANG)) for s in back.findall(C + "subject")] == subjects


# -- presence, XMPP -> PIDF (RFC 3922 §5.1) -------------------------------------------


def test_presence_available_rfc3922_5_1_4() -> None:
    doc = presence_to_pidf(stanza("<presence from='juliet@example.com/balcony'/>"))
    expected = parse_pidf_untrusted(ex.RFC3922_5_1_4_OPEN)
    assert doc.entity == expected.entity == "pres:juliet@example.com"  # §5.1.1
    (item,) = doc.tuples
    assert item.id == "balcony"
    assert item.basic is expected.tuples[0].basic is Basic.OPEN
    assert item.contact is not None
    assert item.contact.uri == "im:juliet@example.com"  # §5.1.9.2


def test_presence_unavailable_show_status_priority() -> None:
    doc = presence_to_pidf(
        stanza("<presence from='juliet@example.com/balcony' type='unavailable'/>")
    )
    assert doc.tuples[0].basic is Basic.CLOSED  # §5.1.4
    doc = presence_to_pidf(
        stanza(
            "<presence from='juliet@example.com/balcony'><show>away</show>"
            "<status>retired to the chamber</status><priority>13</priority></presence>"
        ),
        timestamp=datetime(2003, 12, 9, 23, 53, 11, tzinfo=UTC),
    )
    (item,) = doc.tuples
    expected = parse_pidf_untrusted(ex.RFC3922_5_1_6).tuples[0]
    assert item.im_status == expected.im_status == "away"  # §5.1.5
    assert item.notes == expected.notes  # §5.1.6
    assert item.contact is not None
    assert item.contact.priority == Decimal("0.102")  # §5.1.7
    assert item.timestamp == datetime(2003, 12, 9, 23, 53, 11, tzinfo=UTC)
    negative = presence_to_pidf(
        stanza("<presence from='a@example.com/r'><priority>-5</priority></presence>")
    )
    assert negative.tuples[0].contact is not None
    assert negative.tuples[0].contact.priority is None  # MUST NOT map negative


def test_priority_examples_and_inverse() -> None:
    # RFC 3922 §5.1.7 examples.
    assert [xmpp_priority_to_pidf(p) for p in (0, 1, 2, 13, 126, 127)] == [
        Decimal("0"),
        Decimal("0.007"),
        Decimal("0.015"),
        Decimal("0.102"),
        Decimal("0.992"),
        Decimal("1"),
    ]
    assert xmpp_priority_to_pidf(-1) is None
    # RFC 3922 §5.2.13 examples.
    assert pidf_priority_to_xmpp(Decimal("0.001")) == 1
    assert pidf_priority_to_xmpp(Decimal("0.007")) == 1
    assert pidf_priority_to_xmpp(Decimal("0.008")) == 2
    assert pidf_priority_to_xmpp(Decimal("0.015")) == 2
    assert pidf_priority_to_xmpp(Decimal("0.999")) == 126
    assert pidf_priority_to_xmpp(Decimal("0.992")) == 126
    assert pidf_priority_to_xmpp(Decimal("1")) == 127
    for p in range(128):
        pidf = xmpp_priority_to_pidf(p)
        assert pidf is not None
        assert pidf_priority_to_xmpp(pidf) == p
    assert len({xmpp_priority_to_pidf(p) for p in range(128)}) == 128  # unique


def test_presence_refusals() -> None:
    for xml in (
        "<presence from='a@example.com' type='subscribe'/>",
        "<presence/>",
        "<presence from='a@example.com'><show>sleeping</show></presence>",
        "<presence from='a@example.com'><priority>x</priority></presence>",
        "<presence from='a@example.com'><priority>300</priority></presence>",
        "<message from='a@example.com'/>",
    ):
        with pytest.raises(MappingError):
            presence_to_pidf(stanza(xml))


def test_presence_to_cpim() -> None:
    cpim = presence_to_cpim(
        stanza("<presence from='juliet@example.com/balcony' to='romeo@example.net'/>"),
        date_time=datetime(2003, 12, 9, tzinfo=UTC),
    )
    parsed = parse_cpim_untrusted(cpim.to_bytes())
    assert parsed.sender == CpimAddress("im:juliet@example.com")  # §5.1.1
    assert parsed.recipients == (CpimAddress("im:romeo@example.net"),)  # §5.1.2
    assert parsed.content_type == ("application/pidf+xml", {"charset": "utf-8"})
    (back,) = cpim_to_presences(parsed)
    assert back.get("from") == "juliet@example.com/balcony"
    assert back.get("to") == "romeo@example.net"
    assert back.get("type") is None


# -- presence, PIDF -> XMPP (RFC 3922 §5.2) -------------------------------------------


def test_pidf_to_presence_rfc3922_examples() -> None:
    (available,) = pidf_to_presences(parse_pidf_untrusted(ex.RFC3922_5_1_4_OPEN))
    assert available.get("from") == "juliet@example.com/balcony"  # §5.2.1
    assert available.get("type") is None  # §5.2.9
    (closed,) = pidf_to_presences(parse_pidf_untrusted(ex.RFC3922_5_2_9_CLOSED))
    assert closed.get("from") == "romeo@example.net/orchard"
    assert closed.get("type") == "unavailable"
    (busy,) = pidf_to_presences(parse_pidf_untrusted(ex.RFC3922_5_2_11))
    assert busy.findtext(C + "show") == "dnd"  # §5.2.10
    assert busy.findtext(C + "status") == "Wooing Juliet"  # §5.2.11
    assert busy.find(C + "priority") is None


def test_pidf_to_presence_rfc3863_example_multiple_tuples() -> None:
    stanzas = pidf_to_presences(parse_pidf_untrusted(ex.RFC3863_4_3_1), to="me@example.org")
    assert [s.get("from") for s in stanzas] == [
        "someone@example.com/bs35r9",
        "someone@example.com/eg92n8",
    ]
    assert stanzas[0].findtext(C + "show") == "dnd"
    assert [(s.text, s.get(LANG)) for s in stanzas[0].findall(C + "status")] == [
        ("Don't Disturb Please!", "en"),
        ("Ne derangez pas, s'il vous plait", "fr"),
    ]
    assert stanzas[0].findtext(C + "priority") == str(pidf_priority_to_xmpp(Decimal("0.8")))
    assert stanzas[1].findtext(C + "priority") == "127"
    assert all(s.get("to") == "me@example.org" for s in stanzas)
    assert all(s.find(C + "timestamp") is None for s in stanzas)  # §5.2.14


def test_zero_tuples_must_not_be_mapped() -> None:
    with pytest.raises(MappingError, match="MUST NOT"):
        pidf_to_presences(PidfDocument("pres:a@example.com"))  # §5.2.11


def test_cpim_to_presences_refusals() -> None:
    text = CpimMessage.build(sender=CpimAddress("im:a@example.com"), body=b"x")
    with pytest.raises(MappingError, match="pidf"):
        cpim_to_presences(text)
    bad = CpimMessage.build(
        sender=CpimAddress("im:a@example.com"), content_type="application/pidf+xml", body=b"<x"
    )
    with pytest.raises(MappingError, match="PIDF"):
        cpim_to_presences(bad)


@pytest.mark.parametrize("resource", [None, "balcony", "my phone", "_x", "1st", "ключ", "a/b"])
def test_tuple_id_mapping_is_reversible(resource: str | None) -> None:
    tuple_id = resource_to_tuple_id(resource)
    PidfTuple(tuple_id, Basic.OPEN)  # a valid NCName
    assert tuple_id_to_resource(tuple_id) == resource


@given(
    resource=st.none() | st.sampled_from(["balcony", "phone 2", "ж"]),
    available=st.booleans(),
    show=st.none() | st.sampled_from(["away", "chat", "dnd", "xa"]),
    statuses=st.lists(_words.map(str.strip).filter(bool), max_size=2),
    priority=st.none() | st.integers(0, 127),
)
@settings(max_examples=100)
def test_presence_round_trip(
    resource: str | None,
    available: bool,
    show: str | None,
    statuses: list[str],
    priority: int | None,
) -> None:
    sender = "juliet@example.com" + (f"/{resource}" if resource else "")
    pres = Element(C + "presence", {"from": sender, "to": "romeo@example.net"})
    if not available:
        pres.set("type", "unavailable")
    if show is not None:
        SubElement(pres, C + "show").text = show
    for text in statuses:
        SubElement(pres, C + "status").text = text
    if priority is not None:
        SubElement(pres, C + "priority").text = str(priority)
    (back,) = cpim_to_presences(parse_cpim_untrusted(presence_to_cpim(pres).to_bytes()))
    assert back.get("from") == sender
    assert back.get("to") == "romeo@example.net"
    assert back.get("type") == (None if available else "unavailable")
    assert back.findtext(C + "show") == (show if available else None)
    assert [s.text for s in back.findall(C + "status")] == statuses
    expected_priority = str(priority) if available and priority is not None else None
    assert back.findtext(C + "priority") == expected_priority


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_fuzz_cpim_to_stanzas_raises_only_impp_errors(data: bytes) -> None:
    candidate = (
        b"Content-type: Message/CPIM\r\n\r\nFrom: <im:a@example.com>\r\nTo: <im:b@x.org>\r\n\r\n"
        + data
    )
    try:
        message = parse_cpim_untrusted(candidate)
    except ImppError:
        return
    for mapper in (cpim_to_messages, cpim_to_presences):
        try:
            mapper(message)
        except MappingError:  # any other exception fails the test
            continue
