"""Sessions under mobility, restarts, big operations, garbage and load (fake network, autojump)."""

from __future__ import annotations

import random
from collections.abc import Hashable

import pytest
import trio
import trio.lowlevel

from gateway import wire
from gateway.session import (
    ChannelConfig,
    DeviceSession,
    DeviceSessionEstablished,
    DeviceSessionResumed,
    GatewayConfig,
    GatewaySessions,
    HandshakeKind,
    OperationReceived,
    PathMigrated,
    PathValidated,
    TicketKeyRing,
    WireCodec,
)
from gateway.session.mobility import AMPLIFICATION_FACTOR
from gateway.session.tickets import MAX_RESUME_PACKET
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import (
    DEVICE_ADDRESS,
    DEVICE_KID,
    GATEWAY_ADDRESS,
    DeviceNode,
    Recorder,
    initiator_factory,
    make_device,
    make_gateway,
    run_gateway,
    start_gateway_and_device,
    until,
)


class AmplificationAudit:
    """Checks the 3x bound for every gateway datagram to a not-yet-validated address."""

    def __init__(self, gateway_ref: list[GatewaySessions]) -> None:
        self.received: dict[Hashable, int] = {}
        self.sent: dict[Hashable, int] = {}
        self.checked = 0
        self._gateway_ref = gateway_ref

    def on_receive(self, data: bytes, source: Hashable) -> None:
        self.received[source] = self.received.get(source, 0) + len(data)

    def on_send(self, data: bytes, destination: Hashable) -> None:
        self.sent[destination] = self.sent.get(destination, 0) + len(data)
        gateway = self._gateway_ref[0]
        if not gateway.address_validated(destination):
            self.checked += 1
            received = self.received.get(destination, 0)
            assert self.sent[destination] <= AMPLIFICATION_FACTOR * received


async def start_audited(
    nursery: trio.Nursery,
    net: FakeNetwork,
    gateway: GatewaySessions,
    events: Recorder,
    audit: AmplificationAudit,
) -> DeviceNode:
    """Start ``gateway`` with every datagram audited against 3x, and one device node."""
    return await start_gateway_and_device(
        nursery, net, gateway, events, on_receive=audit.on_receive, on_send=audit.on_send
    )


async def connect(node: DeviceNode, recorder: Recorder) -> bytes:
    node.device.connect(trio.current_time())
    node.poke()
    with trio.fail_after(600):
        await until(lambda: bool(recorder.of_type(DeviceSessionEstablished)), step=0.1)
        await until(lambda: node.device.ticket is not None, step=0.1)
    return recorder.by_session[-1][0]


NAT_OPERATIONS = 200  # each way; the window must be busy when the NAT rebinds
NAT_NEW_ADDRESS = ("203.0.113.9", 61000)  # the port the NAT gives the device half-way


async def nat_rebinding_scenario(network_seed: int, operations: int = NAT_OPERATIONS) -> int:
    """A device and the gateway trade operations; the NAT rebinds the device half-way.

    Every operation must arrive exactly once and in order, the session must migrate once with
    no new handshake, and every datagram to the unvalidated address is audited against 3x.
    Returns how many datagrams the audit checked.
    """
    gateway = make_gateway()
    audit = AmplificationAudit([gateway])
    events = Recorder()
    link = LinkModel(loss=0.1, duplicate=0.05, delay=0.1, jitter=0.1)
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=network_seed, link=link)
        node = await start_audited(nursery, net, gateway, events, audit)
        connection_id = await connect(node, events)
        text = wire.TextContent("x" * 300)
        for i in range(operations):
            if i == operations // 2:
                node.rebind(NAT_NEW_ADDRESS)
            node.device.send_operation(wire.Ping(id=i))
            for _ in range(3):
                gateway.send_operation(
                    connection_id,
                    wire.IncomingMessage(id=i, sender="a@b.c", timestamp=0, content=text),
                )
            node.poke()
            net.notify(GATEWAY_ADDRESS)
            await trio.sleep(0.1)

        def done() -> bool:
            incoming = node.recorder.of_type(OperationReceived)
            return len(events.pings()) >= operations and len(incoming) >= 3 * operations

        await until(done, step=1, limit=600)
        nursery.cancel_scope.cancel()
    assert events.pings() == list(range(operations))
    incoming = node.recorder.incoming_ids()
    assert incoming == [i for i in range(operations) for _ in range(3)]
    migrated = events.of_type(PathMigrated)
    assert [(m.old_address, m.new_address) for m in migrated] == [(DEVICE_ADDRESS, NAT_NEW_ADDRESS)]
    assert events.of_type(PathValidated)
    assert len(events.of_type(DeviceSessionEstablished)) == 1
    return audit.checked


