"""The part every gateway adapter shares: feed the sans-IO core, run its timers, route output.

A :class:`CoreDriver` owns one :class:`~gateway.session.GatewaySessions`. Adapters call
:meth:`CoreDriver.receive` for each datagram or deframed packet, and run
:meth:`CoreDriver.run_timers` in a task; :meth:`CoreDriver.send_operation` queues an operation
and wakes that task. Outgoing datagrams go to the adapter's ``route`` callback; events go to a
bounded channel that the application reads (a full channel makes the receive loop wait:
backpressure, not loss).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import trio

from gateway.session import Event, GatewaySessions, GatewayStatistics

DEFAULT_EVENT_QUEUE = 1024  # events buffered for the application before receive loops wait


@dataclass(frozen=True)
class SessionEvent:
    """An event of one device session, as delivered to the application."""

    connection_id: bytes
    event: Event


@dataclass(frozen=True)
class TransportStatistics:
    """A frozen snapshot: the adapter's own counters and the session core's."""

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
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.core = core
        self._route = route
        self._clock = clock
        self._wake = trio.Event()
        self._event_send, self.events = trio.open_memory_channel[SessionEvent](event_queue)
        self._pending_events: deque[SessionEvent] = deque()
        self._delivering = trio.StrictFIFOLock()  # one task hands events over at a time
        self.datagrams_received = 0
        self.datagrams_sent = 0
        self.send_errors = 0
        self.dropped: dict[str, int] = {}

    def count_drop(self, reason: str) -> None:
        """Count a datagram the adapter dropped before the core saw it."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    async def receive(self, data: bytes, address: Hashable) -> None:
        """Feed one datagram or stream packet to the core, then flush."""
        self.datagrams_received += 1
        self.core.receive_datagram(data, address, self._clock())
        await self.flush()

    def send_operation(self, connection_id: bytes, message: object) -> int:
        """Queue an operation to a device and wake the timer task to send it."""
        operation_id = self.core.send_operation(connection_id, message)
        self._wake.set()
        return operation_id

    async def flush(self) -> None:
        """Send what the core has, deliver its events."""
        for datagram, destination in self.core.datagrams_to_send(self._clock()):
            self.datagrams_sent += 1
            self._route(datagram, destination)
        # Cancel-safe: an event leaves the pending queue only once the channel took it, so a
        # task cancelled while waiting here (a connection closing) loses nothing; the next
        # flush, from any task, delivers the rest in order.
        self._pending_events.extend(
            SessionEvent(connection_id, event) for connection_id, event in self.core.events()
        )
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
            deadline = self.core.next_deadline()
            delay = math.inf if deadline is None else max(0.0, deadline - self._clock())
            with trio.move_on_after(delay):
                await self._wake.wait()
            self._wake = trio.Event()
            self.core.handle_timeout(self._clock())
            await self.flush()

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
        now = self._clock()
        for connection_id in list(self.core.sessions()):
            self.core.close_session(connection_id, now)
        with trio.move_on_after(1.0):  # a reader that stopped reading must not block shutdown
            await self.flush()
        await self._event_send.aclose()
