"""Acknowledgements on streams (TCP): what the gateway made durable, told to a device over a
stream that itself never loses a byte (docs/protocol.md §3.2, §3.5).

The device keeps each operation until its record is acknowledged, which on a stream happens only
once the gateway's application released it; a connection that drops first leaves the operation
with the device, which sends it again in the resumed session (the application de-duplicates by
message id). The other way, the device's acks are what lets the gateway drop a queued message.
"""

from __future__ import annotations

import random

import trio
import trio.testing

from gateway import wire
from gateway.session import (
    ChannelConfig,
    DeviceSession,
    DeviceSessionEstablished,
    DeviceSessionResumed,
    Event,
    GatewayConfig,
    GatewaySessions,
    OperationAcknowledged,
    OperationReceived,
    SessionClosed,
    TicketKeyRing,
    TicketReceived,
    WireCodec,
)
from gateway.session.channel import DEFAULT_MAX_ACKNOWLEDGEMENT_HOLD
from gateway.session.reliability import DEFAULT_ACK_DELAY
from gateway.transport import (
    DeviceDriver,
    DeviceSessionEvent,
    StreamGateway,
    TcpListener,
    run_device_over_stream,
)
from tests.session.helpers import initiator_factory, responder_factory


def _core() -> GatewaySessions:
    return GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        config=GatewayConfig(channel=ChannelConfig(stream=True), hold_acknowledgements=True),
        rng=random.Random(3),
    )


def _device() -> DeviceDriver:
    session = DeviceSession(
        handshake_factory=initiator_factory(),
        codec=WireCodec(),
        config=ChannelConfig(stream=True),
        rng=random.Random(4),
    )
    return DeviceDriver(session)


def _message(message_id: int) -> wire.SendMessage:
    return wire.SendMessage(
        id=message_id, to="person@example.org", content=wire.MimeContent("text/plain", b"hi")
    )


def _connect(
    nursery: trio.Nursery, gateway: StreamGateway, device: DeviceDriver
) -> trio.CancelScope:
    """One stream connection between them; cancel the scope to drop it (both ends close)."""
    gateway_side, device_side = trio.testing.memory_stream_pair()
    scope = trio.CancelScope()

    async def run_device() -> None:
        with scope:
            await run_device_over_stream(device, device_side)

    nursery.start_soon(gateway.serve_stream, gateway_side)
    nursery.start_soon(run_device)
    return scope


WAIT = 120.0  # seconds (virtual under the autojump clock) any one expected event may take


async def _next(
    events: trio.MemoryReceiveChannel[DeviceSessionEvent], kind: type[Event]
) -> DeviceSessionEvent:
    with trio.fail_after(WAIT):
        async for item in events:
            if isinstance(item.event, kind):
                return item
    raise AssertionError(f"no {kind.__name__}")


async def _device_event(device: DeviceDriver, kind: type[Event]) -> Event:
    with trio.fail_after(WAIT):
        async for event in device.events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"no {kind.__name__}")


def _unacknowledged(device: DeviceDriver) -> list[wire.Message]:
    channel = device.session.channel
    assert channel is not None
    return channel.take_unacknowledged()


def _records_received(device: DeviceDriver) -> int:
    channel = device.session.statistics().channel
    assert channel is not None
    return channel.records_received


async def _established(gateway: StreamGateway, device: DeviceDriver) -> bytes:
    device.connect()
    established = await _next(gateway.events, DeviceSessionEstablished)
    await _device_event(device, TicketReceived)
    return established.connection_id