async def test_nat_rebinding_mid_stream_continues_and_respects_3x(
    autojump_clock: trio.testing.MockClock,
) -> None:
    assert await nat_rebinding_scenario(network_seed=99) > 0
    # Whether the limit also held data back here depends on how many bytes the new address sent
    # before the migration, which varies with trio's scheduling; test_liveness.py checks that
    # deterministically (test_lost_path_challenge_is_repeated_on_a_timer_for_an_idle_device).


async def test_replayed_record_from_another_address_does_not_migrate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gateway = make_gateway()
    events = Recorder()
    captured: list[bytes] = []
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=5, link=LinkModel(delay=0.1))
        node = await start_gateway_and_device(nursery, net, gateway, events)
        net.observer = lambda s, d, data: captured.append(data) if s == DEVICE_ADDRESS else None
        await connect(node, events)
        node.device.send_operation(wire.Ping(id=1))
        node.poke()
        await trio.sleep(1)
        record = next(d for d in reversed(captured) if d[0] & 0x80 and not d[0] & 0x20)
        before = gateway.statistics().dropped["replayed"]
        net.inject(("192.0.2.66", 4444), GATEWAY_ADDRESS, record)
        await trio.sleep(1)
        assert gateway.statistics().dropped["replayed"] == before + 1
        assert not events.of_type(PathMigrated)
        assert gateway.session_address(events.by_session[0][0]) == DEVICE_ADDRESS
        assert events.pings() == [1]
        nursery.cancel_scope.cancel()


async def test_resumption_after_gateway_restart(autojump_clock: trio.testing.MockClock) -> None:
    ring = TicketKeyRing()
    first = make_gateway(ring)
    first_events = Recorder()
    sent_by_device: list[tuple[float, bytes]] = []
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=11, link=LinkModel(delay=0.1))
        net.observer = lambda s, d, data: (
            sent_by_device.append((trio.current_time(), data)) if d == GATEWAY_ADDRESS else None
        )
        with trio.CancelScope() as first_scope:
            nursery.start_soon(run_gateway, first, net, GATEWAY_ADDRESS, first_events)
            node = DeviceNode(make_device(), net, DEVICE_ADDRESS, GATEWAY_ADDRESS)
            nursery.start_soon(node.run)
            await trio.lowlevel.checkpoint()
            await connect(node, first_events)
            node.device.send_operation(wire.Ping(id=1))
            node.poke()
            await trio.sleep(2)
            assert first_events.pings() == [1]
        # The gateway process restarts: all session state is gone, only the ticket ring persists
        # (as the snapshot a gateway keeps in a 0600 file).
        first_scope.cancel()
        await trio.sleep(1)
        ring = TicketKeyRing.from_bytes(ring.to_bytes(), trio.current_time())
        second = make_gateway(ring, seed=5)
        second_events = Recorder()
        nursery.start_soon(run_gateway, second, net, GATEWAY_ADDRESS, second_events)
        await trio.lowlevel.checkpoint()
        node.device.send_operation(wire.Ping(id=2))  # old connection id: unknown after restart
        node.poke()
        await until(lambda: bool(node.recorder.of_type(DeviceSessionResumed)), step=0.05)
        resumes = [(t, d) for t, d in sent_by_device if d[0] >> 4 == HandshakeKind.RESUME]
        assert len(resumes) == 1
        resume_time, resume_packet = resumes[0]
        assert len(resume_packet) <= MAX_RESUME_PACKET
        resumed_at = next(
            t for t, e in node.recorder.stamped if isinstance(e, DeviceSessionResumed)
        )
        assert resumed_at - resume_time == pytest.approx(0.2)  # one round trip of 2 x 0.1 s
        await until(lambda: second_events.pings() == [2], step=0.1)
        (resumed,) = second_events.of_type(DeviceSessionResumed)
        assert resumed.peer_identity == DEVICE_KID
        assert not second_events.of_type(DeviceSessionEstablished)  # no handshake needed
        # Replays of the RESUME, from anywhere, create nothing.
        for address in (("192.0.2.1", 9), DEVICE_ADDRESS):
            net.inject(address, GATEWAY_ADDRESS, resume_packet)
        await trio.sleep(1)
        assert len(second.sessions()) == 1
        assert second.statistics().dropped["replayed"] == 2
        assert second.statistics().resumptions == 1
        # A new ticket arrived in the resumed session, and the old one stays spent.
        await until(lambda: node.device.ticket is not None, step=0.1)
        third = make_gateway(TicketKeyRing.from_bytes(ring.to_bytes(), trio.current_time()), seed=6)
        third.receive_datagram(resume_packet, ("192.0.2.1", 9), trio.current_time())
        assert third.statistics().dropped["ticket_rejected"] == 1
        assert third.sessions() == {}
        nursery.cancel_scope.cancel()


