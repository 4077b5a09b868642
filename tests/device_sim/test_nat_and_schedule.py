"""The NAT mapping model (rebinding, idle timeouts) and the sleep schedules, in exact times."""

from __future__ import annotations

import pytest

from device_sim.radio import (
    DuplexLink,
    NatBinding,
    NatParameters,
    PeriodicWake,
    PowerSavingMode,
    SendOutcome,
    preset,
)


def test_binding_timeout_drops_inbound_until_the_device_sends_again() -> None:
    nat = NatBinding(NatParameters(binding_timeout=60.0))
    assert not nat.is_live(0.0)
    assert nat.outbound(0.0) == 0
    assert nat.inbound(0, 59.0)
    assert not nat.inbound(0, 60.0)  # idle for the whole timeout: gone
    assert nat.outbound(61.0) == 1  # a new mapping, a new port
    assert nat.port(1) == nat.port(0) + 1
    assert not nat.inbound(0, 62.0)  # the old port stays dead
    assert nat.inbound(1, 62.0)
    assert nat.statistics().inbound_dropped == 2
    assert nat.statistics().mappings_created == 2


def test_inbound_refreshes_only_where_configured() -> None:
    outbound_only = NatBinding(NatParameters(binding_timeout=60.0))
    outbound_only.outbound(0.0)
    assert outbound_only.inbound(0, 50.0)
    assert not outbound_only.inbound(0, 70.0)
    refreshing = NatBinding(NatParameters(binding_timeout=60.0, inbound_refreshes=True))
    refreshing.outbound(0.0)
    assert refreshing.inbound(0, 50.0)
    assert refreshing.inbound(0, 70.0)
    assert not refreshing.inbound(0, 130.0)


def test_rebinding_at_a_time() -> None:
    nat = NatBinding(NatParameters(rebind_at=(100.0,)))
    assert nat.outbound(0.0) == 0
    assert nat.outbound(99.0) == 0
    assert nat.inbound(0, 99.5)
    assert not nat.inbound(0, 100.0)
    assert nat.outbound(150.0) == 1
    assert nat.outbound(160.0) == 1
    assert nat.inbound(1, 161.0)


def test_rebinding_after_idle_keeps_the_old_port_until_the_device_sends() -> None:
    nat = NatBinding(NatParameters(rebind_after_idle=30.0))
    assert nat.outbound(0.0) == 0
    assert nat.outbound(20.0) == 0
    assert nat.inbound(0, 45.0)
    assert nat.outbound(50.0) == 1  # silent for 30 s: a new source port
    assert not nat.inbound(0, 51.0)
    assert nat.inbound(1, 51.0)


def test_nat_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        NatParameters(binding_timeout=0.0)
    with pytest.raises(ValueError, match="increasing"):
        NatParameters(rebind_at=(5.0, 1.0))


def test_duplex_link_drops_downlink_for_an_expired_mapping() -> None:
    link = DuplexLink(preset("gprs").lossless(), seed=1)  # binding timeout 60 s
    assert link.send_up(b"hello", 0.0) is SendOutcome.SCHEDULED
    deadline = link.next_deadline()
    assert deadline is not None
    [up] = link.uplink_due(deadline)
    assert up.generation == 0
    assert link.send_down(b"reply", 0, deadline + 1.0) is SendOutcome.SCHEDULED
    assert link.send_down(b"late", 0, up.at + 60.0) is None
    assert link.statistics().nat.inbound_dropped == 1


def test_periodic_wake() -> None:
    schedule = PeriodicWake(period=600.0, awake=30.0)
    assert schedule.is_awake(0.0)
    assert schedule.is_awake(29.5)
    assert not schedule.is_awake(30.0)
    assert schedule.next_wake(30.0) == 600.0
    assert schedule.next_wake(615.0) == 615.0
    assert schedule.next_sleep(10.0) == 30.0
    assert schedule.next_sleep(100.0) == 100.0
    assert schedule.awake_time(0.0, 1800.0) == 90.0
    assert schedule.awake_time(15.0, 615.0) == 30.0
    assert schedule.wakeups(0.0, 1800.0) == 3
    assert schedule.wakeups(1.0, 1800.0) == 2
    shifted = PeriodicWake(period=60.0, awake=5.0, phase=10.0)
    assert not shifted.is_awake(0.0)
    assert shifted.next_wake(0.0) == 10.0
    with pytest.raises(ValueError, match="awake"):
        PeriodicWake(period=10.0, awake=20.0)


def test_power_saving_mode() -> None:
    day = 86_400.0
    psm = PowerSavingMode(periodic_update=day, active_time=60.0)
    assert psm.is_awake(0.0)  # the periodic update at 0
    assert not psm.is_awake(60.0)
    assert psm.next_wake(60.0) == day
    psm.note_uplink(1000.0)
    assert psm.is_awake(1000.0)
    assert psm.is_awake(1059.0)
    assert not psm.is_awake(1060.0)
    assert psm.next_wake(500.0) == 1000.0
    assert psm.next_wake(2000.0) == day
    assert psm.awake_time(0.0, day) == 120.0
    assert psm.wakeups(0.0, 2 * day) == 3  # 0, the uplink at 1000, the update at one day
    psm.note_uplink(1030.0)  # inside the active time: extends it, no new wake-up
    assert psm.awake_time(0.0, day) == 150.0
    assert psm.wakeups(0.0, 2 * day) == 3
    with pytest.raises(ValueError, match="time order"):
        psm.note_uplink(10.0)
