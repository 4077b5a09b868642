"""The trio adapters over real loopback sockets and over trio.testing.memory_stream_pair."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable

import pytest
import trio
import trio.testing

from gateway import wire
from gateway.session import (
    ChannelConfig,
    DeviceSession,
    DeviceSessionEstablished,
    GatewayConfig,
    GatewaySessions,
    OperationReceived,
    SessionClosed,
    TicketKeyRing,
    WireCodec,
    frame,
)
from gateway.session.gateway_config import DEFAULT_HANDSHAKE_TIMEOUT
from gateway.transport import (
    CoreDriver,
    DeviceDriver,
    DeviceSessionEvent,
    StreamGateway,
    TcpListener,
    UdpEndpoint,
    run_device_over_stream,
    run_device_over_udp,
)
from tests.session.helpers import initiator_factory, responder_factory

OPERATIONS = 50


def _core(*, stream: bool) -> GatewaySessions:
    return GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        config=GatewayConfig(channel=ChannelConfig(stream=stream)),
        rng=random.Random(3),
    )


def _device(*, stream: bool) -> DeviceDriver:
    session = DeviceSession(
        handshake_factory=initiator_factory(),
        codec=WireCodec(),
        config=ChannelConfig(stream=stream),
        rng=random.Random(4),
    )
    return DeviceDriver(session)


async def _exchange(
    gateway_events: trio.MemoryReceiveChannel[DeviceSessionEvent],
    send_to_device: Callable[[bytes, wire.Message], int],
    device: DeviceDriver,
) -> None:
    """Handshake, then OPERATIONS pings each way; asserts exactly once and in order."""
    device.connect()
    connection_id = b""
    async for item in gateway_events:
        if isinstance(item.event, DeviceSessionEstablished):
            connection_id = item.connection_id
            break
    received_by_gateway: list[int] = []
    received_by_device: list[int] = []
    for i in range(OPERATIONS):
        device.send_operation(wire.Ping(id=i))
        send_to_device(connection_id, wire.Ping(id=1000 + i))
    async for item in gateway_events:
        if isinstance(item.event, OperationReceived):
            assert isinstance(item.event.message, wire.Ping)
            received_by_gateway.append(item.event.message.id)
            if len(received_by_gateway) == OPERATIONS:
                break
    async for event in device.events:
        if isinstance(event, OperationReceived):
            assert isinstance(event.message, wire.Ping)
            received_by_device.append(event.message.id)
            if len(received_by_device) == OPERATIONS:
                break
    assert received_by_gateway == list(range(OPERATIONS))
    assert received_by_device == [1000 + i for i in range(OPERATIONS)]


async def test_tcp_session_over_memory_stream_pair() -> None:
    gateway = StreamGateway(_core(stream=True))
    device = _device(stream=True)
    gateway_side, device_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        nursery.start_soon(gateway.serve_stream, gateway_side)
        nursery.start_soon(run_device_over_stream, device, device_side)
        with trio.fail_after(30):
            await _exchange(gateway.events, gateway.send_operation, device)
        stats = gateway.statistics()
        assert stats.core.sessions == 1
        assert stats.core.retransmissions == 0
        # Graceful shutdown: every device is told, and the event channel ends.
        await gateway.driver.aclose()
        with trio.fail_after(10):
            async for event in device.events:
                if isinstance(event, SessionClosed):
                    assert event.reason == "closed by the gateway"
                    break
        assert [type(item.event) async for item in gateway.events] == [SessionClosed]
        assert gateway.statistics().core.sessions == 0
        nursery.cancel_scope.cancel()


async def test_tcp_framing_error_ends_only_that_connection() -> None:
    gateway = StreamGateway(_core(stream=True))
    gateway_side, attacker = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        nursery.start_soon(gateway.serve_stream, gateway_side)
        await attacker.send_all(b"\x00\x00garbage")  # zero length prefix: framing lost
        with trio.fail_after(5):
            assert await attacker.receive_some() == b""  # the gateway closed it
        assert gateway.statistics().dropped == {"bad_framing": 1}
        device = _device(stream=True)
        gateway_side2, device_side2 = trio.testing.memory_stream_pair()
        nursery.start_soon(gateway.serve_stream, gateway_side2)
        nursery.start_soon(run_device_over_stream, device, device_side2)
        with trio.fail_after(30):
            await _exchange(gateway.events, gateway.send_operation, device)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_tcp_listener_over_loopback(host: str) -> None:
    listener = TcpListener(_core(stream=True), host=host, port=0)
    device = _device(stream=True)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(listener.serve)
        stream = await trio.open_tcp_stream(host, address[1])
        nursery.start_soon(run_device_over_stream, device, stream)
        with trio.fail_after(30):
            await _exchange(listener.events, listener.send_operation, device)
        await listener.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_udp_endpoint_over_loopback(host: str) -> None:
    endpoint = UdpEndpoint(_core(stream=False), host=host, port=0)
    device = _device(stream=False)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(endpoint.serve)
        nursery.start_soon(run_device_over_udp, device, (host, address[1]))
        with trio.fail_after(30):
            await _exchange(endpoint.events, endpoint.send_operation, device)
        # Garbage and oversized datagrams are counted and dropped; the loop goes on.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        attacker = trio.socket.socket(family, socket.SOCK_DGRAM)
        with attacker:
            await attacker.sendto(b"\x00", (host, address[1]))
            await attacker.sendto(b"\x81" + bytes(4000), (host, address[1]))
            await attacker.sendto(b"\x7f\x01", (host, address[1]))
            # Real sockets: the kernel delivers on its own schedule, so wait (bounded) for the
            # counters rather than assume; this polls a condition, it asserts no duration.
            with trio.fail_after(10):
                while True:
                    stats = endpoint.statistics()
                    dropped = stats.core.dropped["malformed"] + stats.dropped.get("too_large", 0)
                    if dropped >= 3:
                        break
                    await trio.sleep(0.01)
        assert stats.dropped.get("too_large") == 1
        assert stats.core.dropped["malformed"] == 2
        device.send_operation(wire.Ping(id=77))
        with trio.fail_after(10):
            async for item in endpoint.events:
                if isinstance(item.event, OperationReceived):
                    assert item.event.message == wire.Ping(id=77)
                    break
        await endpoint.aclose()
        nursery.cancel_scope.cancel()


async def test_listeners_bind_loopback_unless_configured() -> None:
    listener = TcpListener(_core(stream=True))
    endpoint = UdpEndpoint(_core(stream=False))
    async with trio.open_nursery() as nursery:
        tcp_address = await nursery.start(listener.serve)
        udp_address = await nursery.start(endpoint.serve)
        assert tcp_address[0] == "127.0.0.1"
        assert udp_address[0] == "127.0.0.1"
        await listener.aclose()
        await endpoint.aclose()
        nursery.cancel_scope.cancel()


async def test_timers_after_shutdown_do_not_crash_the_driver(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # aclose() ends the event channel; a timer that fires before the adapter's tasks are
    # cancelled (here: a half-open handshake timing out) must not take the adapter down.
    sent: list[bytes] = []
    driver = CoreDriver(_core(stream=False), lambda data, _address: sent.append(data))
    device = DeviceSession(handshake_factory=initiator_factory(), codec=WireCodec())
    device.connect(0.0)
    (initial,) = device.datagrams_to_send(0.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.run_timers)
        await driver.receive(initial, ("192.0.2.7", 5683))
        assert driver.core.statistics().handshakes_in_progress == 1
        await driver.aclose()
        await trio.sleep(DEFAULT_HANDSHAKE_TIMEOUT + 1)
        assert driver.core.statistics().handshakes_in_progress == 0
        assert driver.statistics().dropped == {"event_after_close": 1}
        nursery.cancel_scope.cancel()


async def test_tcp_full_write_queue_closes_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Stream records are never retransmitted: dropping one would leave a gap that stalls the
    # session for good, so an overflowing connection is closed and the device learns of it.
    gateway = StreamGateway(_core(stream=True), connection_queue=2)
    device = _device(stream=True)
    gateway_side, device_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        nursery.start_soon(gateway.serve_stream, gateway_side)
        device_done = trio.Event()

        async def run_device() -> None:
            await run_device_over_stream(device, device_side)
            device_done.set()

        nursery.start_soon(run_device)
        device.connect()
        async for item in gateway.events:
            if isinstance(item.event, DeviceSessionEstablished):
                connection_id = item.connection_id
                break
        big = wire.TextContent("y" * 60000)  # several 16 KiB records each
        for i in range(4):
            gateway.send_operation(
                connection_id, wire.IncomingMessage(id=i, sender="a@b.c", timestamp=0, content=big)
            )
        with trio.fail_after(10):
            await device_done.wait()
        assert gateway.statistics().dropped.get("connection_queue_full") == 1
        nursery.cancel_scope.cancel()


async def test_tcp_bad_packets_are_counted_and_the_connection_goes_on() -> None:
    gateway = StreamGateway(_core(stream=True))
    device = _device(stream=True)
    gateway_side, device_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        nursery.start_soon(gateway.serve_stream, gateway_side)
        # Well framed but meaningless packets on the very connection the device then uses.
        for packet in (b"\x00", b"\x7f\x01", b"\x81\x00\x00\x01" + bytes(20)):
            await device_side.send_all(frame(packet))
        nursery.start_soon(run_device_over_stream, device, device_side)
        with trio.fail_after(30):
            await _exchange(gateway.events, gateway.send_operation, device)
        dropped = gateway.statistics().core.dropped
        assert dropped["malformed"] == 2
        assert dropped["unknown_connection"] == 1
        assert gateway.statistics().dropped == {}
        nursery.cancel_scope.cancel()
