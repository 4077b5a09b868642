"""One enrolled device's binding: its relay, its upstream session and the executor of commands.

A :class:`DeviceBinding` owns the device's :class:`~gateway.relay.DeviceRelay` and carries out,
in order and under one lock, the commands the relay returns for what the device sent, what the
upstream said and what the clock did (docs/relay.md, docs/service.md):

* Every IncomingMessage is first committed to the device's durable queue and only then sent, from
  the queue, to a device that listens; it leaves the queue when the session layer reports the
  record acknowledged (``OperationAcknowledged``), which is also when the relay hears
  :class:`~gateway.relay.DeviceDelivered` and may send the sender its receipt. A gateway that
  crashes after the commit loses nothing; a device that drops its session gets the message again.
* ``EnqueueForDevice`` goes to the store (presence coalesced per contact); ``DrainQueue`` starts
  sending the queue oldest first, at most ``drain_window`` records in flight (paced for the link).
* Other ``SendToDevice`` go to the live session; with no session they are queued (presence,
  requests, reports) or dropped (answers such as Pong, which only make sense now).
* Upstream commands run on the account's :class:`~gateway.xmpp.UpstreamSession` through
  :class:`~gateway.relay.xmpp_upstream.XmppUpstream`; events it hands back go to the relay.
* Inbound stanzas are acknowledged to the server (XEP-0198 ``<a h/>``) only after the commands
  of their event ran (an IncomingMessage committed to the queue, a presence committed or
  superseded by a newer one): the session's client defers its count
  (``ClientConfig.defer_inbound_acks``). The stream's resumption id and that count are persisted
  (:class:`~gateway.store.StreamResumption`, once the upstream channel is drained or every
  ``RESUMPTION_PERSIST_BATCH`` acknowledgements) *before* the server may hear the count, so a
  restarted gateway resumes the stream (:func:`stored_resumption`) and the server redelivers
  what the queue did not hold; what it redelivers that the queue did hold is recognised by its
  stanza id and not queued twice.
* A SendMessage is committed to the account's durable to-upstream queue, its device message id
  remembered in the same transaction (:meth:`~gateway.store.GatewayStore.enqueue_upstream_once`),
  and sent from there with a deterministic id and XEP-0359 origin-id (:func:`origin_id_for`); it
  leaves the queue at the server's XEP-0198 acknowledgement. A SendMessage seen before, queued
  or already acknowledged (even by an earlier process), is not sent again; a full queue is
  reported FAILED. Once the device acknowledges the record carrying the id's final
  DeliveryReport, the id is released (:meth:`~gateway.store.GatewayStore.release_device_message`):
  a SendMessage reusing it is a new message, queued as the id's next generation with a stanza id
  and origin-id of its own. After a restart, and on every fresh upstream stream (the client leaves
  queued stanzas to us, ``resent_by_application``), the account's archive (XEP-0313,
  :class:`~gateway.xmpp.archive.ArchiveCatchUp`) says which queued messages the server already
  has; the others are sent again (unverified, and counted, if the archive cannot say).
* Every operation from the device is released to the session layer
  (:meth:`OperationSink.release_operation`) once all of its commands ran, so the device's record
  is acknowledged only once what it asked is durable. ``AcknowledgeDevice`` (the server accepted
  the stanza) then needs no wire form: the device stopped retaining it at the commit; it is
  counted. Store commands go to the store.
* Latency (:class:`~gateway.service.latency.EndToEndLatency`, if given): device -> person from
  the SendMessage's arrival to the server's acknowledgement, person -> device from the stanza's
  commit to the device's queue (its arrival) to the device's acknowledgement of the record.

Nothing a device or server does may end the binding: each loop catches and counts what escapes
one input (:class:`BindingCounters`), as the transports do.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import logging
import secrets
import time
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import trio

from gateway import wire
from gateway.relay import (
    DeviceDelivered,
    DeviceLinkLost,
    DeviceLinkUp,
    DeviceRelay,
    QueueOverflowed,
)
from gateway.relay import LocalRelayError as RelayMisuse
from gateway.relay import commands as cmd
from gateway.relay.xmpp_upstream import XmppUpstream, drop_reason, message_stanza
from gateway.service.latency import Direction, EndToEndLatency
from gateway.session import LocalSessionError as SessionMisuse
from gateway.session import (
    OperationAcknowledged,
    OperationReceived,
    OperationRejected,
)
from gateway.store import (
    DeviceQueueItem,
    EnqueuedUpstream,
    EnqueueResult,
    GatewayStore,
    OperationFailedError,
    QueueKind,
    StoreError,
    StreamResumption,
    UpstreamState,
)
from gateway.transport._internal_errors import InternalErrors
from gateway.xmpp import ClientConfig, Jid, LocalXmppError, StanzaTooLargeError, XmppError
from gateway.xmpp import events as ev
from gateway.xmpp.archive import (
    ArchiveCatchUp,
    ArchiveParseError,
    origin_id_of,
    parse_archive_fin_untrusted,
)
from gateway.xmpp.net import UpstreamSession
from gateway.xmpp.stream_management import ResumptionToken

__all__ = [
    "DEFAULT_DEDUPLICATION_LIFETIME",
    "DEFAULT_DRAIN_WINDOW",
    "BindingCounters",
    "DeviceBinding",
    "DeviceLink",
    "OperationSink",
    "next_incoming_blob",
    "origin_id_for",
    "stored_resumption",
]

DEFAULT_DRAIN_WINDOW = 16  # queued records in flight to one device: paced, yet a night drains fast
DEFAULT_DEDUPLICATION_LIFETIME = 7 * 86_400.0  # a device message id is remembered this long
MAX_QUEUE_SCAN = 10_000  # queue items read to find one by id (expiry, duplicates): rare work
MAX_TIMER_SLEEP = 60.0  # seconds: the relay's deadlines are on the wall clock, re-read this often
# Inbound acknowledgements between two writes of the stream's resumption state during a flood
# (a quiet channel writes at once): one commit per batch, and the server's queue stays short.
RESUMPTION_PERSIST_BATCH = 32
# Seconds subtracted from the oldest pending message's enqueue time when the archive is asked
# what it holds since then: the server's clock may be behind ours (same host: no skew).
ARCHIVE_CLOCK_MARGIN = 300.0
MAX_RELAY_IDS = 4096  # stanza id -> the relay's id of the same message, for late receipts

logger = logging.getLogger("gateway.service")

_QUEUE_KINDS: dict[type, QueueKind] = {
    wire.IncomingMessage: QueueKind.MESSAGE,
    wire.PresenceNotification: QueueKind.PRESENCE,
    wire.SubscriptionRequest: QueueKind.SUBSCRIPTION,
    wire.ContactList: QueueKind.CONTACTS,
    wire.DeliveryReport: QueueKind.REPORT,
}


_SEQUENCED_EVENTS = (
    ev.MessageReceived,
    ev.ReceiptReceived,
    ev.PresenceReceived,
    ev.SubscriptionReceived,
)


async def stored_resumption(store: GatewayStore, config: ClientConfig) -> ResumptionToken | None:
    """The persisted XEP-0198 state of ``config``'s account as a token to ``<resume/>`` with.

    The bound JID is taken to be the account with the resource the configuration asks for (the
    store keeps no other); None without a resource or a stored state.
    """
    if config.resource is None:
        return None
    state = await store.get_stream_resumption(str(config.jid.bare))
    if state is None:
        return None
    return ResumptionToken(
        session_id=state.resumption_id,
        jid=Jid(config.jid.local, config.jid.domain, config.resource),
        inbound_handled=state.h_inbound,
        outbound_acknowledged=state.h_outbound,
        unacknowledged=(),
        location=state.location,
        outbound_unknown=True,
    )


def origin_id_for(kid: bytes, device_message_id: int, generation: int = 0) -> str:
    """The stanza id and XEP-0359 origin-id of the device's SendMessage ``device_message_id``.

    Deterministic, so a SendMessage the device sends again, even to a restarted gateway, maps
    to the same stanza, and the account's archive can tell whether the server already has it.
    ``generation`` counts the acceptances of an id the device reused after its final report
    (the store keeps it): each has its own id, so the archive never takes an old message for a
    new one, nor a late receipt for the old one reaches the new. Generation 0 is the id's
    first acceptance and has the ids of gateways from before generations existed.
    """
    number = str(device_message_id) if generation == 0 else f"{device_message_id}/{generation}"
    digest = hashlib.sha256(b"impp origin-id\0" + kid + b"\0" + number.encode())
    return f"impp-{digest.hexdigest()[:32]}"


def _queue_id(kid: bytes, device_message_id: int) -> bytes:
    """The message's id in the account's to-upstream queue: the device's, under its kid."""
    return f"{kid.hex()}/{device_message_id}".encode()


