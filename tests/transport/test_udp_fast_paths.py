"""What the UDP endpoint and the driver no longer do per datagram, and what they still guarantee.

Sends go straight to the socket, and only a full socket buffer puts datagrams in the sender's
queue, after which they leave in order and later ones wait behind them (gateway/transport/udp.py).
The receive loop reads what is there without a scheduler pass, yet lets other tasks run after
every ``RECEIVE_BATCH`` datagrams of a burst. A packet wakes the timer task only when it moves the
core's deadline earlier (gateway/transport/_driver.py); one that moves it earlier still gets its
timer on time.
"""

from __future__ import annotations

import itertools
import random
import socket
from collections.abc import Hashable
from typing import Any, cast

import trio
import trio.testing

from gateway.session import GatewayConfig, GatewaySessions, TicketKeyRing, WireCodec
from gateway.transport import CoreDriver, UdpEndpoint
from gateway.transport.udp import RECEIVE_BATCH
from tests.session.helpers import responder_factory


def _core() -> GatewaySessions:
    return GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        config=GatewayConfig(),
        rng=random.Random(3),
    )


class _FullOnce:
    """A socket whose buffer is full for the first ``full`` sends; it records direct sends."""

    def __init__(self, real: socket.socket, full: int) -> None:
        self.real = real
        self.full = full
        self.direct: list[bytes] = []

    def sendto(self, data: bytes, destination: Any) -> int:
        if self.full > 0:
            self.full -= 1
            raise BlockingIOError
        self.direct.append(data)
        return self.real.sendto(data, destination)

    def close(self) -> None:
        self.real.close()


async def test_a_full_socket_queues_datagrams_that_then_leave_in_order() -> None:
    endpoint = UdpEndpoint(_core(), host="127.0.0.1", port=0)
    peer = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with peer:
        await peer.bind(("127.0.0.1", 0))
        destination = peer.getsockname()
        async with trio.open_nursery() as nursery:
            await nursery.start(endpoint.serve)
            assert endpoint._raw is not None
            full = _FullOnce(endpoint._raw, full=1)
            endpoint._raw = cast(socket.socket, full)
            for index in range(5):
                endpoint._route(bytes([index]), destination)
            # The first found the buffer full; the rest queued behind it, none sent directly.
            assert full.direct == []
            received: list[bytes] = []
            with trio.fail_after(10):
                while len(received) < 5:
                    received.append(await peer.recv(64))
            assert received == [bytes([index]) for index in range(5)]
            # The sender task finishes its last send on its own schedule: poll, bounded.
            with trio.fail_after(10):
                while True:
                    if not endpoint._queued:
                        break
                    await trio.sleep(0.01)
            endpoint._route(b"\x09", destination)  # the queue is empty: straight to the socket
            assert full.direct == [b"\x09"]
            with trio.fail_after(10):
                assert await peer.recv(64) == b"\x09"
            nursery.cancel_scope.cancel()


async def test_a_burst_of_datagrams_lets_other_tasks_run() -> None:
    endpoint = UdpEndpoint(_core(), host="127.0.0.1", port=0)
    seen: list[int] = []  # datagrams received so far, each time the other task ran
    burst = 6 * RECEIVE_BATCH
    async with trio.open_nursery() as nursery:
        address = await nursery.start(endpoint.serve)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sender:
            # The whole burst waits in the socket before the loop reads any of it (no checkpoint).
            for _ in range(burst):
                sender.sendto(b"\x00", address)

            async def other() -> None:
                while True:
                    seen.append(endpoint.statistics().datagrams_received)
                    await trio.lowlevel.checkpoint()

            nursery.start_soon(other)
            with trio.fail_after(10):  # real sockets: poll the counter, bounded
                while True:
                    if endpoint.statistics().datagrams_received >= burst:
                        break
                    await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    # trio runs a batch's tasks in any order, so two of the loop's turns may fall between two of
    # the other task's; without the checkpoint the whole burst would.
    steps = [later - earlier for earlier, later in itertools.pairwise(seen)]
    assert max(steps) <= 2 * RECEIVE_BATCH


class _StubCore:
    """The core as the driver sees it: a deadline the test sets, timer runs counted."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.timer_runs: list[float] = []
        self.on_receive: float | None = None
        self.reads = 0  # next_deadline calls: the driver's check of each packet, the timer's sleeps

    def receive_datagram(self, data: bytes, address: Hashable, now: float) -> None:
        if self.on_receive is not None:
            self.deadline = now + self.on_receive

    def next_deadline(self) -> float | None:
        self.reads += 1
        return self.deadline

    def handle_timeout(self, now: float) -> None:
        self.timer_runs.append(now)
        if self.deadline is not None and self.deadline <= now:
            self.deadline = None

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Hashable]]:
        return []

    def events(self) -> list[Any]:
        return []


async def test_only_a_packet_that_brings_the_deadline_forward_wakes_the_timer_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    core = _StubCore()
    driver = CoreDriver(cast(GatewaySessions, core), lambda datagram, destination: None)
    core.deadline = 100.0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.run_timers)
        await trio.sleep(1.0)
        reads = core.reads
        for _ in range(10):  # packets that leave the deadline where it is, or move it later
            await driver.receive(b"x", ("192.0.2.1", 1))
            core.deadline += 1.0
        await trio.sleep(1.0)
        assert core.reads == reads + 10  # only the driver's own checks: the sleeper never woke
        assert core.timer_runs == []
        core.on_receive = 0.05  # the next packet sets a timer (an acknowledgement due soon)
        received_at = trio.current_time()
        await driver.receive(b"x", ("192.0.2.1", 1))
        await trio.sleep(1.0)
        assert core.timer_runs == [received_at + 0.05]
        nursery.cancel_scope.cancel()
