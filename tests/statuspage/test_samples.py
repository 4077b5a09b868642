"""The sample ring: exact rates per minute, bounded history, counters that restart."""

from __future__ import annotations

import pytest

from gateway.statuspage import SampleRing, StatusTotals, chart_svg


def test_rates_are_rises_per_minute() -> None:
    ring = SampleRing(capacity=4)
    ring.record(100.0, 2, StatusTotals(handshakes_ok=10, deliveries_ok=5, queued=1))
    sample = ring.record(
        105.0, 3, StatusTotals(handshakes_ok=12, handshakes_failed=1, deliveries_ok=20, queued=4)
    )
    assert sample.handshakes_per_minute == 24.0
    assert sample.handshake_failures_per_minute == 12.0
    assert sample.deliveries_per_minute == 180.0
    assert sample.sessions == 3
    assert sample.queued == 4
    assert ring.samples()[0].handshakes_per_minute == 0.0  # no earlier sample


def test_a_counter_that_went_down_is_no_rise() -> None:
    ring = SampleRing()
    ring.record(0.0, 0, StatusTotals(deliveries_ok=50))
    assert ring.record(5.0, 0, StatusTotals(deliveries_ok=3)).deliveries_per_minute == 0.0


def test_the_ring_keeps_only_its_capacity() -> None:
    ring = SampleRing(capacity=3)
    for second in range(10):
        ring.record(float(second), second, StatusTotals())
    assert [sample.sessions for sample in ring.samples()] == [7, 8, 9]
    with pytest.raises(ValueError, match="two samples"):
        SampleRing(capacity=1)


def test_a_chart_escapes_its_text_and_shows_the_latest_value() -> None:
    svg = chart_svg("sessions", "<b>live</b>", [1.0, 4.0, 2.0])
    assert svg.startswith(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-sessions"'
    )
    assert "<b>" not in svg
    assert "&lt;b&gt;live&lt;/b&gt;: 2" in svg
    assert svg.count("<polyline") == 1
    assert "no data" in chart_svg("empty", "nothing", [])
