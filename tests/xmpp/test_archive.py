"""The archive module (XEP-0313): query building, total and bounded parsing, the catch-up, and
the account's own archive in the real Prosody answering by origin-id (XEP-0359)."""

from __future__ import annotations

import contextlib
import functools
import xml.etree.ElementTree as ET

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from gateway.xmpp import Jid, XmppClient
from gateway.xmpp import events as ev
from gateway.xmpp.archive import (
    FORWARD_NS,
    MAM_NS,
    MAX_CHILDREN,
    MAX_ID_LENGTH,
    RSM_NS,
    SID_NS,
    ArchiveCatchUp,
    ArchivedMessage,
    ArchiveFin,
    ArchiveParseError,
    build_archive_query,
    format_timestamp,
    origin_id_element,
    parse_archive_fin_untrusted,
    parse_archive_result_untrusted,
)
from gateway.xmpp.dispatch import StanzaDispatcher
from gateway.xmpp.parser import StanzaReceived, XmlStreamParser
from gateway.xmpp.stanzas import CLIENT_NS
from gateway.xmpp.timers import ClientTimers
from tests.conftest import MakePerson
from tests.support.prosody import ProsodyServer
from tests.xmpp.upstream import EventLog, config_for, manager_for

OWN = Jid.parse_untrusted("gw@example.org")


def _result(
    *,
    query_id: str | None = "q1",
    archive_id: str | None = "a1",
    origin_id: str | None = "o1",
    to: str | None = "p@example.org",
    sender: str | None = None,
) -> ET.Element:
    message = ET.Element(f"{{{CLIENT_NS}}}message")
    if sender is not None:
        message.set("from", sender)
    attributes = {}
    if query_id is not None:
        attributes["queryid"] = query_id
    if archive_id is not None:
        attributes["id"] = archive_id
    result = ET.SubElement(message, f"{{{MAM_NS}}}result", attributes)
    forwarded = ET.SubElement(result, f"{{{FORWARD_NS}}}forwarded")
    inner = ET.SubElement(forwarded, f"{{{CLIENT_NS}}}message", {"id": "m1"})
    if to is not None:
        inner.set("to", to)
    ET.SubElement(inner, f"{{{CLIENT_NS}}}body").text = "hello"
    if origin_id is not None:
        inner.append(origin_id_element(origin_id))
    return message


def test_query_carries_start_and_page() -> None:
    query = build_archive_query("q1", start=0.0, after="x9", max_items=7)
    assert query.get("queryid") == "q1"
    values = [v.text for v in query.iter("{jabber:x:data}value")]
    assert values == [MAM_NS, "1970-01-01T00:00:00Z"]
    assert query.findtext(f"{{{RSM_NS}}}set/{{{RSM_NS}}}max") == "7"
    assert query.findtext(f"{{{RSM_NS}}}set/{{{RSM_NS}}}after") == "x9"
    assert format_timestamp(-5.0) == "1970-01-01T00:00:00Z"


def test_result_is_read() -> None:
    parsed = parse_archive_result_untrusted(_result())
    assert parsed == ArchivedMessage("q1", "a1", "o1", "m1", Jid.parse_untrusted("p@example.org"))
    plain = ET.Element(f"{{{CLIENT_NS}}}message")
    assert parse_archive_result_untrusted(plain) is None


@pytest.mark.parametrize(
    "element",
    [
        _result(archive_id=None),
        _result(archive_id=""),
        _result(archive_id="a" * (MAX_ID_LENGTH + 1)),
        _result(origin_id="o" * (MAX_ID_LENGTH + 1)),
        _result(to="@@bad@@"),
    ],
)
def test_malformed_results_raise_the_parse_error(element: ET.Element) -> None:
    with pytest.raises(ArchiveParseError):
        parse_archive_result_untrusted(element)


def test_too_many_children_are_refused_before_reading_them() -> None:
    wide = _result()
    inner = wide.find(f".//{{{FORWARD_NS}}}forwarded/{{{CLIENT_NS}}}message")
    assert inner is not None
    for _ in range(MAX_CHILDREN):
        inner.append(origin_id_element("o2"))
    with pytest.raises(ArchiveParseError):
        parse_archive_result_untrusted(wide)
    two_forwarded = _result()
    result = two_forwarded.find(f"{{{MAM_NS}}}result")
    assert result is not None
    result.append(ET.Element(f"{{{FORWARD_NS}}}forwarded"))
    with pytest.raises(ArchiveParseError):
        parse_archive_result_untrusted(two_forwarded)


