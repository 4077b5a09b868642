"""What the swarm keeps per device between runs: the next SendMessage id, the inbound window."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_sim.client.runner import DatagramSocket
from device_sim.radio import preset
from device_sim.swarm.cli import (
    DeviceState,
    StateError,
    read_state,
    runs_recorded,
    write_state,
)
from device_sim.swarm.driver import Swarm, SwarmConfig
from device_sim.swarm.plan import Mix, OpKind
from tests.device_sim.swarm.inprocess import provisionings


class UnusedSockets:
    """Sockets for a swarm that is built and never run."""

    header_bytes = 28

    async def open(self) -> DatagramSocket:
        raise AssertionError("the swarm was not meant to run")


def test_state_round_trips_and_keeps_other_devices(tmp_path: Path) -> None:
    path = tmp_path / "swarm-state.json"
    devices = provisionings(3)
    assert read_state(path, devices) == [DeviceState()] * 3  # no file: fresh devices
    assert runs_recorded(path) == 0
    write_state(path, devices[:2], [5, 9], [(4, 0b101), (-1, 0)], runs=1)
    write_state(path, devices[2:], [2], [(7, 1)], runs=2)  # another run, other devices
    write_state(path, devices[2:], [2], [(7, 1)])  # the end of that run: the count stays
    assert runs_recorded(path) == 2
    assert read_state(path, devices) == [
        DeviceState(5, (4, 0b101)),
        DeviceState(9, (-1, 0)),
        DeviceState(2, (7, 1)),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"version": 2, "next_message_id": {}}',
        '{"version": 1, "next_message_id": {"KID": 0}}',
        '{"version": 1, "next_message_id": {}, "inbound": {"KID": [3]}}',
        '{"version": 1, "next_message_id": {}, "inbound": {"KID": [3, -1]}}',
        '{"version": 1, "next_message_id": {}, "runs": -1}',
    ],
)
def test_a_bad_state_file_is_refused(tmp_path: Path, text: str) -> None:
    devices = provisionings(1)
    path = tmp_path / "swarm-state.json"
    path.write_text(text.replace("KID", devices[0].device_kid.hex()))
    with pytest.raises(StateError):
        read_state(path, devices)


def test_the_swarm_starts_each_device_where_the_last_run_stopped() -> None:
    devices = provisionings(3)
    config = SwarmConfig(duration=60.0, link=preset("lte"), seed=3, mix=Mix(per_minute=6.0))
    swarm = Swarm(
        devices,
        lambda index: UnusedSockets(),
        config,
        first_message_ids=[1, 40, 7],
        inbound_windows=[(-1, 0), (12, 0b11), (3, 0)],
    )
    clients = [d.runner.client for d in swarm.devices]
    assert [c.next_message_id for c in clients] == [1, 40, 7]
    assert [(c.inbound.highest, c.inbound.bitmap) for c in clients] == [(-1, 0), (12, 3), (3, 0)]
    assert swarm.inbound_windows() == [(-1, 0), (12, 3), (3, 0)]
    messages = [0, 0, 0]
    for op in swarm.ops:
        if op.kind is not OpKind.PRESENCE:
            messages[op.sender] += 1
    assert sum(messages) > 0
    assert swarm.reserved_message_ids() == [1 + messages[0], 40 + messages[1], 7 + messages[2]]
    assert not clients[1].inbound.first_time(12)  # shown in the last run: a repeat is dropped
    assert clients[1].inbound.first_time(13)
