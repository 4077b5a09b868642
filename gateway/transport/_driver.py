"""The part every gateway adapter shares: feed the sans-IO core, run its timers, route output.

A :class:`CoreDriver` owns one :class:`~gateway.session.GatewaySessions`, on trio's clock.
Adapters call :meth:`CoreDriver.receive` for each datagram or deframed packet, and run
:meth:`CoreDriver.run_timers` in a task; :meth:`CoreDriver.send_operation` queues an operation
and wakes that task; :meth:`CoreDriver.release_operation` tells the core an operation is durable
and wakes that task, which sends the acknowledgement that became due (one for every release made
before it ran). After every input the driver compares the core's next deadline with the one the
timer task sleeps toward (:class:`~gateway.deadlines.DeadlineTimer`) and makes it re-read only
when the new one is earlier, so a timer set by a received packet (the acknowledgement due
``ack_delay`` later) fires on time, and a packet that moves no deadline earlier costs the timer
task no wake-up (a later deadline needs none: the sleeper wakes at the old one, finds nothing due
and reads the new one). Outgoing datagrams go to the adapter's ``route`` callback; events go to a
bounded channel that the application reads (a full channel makes the receive loop wait:
backpressure, not loss); while the channel has room they are handed over without a checkpoint.

A packet whose handling raises anything but the core's own drop (a bug: the core is meant to be
total) is dropped and counted as ``internal_error``, a timer run that raises as
``internal_error_timer``; both loops go on (STYLE.md rule 8). :class:`DriverFacade` is what each
adapter (UDP endpoint, stream gateway, TCP listener) offers the application over its driver.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

import trio

from gateway import wire
from gateway.deadlines import DeadlineTimer
from gateway.session import Event, GatewaySessions, GatewayStatistics
from gateway.transport._internal_errors import InternalErrors

DEFAULT_EVENT_QUEUE = 1024  # events buffered for the application before receive loops wait
PACKET_FAILED = "internal_error"  # drop reason: handling one packet raised
TIMER_FAILED = "internal_error_timer"  # a run of the core's timers raised
SEND_FAILED = "internal_error_send"  # handing one datagram to the socket raised (not OSError)
CONNECTION_FAILED = "internal_error_connection"  # a stream connection's reader raised
# After a timer run raised, the next waits this long: a timer that keeps failing then costs ten
# runs a second, not a core spinning on a deadline that stays due.
TIMER_ERROR_BACKOFF = 0.1

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceSessionEvent:
    """An event of one device session, as delivered to the application."""

    connection_id: bytes
    event: Event


@dataclass(frozen=True)
class TransportStatistics:
    """A frozen snapshot: the adapter's own counters and the session core's.

    ``dropped`` counts by reason what the adapter dropped itself, including ``internal_error``
    (packets whose handling raised), ``internal_error_timer`` (timer runs that raised),
    ``internal_error_send`` (datagrams the socket call refused other than with an OSError) and,
    on streams, ``internal_error_connection`` (connections ended by a raise in their reader).
    """

    datagrams_received: int
    datagrams_sent: int
    send_errors: int
    dropped: dict[str, int]
    core: GatewayStatistics


class CoreDriver:
    """Runs a gateway session core on trio's clock."""

    def __init__(
        self,
        core: GatewaySessions,
        route: Callable[[bytes, Hashable], None],
        *,
        event_queue: int = DEFAULT_EVENT_QUEUE,
    ) -> None:
        self.core = core
        self._route = route
        self._timer = DeadlineTimer(self._deadline_for_timer)
        self._armed: float | None = None  # the deadline the timer task last read
        self._event_send, self.events = trio.open_memory_channel[DeviceSessionEvent](event_queue)
        self._pending_events: deque[DeviceSessionEvent] = deque()
        self._delivering = trio.StrictFIFOLock()  # one task hands events over at a time
        self.datagrams_received = 0
        self.datagrams_sent = 0
        self.send_errors = 0
        self.dropped: dict[str, int] = {}
        self._internal_errors = InternalErrors(self.dropped, logger)
        # Awaited by flush before it sends: the application commits what the datagrams depend
        # on (the service, its ticket key ring before a NewTicket sealed with it goes out).
        # While it runs, nothing is sent from any task.
        self.send_gate: Callable[[], Awaitable[None]] | None = None
        self._gated = False

    def _deadline_for_timer(self) -> float | None:
        """The core's next deadline, remembered as the one the timer task now sleeps toward."""
        self._armed = self.core.next_deadline()
        return self._armed

    def _deadline_may_have_moved(self) -> None:
        """Make the timer task re-read the deadline if the core's is now earlier than its own."""
        deadline = self.core.next_deadline()
        if deadline is not None and (self._armed is None or deadline < self._armed):
            self._timer.reschedule()

    def count_drop(self, reason: str) -> None:
        """Count a datagram the adapter dropped before the core saw it."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def record_internal_error(self, reason: str, exc: Exception) -> None:
        """Count and log an exception an adapter's loop contained (see ``_internal_errors``)."""
        self._internal_errors.record(reason, exc)

    async def receive(self, data: bytes, address: Hashable) -> None:
        """Feed one datagram or stream packet to the core, then flush. Never raises Exception."""
        self.datagrams_received += 1
        with self._internal_errors.contain(PACKET_FAILED):
            try:
                self.core.receive_datagram(data, address, trio.current_time())
            finally:
                self._deadline_may_have_moved()  # the packet may have set one (an ack due soon)
            await self.flush()

    def send_operation(self, connection_id: bytes, message: wire.Message) -> int:
        """Queue an operation to a device and wake the timer task to send it."""
        operation_id = self.core.send_operation(connection_id, message)
        self._timer.wake()
        return operation_id

    def release_operation(self, connection_id: bytes, receipt: int) -> None:
        """The operation received with ``receipt`` is durable: the timer task sends the ack.

        The ack leaves at once (at this virtual instant), from the timer task's next flush, so
        every release made before that task runs shares one ack instead of costing one each.
        """
        self.core.release(connection_id, receipt, trio.current_time())
        self._timer.wake()

    def _send_datagrams(self) -> None:
        if self._gated:
            return  # the flush waiting on the gate sends them once it opens
        for datagram, destination in self.core.datagrams_to_send(trio.current_time()):
            self.datagrams_sent += 1
            self._route(datagram, destination)

    async def flush(self) -> None:
        """Send what the core has (once :attr:`send_gate` allows), deliver its events."""
        if self.send_gate is not None and not self._gated:
            self._gated = True
            try:
                await self.send_gate()
            finally:
                self._gated = False
        self._send_datagrams()
        # Cancel-safe: an event leaves the pending queue only once the channel took it, so a
        # task cancelled while waiting here (a connection closing) loses nothing; the next
        # flush, from any task, delivers the rest in order.
        self._pending_events.extend(
            DeviceSessionEvent(connection_id, event) for connection_id, event in self.core.events()
        )
        if not self._pending_events:
            return
        if not self._delivering.locked():
            # Nobody waits on a full channel: hand over what fits now, in order, without a
            # checkpoint (the receive and timer loops make their own).
            while self._pending_events:
                try:
                    self._event_send.send_nowait(self._pending_events[0])
                except trio.WouldBlock:
                    break
                except trio.ClosedResourceError:
                    self.count_drop("event_after_close")
                self._pending_events.popleft()
            if not self._pending_events:
                return
        async with self._delivering:
            while self._pending_events:
                try:
                    await self._event_send.send(self._pending_events[0])
                except trio.ClosedResourceError:
                    # aclose() ended the event channel while a receive or timer task still ran
                    # (shutdown is in progress): the application stopped listening, so drop it.
                    self.count_drop("event_after_close")
                self._pending_events.popleft()

    async def run_timers(self) -> None:
        """Forever: sleep until the core's next deadline (or a wake-up), then run its timers."""
        while True:
            await self._timer.wait()
            try:
                self.core.handle_timeout(trio.current_time())
                await self.flush()
            except Exception as exc:
                self._internal_errors.record(TIMER_FAILED, exc)
                await trio.sleep(TIMER_ERROR_BACKOFF)

    def statistics(self) -> TransportStatistics:
        """A frozen snapshot of the counters."""
        return TransportStatistics(
            datagrams_received=self.datagrams_received,
            datagrams_sent=self.datagrams_sent,
            send_errors=self.send_errors,
            dropped=dict(self.dropped),
            core=self.core.statistics(),
        )

    async def aclose(self) -> None:
        """Tell every session goodbye (best effort) and close the event channel."""
        now = trio.current_time()
        for connection_id in list(self.core.sessions()):
            self.core.close_session(connection_id, now)
        with trio.move_on_after(1.0):  # a reader that stopped reading must not block shutdown
            await self.flush()
        await self._event_send.aclose()


class DriverFacade:
    """What a gateway adapter offers the application; the adapter sets :attr:`driver`."""

    driver: CoreDriver

    @property
    def events(self) -> trio.MemoryReceiveChannel[DeviceSessionEvent]:
        """Session events for the application."""
        return self.driver.events

    def send_operation(self, connection_id: bytes, message: wire.Message) -> int:
        """Queue an operation to a device."""
        return self.driver.send_operation(connection_id, message)

    def release_operation(self, connection_id: bytes, receipt: int) -> None:
        """An operation received from a device is durable (see ``OperationReceived.receipt``)."""
        self.driver.release_operation(connection_id, receipt)

    def statistics(self) -> TransportStatistics:
        """A frozen snapshot of the counters."""
        return self.driver.statistics()
