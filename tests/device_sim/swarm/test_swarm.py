"""The swarm against an in-process gateway (real session core and relay) over the fake network.

Virtual time (autojump clock) and seeded links, so every figure of the summary is exact.
"""

from __future__ import annotations

import random

import pytest
import trio
import trio._core._run
import trio.testing

from device_sim.client.runner import DatagramSocket, DatagramSockets
from device_sim.radio import Bernoulli, LinkPreset, preset
from device_sim.swarm.driver import Swarm, SwarmConfig
from device_sim.swarm.ledger import Summary
from device_sim.swarm.plan import Mix, OpKind, SleepPlan
from tests.device_sim.swarm.fakes import FakeSockets
from tests.device_sim.swarm.inprocess import InProcessGateway, provisionings
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import GATEWAY_ADDRESS

PEOPLE = ("alice@people.example", "bob@people.example")


async def run_swarm(
    *,
    count: int,
    link: LinkPreset,
    duration: float = 60.0,
    seed: int = 1,
    mix: Mix | None = None,
    sleep: SleepPlan | None = None,
) -> tuple[Summary, InProcessGateway, Swarm]:
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=seed, link=LinkModel(delay=0.0))
        gateway = InProcessGateway(count, people=PEOPLE, seed=seed)
        nursery.start_soon(gateway.run, net)

        def sockets_for(index: int) -> FakeSockets:
            host = f"10.{index // 250}.{index % 250}.1"
            return FakeSockets(net, GATEWAY_ADDRESS, host=host)

        config = SwarmConfig(
            duration=duration,
            link=link,
            seed=seed,
            mix=mix or Mix(per_minute=6.0),
            people=PEOPLE,
            sleep=sleep,
            drain=120.0,
        )
        swarm = Swarm(provisionings(count), sockets_for, config)
        summary = await swarm.run()
        nursery.cancel_scope.cancel()
    return summary, gateway, swarm


async def test_lossless_swarm_delivers_every_message_exactly_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    summary, gateway, swarm = await run_swarm(count=12, link=preset("gprs").lossless())
    total = summary.total
    chat = summary.by_kind[OpKind.CHAT.value]
    person = summary.by_kind[OpKind.PERSON.value]
    presence = summary.by_kind[OpKind.PRESENCE.value]
    assert total.planned == len(swarm.ops) > 50
    assert total.sent == total.planned
    assert total.refused == 0
    assert chat.sent > 0
    assert person.sent > 0
    assert presence.sent > 0
    assert (chat.delivered, chat.lost, chat.duplicated) == (chat.sent, 0, 0)
    assert (person.delivered, person.lost, person.duplicated) == (person.sent, 0, 0)
    assert total.delivered == chat.sent + person.sent
    assert (chat.accepted, person.accepted) == (chat.sent, person.sent)  # MessageAccepted each
    assert swarm.ledger.stray_arrivals == 0
    # Each person got each of its messages once.
    bodies = [body.split(" ")[0] for _, body in gateway.person_inbox]
    assert len(bodies) == len(set(bodies)) == person.sent
    assert summary.totals.connected == summary.totals.handshakes == 12
    assert total.latency_p50_ms is not None
    assert total.latency_p99_ms is not None
    assert total.latency_p50_ms <= total.latency_p99_ms
    assert summary.link_bytes_per_op is not None
    assert summary.payload_bytes_per_op is not None
    assert summary.link_bytes_per_op > summary.payload_bytes_per_op
    for cost in summary.profiles.values():
        assert cost.cpu_ms_per_op > 0
        assert cost.total_mj_per_op > cost.cpu_mj_per_op


async def test_the_same_seed_gives_the_same_summary(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trio shuffles tasks that are ready together; seeding that shuffle (as
    tests/session/test_liveness.py does) leaves the swarm seed as the only source of variation."""
    summaries = []
    for seed in (9, 9, 10):
        monkeypatch.setattr(trio._core._run, "_r", random.Random(1))
        summary, _, _ = await run_swarm(count=6, link=preset("gprs"), duration=30.0, seed=seed)
        summaries.append(summary)
    first, second, other = summaries
    assert first.to_json() == second.to_json()
    assert first.to_json() != other.to_json()


async def test_lossy_link_repairs_loss_without_duplicates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lossy = preset("gprs").with_loss(Bernoulli(0.15))
    summary, _, swarm = await run_swarm(count=8, link=lossy, duration=60.0, seed=3)
    total = summary.total
    observable = total.sent - summary.by_kind[OpKind.PRESENCE.value].sent
    assert total.duplicated == 0
    assert total.delivered + total.lost == observable
    assert total.lost == swarm.ledger.outstanding()
    lost_on_air = sum(
        d.runner.link.statistics().uplink.lost + d.runner.link.statistics().downlink.lost
        for d in swarm.devices
        if d.runner.link is not None
    )
    assert lost_on_air > 0
    assert total.delivered == observable  # retransmission repaired every loss within the drain


async def test_sleeping_devices_get_their_messages_on_wake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    summary, _, _ = await run_swarm(
        count=6,
        link=preset("nb-iot").lossless(),
        duration=90.0,
        sleep=SleepPlan(period=40.0, awake=15.0),
        seed=4,
    )
    total = summary.total
    assert summary.totals.resumptions > 0
    assert summary.totals.asleep_seconds > 0
    assert (total.lost, total.duplicated, total.refused) == (0, 0, 0)
    assert total.delivered == total.sent - summary.by_kind[OpKind.PRESENCE.value].sent


class NoSockets:
    """A device whose socket cannot be opened (file descriptors exhausted)."""

    header_bytes = 28

    async def open(self) -> DatagramSocket:
        raise OSError(24, "Too many open files")


async def test_a_device_without_a_socket_sits_out_and_the_rest_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=2, link=LinkModel(delay=0.0))
        gateway = InProcessGateway(3, people=PEOPLE, seed=2)
        nursery.start_soon(gateway.run, net)

        def sockets_for(index: int) -> DatagramSockets:
            if index == 1:
                return NoSockets()
            return FakeSockets(net, GATEWAY_ADDRESS, host=f"10.0.{index}.1")

        config = SwarmConfig(
            duration=30.0,
            link=preset("lte").lossless(),
            seed=2,
            mix=Mix(chat=0, per_minute=6.0),
            people=PEOPLE,
        )
        swarm = Swarm(provisionings(3), sockets_for, config)
        summary = await swarm.run()
        nursery.cancel_scope.cancel()
    refused = sum(1 for op in swarm.ops if op.sender == 1)
    assert refused > 0
    assert swarm.connect_failures == 1
    assert summary.total.refused == refused
    assert summary.totals.connected == 2
    assert summary.total.lost == 0