async def test_200_kb_operation_fragmented_and_reassembled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gateway = make_gateway()
    events = Recorder()
    payload = random.Random(3).randbytes(200 * 1024)
    big_up = wire.SendMessage(
        id=1, to="alice@example.com", content=wire.MimeContent("image/jpeg", payload)
    )
    big_down = wire.IncomingMessage(
        id=9,
        sender="alice@example.com",
        timestamp=0,
        content=wire.MimeContent("image/jpeg", payload[::-1]),
    )
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=21, link=LinkModel(loss=0.1, delay=0.1, jitter=0.05))
        node = await start_gateway_and_device(nursery, net, gateway, events)
        connection_id = await connect(node, events)
        node.device.send_operation(big_up)
        node.device.send_operation(wire.Ping(id=3))
        gateway.send_operation(connection_id, big_down)
        node.poke()
        net.notify(GATEWAY_ADDRESS)
        await until(
            lambda: (
                not (
                    len(events.of_type(OperationReceived)) < 2
                    or not node.recorder.of_type(OperationReceived)
                )
            ),
            step=1,
        )
        nursery.cancel_scope.cancel()
    assert [e.message for e in events.of_type(OperationReceived)] == [big_up, wire.Ping(id=3)]
    assert [e.message for e in node.recorder.of_type(OperationReceived)] == [big_down]
    assert net.counters.sent > 2 * len(payload) // 1232


