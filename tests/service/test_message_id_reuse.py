"""A device that reuses a SendMessage id after its final DeliveryReport gets the message sent.

docs/protocol.md §6.4 lets a device use an id again once the id's final report has reached it.
The binding frees the id (``release_device_message``) when the device acknowledges the record
that carried the report, live or from the device queue; the reused id is then a new message, with
a stanza id and origin-id of its own (``origin_id_for(kid, id, generation)``), so neither a late
receipt for the old message nor the old message in the account's archive is taken for it. A
retransmission before the report is acknowledged is still the same message, sent once.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import trio
import trio.lowlevel

from gateway import wire
from gateway.relay import DeviceRelay
from gateway.service.binding import DeviceBinding, DeviceLink, origin_id_for
from gateway.session import OperationAcknowledged, OperationReceived
from gateway.store import GatewayStore, UpstreamState, open_sqlite_store
from gateway.xmpp import Jid
from gateway.xmpp import events as ev
from gateway.xmpp.archive import MAM_NS, ArchivedMessage, origin_id_of
from gateway.xmpp.net import UpstreamSession
from tests.service.test_durable_upstream import (
    ACCOUNT,
    KID,
    PERSON,
    FakeListener,
    FakeUpstream,
    GoneListener,
)

PERSON_JID = Jid.parse_untrusted(f"{PERSON}/phone")


def _send(number: int, text: str, *, want_report: bool = True) -> wire.SendMessage:
    return wire.SendMessage(number, PERSON, wire.TextContent(text), want_report=want_report)


def _body(stanza: ET.Element) -> str | None:
    return stanza.findtext("{jabber:client}body")


@asynccontextmanager
async def _running(
    store: GatewayStore, upstream: FakeUpstream, listener: FakeListener | None = None
) -> AsyncIterator[tuple[DeviceBinding, DeviceLink, FakeListener]]:
    binding = DeviceBinding(
        kid=KID,
        relay=DeviceRelay(ACCOUNT, upstream_ready=True),
        store=store,
        upstream=cast(UpstreamSession, upstream),
    )
    listener = listener or FakeListener()
    link = DeviceLink(listener, "test", b"c1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(binding.run)
        await trio.lowlevel.checkpoint()
        async with binding._lock:  # the queue is loaded
            pass
        await binding.attach(link)
        yield binding, link, listener
        binding.stop()


async def _delivered(binding: DeviceBinding, upstream: FakeUpstream, stanza: ET.Element) -> None:
    """The server acknowledges ``stanza`` and the person's client confirms its receipt."""
    stanza_id = stanza.get("id") or ""
    await upstream.deliver(ev.StanzasAcknowledged(1, (stanza_id,)), binding)
    await upstream.deliver(ev.ReceiptReceived(PERSON_JID, stanza_id), binding)


def _reports(listener: FakeListener) -> list[tuple[int, int, wire.DeliveryReport]]:
    """(operation id, index, report) of every DeliveryReport sent to the device."""
    return [
        (index + 1, index, message)
        for index, message in enumerate(listener.sent)
        if isinstance(message, wire.DeliveryReport)
    ]


async def _acknowledge_reports(
    binding: DeviceBinding, link: DeviceLink, listener: FakeListener
) -> None:
    """The device acknowledges every report record it was sent."""
    for operation_id, _index, report in _reports(listener):
        await binding.device_event(link, OperationAcknowledged(operation_id, report))


async def _queued(store: GatewayStore) -> int:
    return len(await store.upstream_queue(str(ACCOUNT), states=list(UpstreamState)))


async def test_an_id_reused_after_its_report_was_acknowledged_is_sent_and_reported(
    tmp_path: Path,
) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        upstream = FakeUpstream()
        async with _running(store, upstream) as (binding, link, listener):
            await binding.device_event(link, OperationReceived(_send(1, "first"), receipt=1))
            [first] = upstream.messages()
            await _delivered(binding, upstream, first)
            [(_op, _i, report)] = _reports(listener)
            assert (report.id, report.status) == (1, wire.DeliveryStatus.DELIVERED)
            await _acknowledge_reports(binding, link, listener)
            assert binding.counters.get("deduplication-id-released") == 1

            # The device's counter restarted: id 1 again, another message.
            await binding.device_event(link, OperationReceived(_send(1, "second"), receipt=2))
            assert listener.released == [1, 2]
            [_first, second] = upstream.messages()
            assert _body(second) == "second"
            assert second.get("id") == origin_id_of(second) == origin_id_for(KID, 1, 1)
            assert origin_id_of(first) == origin_id_for(KID, 1) != origin_id_of(second)
            assert binding.counters.get("upstream-duplicate") == 0
            # A late receipt for the old stanza is not taken for the new message.
            await upstream.deliver(ev.ReceiptReceived(PERSON_JID, first.get("id") or ""), binding)
            assert len(_reports(listener)) == 1
            await _delivered(binding, upstream, second)
            assert [(r.id, r.status) for _o, _i, r in _reports(listener)] == [
                (1, wire.DeliveryStatus.DELIVERED),
                (1, wire.DeliveryStatus.DELIVERED),
            ]
            assert await _queued(store) == 0


