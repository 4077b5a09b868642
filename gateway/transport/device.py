"""Device-side trio drivers: run a :class:`~gateway.session.DeviceSession` over a stream or UDP.

These are what device_sim and the tests use; the session logic stays in the sans-IO core. Both
take a bounded inbox of operations to send and put session events into a bounded channel. As on
the gateway side, a packet whose handling raises anything (a bug: the session is meant to be
total) is dropped and counted as ``internal_error``, a timer run that raises as
``internal_error_timer``, and the loops go on; ``trio.Cancelled`` and ``KeyboardInterrupt``
are never caught.
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

import trio

from gateway import wire
from gateway.deadlines import DeadlineTimer
from gateway.session import (
    DeviceSession,
    DeviceStatistics,
    Event,
    PacketError,
    StreamDeframer,
    frame,
)
from gateway.transport._driver import PACKET_FAILED, TIMER_ERROR_BACKOFF, TIMER_FAILED
from gateway.transport._internal_errors import InternalErrors
from gateway.transport._stream import receive_packets

MAX_DATAGRAM = 2048  # larger than any record the gateway sends (1232)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceTransportStatistics:
    """A frozen snapshot: the driver's own drop counters and the device session's."""

    dropped: dict[str, int]
    core: DeviceStatistics


class DeviceDriver:
    """Shared plumbing: an outbox, the session's timer, events out."""

    def __init__(self, session: DeviceSession, *, event_queue: int = 1024) -> None:
        self.session = session
        self._timer = DeadlineTimer(session.next_deadline)
        self._event_send, self.events = trio.open_memory_channel[Event](event_queue)
        self.dropped: dict[str, int] = {}
        self._internal_errors = InternalErrors(self.dropped, logger)

    def send_operation(self, message: wire.Message) -> None:
        """Queue a wire message."""
        self.session.send_operation(message)
        self._timer.wake()

    def connect(self) -> None:
        """Start a full handshake."""
        self.session.connect(trio.current_time())
        self._timer.wake()

    def resume(self) -> None:
        """Resume with the last ticket."""
        self.session.resume(trio.current_time())
        self._timer.wake()

    def statistics(self) -> DeviceTransportStatistics:
        """A frozen snapshot of the counters."""
        return DeviceTransportStatistics(dict(self.dropped), self.session.statistics())

    def _count_drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _receive(self, packet: bytes) -> None:
        """Feed one packet to the session; the timer task then sends what it answered."""
        with self._internal_errors.contain(PACKET_FAILED):
            self.session.receive_datagram(packet, trio.current_time())
        self._timer.wake()

    async def _deliver(self, event: Event) -> None:
        try:
            await self._event_send.send(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._count_drop("event_after_close")  # the application stopped listening

    async def _run_timers(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Forever: send what the session has, hand over its events, sleep to its deadline."""
        while True:
            try:
                for datagram in self.session.datagrams_to_send(trio.current_time()):
                    await send(datagram)
                for event in self.session.events():
                    await self._deliver(event)
                await self._timer.wait()
                self.session.handle_timeout(trio.current_time())
            except Exception as exc:
                self._internal_errors.record(TIMER_FAILED, exc)
                await trio.sleep(TIMER_ERROR_BACKOFF)


async def run_device_over_stream(driver: DeviceDriver, stream: trio.abc.Stream) -> None:
    """Drive ``driver.session`` (in stream mode) over a byte stream until it closes.

    The stream is closed when this returns or is cancelled.
    """
    deframer = StreamDeframer()
    connection = trio.CancelScope()

    async def send(packet: bytes) -> None:
        try:
            await stream.send_all(frame(packet))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            driver._count_drop("stream_broken")
            connection.cancel()

    try:
        with connection:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(driver._run_timers, send)
                try:
                    while (packets := await receive_packets(stream, deframer)) is not None:
                        for packet in packets:
                            driver._receive(packet)
                except (PacketError, trio.BrokenResourceError):
                    driver._count_drop("stream_broken")
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def run_device_over_udp(
    driver: DeviceDriver, gateway: Hashable, *, family: int | None = None
) -> None:
    """Drive ``driver.session`` over a UDP socket connected to ``gateway`` (host, port)."""
    if not isinstance(gateway, tuple):
        raise TypeError("the gateway address must be a (host, port) tuple")
    if family is None:
        family = stdlib_socket.AF_INET6 if ":" in str(gateway[0]) else stdlib_socket.AF_INET
    sock = trio.socket.socket(family, stdlib_socket.SOCK_DGRAM)
    with sock:
        await sock.connect(gateway)

        async def send(datagram: bytes) -> None:
            try:
                await sock.send(datagram)
            except OSError:
                driver._count_drop("send_error")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(driver._run_timers, send)
            while True:
                try:
                    data = await sock.recv(MAX_DATAGRAM)
                except OSError:
                    driver._count_drop("receive_error")
                    continue
                driver._receive(data)