_TAGS = st.sampled_from(
    [
        f"{{{MAM_NS}}}result",
        f"{{{FORWARD_NS}}}forwarded",
        f"{{{CLIENT_NS}}}message",
        f"{{{SID_NS}}}origin-id",
        f"{{{MAM_NS}}}fin",
        f"{{{RSM_NS}}}set",
        f"{{{RSM_NS}}}last",
        "other",
    ]
)
_ATTRIBUTES = st.dictionaries(
    st.sampled_from(["id", "queryid", "to", "complete"]), st.text(max_size=300), max_size=3
)


@st.composite
def _trees(draw: st.DrawFn, depth: int = 0) -> ET.Element:
    element = ET.Element(draw(_TAGS), draw(_ATTRIBUTES))
    element.text = draw(st.none() | st.text(max_size=20))
    if depth < 4:
        for child in draw(st.lists(_trees(depth + 1), max_size=3)):
            element.append(child)
    return element


@given(_trees())
def test_garbage_parses_or_raises_the_parse_error(tree: ET.Element) -> None:
    message = ET.Element(f"{{{CLIENT_NS}}}message")
    message.append(tree)
    for element in (message, tree):
        with contextlib.suppress(ArchiveParseError):
            parse_archive_result_untrusted(element)
        with contextlib.suppress(ArchiveParseError):
            parse_archive_fin_untrusted(element)


def test_fin_is_read() -> None:
    fin = ET.Element(f"{{{MAM_NS}}}fin", {"complete": "true"})
    page = ET.SubElement(fin, f"{{{RSM_NS}}}set")
    ET.SubElement(page, f"{{{RSM_NS}}}last").text = " z3 "
    assert parse_archive_fin_untrusted(fin) == ArchiveFin(True, "z3")
    with pytest.raises(ArchiveParseError):
        parse_archive_fin_untrusted(None)
    with pytest.raises(ArchiveParseError):
        parse_archive_fin_untrusted(ET.Element(f"{{{MAM_NS}}}query"))


def _matching(origin_id: str, query_id: str = "q") -> ArchivedMessage:
    return ArchivedMessage(query_id, f"a-{origin_id}", origin_id, None, None)


def test_catch_up_pages_and_matches() -> None:
    catch_up = ArchiveCatchUp(["o1", "o2", "o3"], query_id="q", start=0.0, page_size=2)
    assert catch_up.next_query() is not None
    assert catch_up.next_query() is None  # one page at a time
    catch_up.result_received(_matching("o1"))
    catch_up.result_received(_matching("o2", query_id="another"))  # not our query
    catch_up.result_received(_matching("x"))
    catch_up.result_received(_matching("o3"))  # past the page size: ignored
    catch_up.page_finished(ArchiveFin(False, "a-x"))
    assert not catch_up.done
    second = catch_up.next_query()
    assert second is not None
    assert second.findtext(f"{{{RSM_NS}}}set/{{{RSM_NS}}}after") == "a-x"
    catch_up.result_received(_matching("o3"))
    catch_up.page_finished(ArchiveFin(True, "a-o3"))
    assert (catch_up.done, catch_up.exhausted) == (True, False)
    assert catch_up.matched == {"o1", "o3"}


def test_catch_up_is_bounded() -> None:
    catch_up = ArchiveCatchUp(["o1"], query_id="q", start=0.0, page_size=1, max_pages=3)
    pages = 0
    while catch_up.next_query() is not None:
        pages += 1
        catch_up.result_received(_matching(f"x{pages}"))
        catch_up.page_finished(ArchiveFin(False, f"a-x{pages}"))
    assert (pages, catch_up.done, catch_up.exhausted, catch_up.matched) == (3, True, True, set())
    # A server that repeats the same page ends the catch-up rather than looping.
    looping = ArchiveCatchUp(["o1"], query_id="q", start=0.0)
    assert looping.next_query() is not None
    looping.page_finished(ArchiveFin(False, "a"))
    assert looping.next_query() is not None
    looping.page_finished(ArchiveFin(False, "a"))
    assert looping.done