async def test_a_retransmission_before_the_report_is_acknowledged_is_not_sent_again(
    tmp_path: Path,
) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        upstream = FakeUpstream()
        async with _running(store, upstream) as (binding, link, listener):
            await binding.device_event(link, OperationReceived(_send(3, "once"), receipt=1))
            [stanza] = upstream.messages()
            # Before the server's acknowledgement, after it, after the report (not yet
            # acknowledged by the device): each time the same message, not sent again.
            await binding.device_event(link, OperationReceived(_send(3, "once"), receipt=2))
            await upstream.deliver(ev.StanzasAcknowledged(1, (stanza.get("id"),)), binding)
            await binding.device_event(link, OperationReceived(_send(3, "once"), receipt=3))
            await upstream.deliver(ev.ReceiptReceived(PERSON_JID, stanza.get("id") or ""), binding)
            assert len(_reports(listener)) == 1
            await binding.device_event(link, OperationReceived(_send(3, "once"), receipt=4))
            assert listener.released == [1, 2, 3, 4]
            assert len(upstream.messages()) == 1
            # The relay answered the first two itself; the last, after the relay's record
            # ended with the report, only the store recognised.
            assert binding.counters.get("upstream-duplicate") == 1
            assert binding.counters.get("deduplication-id-released") == 0


async def test_a_report_acknowledged_from_the_device_queue_frees_the_id(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        upstream = FakeUpstream()
        async with _running(store, upstream) as (binding, link, _listener):
            await binding.device_event(link, OperationReceived(_send(5, "first"), receipt=1))
            [first] = upstream.messages()
            # The session was just replaced when the receipt comes: the report is queued.
            await binding.attach(DeviceLink(GoneListener(), "gone", b"c2"))
            await _delivered(binding, upstream, first)
            [queued] = await store.device_queue(KID, now=binding.clock())
            assert wire.decode_untrusted(queued.payload) == wire.DeliveryReport(
                5, wire.DeliveryStatus.DELIVERED
            )
            later = FakeListener()
            third = DeviceLink(later, "test", b"c3")
            await binding.attach(third)  # the queue drains: the report goes out
            assert [type(m) for m in later.sent] == [wire.DeliveryReport]
            await _acknowledge_reports(binding, third, later)
            assert await store.device_queue(KID, now=binding.clock()) == []
            assert binding.counters.get("deduplication-id-released") == 1
            await binding.device_event(third, OperationReceived(_send(5, "second"), receipt=2))
            assert [_body(m) for m in upstream.messages()] == ["first", "second"]


async def test_a_message_without_a_report_keeps_its_id_reserved(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        upstream = FakeUpstream()
        async with _running(store, upstream) as (binding, link, listener):
            message = _send(7, "quiet", want_report=False)
            await binding.device_event(link, OperationReceived(message, receipt=1))
            [stanza] = upstream.messages()
            await _delivered(binding, upstream, stanza)
            assert _reports(listener) == []  # DELIVERED is not reported without want report
            await binding.device_event(link, OperationReceived(_send(7, "reused"), receipt=2))
            assert len(upstream.messages()) == 1  # within 7 days: taken for a resend
            assert binding.counters.get("upstream-duplicate") == 1


async def test_after_a_restart_the_archived_old_message_is_not_taken_for_the_reused_one(
    tmp_path: Path,
) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        first_run = FakeUpstream()
        async with _running(store, first_run) as (binding, link, listener):
            await binding.device_event(link, OperationReceived(_send(1, "old"), receipt=1))
            [old] = first_run.messages()
            await _delivered(binding, first_run, old)
            await _acknowledge_reports(binding, link, listener)
            await binding.device_event(link, OperationReceived(_send(1, "new"), receipt=2))
            [_old, new] = first_run.messages()
            # The gateway dies with "new" written to the stream, never acknowledged.
        assert await _queued(store) == 1

        second_run = FakeUpstream()
        async with _running(store, second_run) as (binding, _link, listener):
            await second_run.deliver(ev.SessionResumed(ACCOUNT, 0), binding)
            [query] = second_run.queries()
            query_id = query[0].get("queryid")
            # The archive holds the old message (its origin-id), not the new one.
            archived = ArchivedMessage(query_id, "a1", origin_id_of(old), None, None)
            await second_run.deliver(ev.ArchiveResultReceived(archived), binding)
            fin = ET.Element(f"{{{MAM_NS}}}fin", {"complete": "true"})
            await second_run.deliver(ev.IqResultReceived(query.get("id") or "", None, fin), binding)
            assert binding.counters.get("upstream-found-in-archive") == 0
            assert binding.counters.get("upstream-resent") == 1
            [resent] = second_run.messages()
            assert (_body(resent), origin_id_of(resent)) == ("new", origin_id_of(new))
            assert await _queued(store) == 1
