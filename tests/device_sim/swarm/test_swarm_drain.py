"""What a drain too short for the link leaves: messages in flight, reported as such, never lost.

The swarm against the in-process gateway over the seeded fake network on the autojump clock (as
test_swarm.py), with a slow link and no time to drain: the messages sent in the last seconds are
still on the air or at the gateway when the run ends.
"""

from __future__ import annotations

import trio
import trio.testing

from device_sim.radio import preset
from device_sim.swarm.cli import EXIT_IN_FLIGHT, EXIT_OK, exit_status
from device_sim.swarm.driver import Swarm, SwarmConfig
from device_sim.swarm.ledger import Summary
from device_sim.swarm.plan import Mix, OpKind
from tests.device_sim.swarm.fakes import FakeSockets
from tests.device_sim.swarm.inprocess import InProcessGateway, provisionings
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import GATEWAY_ADDRESS

PEOPLE = ("alice@people.example",)


async def _run(drain: float) -> tuple[Summary, Swarm]:
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=5, link=LinkModel(delay=0.0))
        gateway = InProcessGateway(6, people=PEOPLE, seed=5)
        nursery.start_soon(gateway.run, net)

        def sockets_for(index: int) -> FakeSockets:
            return FakeSockets(net, GATEWAY_ADDRESS, host=f"10.0.{index}.1")

        config = SwarmConfig(
            duration=30.0,
            link=preset("nb-iot").lossless(),
            seed=5,
            mix=Mix(presence=0, per_minute=20.0),
            people=PEOPLE,
            drain=drain,
        )
        swarm = Swarm(provisionings(6), sockets_for, config)
        summary = await swarm.run()
        nursery.cancel_scope.cancel()
    return summary, swarm


async def test_messages_in_flight_when_the_drain_ends_are_reported_in_flight_not_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    summary, swarm = await _run(drain=0.0)
    total = summary.total
    observable = total.sent - summary.by_kind[OpKind.PRESENCE.value].sent
    assert total.lost == 0
    assert summary.in_flight == swarm.ledger.outstanding() > 0
    assert total.delivered + total.queued + total.unacknowledged == observable
    assert len(summary.undelivered) == summary.in_flight
    assert {t.outcome for t in summary.undelivered} <= {"queued", "unacknowledged"}
    assert exit_status(summary) == EXIT_IN_FLIGHT
    # The same run with time to drain delivers every one of them.
    drained, _ = await _run(drain=120.0)
    assert drained.total.sent == total.sent
    assert (drained.total.delivered, drained.in_flight, drained.total.lost) == (observable, 0, 0)
    assert exit_status(drained) == EXIT_OK


async def test_operations_planned_before_the_end_are_sent_even_by_devices_connecting_late(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One handshake at a time on a slow link: when the duration ends some devices are still
    connecting; their planned operations are sent once they connect, never skipped unaccounted."""
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=6, link=LinkModel(delay=0.0))
        gateway = InProcessGateway(5, people=PEOPLE, seed=6)
        nursery.start_soon(gateway.run, net)

        def sockets_for(index: int) -> FakeSockets:
            return FakeSockets(net, GATEWAY_ADDRESS, host=f"10.0.{index}.1")

        config = SwarmConfig(
            duration=6.0,
            link=preset("nb-iot").lossless(),
            seed=6,
            mix=Mix(presence=0, per_minute=30.0),
            people=PEOPLE,
            drain=120.0,
            max_connecting=1,
        )
        swarm = Swarm(provisionings(5), sockets_for, config)
        summary = await swarm.run()
        connected_at = [d.runner for d in swarm.devices]
        nursery.cancel_scope.cancel()
    assert connected_at
    total = summary.total
    late = {op.sender for op in swarm.ops if op.at < config.duration}
    assert len(late) > 1
    assert total.planned == len(swarm.ops) > 0
    assert (total.sent, total.refused) == (total.planned, 0)
    assert (total.delivered, total.lost, summary.in_flight) == (total.sent, 0, 0)


async def test_operations_no_device_reached_before_the_end_are_counted_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Devices queued behind one slow handshake at a time, with a short connection timeout: the
    run ends before some even start; their operations are refused, never silently dropped."""
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=7, link=LinkModel(delay=0.0))
        gateway = InProcessGateway(8, people=PEOPLE, seed=7)
        nursery.start_soon(gateway.run, net)

        def sockets_for(index: int) -> FakeSockets:
            return FakeSockets(net, GATEWAY_ADDRESS, host=f"10.0.{index}.1")

        config = SwarmConfig(
            duration=3.0,
            link=preset("nb-iot").lossless(),
            seed=7,
            mix=Mix(presence=0, per_minute=30.0),
            people=PEOPLE,
            drain=5.0,
            max_connecting=1,
            connect_timeout=4.0,
        )
        swarm = Swarm(provisionings(8), sockets_for, config)
        summary = await swarm.run()
        nursery.cancel_scope.cancel()
    total = summary.total
    never_started = [
        d for d in swarm.devices if d.runner.budget is not None and not d.connected_once
    ]
    assert never_started
    assert total.refused > 0
    assert total.sent + total.refused == total.planned == len(swarm.ops)
