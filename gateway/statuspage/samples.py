"""The status page's history: a bounded ring of samples, from which rates and charts are drawn.

Sans-IO: :meth:`SampleRing.record` takes ``now`` (seconds on any monotonic clock) and the
source's readings; the trio task that calls it every interval lives in
:mod:`gateway.statuspage.app`. A rate is the rise of a cumulative counter between two samples,
per minute; a counter that went down (the service restarted its statistics) counts as no rise.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Final

from gateway.statuspage.source import StatusTotals

__all__ = ["DEFAULT_SAMPLES", "Sample", "SampleRing"]

DEFAULT_SAMPLES: Final = 120  # ten minutes of history at the default five-second interval


@dataclass(frozen=True)
class Sample:
    """One point of every chart."""

    at: float
    sessions: int
    queued: int
    handshakes_per_minute: float
    handshake_failures_per_minute: float
    deliveries_per_minute: float
    delivery_failures_per_minute: float


def _rate(now_count: int, before_count: int, seconds: float) -> float:
    rise = now_count - before_count
    if rise <= 0 or seconds <= 0:
        return 0.0
    return rise * 60.0 / seconds


class SampleRing:
    """The last ``capacity`` samples, oldest first."""

    def __init__(self, capacity: int = DEFAULT_SAMPLES) -> None:
        if capacity < 2:
            raise ValueError("a chart needs room for at least two samples")
        self._samples: collections.deque[Sample] = collections.deque(maxlen=capacity)
        self._last: tuple[float, StatusTotals] | None = None

    def record(self, now: float, sessions: int, totals: StatusTotals) -> Sample:
        """Add the sample for ``now`` and return it."""
        rates = (0.0, 0.0, 0.0, 0.0)
        if self._last is not None:
            then, before = self._last
            seconds = now - then
            rates = (
                _rate(totals.handshakes_ok, before.handshakes_ok, seconds),
                _rate(totals.handshakes_failed, before.handshakes_failed, seconds),
                _rate(totals.deliveries_ok, before.deliveries_ok, seconds),
                _rate(totals.deliveries_failed, before.deliveries_failed, seconds),
            )
        sample = Sample(now, sessions, totals.queued, *rates)
        self._samples.append(sample)
        self._last = (now, totals)
        return sample

    def samples(self) -> list[Sample]:
        """The kept samples, oldest first."""
        return list(self._samples)