def next_incoming_blob(kid: bytes) -> str:
    """The named blob holding the next IncomingMessage id of the device with ``kid``."""
    return f"relay/{kid.hex()}/next-incoming-id"


class OperationSink(Protocol):
    """What a device listener offers here: queue an operation, get its operation id; say that
    an operation received is durable, so that its record may be acknowledged."""

    def send_operation(self, connection_id: bytes, message: wire.Message) -> int:
        """Queue ``message`` to the session ``connection_id``."""
        ...

    def release_operation(self, connection_id: bytes, receipt: int) -> None:
        """The operation received with ``receipt`` (``OperationReceived.receipt``) is done."""
        ...


@dataclass(frozen=True)
class DeviceLink:
    """Where the device is reachable now: a listener and the session's connection id."""

    listener: OperationSink
    name: str  # "udp 127.0.0.1:5690", for log lines
    connection_id: bytes


@dataclass
class _InFlight:
    message: wire.Message
    seq: int | None  # the queue item it came from, if any
    incoming_id: int | None  # an IncomingMessage's id (for DeviceDelivered)
    enqueued_at: float | None = None  # when the queue item was committed (its stanza arrived)


class _Standing(enum.Enum):
    """Where a device's message in the to-upstream queue stands, as far as this process knows."""

    UNVERIFIED = "unverified"  # may have reached the server: the archive is asked first
    WAITING = "waiting"  # known not to be at the server: to send
    ON_STREAM = "on-stream"  # handed to the current stream; XEP-0198 carries it to its ack


@dataclass
class _Outbound:
    seq: int
    stanza_id: str  # also its origin-id
    stanza: ET.Element
    received_at: float  # when its SendMessage arrived (or was queued, for one restored)
    standing: _Standing


@dataclass
class BindingCounters:
    """What one binding did and refused, by reason (read by the service's statistics)."""

    counts: dict[str, int] = field(default_factory=dict)
    _changed: trio.Event = field(default_factory=trio.Event, repr=False)

    def add(self, reason: str, amount: int = 1) -> None:
        """Count ``amount`` of ``reason``."""
        self.counts[reason] = self.counts.get(reason, 0) + amount
        self._changed.set()
        self._changed = trio.Event()

    def get(self, reason: str) -> int:
        """The count of ``reason`` (0 if never counted)."""
        return self.counts.get(reason, 0)

    async def wait_for(self, predicate: Callable[[BindingCounters], bool]) -> None:
        """Return once ``predicate`` holds (checked after every change; callers bound the wait)."""
        while not predicate(self):
            await self._changed.wait()


