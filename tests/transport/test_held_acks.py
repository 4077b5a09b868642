"""``release_operation`` through the trio adapters: the acknowledgement leaves when the
application says the operation is durable (docs/protocol.md §3.5)."""

from __future__ import annotations

import random

import trio
import trio.testing

from gateway import wire
from gateway.session import (
    ChannelConfig,
    DeviceSession,
    DeviceSessionEstablished,
    Event,
    GatewayConfig,
    GatewaySessions,
    OperationAcknowledged,
    OperationReceived,
    TicketKeyRing,
    TicketReceived,
    WireCodec,
)
from gateway.transport import (
    CoreDriver,
    DeviceDriver,
    DeviceSessionEvent,
    StreamGateway,
    UdpEndpoint,
    run_device_over_stream,
    run_device_over_udp,
)
from tests.session.helpers import initiator_factory, responder_factory

DEVICE_ADDRESS = ("192.0.2.7", 40000)


def _core(*, stream: bool) -> GatewaySessions:
    return GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        config=GatewayConfig(channel=ChannelConfig(stream=stream), hold_acknowledgements=True),
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


async def _next(
    events: trio.MemoryReceiveChannel[DeviceSessionEvent], kind: type[Event]
) -> DeviceSessionEvent:
    async for item in events:
        if isinstance(item.event, kind):
            return item
    raise AssertionError(f"no {kind.__name__}")


async def _device_event(device: DeviceDriver, kind: type[Event]) -> Event:
    async for event in device.events:
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__}")


async def test_core_driver_sends_the_ack_when_released(
    autojump_clock: trio.testing.MockClock,
) -> None:
    device = _device(stream=False)
    driver = CoreDriver(_core(stream=False), lambda data, _address: device._receive(data))

    async def to_gateway(datagram: bytes) -> None:
        await driver.receive(datagram, DEVICE_ADDRESS)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.run_timers)
        nursery.start_soon(device._run_timers, to_gateway)
        device.connect()
        established = await _next(driver.events, DeviceSessionEstablished)
        await _device_event(device, TicketReceived)
        sent_at = trio.current_time()
        device.send_operation(wire.Ping(id=1))
        received = await _next(driver.events, OperationReceived)
        assert trio.current_time() == sent_at  # the in-process link has no delay
        assert isinstance(received.event, OperationReceived)
        await trio.sleep(10)  # the device retransmits, the gateway does not acknowledge
        assert driver.statistics().core.acknowledgements_held == 1
        channel = device.session.statistics().channel
        assert channel is not None
        assert channel.retransmissions > 0
        released_at = trio.current_time()
        driver.release_operation(established.connection_id, received.event.receipt)
        acknowledged = await _device_event(device, OperationAcknowledged)
        assert acknowledged == OperationAcknowledged(0, wire.Ping(id=1))
        assert trio.current_time() == released_at
        assert driver.statistics().core.acknowledgements_held == 0
        nursery.cancel_scope.cancel()


async def test_udp_endpoint_release_operation_over_loopback() -> None:
    endpoint = UdpEndpoint(_core(stream=False), port=0)
    device = _device(stream=False)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(endpoint.serve)
        nursery.start_soon(run_device_over_udp, device, ("127.0.0.1", address[1]))
        with trio.fail_after(30):
            device.connect()
            established = await _next(endpoint.events, DeviceSessionEstablished)
            device.send_operation(wire.Ping(id=1))
            received = await _next(endpoint.events, OperationReceived)
            assert isinstance(received.event, OperationReceived)
            assert endpoint.statistics().core.acknowledgements_held == 1
            endpoint.release_operation(established.connection_id, received.event.receipt)
            acknowledged = await _device_event(device, OperationAcknowledged)
        assert acknowledged == OperationAcknowledged(0, wire.Ping(id=1))
        assert endpoint.statistics().core.acknowledgements_held == 0
        await endpoint.aclose()
        nursery.cancel_scope.cancel()


async def test_stream_gateway_takes_releases_and_never_stalls() -> None:
    # A stream is acknowledged too (docs/protocol.md §3.2): twenty operations, released as they
    # arrive, are all delivered and all acknowledged to the device, and none stays held.
    gateway = StreamGateway(_core(stream=True))
    device = _device(stream=True)
    gateway_side, device_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        nursery.start_soon(gateway.serve_stream, gateway_side)
        nursery.start_soon(run_device_over_stream, device, device_side)
        with trio.fail_after(30):
            device.connect()
            established = await _next(gateway.events, DeviceSessionEstablished)
            for i in range(20):
                device.send_operation(wire.Ping(id=i))
            receipts = []
            for _ in range(20):
                item = await _next(gateway.events, OperationReceived)
                assert isinstance(item.event, OperationReceived)
                receipts.append(item.event.receipt)
                gateway.release_operation(established.connection_id, item.event.receipt)
            acknowledged = [await _device_event(device, OperationAcknowledged) for _ in range(20)]
        assert acknowledged == [OperationAcknowledged(i, wire.Ping(id=i)) for i in range(20)]
        assert len(set(receipts)) == 20
        assert gateway.statistics().core.acknowledgements_held == 0
        nursery.cancel_scope.cancel()
