"""Whole sessions over the seeded fake network, under the autojump clock."""

from __future__ import annotations

import trio
import trio.lowlevel

from gateway import wire
from gateway.session import (
    OperationReceived,
    SessionEstablished,
    TicketReceived,
)
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import (
    DEVICE_ADDRESS,
    DEVICE_KID,
    GATEWAY_ADDRESS,
    DeviceNode,
    Recorder,
    make_device,
    make_gateway,
    run_gateway,
)


async def test_handshake_and_one_operation_each_way(autojump_clock: trio.testing.MockClock) -> None:
    gateway = make_gateway()
    gateway_events = Recorder()
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=7, link=LinkModel(delay=0.1))
        nursery.start_soon(run_gateway, gateway, net, GATEWAY_ADDRESS, gateway_events)
        node = DeviceNode(make_device(), net, DEVICE_ADDRESS, GATEWAY_ADDRESS)
        nursery.start_soon(node.run)
        await trio.lowlevel.checkpoint()
        node.device.connect(trio.current_time())
        node.poke()
        await trio.sleep(1)
        established = gateway_events.of_type(SessionEstablished)
        assert len(established) == 1
        assert established[0].peer_identity == DEVICE_KID
        assert node.recorder.of_type(SessionEstablished)
        assert node.recorder.of_type(TicketReceived)
        node.device.send_operation(wire.Ping(id=5))
        node.poke()
        (connection_id,) = gateway.sessions()
        gateway.send_operation(connection_id, wire.Ping(id=6))
        await trio.sleep(1)
        assert gateway_events.pings() == [5]
        assert node.recorder.pings() == [6]
        assert isinstance(gateway_events.of_type(OperationReceived)[0], OperationReceived)
        nursery.cancel_scope.cancel()