class DeviceBinding:
    """An enrolled device bound to its account (see the module docstring)."""

    def __init__(
        self,
        *,
        kid: bytes,
        relay: DeviceRelay,
        store: GatewayStore,
        upstream: UpstreamSession | None,
        clock: Callable[[], float] = time.time,
        drain_window: int = DEFAULT_DRAIN_WINDOW,
        latency: EndToEndLatency | None = None,
    ) -> None:
        self.kid = kid
        self.name = f"device 0x{kid.hex()}"
        self.relay = relay
        self.store = store
        self.upstream = upstream
        self.clock = clock
        self.drain_window = drain_window
        self.latency = latency
        self.counters = BindingCounters()
        self._errors = InternalErrors(self.counters.counts, logger)
        self.link: DeviceLink | None = None
        self._lock = trio.Lock()
        self._in_flight: dict[int, _InFlight] = {}
        self._seqs_in_flight: set[int] = set()
        self._draining = False
        self._stanza_key: str | None = None  # the inbound stanza whose commands are running
        self._upstream_generation = 0  # fresh upstream streams seen in its events (see manager)
        self._unpersisted_acks = 0  # inbound acknowledgements not yet in the store
        self._account = str(relay.account)
        self._outbound: dict[str, _Outbound] = {}  # the to-upstream queue, by stanza id
        self._relay_ids: OrderedDict[str, str] = OrderedDict()  # stanza id -> relay's id
        self._catch_up: ArchiveCatchUp | None = None
        self._catch_up_iq: str | None = None
        self._catch_up_count = 0
        self._verify_at_next_session = False  # restored items: ask the archive once it is up
        self._stream_management = True
        self._operation_received_at: float | None = None
        self._timer_wake = trio.Event()
        self._cancel = trio.CancelScope()
        self.stopped = trio.Event()
        self.upstream_up = trio.Event()  # set once the relay has seen its upstream session up

    # -- lifetime ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """The binding's tasks (upstream events, timers) until :meth:`stop`."""
        try:
            with self._cancel:
                async with self._lock:
                    await self._guarded(self._load_upstream_queue)
                async with trio.open_nursery() as nursery:
                    if self.upstream is not None:
                        nursery.start_soon(self._upstream_loop, self.upstream)
                    nursery.start_soon(self._timer_loop)
        finally:
            self.stopped.set()

    def stop(self) -> None:
        """End the binding's tasks (its upstream session is closed by its manager)."""
        self._cancel.cancel()

    # -- from the device --------------------------------------------------------------------------

    async def attach(self, link: DeviceLink) -> None:
        """The device has a session (established or resumed) at ``link``: send what waits."""
        async with self._lock:
            self.link = link
            self._in_flight.clear()
            self._seqs_in_flight.clear()
            self._draining = True
            await self._guarded(
                lambda: self._execute(self.relay.device_operation(DeviceLinkUp(), self.clock()))
            )
            await self._guarded(self._top_up)

    async def detach(self, link: DeviceLink) -> None:
        """The session at ``link`` closed: keep for later what it had not acknowledged."""
        async with self._lock:
            if self.link != link:
                return  # an older session, already replaced
            self.link = None
            pending = [f for f in self._in_flight.values() if f.seq is None]
            self._in_flight.clear()
            self._seqs_in_flight.clear()
            for flight in pending:
                if type(flight.message) in _QUEUE_KINDS:
                    requeue = cmd.EnqueueForDevice(
                        flight.message, coalesce_key=_coalesce_key(flight.message)
                    )
                    await self._guarded(functools.partial(self._enqueue, requeue))
            await self._guarded(
                lambda: self._execute(self.relay.device_operation(DeviceLinkLost(), self.clock()))
            )
        self._timer_wake.set()  # the relay's link-lost grace is a new deadline

    async def device_event(self, link: DeviceLink, event: object) -> None:
        """One session event of the device's current session."""
        async with self._lock:
            if self.link != link:
                self.counters.add("event-from-old-session")
                return
            done = await self._guarded(functools.partial(self._on_device_event, event))
            if isinstance(event, OperationReceived):
                if done:
                    link.listener.release_operation(link.connection_id, event.receipt)
                else:
                    self.counters.add("release-withheld")  # the store failed: not durable
        self._timer_wake.set()  # a SendMessage or Sleep may have set a nearer deadline

    async def _on_device_event(self, event: object) -> None:
        now = self.clock()
        if isinstance(event, OperationReceived):
            self.counters.add(f"from-device-{type(event.message).__name__}")
            logger.info("%s: %s from the device", self.name, type(event.message).__name__)
            self._operation_received_at = now
            try:
                await self._execute(self.relay.device_operation(event.message, now))
            finally:
                self._operation_received_at = None
        elif isinstance(event, OperationRejected):
            self.counters.add("from-device-rejected")
            await self._execute(self.relay.device_rejected(event.error.code))
        elif isinstance(event, OperationAcknowledged):
            await self._on_acknowledged(event.operation_id, now)

    async def _on_acknowledged(self, operation_id: int, now: float) -> None:
        flight = self._in_flight.pop(operation_id, None)
        if flight is None:
            return
        if flight.seq is not None:
            self._seqs_in_flight.discard(flight.seq)
            await self.store.remove_from_device_queue(self.kid, [flight.seq])
        if isinstance(flight.message, wire.DeliveryReport):
            # Every report is final (docs/protocol.md §6.6) and the device has it: it may use
            # the id again, and no retransmission of the old message can follow (§6.4).
            released = await self.store.release_device_message(
                self.kid, str(flight.message.id).encode()
            )
            self.counters.add("deduplication-id-released" if released else "report-acknowledged")
        if flight.incoming_id is not None:
            self.counters.add("delivered-to-device")
            if self.latency is not None and flight.enqueued_at is not None:
                self.latency.observe(Direction.PERSON_TO_DEVICE, now - flight.enqueued_at)
            await self._execute(
                self.relay.device_operation(DeviceDelivered(flight.incoming_id), now)
            )
        await self._top_up()

    # -- from the upstream ------------------------------------------------------------------------

    async def _upstream_loop(self, upstream: UpstreamSession) -> None:
        async for event in upstream.events:
            _log_upstream(self.name, upstream, event)
            async with self._lock:
                done = await self._guarded(functools.partial(self._on_upstream_event, event))
                await self._guarded(
                    functools.partial(self._acknowledge_upstream, upstream, event, done)
                )
            if self.relay.upstream_ready:
                self.upstream_up.set()
            self._timer_wake.set()

    async def _on_upstream_event(self, event: ev.UpstreamSessionEvent) -> None:
        self._stanza_key = None
        if await self._on_outbound_event(event):
            return
        event = self._to_relay_ids(event)
        if isinstance(event, ev.MessageReceived):
            message = event.message
            if message.id is not None and message.from_ is not None:
                self._stanza_key = f"stanza {message.from_} {message.id}"
        try:
            await self._execute(self.relay.upstream_event(event, self.clock()))
        finally:
            self._stanza_key = None

    async def _acknowledge_upstream(
        self, upstream: UpstreamSession, event: ev.UpstreamSessionEvent, done: bool
    ) -> None:
        """Acknowledge ``event``'s stanza once its commands ran; persist, then release, the count.

        A stanza whose commands failed on the store is not acknowledged: ``h`` stops before it,
        and the server redelivers it (and what follows) on the next resumption.
        """
        if isinstance(event, ev.SessionEstablished):
            self._upstream_generation += 1
            self._unpersisted_acks = 0
            await self._persist_resumption(upstream, fresh=True)
            return
        if isinstance(event, _SEQUENCED_EVENTS) and event.sequence:
            if not done:
                self.counters.add("inbound-ack-withheld")
                return
            await upstream.acknowledge_inbound(event.sequence, self._upstream_generation)
            self._unpersisted_acks += 1
        if self._unpersisted_acks and (
            self._unpersisted_acks >= RESUMPTION_PERSIST_BATCH
            or upstream.events.statistics().current_buffer_used == 0
        ):
            await self._persist_resumption(upstream, fresh=False)

    async def checkpoint_upstream(self) -> bool:
        """Persist the upstream stream's resumption id and counters now (the drain's last word).

        Called once the binding has stopped, so no later acknowledgement can pass what is
        stored; False when there is no live upstream stream to checkpoint. Store errors
        propagate to the caller, which counts them.
        """
        upstream = self.upstream
        if upstream is None or upstream.stopped:
            return False
        await self._persist_resumption(upstream, fresh=False)
        return True

    async def _persist_resumption(self, upstream: UpstreamSession, *, fresh: bool) -> None:
        account = str(upstream.jid)
        checkpoint = upstream.inbound_checkpoint(self._upstream_generation)
        if checkpoint is None:
            if fresh:  # a stream that cannot be resumed: what is stored is of an older one
                await self.store.clear_stream_resumption(account)
            return
        await self.store.put_stream_resumption(
            StreamResumption(
                account_jid=account,
                resumption_id=checkpoint.session_id,
                h_inbound=checkpoint.inbound_handled,
                h_outbound=checkpoint.outbound_acknowledged,
                location=checkpoint.location,
                updated_at=self.clock(),
            )
        )
        self._unpersisted_acks = 0
        self.counters.add("resumption-persisted")
        await upstream.release_inbound(checkpoint)

    # -- the to-upstream queue --------------------------------------------------------------------

    async def _load_upstream_queue(self) -> None:
        """Take over what an earlier process left in the account's queue: not known delivered."""
        prefix = f"{self.kid.hex()}/".encode()
        items = await self.store.upstream_queue(
            self._account, states=list(UpstreamState), limit=MAX_QUEUE_SCAN
        )
        unreadable: list[int] = []
        for item in items:
            if not item.device_message_id.startswith(prefix):
                continue  # another device's message on the same account
            try:
                stanza = ET.fromstring(item.payload)  # noqa: S314 - our own store's bytes
            except (ET.ParseError, ValueError):
                stanza = None
            stanza_id = origin_id_of(stanza) if stanza is not None else None
            if stanza is None or stanza_id is None:
                unreadable.append(item.seq)
                continue
            self._outbound[stanza_id] = _Outbound(
                item.seq, stanza_id, stanza, item.enqueued_at, _Standing.UNVERIFIED
            )
        if unreadable:
            self.counters.add("upstream-queue-item-unreadable", len(unreadable))
            await self.store.remove_upstream(self._account, unreadable)
        if self._outbound:
            self.counters.add("upstream-restored", len(self._outbound))
            self._verify_at_next_session = True

    async def _send_message(
        self, command: cmd.UpstreamSendMessage, now: float
    ) -> list[cmd.Command]:
        """Commit the device's message to the to-upstream queue, once; then send it from there.

        A SendMessage seen before (queued, or sent and acknowledged, even by an earlier
        process) is not sent again: the relay's record of it is tied to the stanza already
        queued or sent, whose acknowledgement and receipts it then gets. An id released after
        its final report (:meth:`_on_acknowledged`) is a new message: the store names its
        next generation, and it is queued again with that generation's stanza id.
        """
        if self.upstream is None:
            self.counters.add("upstream-missing")
            return []
        stanza_id = origin_id_for(self.kid, command.device_message_id)
        stanza = message_stanza(command, stanza_id=stanza_id)
        outcome = await self._enqueue_upstream(command, stanza, 0, now)
        if outcome.released:
            self.counters.add("upstream-id-reused")
            stanza_id = origin_id_for(self.kid, command.device_message_id, outcome.generation)
            stanza = message_stanza(command, stanza_id=stanza_id)
            outcome = await self._enqueue_upstream(command, stanza, outcome.generation, now)
            if outcome.released:  # a store that contradicts itself: not durable, retried
                raise OperationFailedError("the store refused the generation it named")
        elif outcome.generation:
            stanza_id = origin_id_for(self.kid, command.device_message_id, outcome.generation)
        self._relay_ids[stanza_id] = command.message_id
        self._relay_ids.move_to_end(stanza_id)
        while len(self._relay_ids) > MAX_RELAY_IDS:
            self._relay_ids.popitem(last=False)
        if outcome.result is EnqueueResult.OVERFLOW:
            self.counters.add("upstream-queue-overflow")
            logger.warning("%s: to-upstream queue full, message refused", self.name)
            dropped = ev.StanzaDropped(command.message_id, ev.StanzaDropReason.REFUSED, 0, stanza)
            return self.relay.upstream_event(dropped, now)
        if outcome.result is EnqueueResult.DUPLICATE:
            self.counters.add("upstream-duplicate")
            if outcome.queued:
                return []  # its acknowledgement is still to come, and reaches this record
            # It left the queue: the server acknowledged it.
            return self.relay.upstream_event(ev.StanzasAcknowledged(1, (command.message_id,)), now)
        assert outcome.seq is not None  # QUEUED always has its place
        received_at = self._operation_received_at
        item = _Outbound(
            outcome.seq,
            stanza_id,
            stanza,
            received_at if received_at is not None else now,
            _Standing.WAITING,
        )
        self._outbound[stanza_id] = item
        return await self._transmit(item, now)

    async def _enqueue_upstream(
        self, command: cmd.UpstreamSendMessage, stanza: ET.Element, generation: int, now: float
    ) -> EnqueuedUpstream:
        """Offer ``stanza``, built for the id's ``generation``, to the to-upstream queue."""
        return await self.store.enqueue_upstream_once(
            self._account,
            self.kid,
            str(command.device_message_id).encode(),
            _queue_id(self.kid, command.device_message_id),
            ET.tostring(stanza),
            now=now,
            remember_until=now + DEFAULT_DEDUPLICATION_LIFETIME,
            generation=generation,
        )

    async def _transmit(self, item: _Outbound, now: float) -> list[cmd.Command]:
        """Hand one queued message to the upstream stream (the client keeps it until its ack)."""
        upstream = self.upstream
        if upstream is None or item.standing is not _Standing.WAITING:
            return []
        try:
            await upstream.use(lambda client: XmppUpstream(client).send_held_message(item.stanza))
        except StanzaTooLargeError as error:
            self.counters.add("upstream-refused")
            return await self._give_up(item, drop_reason(error), now)
        except LocalXmppError:
            self.counters.add("upstream-send-deferred")  # closing or full: sent at a later turn
            return []
        item.standing = _Standing.ON_STREAM
        self.counters.add("upstream-UpstreamSendMessage")
        if not self._stream_management:
            # Without XEP-0198 nothing is ever acknowledged: written is as far as it can go.
            self.counters.add("upstream-sent-without-ack")
            return await self._acknowledged([item.stanza_id], now)
        return []

    async def _transmit_waiting(self, now: float) -> list[cmd.Command]:
        followers: list[cmd.Command] = []
        for item in sorted(self._outbound.values(), key=lambda item: item.seq):
            if item.standing is _Standing.WAITING:
                followers += await self._transmit(item, now)
        return followers

    async def _give_up(
        self, item: _Outbound, reason: ev.StanzaDropReason, now: float
    ) -> list[cmd.Command]:
        """The message can never go (too large, refused for policy): out of the queue, FAILED."""
        self._outbound.pop(item.stanza_id, None)
        await self.store.remove_upstream(self._account, [item.seq])
        relay_id = self._relay_ids.get(item.stanza_id, item.stanza_id)
        return self.relay.upstream_event(ev.StanzaDropped(relay_id, reason, 0, item.stanza), now)

    async def _acknowledged(self, stanza_ids: Sequence[str], now: float) -> list[cmd.Command]:
        """The server has these queued messages: out of the queue; the relay hears it."""
        items = [self._outbound.pop(i) for i in stanza_ids if i in self._outbound]
        if not items:
            return []
        await self.store.remove_upstream(self._account, [item.seq for item in items])
        if self.latency is not None:
            for item in items:
                self.latency.observe(Direction.DEVICE_TO_PERSON, now - item.received_at)
        relay_ids = tuple(self._relay_ids.get(i.stanza_id, i.stanza_id) for i in items)
        return self.relay.upstream_event(ev.StanzasAcknowledged(len(items), relay_ids), now)

    async def _on_outbound_event(self, event: ev.UpstreamSessionEvent) -> bool:
        """What an upstream event means for the to-upstream queue; True if it was only that.

        Acknowledgements take the messages out of the queue (the relay then hears them with
        its own ids). A fresh stream has none of what the last one held (the client does not
        resend what the queue holds, ``resent_by_application``): the archive is asked which
        of them the server already has, and the rest is sent again.
        """
        now = self.clock()
        if isinstance(event, ev.SessionEstablished):
            self._stream_management = event.stream_management
            for item in self._outbound.values():
                if item.standing is _Standing.ON_STREAM:
                    item.standing = _Standing.UNVERIFIED
            self._verify_at_next_session = False
            await self._execute(await self._start_catch_up(now))
            return False
        if isinstance(event, ev.SessionResumed):
            if self._verify_at_next_session:
                self._verify_at_next_session = False
                await self._execute(await self._start_catch_up(now))
            else:
                await self._execute(await self._transmit_waiting(now))
            return False
        if isinstance(event, ev.StanzasAcknowledged):
            ours = [i for i in event.ids if i is not None and i in self._outbound]
            if ours:
                await self._execute(await self._acknowledged(ours, now))
                await self._execute(await self._transmit_waiting(now))
            return len(ours) == len(event.ids)
        if isinstance(event, ev.StanzaDropped) and event.id in self._outbound:
            item = self._outbound[event.id]
            self.counters.add(f"upstream-dropped-{event.reason}")
            await self._execute(await self._give_up(item, event.reason, now))
            return True
        if isinstance(event, ev.ArchiveResultReceived):
            if self._catch_up is not None:
                self._catch_up.result_received(event.result)
            return True
        if isinstance(event, ev.IqResultReceived | ev.IqFailed | ev.IqTimedOut):
            if self._catch_up is None or event.id != self._catch_up_iq:
                return False
            self._catch_up_iq = None
            if isinstance(event, ev.IqResultReceived):
                try:
                    self._catch_up.page_finished(parse_archive_fin_untrusted(event.payload))
                except ArchiveParseError:
                    self.counters.add("archive-answer-malformed")
                    await self._execute(await self._finish_catch_up(verified=False, now=now))
                    return True
                await self._execute(await self._continue_catch_up(now))
            else:
                self.counters.add(f"archive-query-{type(event).__name__}")
                logger.warning("%s: the archive query failed (%s)", self.name, type(event).__name__)
                await self._execute(await self._finish_catch_up(verified=False, now=now))
            return True
        return False

    async def _start_catch_up(self, now: float) -> list[cmd.Command]:
        unverified = [i for i in self._outbound.values() if i.standing is _Standing.UNVERIFIED]
        if not unverified:
            self._catch_up = None
            self._catch_up_iq = None
            logger.info("%s: to-upstream queue checked: nothing to verify", self.name)
            return await self._transmit_waiting(now)
        self._catch_up_count += 1
        self.counters.add("archive-catch-up")
        logger.info("%s: asking the archive about %d queued messages", self.name, len(unverified))
        oldest = min(item.received_at for item in unverified)
        self._catch_up = ArchiveCatchUp(
            [item.stanza_id for item in unverified],
            query_id=f"catch-up-{self._catch_up_count}-{secrets.token_hex(4)}",
            start=oldest - ARCHIVE_CLOCK_MARGIN,
        )
        followers = await self._transmit_waiting(now)
        return followers + await self._continue_catch_up(now)

    async def _continue_catch_up(self, now: float) -> list[cmd.Command]:
        catch_up, upstream = self._catch_up, self.upstream
        if catch_up is None or upstream is None:
            return []
        query = catch_up.next_query()
        if query is None:
            return await self._finish_catch_up(verified=not catch_up.exhausted, now=now)
        try:
            # The client's timers run on trio's clock, not the binding's wall clock.
            self._catch_up_iq = await upstream.use(
                lambda client: client.send_iq("set", query, trio.current_time())
            )
        except LocalXmppError:
            return await self._finish_catch_up(verified=False, now=now)
        return []

    async def _finish_catch_up(self, *, verified: bool, now: float) -> list[cmd.Command]:
        """Messages the archive holds count as acknowledged; the others are sent again."""
        catch_up, self._catch_up, self._catch_up_iq = self._catch_up, None, None
        matched = catch_up.matched if catch_up is not None else set()
        pending = catch_up.pending if catch_up is not None else frozenset()
        found = [i for i in pending if i in matched and i in self._outbound]
        if found:
            self.counters.add("upstream-found-in-archive", len(found))
        resent = 0
        for stanza_id in pending - matched:
            item = self._outbound.get(stanza_id)
            if item is not None and item.standing is _Standing.UNVERIFIED:
                item.standing = _Standing.WAITING
                resent += 1
        if resent:
            self.counters.add(
                "upstream-resent" if verified else "upstream-resent-unverified", resent
            )
            if not verified:
                logger.warning(
                    "%s: %d messages sent again without the archive's word (may duplicate)",
                    self.name,
                    resent,
                )
        logger.info(
            "%s: to-upstream queue checked: %d in the archive, %d sent again",
            self.name,
            len(found),
            resent,
        )
        followers = await self._acknowledged(found, now)
        return followers + await self._transmit_waiting(now)

    def _to_relay_ids(self, event: ev.UpstreamSessionEvent) -> ev.UpstreamSessionEvent:
        """The event with our stanza ids replaced by the relay's ids of the same messages."""
        ids = self._relay_ids
        if isinstance(event, ev.ReceiptReceived) and event.message_id in ids:
            return dataclasses.replace(event, message_id=ids[event.message_id])
        if isinstance(event, ev.MessageFailed | ev.StanzaDropped) and event.id in ids:
            return dataclasses.replace(event, id=ids[event.id or ""])
        if isinstance(event, ev.StanzasAcknowledged):
            return dataclasses.replace(event, ids=tuple(ids.get(i or "", i) for i in event.ids))
        return event

    # -- timers -----------------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            deadline = self.relay.next_deadline()
            delay = MAX_TIMER_SLEEP
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - self.clock()))
            with trio.move_on_after(delay):
                await self._timer_wake.wait()
            self._timer_wake = trio.Event()
            deadline = self.relay.next_deadline()
            if deadline is not None and self.clock() >= deadline:
                async with self._lock:
                    await self._guarded(self._on_timer)

    async def _on_timer(self) -> None:
        await self._execute(self.relay.handle_timer(self.clock()))

    # -- the executor -----------------------------------------------------------------------------

    async def _guarded(self, action: Callable[[], Awaitable[None]]) -> bool:
        """Run one input's work; whatever escapes is counted and logged, never fatal.

        False only if the store failed (the input may be retried: its stanza is not
        acknowledged upstream); a refused or broken input is done with, since a retry would
        fail the same way.
        """
        try:
            await action()
        except StoreError as exc:
            self.counters.add("store-error")
            logger.warning("%s: store operation failed: %s", self.name, type(exc).__name__)
            return False
        except (RelayMisuse, SessionMisuse, XmppError, wire.WireError) as exc:
            self.counters.add(f"refused-{type(exc).__name__}")
            logger.warning("%s: input refused: %s", self.name, type(exc).__name__)
        except Exception as exc:
            self._errors.record("internal-error", exc)
        return True

    async def _execute(self, commands: Sequence[cmd.Command]) -> None:
        """Carry out ``commands`` in order (and what the upstream hands back, after them)."""
        work = list(commands)
        while work:
            command = work.pop(0)
            now = self.clock()
            if isinstance(command, cmd.SendToDevice):
                await self._send_to_device(command)
            elif isinstance(command, cmd.EnqueueForDevice):
                await self._enqueue(command)
            elif isinstance(command, cmd.DrainQueue):
                self._draining = True
                await self._top_up()
            elif isinstance(command, cmd.DropQueued):
                await self._drop_queued(command.message_id, now)
            elif isinstance(command, cmd.AcknowledgeDevice):
                self.counters.add("acknowledged-to-device")
            elif isinstance(command, cmd.PersistAlias):
                alias = await self.store.assign_alias(self.kid, str(command.contact.bare))
                if alias != command.alias:
                    self.counters.add("alias-mismatch")
                    logger.warning(
                        "%s: store assigned alias %d, relay %d", self.name, alias, command.alias
                    )
            elif isinstance(command, cmd.ReleaseAlias):
                await self.store.remove_alias(self.kid, str(command.contact.bare))
            elif isinstance(command, cmd.PersistContactListVersion):
                await self.store.set_roster_version(self.kid, str(command.version))
            elif isinstance(command, cmd.RecordDeduplicationId):
                following = work[0] if work else None
                if (
                    isinstance(following, cmd.UpstreamSendMessage)
                    and following.device_message_id == command.message_id
                ):
                    continue  # remembered with its queue entry, in the same transaction
                await self.store.remember_device_message(
                    self.kid,
                    str(command.message_id).encode(),
                    expires_at=now + DEFAULT_DEDUPLICATION_LIFETIME,
                )
            elif isinstance(command, cmd.ForgetDeduplicationId):
                # Released only once the device has acknowledged the report (docs/service.md).
                self.counters.add("deduplication-id-kept")
            elif isinstance(command, cmd.UpstreamSendMessage):
                work[0:0] = await self._send_message(command, now)
            else:
                work[0:0] = await self._upstream(command, now)

    async def _upstream(self, command: cmd.UpstreamCommand, now: float) -> list[cmd.Command]:
        upstream = self.upstream
        if upstream is None:
            self.counters.add("upstream-missing")
            return []
        try:
            events = await upstream.use(
                lambda client: XmppUpstream(client).execute(command, trio.current_time())
            )
        except XmppError as exc:
            self.counters.add("upstream-refused")
            logger.warning(
                "%s: upstream refused %s: %s", self.name, type(command).__name__, type(exc).__name__
            )
            if isinstance(command, cmd.UpstreamSendMessage):
                events = [
                    ev.StanzaDropped(
                        command.message_id, ev.StanzaDropReason.REFUSED, 0, ET.Element("message")
                    )
                ]
            else:
                return []
        self.counters.add(f"upstream-{type(command).__name__}")
        followers: list[cmd.Command] = []
        for event in events:
            followers += self.relay.upstream_event(event, now)
        return followers

    async def _send_to_device(self, command: cmd.SendToDevice) -> None:
        message = command.message
        if isinstance(message, wire.IncomingMessage):
            # Committed first, sent from the queue: a crash after this line loses nothing.
            await self._enqueue(cmd.EnqueueForDevice(message))
            self._draining = True
            await self._top_up()
            return
        link = self.link
        operation_id: int | None = None
        if link is not None:
            try:
                operation_id = link.listener.send_operation(link.connection_id, message)
            except SessionMisuse:
                self.counters.add("link-gone")  # replaced; its SessionClosed is on its way
        if operation_id is None:
            if type(message) in _QUEUE_KINDS:
                await self._enqueue(
                    cmd.EnqueueForDevice(message, coalesce_key=_coalesce_key(message))
                )
            else:
                self.counters.add(f"not-sent-{type(message).__name__}")
            return
        self._in_flight[operation_id] = _InFlight(message, None, None)
        self.counters.add(f"to-device-{type(message).__name__}")

    async def _enqueue(self, command: cmd.EnqueueForDevice) -> None:
        message = command.message
        kind = _QUEUE_KINDS.get(type(message), QueueKind.REPORT)
        payload = wire.encode(message)
        now = self.clock()
        coalesce_key = command.coalesce_key or _coalesce_key(message)
        stanza_key = self._stanza_key if isinstance(message, wire.IncomingMessage) else None
        if stanza_key is not None:
            message_id = stanza_key.encode()  # DUPLICATE while a redelivered copy is queued
        elif isinstance(message, wire.IncomingMessage):
            message_id = f"message {message.id}".encode()
        elif coalesce_key is not None and not coalesce_key.startswith("presence "):
            message_id = coalesce_key.encode()
        else:
            message_id = f"{kind.value} {secrets.token_hex(8)}".encode()
        if coalesce_key is not None and coalesce_key.startswith("presence "):
            result = await self.store.put_presence(
                self.kid,
                coalesce_key.removeprefix("presence "),
                message_id,
                payload,
                now=now,
                expires_at=command.expires_at,
            )
        else:
            result = await self.store.enqueue_to_device(
                self.kid, message_id, kind, payload, now=now, expires_at=command.expires_at
            )
        if isinstance(message, wire.IncomingMessage):
            await self.store.put_blob(
                next_incoming_blob(self.kid), str(message.id + 1).encode(), now=now
            )
        if stanza_key is not None and result is EnqueueResult.QUEUED:
            # Recorded only once committed to the queue, so a crash in between repeats, never
            # loses; a stanza seen before (the server redelivering what it was not sure we had,
            # after a crash) is taken back out of the queue.
            fresh = await self.store.remember_stanza_id(
                str(self.relay.account), stanza_key, expires_at=now + DEFAULT_DEDUPLICATION_LIFETIME
            )
            if not fresh:
                await self._remove_queued(lambda item: item.message_id == message_id, now)
                self.counters.add("inbound-duplicate")
                return
        self.counters.add(f"queued-{result.value}")
        if result is EnqueueResult.OVERFLOW:
            logger.warning("%s: queue full, %s dropped", self.name, kind.value)
            if isinstance(message, wire.IncomingMessage):  # its sender is told (RFC 2779 §5.4.1)
                await self._execute(self.relay.device_operation(QueueOverflowed(message.id), now))

    async def _top_up(self) -> None:
        """Send queued items, oldest first, while the device listens and the window allows."""
        link = self.link
        if link is None or not self._draining or not self.relay.delivering:
            return
        room = self.drain_window - len(self._seqs_in_flight)
        if room <= 0:
            return
        now = self.clock()
        items = await self.store.device_queue(
            self.kid, now=now, limit=self.drain_window + len(self._seqs_in_flight)
        )
        fresh = [item for item in items if item.seq not in self._seqs_in_flight][:room]
        if not fresh and not self._seqs_in_flight:
            self._draining = False
        for item in fresh:
            try:
                message = wire.decode_untrusted(item.payload)
            except wire.RemoteWireError:
                self.counters.add("queue-item-unreadable")
                await self.store.remove_from_device_queue(self.kid, [item.seq])
                continue
            try:
                operation_id = link.listener.send_operation(link.connection_id, message)
            except SessionMisuse:
                self.counters.add("link-gone")  # the queue keeps it for the next session
                return
            incoming_id = message.id if isinstance(message, wire.IncomingMessage) else None
            self._in_flight[operation_id] = _InFlight(
                message, item.seq, incoming_id, item.enqueued_at
            )
            self._seqs_in_flight.add(item.seq)
            self.counters.add(f"to-device-{type(message).__name__}")

    async def _drop_queued(self, message_id: int, now: float) -> None:
        def is_it(item: DeviceQueueItem) -> bool:
            try:
                queued = wire.decode_untrusted(item.payload)
            except wire.RemoteWireError:
                return False
            return isinstance(queued, wire.IncomingMessage) and queued.id == message_id

        await self._remove_queued(is_it, now)
        self.counters.add("queue-expired")

    async def _remove_queued(self, match: Callable[[DeviceQueueItem], bool], now: float) -> None:
        items = await self.store.device_queue(self.kid, now=now, limit=MAX_QUEUE_SCAN)
        seqs = [item.seq for item in items if match(item) and item.seq not in self._seqs_in_flight]
        if seqs:
            await self.store.remove_from_device_queue(self.kid, seqs)


def _coalesce_key(message: wire.Message) -> str | None:
    if isinstance(message, wire.PresenceNotification):
        return f"presence {message.contact}"
    if isinstance(message, wire.SubscriptionRequest):
        return f"subscription {message.sender}"
    return None


def _log_upstream(name: str, upstream: UpstreamSession, event: ev.UpstreamSessionEvent) -> None:
    """One log line for the upstream events an operator cares about (no bodies, no secrets)."""
    account = upstream.jid
    if isinstance(event, ev.SessionEstablished):
        logger.info(
            "%s: upstream %s established (stream management %s)",
            name,
            account,
            "on" if event.stream_management else "off",
        )
    elif isinstance(event, ev.SessionResumed):
        logger.info("%s: upstream %s resumed", name, account)
    elif isinstance(event, ev.ConnectionClosed):
        error = type(event.error).__name__ if event.error is not None else "clean"
        logger.info("%s: upstream %s connection closed (%s)", name, account, error)
    elif isinstance(event, ev.MessageReceived):
        logger.info("%s: message from %s", name, event.message.from_)
    elif isinstance(event, ev.ReceiptReceived):
        logger.info("%s: receipt from %s", name, event.from_)
