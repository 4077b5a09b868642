"""Whole sessions over the seeded fake network, under the autojump clock."""

from __future__ import annotations

import trio
import trio.lowlevel

from gateway import wire
from gateway.session import (
    DeviceSessionEstablished,
    OperationReceived,
    TicketReceived,
)
from gateway.session.tickets import DEFAULT_TICKET_LIFETIME, RESUMPTION_SECRET_LENGTH
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import (
    DEVICE_KID,
    Recorder,
    make_gateway,
    start_gateway_and_device,
)


async def test_handshake_and_one_operation_each_way(autojump_clock: trio.testing.MockClock) -> None:
    gateway = make_gateway()
    gateway_events = Recorder()
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=7, link=LinkModel(delay=0.1))
        node = await start_gateway_and_device(nursery, net, gateway, gateway_events)
        node.device.connect(trio.current_time())
        node.poke()
        await trio.sleep(1)
        (connection_id,) = gateway.sessions()
        (established,) = gateway_events.of_type(DeviceSessionEstablished)
        assert established.peer_identity == DEVICE_KID
        assert established.connection_id == connection_id
        (device_established,) = node.recorder.of_type(DeviceSessionEstablished)
        assert device_established.connection_id == connection_id
        (ticket,) = node.recorder.of_type(TicketReceived)
        assert ticket.lifetime == DEFAULT_TICKET_LIFETIME
        assert len(ticket.resumption_secret) == RESUMPTION_SECRET_LENGTH
        node.device.send_operation(wire.Ping(id=5))
        node.poke()
        gateway.send_operation(connection_id, wire.Ping(id=6))
        await trio.sleep(1)
        assert [e.message for e in gateway_events.of_type(OperationReceived)] == [wire.Ping(id=5)]
        assert [e.message for e in node.recorder.of_type(OperationReceived)] == [wire.Ping(id=6)]
        nursery.cancel_scope.cancel()
