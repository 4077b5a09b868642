"""Device-side trio drivers: run a :class:`~gateway.session.DeviceSession` over a stream or UDP.

These are what device_sim and the tests use; the session logic stays in the sans-IO core. Both
take a bounded inbox of operations to send and put session events into a bounded channel.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import trio

from gateway.session import DeviceSession, Event, PacketError, StreamDeframer, frame

RECEIVE_CHUNK = 16384
MAX_DATAGRAM = 2048


class DeviceDriver:
    """Shared plumbing: an outbox, a wake-up, events out."""

    def __init__(self, session: DeviceSession, *, event_queue: int = 1024) -> None:
        self.session = session
        self._wake = trio.Event()
        self._event_send, self.events = trio.open_memory_channel[Event](event_queue)
        self.dropped: dict[str, int] = {}

    def send_operation(self, message: object) -> None:
        """Queue a wire message."""
        self.session.send_operation(message)
        self._wake.set()

    def connect(self) -> None:
        """Start a full handshake."""
        self.session.connect(trio.current_time())
        self._wake.set()

    def resume(self) -> None:
        """Resume with the last ticket."""
        self.session.resume(trio.current_time())
        self._wake.set()

    async def _emit_events(self) -> None:
        for event in self.session.events():
            await self._event_send.send(event)

    async def _timer_loop(self, send: Any) -> None:
        while True:
            for datagram in self.session.datagrams_to_send(trio.current_time()):
                await send(datagram)
            await self._emit_events()
            deadline = self.session.next_deadline()
            delay = math.inf if deadline is None else max(0.0, deadline - trio.current_time())
            with trio.move_on_after(delay):
                await self._wake.wait()
            self._wake = trio.Event()
            self.session.handle_timeout(trio.current_time())

    def _received(self) -> None:
        self._wake.set()


async def run_device_over_stream(driver: DeviceDriver, stream: trio.abc.Stream) -> None:
    """Drive ``driver.session`` (in stream mode) over a byte stream until it closes.

    The stream is closed when this returns or is cancelled.
    """
    deframer = StreamDeframer()

    async def send(packet: bytes) -> None:
        await stream.send_all(frame(packet))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(driver._timer_loop, send)
            try:
                while True:
                    data = await stream.receive_some(RECEIVE_CHUNK)
                    if not data:
                        break
                    for packet in deframer.feed_untrusted(data):
                        driver.session.receive_datagram(packet, trio.current_time())
                    driver._received()
            except (PacketError, trio.BrokenResourceError):
                driver.dropped["stream_broken"] = driver.dropped.get("stream_broken", 0) + 1
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def run_device_over_udp(
    driver: DeviceDriver, gateway: Hashable, *, family: int | None = None
) -> None:
    """Drive ``driver.session`` over a UDP socket connected to ``gateway`` (host, port)."""
    import socket as stdlib_socket

    assert isinstance(gateway, tuple)
    if family is None:
        family = stdlib_socket.AF_INET6 if ":" in str(gateway[0]) else stdlib_socket.AF_INET
    sock = trio.socket.socket(family, stdlib_socket.SOCK_DGRAM)
    with sock:
        await sock.connect(gateway)

        async def send(datagram: bytes) -> None:
            try:
                await sock.send(datagram)
            except OSError:
                driver.dropped["send_error"] = driver.dropped.get("send_error", 0) + 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(driver._timer_loop, send)
            while True:
                try:
                    data = await sock.recv(MAX_DATAGRAM)
                except OSError:
                    driver.dropped["receive_error"] = driver.dropped.get("receive_error", 0) + 1
                    continue
                driver.session.receive_datagram(data, trio.current_time())
                driver._received()