async def test_stream_send_message_is_acknowledged_only_after_release(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gateway = StreamGateway(_core())
    device = _device()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        _connect(nursery, gateway, device)
        connection_id = await _established(gateway, device)
        device.send_operation(_message(5))
        received = await _next(gateway.events, OperationReceived)
        assert isinstance(received.event, OperationReceived)
        await trio.sleep(10)  # well within the 30 s hold: no ack, no retransmission either
        assert _unacknowledged(device) == [_message(5)]
        assert gateway.statistics().core.acknowledgements_held == 1
        statistics = device.session.statistics().channel
        assert statistics is not None
        assert statistics.retransmissions == 0
        released_at = trio.current_time()
        gateway.release_operation(connection_id, received.event.receipt)
        acknowledged = await _device_event(device, OperationAcknowledged)
        assert acknowledged == OperationAcknowledged(0, _message(5))
        assert trio.current_time() == released_at  # released acks are not delayed
        assert _unacknowledged(device) == []
        assert gateway.statistics().core.acknowledgements_held == 0
        nursery.cancel_scope.cancel()


async def test_stream_acks_are_coalesced(autojump_clock: trio.testing.MockClock) -> None:
    gateway = StreamGateway(_core())
    device = _device()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        _connect(nursery, gateway, device)
        connection_id = await _established(gateway, device)
        before = _records_received(device)
        receipts = []
        for i in range(5):  # five records: each waits for the previous one's arrival
            device.send_operation(_message(i))
            item = await _next(gateway.events, OperationReceived)
            assert isinstance(item.event, OperationReceived)
            receipts.append(item.event.receipt)
        assert _records_received(device) == before  # nothing released: nothing acknowledged
        for receipt in receipts:  # one commit made all five durable
            gateway.release_operation(connection_id, receipt)
        acknowledged = [await _device_event(device, OperationAcknowledged) for _ in range(5)]
        assert acknowledged == [OperationAcknowledged(i, _message(i)) for i in range(5)]
        await trio.sleep(1)
        assert _records_received(device) == before + 1  # one ack for the five records
        nursery.cancel_scope.cancel()


async def test_stream_operation_survives_a_dropped_connection_and_is_delivered_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gateway = StreamGateway(_core())
    device = _device()
    delivered: dict[int, wire.Message] = {}  # the application's de-duplication by message id
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        first = _connect(nursery, gateway, device)
        await _established(gateway, device)
        device.send_operation(_message(9))
        received = await _next(gateway.events, OperationReceived)
        assert isinstance(received.event, OperationReceived)
        assert isinstance(received.event.message, wire.SendMessage)
        delivered.setdefault(received.event.message.id, received.event.message)
        first.cancel()  # the connection drops before the application made it durable
        await trio.sleep(1)
        assert device.session.channel is not None
        assert device.session.channel.take_unacknowledged() == [_message(9)]
        _connect(nursery, gateway, device)
        device.resume()
        closed = await _next(gateway.events, SessionClosed)
        assert closed.event == SessionClosed("replaced by a newer session")
        resumed = await _next(gateway.events, DeviceSessionResumed)
        again = await _next(gateway.events, OperationReceived)
        assert isinstance(again.event, OperationReceived)
        assert again.connection_id == resumed.connection_id
        assert again.event.message == _message(9)  # sent again in the new session
        assert isinstance(again.event.message, wire.SendMessage)
        delivered.setdefault(again.event.message.id, again.event.message)
        gateway.release_operation(resumed.connection_id, again.event.receipt)
        acknowledged = await _device_event(device, OperationAcknowledged)
        assert acknowledged == OperationAcknowledged(0, _message(9))
        assert _unacknowledged(device) == []
        assert delivered == {9: _message(9)}
        nursery.cancel_scope.cancel()


async def test_stream_hold_expiry_makes_the_device_resume_and_resend(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # No retransmission on a stream draws the REJECT that ends a held session: the gateway
    # sends it when the hold expires, and the device resumes over the same connection.
    gateway = StreamGateway(_core())
    device = _device()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        _connect(nursery, gateway, device)
        await _established(gateway, device)
        sent_at = trio.current_time()
        device.send_operation(_message(3))
        await _next(gateway.events, OperationReceived)  # never released
        resumed = await _next(gateway.events, DeviceSessionResumed)
        assert trio.current_time() == sent_at + DEFAULT_MAX_ACKNOWLEDGEMENT_HOLD
        again = await _next(gateway.events, OperationReceived)
        assert isinstance(again.event, OperationReceived)
        assert again.event.message == _message(3)
        gateway.release_operation(resumed.connection_id, again.event.receipt)
        acknowledged = await _device_event(device, OperationAcknowledged)
        assert acknowledged == OperationAcknowledged(0, _message(3))
        assert gateway.statistics().core.acknowledgements_overdue == 1
        nursery.cancel_scope.cancel()


async def test_stream_device_acknowledges_what_the_gateway_sends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The gateway removes a queued message when its record is acknowledged
    # (gateway/service/binding.py, ``OperationAcknowledged``): on TCP too.
    gateway = StreamGateway(_core())
    device = _device()
    incoming = wire.IncomingMessage(
        id=1,
        sender="person@example.org",
        timestamp=1_700_000_000,
        content=wire.MimeContent("text/plain", b"hello"),
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        _connect(nursery, gateway, device)
        connection_id = await _established(gateway, device)
        sent_at = trio.current_time()
        operation_id = gateway.send_operation(connection_id, incoming)
        received = await _device_event(device, OperationReceived)
        assert isinstance(received, OperationReceived)
        assert received.message == incoming
        acknowledged = await _next(gateway.events, OperationAcknowledged)
        assert acknowledged.event == OperationAcknowledged(operation_id, incoming)
        assert trio.current_time() == sent_at + DEFAULT_ACK_DELAY
        nursery.cancel_scope.cancel()


async def test_tcp_listener_carries_the_ack_over_loopback() -> None:
    listener = TcpListener(_core(), host="127.0.0.1", port=0)
    device = _device()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(listener.serve)
        with trio.fail_after(30):
            stream = await trio.open_tcp_stream("127.0.0.1", address[1])
            nursery.start_soon(run_device_over_stream, device, stream)
            device.connect()
            established = await _next(listener.events, DeviceSessionEstablished)
            await _device_event(device, TicketReceived)
            device.send_operation(_message(7))
            received = await _next(listener.events, OperationReceived)
            assert isinstance(received.event, OperationReceived)
            assert _unacknowledged(device) == [_message(7)]  # held until released
            listener.release_operation(established.connection_id, received.event.receipt)
            acknowledged = await _device_event(device, OperationAcknowledged)
        assert acknowledged == OperationAcknowledged(0, _message(7))
        assert _unacknowledged(device) == []
        await listener.aclose()
        nursery.cancel_scope.cancel()
