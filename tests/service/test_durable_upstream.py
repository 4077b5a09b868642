"""The binding's durable to-upstream queue, with a real SQLite store and a scripted upstream.

A SendMessage is committed to the queue (with its id remembered) before its record may be
acknowledged (``release_operation``); it is sent from the queue and leaves it at the server's
XEP-0198 acknowledgement; a restarted binding asks the account's archive (XEP-0313) which of
the queued messages the server already has before it sends the others again; and a device that
sends a committed message again, even to a restarted gateway, does not get it sent twice.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import trio
import trio.lowlevel

from gateway import wire
from gateway.relay import DeviceRelay
from gateway.service.binding import DeviceBinding, DeviceLink, origin_id_for
from gateway.service.latency import Direction, EndToEndLatency
from gateway.session import LocalSessionError, OperationReceived
from gateway.store import GatewayStore, UpstreamState, open_sqlite_store
from gateway.xmpp import ClientConfig, Jid, XmppClient
from gateway.xmpp import events as ev
from gateway.xmpp.archive import MAM_NS, ArchivedMessage, origin_id_of
from gateway.xmpp.net import UpstreamSession

ACCOUNT = Jid.parse_untrusted("device@example.org")
PERSON = "person@example.org"
KID = b"\x07"


class FakeListener:
    """The device listener: what was sent to the device, and which receipts were released."""

    def __init__(self) -> None:
        self.sent: list[wire.Message] = []
        self.released: list[int] = []

    def send_operation(self, connection_id: bytes, message: wire.Message) -> int:
        self.sent.append(message)
        return len(self.sent)

    def release_operation(self, connection_id: bytes, receipt: int) -> None:
        self.released.append(receipt)


class FakeUpstream:
    """An upstream session over an unstarted client: what is sent waits in its outbox."""

    def __init__(self) -> None:
        self.jid = ACCOUNT
        self.client = XmppClient(ClientConfig(jid=ACCOUNT, password="x"))
        self.stream_generation = 0
        self._send, self.events = trio.open_memory_channel[ev.UpstreamSessionEvent](64)
        # Nothing arrives on the channel: the tests hand each event over (deliver), in order.

    async def use(self, action: Any) -> Any:
        return action(self.client)

    async def acknowledge_inbound(self, sequence: int, generation: int) -> None:
        pass

    def inbound_checkpoint(self, generation: int) -> None:
        return None

    async def release_inbound(self, checkpoint: object) -> None:
        pass

    async def deliver(self, event: ev.UpstreamSessionEvent, binding: DeviceBinding) -> None:
        """Hand ``event`` to the binding as its upstream loop does, and wait for its commands."""
        async with binding._lock:
            await binding._on_upstream_event(event)

    def messages(self) -> list[ET.Element]:
        """The chat messages sent (their origin-ids identify them)."""
        return [s for s in self.client.unsent_stanzas() if origin_id_of(s) is not None]

    def queries(self) -> list[ET.Element]:
        return [s for s in self.client.unsent_stanzas() if s.find(f"{{{MAM_NS}}}query") is not None]


def _send(number: int) -> wire.SendMessage:
    return wire.SendMessage(number, PERSON, wire.TextContent(f"d{number}"))


@asynccontextmanager
async def _running(
    store: GatewayStore, upstream: FakeUpstream, latency: EndToEndLatency | None = None
) -> AsyncIterator[tuple[DeviceBinding, DeviceLink, FakeListener]]:
    relay = DeviceRelay(ACCOUNT, upstream_ready=True)
    binding = DeviceBinding(
        kid=KID,
        relay=relay,
        store=store,
        upstream=cast(UpstreamSession, upstream),
        latency=latency,
    )
    listener = FakeListener()
    link = DeviceLink(listener, "test", b"c1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(binding.run)
        await trio.lowlevel.checkpoint()
        async with binding._lock:  # the queue is loaded
            pass
        await binding.attach(link)
        yield binding, link, listener
        binding.stop()


async def _queued(store: GatewayStore) -> int:
    return len(await store.upstream_queue(str(ACCOUNT), states=list(UpstreamState)))


async def test_committed_before_release_sent_from_the_queue_then_acknowledged(
    tmp_path: Path,
) -> None:
    latency = EndToEndLatency()
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        upstream = FakeUpstream()
        async with _running(store, upstream, latency) as (binding, link, listener):
            await binding.device_event(link, OperationReceived(_send(1), receipt=11))
            assert listener.released == [11]
            assert await _queued(store) == 1
            [stanza] = upstream.messages()
            assert stanza.get("id") == origin_id_of(stanza) == origin_id_for(KID, 1)
            # A retransmission while it is queued: not sent again, and released again.
            await binding.device_event(link, OperationReceived(_send(1), receipt=12))
            assert listener.released == [11, 12]
            assert len(upstream.messages()) == 1
            await upstream.deliver(ev.StanzasAcknowledged(1, (stanza.get("id"),)), binding)
            assert await _queued(store) == 0
            assert latency.snapshot(Direction.DEVICE_TO_PERSON).count == 1


async def test_a_resend_after_a_restart_is_not_sent_twice(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        first = FakeUpstream()
        async with _running(store, first) as (binding, link, _listener):
            await binding.device_event(link, OperationReceived(_send(1), receipt=1))
            await binding.device_event(link, OperationReceived(_send(2), receipt=2))
            [one, _two] = first.messages()
            await first.deliver(ev.StanzasAcknowledged(1, (one.get("id"),)), binding)
        assert await _queued(store) == 1  # 2 was written but never acknowledged

        # The restarted gateway: a new relay and binding over the same store.
        second = FakeUpstream()
        async with _running(store, second) as (binding, link, listener):
            for number, receipt in ((1, 21), (2, 22)):
                await binding.device_event(link, OperationReceived(_send(number), receipt))
            assert listener.released == [21, 22]
            assert second.messages() == []  # neither goes out before the archive is asked
            await second.deliver(ev.SessionResumed(ACCOUNT, 0), binding)
            [query] = second.queries()
            query_id = query[0].get("queryid")
            archived = ArchivedMessage(query_id, "a1", origin_id_for(KID, 2), None, None)
            await second.deliver(ev.ArchiveResultReceived(archived), binding)
            fin = ET.Element(f"{{{MAM_NS}}}fin", {"complete": "true"})
            await second.deliver(ev.IqResultReceived(query.get("id") or "", None, fin), binding)
            # The archive has 2: it counts as acknowledged; 1 had been acknowledged before.
            assert second.messages() == []
            assert await _queued(store) == 0
            assert binding.counters.get("upstream-found-in-archive") == 1
            assert binding.counters.get("upstream-duplicate") == 2


async def test_what_the_archive_lacks_is_sent_again_once(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        first = FakeUpstream()
        async with _running(store, first) as (binding, link, _listener):
            await binding.device_event(link, OperationReceived(_send(5), receipt=1))
        second = FakeUpstream()
        async with _running(store, second) as (binding, _link, _listener):
            await second.deliver(ev.SessionEstablished(ACCOUNT, True, True), binding)
            [query] = second.queries()
            fin = ET.Element(f"{{{MAM_NS}}}fin", {"complete": "true"})
            await second.deliver(ev.IqResultReceived(query.get("id") or "", None, fin), binding)
            [resent] = second.messages()
            assert origin_id_of(resent) == origin_id_for(KID, 5)
            assert binding.counters.get("upstream-resent") == 1


async def test_without_an_archive_it_is_sent_again_and_counted(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        first = FakeUpstream()
        async with _running(store, first) as (binding, link, _listener):
            await binding.device_event(link, OperationReceived(_send(5), receipt=1))
        second = FakeUpstream()
        async with _running(store, second) as (binding, _link, _listener):
            await second.deliver(ev.SessionEstablished(ACCOUNT, True, True), binding)
            [query] = second.queries()
            await second.deliver(ev.IqTimedOut(query.get("id") or ""), binding)
            assert len(second.messages()) == 1
            assert binding.counters.get("upstream-resent-unverified") == 1


async def test_a_full_queue_reports_failed(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db", max_upstream_queue=1) as store:
        upstream = FakeUpstream()
        async with _running(store, upstream) as (binding, link, listener):
            await binding.device_event(link, OperationReceived(_send(1), receipt=1))
            await binding.device_event(link, OperationReceived(_send(2), receipt=2))
            assert listener.released == [1, 2]
            reports = [m for m in listener.sent if isinstance(m, wire.DeliveryReport)]
            assert [(r.id, r.status, r.reason) for r in reports] == [
                (2, wire.DeliveryStatus.FAILED, wire.FailureReason.REJECTED)
            ]
            assert len(upstream.messages()) == 1


class GoneListener(FakeListener):
    """A listener whose session was just replaced: sending to it is the session layer's misuse."""

    def send_operation(self, connection_id: bytes, message: wire.Message) -> int:
        raise LocalSessionError("no established session with that connection id")


async def test_a_report_for_a_replaced_session_is_queued_not_lost(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db", max_upstream_queue=0) as store:
        upstream = FakeUpstream()
        async with _running(store, upstream) as (binding, _link, _listener):
            gone = DeviceLink(GoneListener(), "gone", b"c2")
            await binding.attach(gone)
            await binding.device_event(gone, OperationReceived(_send(1), receipt=1))
            queued = await store.device_queue(KID, now=binding.clock())
            assert [wire.decode_untrusted(item.payload) for item in queued] == [
                wire.DeliveryReport(1, wire.DeliveryStatus.FAILED, wire.FailureReason.REJECTED)
            ]
            assert binding.counters.get("link-gone") == 1