async def test_garbage_datagrams_are_counted_and_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gateway = make_gateway()
    events = Recorder()
    rng = random.Random(8)
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=3, link=LinkModel(delay=0.1, corrupt=0.05))
        node = await start_gateway_and_device(nursery, net, gateway, events)
        connection_id = await connect(node, events)
        garbage = [rng.randbytes(rng.randrange(0, 100)) for _ in range(300)]
        garbage += [
            b"\x81" + connection_id + rng.randbytes(20) for _ in range(50)
        ]  # forged records
        for i, datagram in enumerate(garbage):
            net.inject(("198.51.100.200", 1000 + i % 7), GATEWAY_ADDRESS, datagram)
            if i % 10 == 0:
                node.device.send_operation(wire.Ping(id=i // 10))
                node.poke()
            await trio.sleep(0.01)
        await until(lambda: len(events.pings()) >= 35, step=1)
        nursery.cancel_scope.cancel()
    assert events.pings() == list(range(35))
    dropped = gateway.statistics().dropped
    assert dropped["authentication_failed"] > 0
    assert dropped["malformed"] > 0
    assert dropped["unknown_connection"] > 0
    assert sum(dropped.values()) >= len(garbage)


async def test_stateless_retry_under_handshake_load(autojump_clock: trio.testing.MockClock) -> None:
    gateway = make_gateway(config=GatewayConfig(retry_threshold=0))
    events = Recorder()
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=4, link=LinkModel(delay=0.1))
        node = await start_gateway_and_device(nursery, net, gateway, events)
        await connect(node, events)
        stats = gateway.statistics()
        assert stats.retries_sent == 1
        assert stats.dropped["cookie_required"] == 1
        assert gateway.address_validated(DEVICE_ADDRESS)
        nursery.cancel_scope.cancel()


def test_initial_flood_is_rate_limited_and_keeps_no_state() -> None:
    gateway = make_gateway(config=GatewayConfig(retry_threshold=0))
    device = DeviceSession(handshake_factory=initiator_factory(), codec=WireCodec())
    for i in range(100):
        device.state = device.state.__class__.IDLE
        device.connect(0.0)
        (initial,) = device.datagrams_to_send(0.0)
        gateway.receive_datagram(initial, ("192.0.2.1", 5), i * 0.001)
    stats = gateway.statistics()
    assert stats.handshakes_in_progress == 0  # the retry keeps no state
    assert stats.dropped["rate_limited"] > 0
    assert stats.retries_sent + stats.dropped["rate_limited"] == 100
    # the host's INITIAL burst, then RETRYs from the host's reply (REJECT) burst: never silence
    # while a spoofer may be the one spending the INITIAL budget
    assert stats.retries_sent <= 20


def test_keepalive_interval_floor() -> None:
    with pytest.raises(ValueError, match="15 s"):
        ChannelConfig(keepalive_interval=10.0)


async def test_keepalives_only_when_configured(autojump_clock: trio.testing.MockClock) -> None:
    gateway = make_gateway()
    events = Recorder()
    device_sends: list[float] = []
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=1, link=LinkModel(delay=0.1))
        net.observer = lambda s, d, data: (
            device_sends.append(trio.current_time()) if s == DEVICE_ADDRESS else None
        )
        nursery.start_soon(run_gateway, gateway, net, GATEWAY_ADDRESS, events)
        device = DeviceSession(
            handshake_factory=initiator_factory(),
            codec=WireCodec(),
            config=ChannelConfig(keepalive_interval=25.0),
            rng=random.Random(2),
        )
        node = DeviceNode(device, net, DEVICE_ADDRESS, GATEWAY_ADDRESS)
        nursery.start_soon(node.run)
        await trio.lowlevel.checkpoint()
        await connect(node, events)
        await trio.sleep(5)
        quiet_since = device_sends[-1]
        device_sends.clear()
        await trio.sleep(100)
        assert device_sends == [pytest.approx(quiet_since + 25.0 * k) for k in (1, 2, 3, 4)]
        nursery.cancel_scope.cancel()


async def test_amplification_bound_for_spoofed_sources(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Replayed INITIALs, RESUMEs and records from spoofed addresses never get more than 3x."""
    gateway = make_gateway()
    audit = AmplificationAudit([gateway])
    events = Recorder()
    captured: list[bytes] = []
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=12, link=LinkModel(delay=0.1))
        net.observer = lambda s, d, data: captured.append(data) if s == DEVICE_ADDRESS else None
        node = await start_audited(nursery, net, gateway, events, audit)
        await connect(node, events)
        node.device.send_operation(wire.Ping(id=1))
        node.poke()
        await trio.sleep(1)
        node.device.resume(trio.current_time())
        node.poke()
        await until(lambda: node.recorder.of_type(DeviceSessionResumed))
        for i, datagram in enumerate(captured):
            for port in range(3):
                net.inject(("192.0.2.50", 7000 + 10 * i + port), GATEWAY_ADDRESS, datagram)
            await trio.sleep(0.2)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert audit.checked >= len(captured)  # every spoofed source got answers, all within 3x
    spoofed = [a for a in audit.sent if a != DEVICE_ADDRESS]
    assert spoofed
    assert all(audit.sent[a] <= 3 * audit.received[a] for a in spoofed)
    # The resumption replaced the first session, and the spoofed copies created none.
    assert gateway.statistics().sessions == 1
