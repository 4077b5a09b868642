"""The latency histograms: bucket placement, the +Inf bucket, and refusing bad bounds."""

from __future__ import annotations

import pytest

from gateway.service.latency import Direction, EndToEndLatency


def test_values_fall_in_the_first_bucket_whose_bound_holds_them() -> None:
    latency = EndToEndLatency(bounds=(0.01, 0.1, 1.0))
    for seconds in (0.005, 0.01, 0.05, 0.5, 7.0, -1.0):
        latency.observe(Direction.DEVICE_TO_PERSON, seconds)
    histogram = latency.snapshot(Direction.DEVICE_TO_PERSON)
    assert histogram.counts == (3, 1, 1, 1)
    assert histogram.count == 6
    assert histogram.total == pytest.approx(0.005 + 0.01 + 0.05 + 0.5 + 7.0)
    assert latency.snapshot(Direction.PERSON_TO_DEVICE).count == 0


@pytest.mark.parametrize("bounds", [(), (1.0, 0.5), (0.5, 0.5)])
def test_bounds_must_ascend(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="ascending"):
        EndToEndLatency(bounds=bounds)