def _dispatch(stanza: ET.Element) -> tuple[list[ev.Event], list[ev.StanzaDropReason]]:
    drops: list[ev.StanzaDropReason] = []
    dispatcher = StanzaDispatcher(
        timers=ClientTimers(iq_timeout=60.0, keepalive_interval=60.0),
        write=lambda _element: None,
        drop=drops.append,
        disco_identity=("client", "phone", "test"),
    )
    return dispatcher.dispatch_untrusted(stanza, 0, OWN.with_resource("r"), 0.0), drops


def test_dispatch_accepts_results_only_from_the_own_archive() -> None:
    events, drops = _dispatch(_result(sender="gw@example.org"))
    assert [type(e) for e in events] == [ev.ArchiveResultReceived]
    assert not drops
    events, drops = _dispatch(_result())
    assert [type(e) for e in events] == [ev.ArchiveResultReceived]
    events, drops = _dispatch(_result(sender="mallory@example.org"))
    assert events == []
    assert drops == [ev.StanzaDropReason.ARCHIVE_RESULT_FROM_ELSEWHERE]
    events, drops = _dispatch(_result(sender="gw@example.org/other"))
    assert events == []
    assert drops == [ev.StanzaDropReason.ARCHIVE_RESULT_FROM_ELSEWHERE]
    events, drops = _dispatch(_result(archive_id=None))
    assert events == []
    assert drops == [ev.StanzaDropReason.MALFORMED_ARCHIVE_RESULT]


def test_a_result_off_the_wire_byte_by_byte() -> None:
    wire = (
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        b" version='1.0'><message><result xmlns='urn:xmpp:mam:2' queryid='q' id='a'>"
        b"<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' id='m'"
        b" to='p@example.org'><origin-id xmlns='urn:xmpp:sid:0' id='o'/></message>"
        b"</forwarded></result></message>"
    )
    parser = XmlStreamParser()
    stanzas = [
        e.element
        for i in range(len(wire))
        for e in parser.feed(wire[i : i + 1])
        if isinstance(e, StanzaReceived)
    ]
    assert len(stanzas) == 1
    parsed = parse_archive_result_untrusted(stanzas[0])
    assert parsed is not None
    assert (parsed.archive_id, parsed.origin_id) == ("a", "o")


@pytest.mark.prosody
async def test_prosody_archive_answers_by_origin_id(
    running_prosody: ProsodyServer, make_person: MakePerson
) -> None:
    account = running_prosody.create_user()
    person = await make_person()
    async with manager_for(running_prosody) as manager:
        session = await manager.open_session(config_for(account))
        log = EventLog(session.events)
        await log.wait_for(ev.SessionEstablished)
        to = Jid.parse_untrusted(person.jid)
        for number in range(3):
            stanza = ET.Element(f"{{{CLIENT_NS}}}message", {"to": str(to), "type": "chat"})
            stanza.set("id", f"m{number}")
            ET.SubElement(stanza, f"{{{CLIENT_NS}}}body").text = f"archived {number}"
            stanza.append(origin_id_element(f"origin-{number}"))
            await session.use(functools.partial(XmppClient.send_stanza, stanza=stanza))
        for _ in range(3):
            await person.next_message(sender=account.jid)
        catch_up = ArchiveCatchUp(
            ["origin-0", "origin-2", "never-sent"], query_id="q1", start=0.0, page_size=2
        )
        with trio.fail_after(20):
            while (query := catch_up.next_query()) is not None:
                ask = functools.partial(
                    XmppClient.send_iq, type="set", payload=query, now=trio.current_time()
                )
                iq_id = await session.use(ask)
                while True:
                    event = await session.events.receive()
                    if isinstance(event, ev.ArchiveResultReceived):
                        catch_up.result_received(event.result)
                    elif isinstance(event, ev.IqResultReceived) and event.id == iq_id:
                        catch_up.page_finished(parse_archive_fin_untrusted(event.payload))
                        break
                    assert not (isinstance(event, ev.IqFailed) and event.id == iq_id)
        assert catch_up.matched == {"origin-0", "origin-2"}
        assert not catch_up.exhausted
