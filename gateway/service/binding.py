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
* Store commands go to the store. ``AcknowledgeDevice`` has no wire form yet (the session layer
  acknowledges records on receipt), so it is counted only.

Nothing a device or server does may end the binding: each loop catches and counts what escapes
one input (:class:`BindingCounters`), as the transports do.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import trio

from gateway import wire
from gateway.relay import DeviceDelivered, DeviceRelay, SleepState
from gateway.relay import LocalRelayError as RelayMisuse
from gateway.relay import commands as cmd
from gateway.relay.xmpp_upstream import XmppUpstream
from gateway.session import LocalSessionError as SessionMisuse
from gateway.session import (
    OperationAcknowledged,
    OperationReceived,
    OperationRejected,
)
from gateway.store import (
    DeviceQueueItem,
    EnqueueResult,
    GatewayStore,
    QueueKind,
    StoreError,
    StreamResumption,
)
from gateway.transport._internal_errors import InternalErrors
from gateway.xmpp import ClientConfig, Jid, XmppError
from gateway.xmpp import events as ev
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
    "stored_resumption",
]

DEFAULT_DRAIN_WINDOW = 16  # queued records in flight to one device: paced, yet a night drains fast
DEFAULT_DEDUPLICATION_LIFETIME = 7 * 86_400.0  # a device message id is remembered this long
MAX_QUEUE_SCAN = 10_000  # queue items read to find one by id (expiry, duplicates): rare work
MAX_TIMER_SLEEP = 60.0  # seconds: the relay's deadlines are on the wall clock, re-read this often
# Inbound acknowledgements between two writes of the stream's resumption state during a flood
# (a quiet channel writes at once): one commit per batch, and the server's queue stays short.
RESUMPTION_PERSIST_BATCH = 32

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


def next_incoming_blob(kid: bytes) -> str:
    """The named blob holding the next IncomingMessage id of the device with ``kid``."""
    return f"relay/{kid.hex()}/next-incoming-id"


class OperationSink(Protocol):
    """What a device listener offers here: queue an operation, get its operation id."""

    def send_operation(self, connection_id: bytes, message: wire.Message) -> int:
        """Queue ``message`` to the session ``connection_id``."""
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
    ) -> None:
        self.kid = kid
        self.name = f"device 0x{kid.hex()}"
        self.relay = relay
        self.store = store
        self.upstream = upstream
        self.clock = clock
        self.drain_window = drain_window
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
        self._timer_wake = trio.Event()
        self._cancel = trio.CancelScope()
        self.stopped = trio.Event()
        self.upstream_up = trio.Event()  # set once the relay has seen its upstream session up

    # -- lifetime ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """The binding's tasks (upstream events, timers) until :meth:`stop`."""
        try:
            with self._cancel:
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

    async def device_event(self, link: DeviceLink, event: object) -> None:
        """One session event of the device's current session."""
        async with self._lock:
            if self.link != link:
                self.counters.add("event-from-old-session")
                return
            await self._guarded(functools.partial(self._on_device_event, event))
        self._timer_wake.set()  # a SendMessage or Sleep may have set a nearer deadline

    async def _on_device_event(self, event: object) -> None:
        now = self.clock()
        if isinstance(event, OperationReceived):
            self.counters.add(f"from-device-{type(event.message).__name__}")
            logger.info("%s: %s from the device", self.name, type(event.message).__name__)
            await self._execute(self.relay.device_operation(event.message, now))
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
        if flight.incoming_id is not None:
            self.counters.add("delivered-to-device")
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
                await self.store.remember_device_message(
                    self.kid,
                    str(command.message_id).encode(),
                    expires_at=now + DEFAULT_DEDUPLICATION_LIFETIME,
                )
            elif isinstance(command, cmd.ForgetDeduplicationId):
                self.counters.add("deduplication-id-kept")  # the store has no forget yet
            else:
                work[0:0] = await self._upstream(command, now)

    async def _upstream(self, command: cmd.UpstreamCommand, now: float) -> list[cmd.Command]:
        upstream = self.upstream
        if upstream is None:
            self.counters.add("upstream-missing")
            return []
        try:
            events = await upstream.use(lambda client: XmppUpstream(client).execute(command, now))
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
        if link is None:
            if type(message) in _QUEUE_KINDS:
                await self._enqueue(
                    cmd.EnqueueForDevice(message, coalesce_key=_coalesce_key(message))
                )
            else:
                self.counters.add(f"not-sent-{type(message).__name__}")
            return
        operation_id = link.listener.send_operation(link.connection_id, message)
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

    async def _top_up(self) -> None:
        """Send queued items, oldest first, while the device listens and the window allows."""
        link = self.link
        if link is None or not self._draining or self.relay.state is not SleepState.AWAKE:
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
            operation_id = link.listener.send_operation(link.connection_id, message)
            incoming_id = message.id if isinstance(message, wire.IncomingMessage) else None
            self._in_flight[operation_id] = _InFlight(message, item.seq, incoming_id)
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
