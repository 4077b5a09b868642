"""A small swarm against the real service (a private Prosody, the gateway in process) over UDP.

Each device is enrolled through a real login (device_sim.harness), runs as a
:class:`~device_sim.client.runner.DeviceRunner` on its own loopback address, and writes to the
other devices and to a person (slixmpp, answering receipts). Real time, bounded: 12 s of traffic
and at most 30 s of drain.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from device_sim.client.runner import UdpSockets
from device_sim.harness import (
    enroll,
    make_gateway_home,
    open_gateway_store,
    serving_gateway,
    upstream_ready,
)
from device_sim.radio import preset
from device_sim.swarm.driver import Swarm, SwarmConfig
from device_sim.swarm.ledger import Summary
from device_sim.swarm.plan import TOKEN_PREFIX, Mix, OpKind
from tests.conftest import MakePerson
from tests.support.person import PersonError
from tests.support.prosody import ProsodyServer

DEVICES = 5


async def test_small_swarm_through_the_running_service_delivers_each_message_once(
    tmp_path: Path, running_prosody: ProsodyServer, make_person: MakePerson
) -> None:
    config = make_gateway_home(tmp_path / "gw", running_prosody)
    person = await make_person()
    async with open_gateway_store(config) as (store, configuration):
        accounts = [running_prosody.create_user() for _ in range(DEVICES)]
        enrolled = [
            await enroll(store, configuration, account, kid=bytes([0x50 + n]))
            for n, account in enumerate(accounts)
        ]
        async with trio.open_nursery() as nursery:
            async with serving_gateway(nursery, store, configuration) as gateway:
                for device in enrolled:
                    await upstream_ready(gateway, device.kid)
                port = gateway.udp_port

                def sockets_for(index: int) -> UdpSockets:
                    return UdpSockets(("127.0.0.1", port), bind_host=f"127.1.0.{index + 1}")

                swarm = Swarm(
                    [device.provisioning(configuration) for device in enrolled],
                    sockets_for,
                    SwarmConfig(
                        duration=12.0,
                        link=preset("lte").lossless(),
                        seed=5,
                        mix=Mix(chat=6, person=3, presence=1, per_minute=15),
                        people=(person.jid,),
                        drain=30.0,
                    ),
                )
                with trio.fail_after(90):
                    summary = await swarm.run()
            nursery.cancel_scope.cancel()
    total = summary.total
    assert swarm.ledger.stray_arrivals == 0
    chat = summary.by_kind[OpKind.CHAT.value]
    to_person = summary.by_kind[OpKind.PERSON.value]
    assert chat.sent > 0
    assert to_person.sent > 0
    assert total.refused == 0
    assert (chat.delivered, chat.lost, chat.duplicated) == (chat.sent, 0, 0)
    assert (to_person.delivered, to_person.lost) == (to_person.sent, 0)
    assert summary.totals.connected == DEVICES
    # The person saw each of its messages exactly once.
    tokens = []
    for _ in range(to_person.sent):
        message = await person.next_message(timeout=10)
        tokens.append(message.body.split(" ")[0])
    assert all(token.startswith(TOKEN_PREFIX) for token in tokens)
    assert len(set(tokens)) == to_person.sent
    with pytest.raises(PersonError):
        await person.next_message(timeout=2)


RERUN_DEVICES = 3


async def _two_runs(
    tmp_path: Path, prosody: ProsodyServer, *, continue_ids: bool
) -> tuple[Swarm, Summary]:
    """Two swarms, one after the other, with the same devices against the same gateway; the
    second starts each device at the ids the first reserved (as ``impp-devices swarm`` does with
    its state file) or, with ``continue_ids`` off, at 1 again. Returns the second run."""
    config = make_gateway_home(tmp_path / "gw", prosody)
    async with open_gateway_store(config) as (store, configuration):
        accounts = [prosody.create_user() for _ in range(RERUN_DEVICES)]
        enrolled = [
            await enroll(store, configuration, account, kid=bytes([0x60 + n]))
            for n, account in enumerate(accounts)
        ]
        async with trio.open_nursery() as nursery:
            async with serving_gateway(nursery, store, configuration) as gateway:
                for device in enrolled:
                    await upstream_ready(gateway, device.kid)
                port = gateway.udp_port
                first_ids: list[int] | None = None
                summaries = []
                for run in range(2):

                    def sockets_for(index: int, run: int = run) -> UdpSockets:
                        return UdpSockets(
                            ("127.0.0.1", port), bind_host=f"127.1.{run + 1}.{index + 1}"
                        )

                    swarm = Swarm(
                        [device.provisioning(configuration) for device in enrolled],
                        sockets_for,
                        SwarmConfig(
                            duration=8.0,
                            link=preset("lte").lossless(),
                            seed=11 + run,
                            mix=Mix(chat=1, person=0, presence=0, per_minute=20),
                            drain=20.0,
                        ),
                        first_message_ids=first_ids,
                    )
                    with trio.fail_after(60):
                        summaries.append(await swarm.run())
                    first_ids = swarm.reserved_message_ids() if continue_ids else None
            nursery.cancel_scope.cancel()
    first, second = summaries
    assert first.total.sent > 0
    assert (first.total.delivered, first.total.lost, first.in_flight) == (first.total.sent, 0, 0)
    assert second.total.sent > 0
    return swarm, second


async def test_a_second_run_continues_the_message_ids_and_delivers_everything(
    tmp_path: Path, running_prosody: ProsodyServer
) -> None:
    swarm, second = await _two_runs(tmp_path, running_prosody, continue_ids=True)
    assert max(swarm.first_message_ids) > 1  # the first run's ids were not used again
    total = second.total
    assert (total.delivered, total.lost, total.duplicated, second.in_flight) == (
        total.sent,
        0,
        0,
        0,
    )


async def test_a_reused_message_id_after_its_final_report_is_not_silently_dropped(
    tmp_path: Path, running_prosody: ProsodyServer
) -> None:
    _, second = await _two_runs(tmp_path, running_prosody, continue_ids=False)
    total = second.total
    # Every message of the second run is either delivered or refused/failed visibly; none is
    # acknowledged (accepted) and then left without delivery or report.
    silently_held = [t for t in second.undelivered if t.accepted and t.report is None]
    assert silently_held == []
    assert total.delivered + total.lost == total.sent
