"""The link presets reproduce the figures docs/device-budget.md cites for them."""

from __future__ import annotations

import math
import pathlib
import random
from dataclasses import replace

import pytest

from device_sim.radio import PRESETS, DuplexLink, GilbertElliott, NoLoss, preset

DOC = pathlib.Path(__file__).parents[2] / "docs" / "device-budget.md"


def _doc_rows() -> dict[str, list[str]]:
    """The rows of the "Link presets" table, by preset name."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Link presets", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in PRESETS:
            rows[cells[0]] = cells[1:]
    return rows


def test_every_preset_has_a_row_and_every_row_a_preset() -> None:
    assert set(_doc_rows()) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_matches_its_documented_figures(name: str) -> None:
    up, down, rtt_ms, loss_percent, mtu, nat_timeout = _doc_rows()[name]
    link = PRESETS[name]
    assert link.uplink.bandwidth_bps == pytest.approx(float(up) * 1000)
    assert link.downlink.bandwidth_bps == pytest.approx(float(down) * 1000)
    assert link.round_trip * 1000 == pytest.approx(float(rtt_ms))
    for direction in (link.uplink, link.downlink):
        assert isinstance(direction.loss, GilbertElliott)
        assert direction.loss.mean_loss() * 100 == pytest.approx(float(loss_percent), abs=0.005)
        assert direction.mtu == int(mtu)
    expected_timeout = None if nat_timeout == "none" else float(nat_timeout)
    assert link.nat.binding_timeout == expected_timeout


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_ping_takes_the_round_trip_plus_serialization(name: str) -> None:
    """Without jitter or loss, request and reply take RTT + both airtimes, exactly."""
    base = PRESETS[name].lossless()
    still = replace(
        base, uplink=replace(base.uplink, jitter=0.0), downlink=replace(base.downlink, jitter=0.0)
    )
    link = DuplexLink(still, seed=1)
    link.send_up(bytes(20), 0.0)
    [request] = link.uplink_due(math.inf)
    link.send_down(bytes(20), request.generation, request.at)
    [reply] = link.downlink_due(math.inf)
    airtime = still.uplink.serialization_time(20) + still.downlink.serialization_time(20)
    assert reply.at == pytest.approx(still.round_trip + airtime, abs=1e-12)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_seeded_run_loses_what_the_preset_says(name: str) -> None:
    """Loss over 50,000 well-spaced datagrams within 5 sigma of the documented rate."""
    link = DuplexLink(PRESETS[name], seed=2026)
    samples = 50_000
    spacing = 10.0  # far apart: no datagram waits for the buffer
    for i in range(samples):
        link.send_up(b"x", i * spacing)
    stats = link.statistics().uplink
    loss = PRESETS[name].uplink.loss
    assert isinstance(loss, GilbertElliott)
    share = loss.mean_loss()
    lam = 1 - loss.good_to_bad - loss.bad_to_good
    sigma = math.sqrt(share * (1 - share) * (1 + lam) / ((1 - lam) * samples))
    assert abs(stats.lost / samples - share) < 5 * sigma
    assert stats.buffer_full == 0


def test_presets_are_looked_up_by_name_and_can_be_made_lossless() -> None:
    assert preset("GPRS") is PRESETS["gprs"]
    with pytest.raises(ValueError, match="unknown link preset"):
        preset("carrier-pigeon")
    clean = preset("gprs").lossless()
    assert isinstance(clean.uplink.loss, NoLoss)
    assert clean.uplink.duplicate_probability == 0.0
    assert clean.uplink.bandwidth_bps == preset("gprs").uplink.bandwidth_bps


def test_the_seed_decides_the_run() -> None:
    def run(seed: int) -> list[float]:
        link = DuplexLink(PRESETS["gprs"], seed=seed)
        rng = random.Random(0)
        for i in range(200):
            link.send_up(bytes(rng.randrange(1, 200)), i * 0.05)
        return [d.at for d in link.uplink_due(math.inf)]

    assert run(5) == run(5)
    assert run(5) != run(6)
