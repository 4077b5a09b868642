"""The sans-IO radio link: serialization, drop-tail, MTU, seeded delays, loss statistics."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_sim.radio import (
    Bernoulli,
    DatagramTooLargeError,
    Delivery,
    DirectionParameters,
    GilbertElliott,
    MtuPolicy,
    RadioLink,
    SendOutcome,
)

# 8192 bit/s and 128-byte datagrams: 0.125 s each, exact in binary floating point.
PLAIN = DirectionParameters(bandwidth_bps=8192, latency=0.25, overhead_bytes=0)
PACKET = bytes(128)


def _drain(link: RadioLink) -> list[Delivery]:
    deadline = link.next_deadline()
    return [] if deadline is None else link.deliveries_due(math.inf)


def test_serialization_queues_back_to_back() -> None:
    link = RadioLink(PLAIN)
    assert link.send(PACKET, 0.0) is SendOutcome.SCHEDULED
    assert link.send(PACKET, 0.0) is SendOutcome.SCHEDULED
    assert link.next_deadline() == 0.375  # 0.125 on the air + 0.25
    assert link.deliveries_due(0.374) == []
    assert [d.at for d in link.deliveries_due(0.375)] == [0.375]
    assert link.send(PACKET, 1.0) is SendOutcome.SCHEDULED  # the radio is idle again
    assert [d.at for d in link.deliveries_due(10.0)] == [0.5, 1.375]
    assert link.next_deadline() is None


def test_overhead_bytes_take_air_time() -> None:
    params = DirectionParameters(bandwidth_bps=8192, latency=0.0, overhead_bytes=128)
    link = RadioLink(params)
    link.send(PACKET, 0.0)
    assert params.serialization_time(128) == 0.25
    assert link.next_deadline() == 0.25


def test_drop_tail_at_the_buffer_limit() -> None:
    params = DirectionParameters(
        bandwidth_bps=8192, latency=0.25, overhead_bytes=0, buffer_bytes=300
    )
    link = RadioLink(params)
    assert link.send(PACKET, 0.0) is SendOutcome.SCHEDULED
    assert link.send(PACKET, 0.0) is SendOutcome.SCHEDULED
    assert link.queued_bytes(0.0) == 256
    assert link.send(PACKET, 0.0) is SendOutcome.BUFFER_FULL  # 384 > 300
    assert link.send(bytes(44), 0.0) is SendOutcome.SCHEDULED  # 300 fits exactly
    assert link.send(b"x", 0.0) is SendOutcome.BUFFER_FULL
    # Once the first datagram is on the air and done, its bytes leave the queue.
    assert link.queued_bytes(0.125) == 172
    assert link.send(PACKET, 0.125) is SendOutcome.SCHEDULED
    stats = link.statistics()
    assert (stats.sent, stats.buffer_full, stats.scheduled) == (6, 2, 4)
    # The late one starts after the three queued ahead of it: 0.125 + 0.125 + 44/1024.
    assert [d.at for d in _drain(link)][-1] == 0.25 + 44 * 8 / 8192 + 0.125 + 0.25


def test_duty_cycle_keeps_the_transmitter_off() -> None:
    params = DirectionParameters(bandwidth_bps=8192, latency=0.0, overhead_bytes=0, duty_cycle=0.25)
    link = RadioLink(params)
    link.send(PACKET, 0.0)
    link.send(PACKET, 0.0)
    # 0.125 s on the air, then 0.375 s off: the second starts at 0.5.
    assert [d.at for d in _drain(link)] == [0.125, 0.625]


def test_mtu_drop_and_report() -> None:
    dropping = RadioLink(DirectionParameters(bandwidth_bps=8192, latency=0.0, mtu=100))
    assert dropping.send(bytes(101), 0.0) is SendOutcome.TOO_LARGE
    assert dropping.send(bytes(100), 0.0) is SendOutcome.SCHEDULED
    assert dropping.statistics().too_large == 1
    reporting = RadioLink(
        DirectionParameters(bandwidth_bps=8192, latency=0.0, mtu=100, mtu_policy=MtuPolicy.REPORT)
    )
    with pytest.raises(DatagramTooLargeError) as info:
        reporting.send(bytes(101), 0.0)
    assert (info.value.size, info.value.mtu) == (101, 100)
    assert reporting.next_deadline() is None


def test_delivery_times_follow_the_seed_and_the_documented_draw_order() -> None:
    params = DirectionParameters(
        bandwidth_bps=8192,
        latency=0.25,
        jitter=0.5,
        loss=Bernoulli(0.2),
        overhead_bytes=0,
    )
    link = RadioLink(params, seed=7)
    for i in range(20):
        link.send(PACKET, i * 1.0)
    # Replay: per datagram loss, jitter, reorder, duplicate, duplicate jitter.
    rng = random.Random(7)
    expected = []
    for i in range(20):
        lost = rng.random() < 0.2
        jitter = rng.random() * 0.5
        rng.random()
        rng.random()
        rng.random()
        if not lost:
            expected.append(i + 0.125 + 0.25 + jitter)
    got = [d.at for d in _drain(link)]
    assert got == sorted(expected)
    assert 0 < link.statistics().lost < 20
    again = RadioLink(params, seed=7)
    for i in range(20):
        again.send(PACKET, i * 1.0)
    assert [d.at for d in _drain(again)] == got


def test_jitter_reorders_unless_order_is_preserved() -> None:
    def arrivals(preserve: bool) -> list[bytes]:
        params = DirectionParameters(
            bandwidth_bps=1e6, latency=0.1, jitter=1.0, preserve_order=preserve
        )
        link = RadioLink(params, seed=3)
        for i in range(50):
            link.send(bytes([i]), i * 0.01)
        return [d.datagram for d in _drain(link)]

    sent = [bytes([i]) for i in range(50)]
    assert arrivals(preserve=False) != sent
    assert sorted(arrivals(preserve=False)) == sent
    assert arrivals(preserve=True) == sent


def test_explicit_reordering_holds_datagrams_back() -> None:
    params = DirectionParameters(
        bandwidth_bps=8192,
        latency=0.25,
        overhead_bytes=0,
        reorder_probability=0.3,
        reorder_delay=2.0,
        preserve_order=True,
    )
    link = RadioLink(params, seed=11)
    for i in range(20):
        link.send(bytes([i]) + bytes(127), i * 0.125)
    deliveries = _drain(link)
    reordered = link.statistics().reordered
    assert 0 < reordered < 20
    on_time = [d for d in deliveries if d.at == d.datagram[0] * 0.125 + 0.375]
    assert len(on_time) == 20 - reordered
    held = [d for d in deliveries if d.at == d.datagram[0] * 0.125 + 0.375 + 2.0]
    assert len(held) == reordered
    assert [d.datagram[0] for d in deliveries] != list(range(20))


def test_duplication_delivers_a_second_copy() -> None:
    params = DirectionParameters(bandwidth_bps=8192, latency=0.25, duplicate_probability=1.0)
    link = RadioLink(params, seed=1)
    link.send(b"once", 0.0)
    deliveries = _drain(link)
    assert [(d.datagram, d.duplicate) for d in deliveries] == [(b"once", False), (b"once", True)]
    assert link.statistics().duplicated == 1


def _runs(losses: list[bool]) -> list[int]:
    runs: list[int] = []
    length = 0
    for lost in losses:
        if lost:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    if length:
        runs.append(length)
    return runs


@pytest.mark.parametrize(("good_to_bad", "bad_to_good"), [(0.02, 0.25), (0.01, 0.5), (0.05, 0.1)])
def test_gilbert_elliott_burst_statistics(good_to_bad: float, bad_to_good: float) -> None:
    """Loss rate and mean burst length over a seeded run, within 5 sigma of what p and r imply.

    With loss 1 in the bad state and 0 in the good one, loss runs are bad spells: geometric with
    mean 1/r and variance (1-r)/r^2. The loss indicator is a two-state Markov chain with
    eigenvalue lambda = 1-p-r, so the sample mean has variance pi(1-pi)(1+lambda)/((1-lambda) N).
    """
    samples = 200_000
    model = GilbertElliott(good_to_bad=good_to_bad, bad_to_good=bad_to_good)
    rng = random.Random(2026)
    losses = [model.lost(rng) for _ in range(samples)]
    share = model.mean_loss()
    assert share == good_to_bad / (good_to_bad + bad_to_good)
    lam = 1 - good_to_bad - bad_to_good
    sigma_rate = math.sqrt(share * (1 - share) * (1 + lam) / ((1 - lam) * samples))
    assert abs(sum(losses) / samples - share) < 5 * sigma_rate
    runs = _runs(losses)
    mean_run = 1 / bad_to_good
    sigma_run = math.sqrt((1 - bad_to_good) / bad_to_good**2 / len(runs))
    assert abs(sum(runs) / len(runs) - mean_run) < 5 * sigma_run
    # Independent loss at the same rate has runs of mean 1/(1-pi): much shorter.
    assert sum(runs) / len(runs) > 1 / (1 - share) + 5 * sigma_run


def test_links_from_one_parameter_set_share_no_loss_state() -> None:
    params = DirectionParameters(
        bandwidth_bps=1e6, latency=0.0, loss=GilbertElliott(good_to_bad=0.5, bad_to_good=0.1)
    )
    first = RadioLink(params, seed=5)
    for i in range(100):
        first.send(b"x", float(i))
    second = RadioLink(params, seed=5)
    for i in range(100):
        second.send(b"x", float(i))
    assert first.statistics() == second.statistics()
    assert isinstance(params.loss, GilbertElliott)
    assert params.loss.bad is False


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="bandwidth"):
        DirectionParameters(bandwidth_bps=0, latency=0.0)
    with pytest.raises(ValueError, match="duty cycle"):
        DirectionParameters(bandwidth_bps=1, latency=0.0, duty_cycle=0.0)
    with pytest.raises(ValueError, match="probabilit"):
        Bernoulli(1.5)
    with pytest.raises(ValueError, match="probabilit"):
        GilbertElliott(good_to_bad=-0.1, bad_to_good=0.5)


@settings(max_examples=200, deadline=None)
@given(
    sends=st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.floats(min_value=0, max_value=0.5)),
        max_size=60,
    ),
    seed=st.integers(min_value=0, max_value=2**32),
    preserve=st.booleans(),
)
def test_any_send_sequence_keeps_the_link_invariants(
    sends: list[tuple[int, float]], seed: int, preserve: bool
) -> None:
    """Bounded queue, no delivery before its airtime and latency, every datagram accounted for."""
    params = DirectionParameters(
        bandwidth_bps=8192,
        latency=0.25,
        jitter=0.5,
        loss=GilbertElliott(good_to_bad=0.2, bad_to_good=0.3),
        duplicate_probability=0.1,
        reorder_probability=0.1,
        reorder_delay=1.0,
        mtu=300,
        buffer_bytes=600,
        preserve_order=preserve,
    )
    link = RadioLink(params, seed=seed)
    now = 0.0
    earliest: dict[bytes, float] = {}
    outcomes: list[SendOutcome] = []
    for index, (size, gap) in enumerate(sends):
        now += gap
        datagram = index.to_bytes(2, "big") + bytes(max(0, size - 2))
        outcome = link.send(datagram, now)
        outcomes.append(outcome)
        assert link.queued_bytes(now) <= params.buffer_bytes
        earliest[datagram] = now + params.serialization_time(len(datagram)) + params.latency
        deadline = link.next_deadline()
        if deadline is not None:
            for delivery in link.deliveries_due(now):
                assert delivery.at <= now
                assert delivery.at >= earliest[delivery.datagram]
    for delivery in link.deliveries_due(math.inf):
        assert delivery.at >= earliest[delivery.datagram]
    stats = link.statistics()
    assert stats.sent == len(sends)
    assert outcomes.count(
        SendOutcome.SCHEDULED
    ) + stats.lost + stats.buffer_full + stats.too_large == (stats.sent)
    assert (
        stats.delivered
        == stats.scheduled
        == outcomes.count(SendOutcome.SCHEDULED) + stats.duplicated
    )
    assert link.next_deadline() is None
