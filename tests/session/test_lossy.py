"""Exactly-once, in-order delivery over a hostile link (30% loss, 10% duplication, reordering)."""

from __future__ import annotations

import trio
import trio.lowlevel

from gateway import wire
from gateway.session import DeviceSessionEstablished
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import (
    GATEWAY_ADDRESS,
    Recorder,
    make_gateway,
    start_gateway_and_device,
    until,
)

OPERATIONS = 1000


async def test_thousand_operations_each_way_exactly_once_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gateway = make_gateway()
    gateway_events = Recorder()
    link = LinkModel(loss=0.3, duplicate=0.1, delay=0.2, jitter=0.3)
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=1234, link=link)
        node = await start_gateway_and_device(nursery, net, gateway, gateway_events)
        node.device.connect(trio.current_time())
        node.poke()
        await until(lambda: bool(gateway_events.of_type(DeviceSessionEstablished)), step=0.5)
        (connection_id,) = gateway.sessions()
        for i in range(OPERATIONS):
            node.device.send_operation(wire.Ping(id=i))
            gateway.send_operation(connection_id, wire.Ping(id=i))
            node.poke()
            net.notify(GATEWAY_ADDRESS)
            await trio.sleep(0.05)
        await until(
            lambda: (
                not (
                    len(gateway_events.pings()) < OPERATIONS
                    or len(node.recorder.pings()) < OPERATIONS
                )
            ),
            step=1,
        )
        nursery.cancel_scope.cancel()
    assert gateway_events.pings() == list(range(OPERATIONS))
    assert node.recorder.pings() == list(range(OPERATIONS))
    assert net.counters.dropped > 0
    assert net.counters.duplicated > 0
    stats = gateway.statistics()
    assert stats.retransmissions > 0
    assert stats.dropped["replayed"] > 0  # the duplicates were recognised, not delivered
