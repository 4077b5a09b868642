"""End-to-end latency of the messages the gateway carries, as fixed-bucket histograms.

Two directions are measured where the gateway can see both ends of the step it owns:

* **device -> person**: from the SendMessage arriving at the gateway to the server accepting the
  stanza (its XEP-0198 acknowledgement), the point at which the gateway's duty ends;
* **person -> device**: from the stanza arriving from the server to the device's session
  acknowledging the record that carried the IncomingMessage.

Histograms rather than samples, so memory stays constant whatever the traffic, and the buckets
are fixed so that Prometheus can aggregate them across gateways (docs/metrics.md).
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass

LATENCY_BOUNDS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
)
"""Upper bucket bounds in seconds: loopback milliseconds up to an hour's sleep (then +Inf)."""


class Direction(enum.Enum):
    """Which way a measured message travelled."""

    DEVICE_TO_PERSON = "device_to_person"
    PERSON_TO_DEVICE = "person_to_device"


@dataclass(frozen=True)
class LatencyHistogram:
    """A snapshot: ``counts[i]`` observations fell in bucket ``i`` (not cumulative).

    Bucket ``i < len(bounds)`` holds values ``<= bounds[i]`` and above the bound before it; the
    last bucket (``counts[len(bounds)]``) holds what exceeded every bound (+Inf).
    """

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        """How many observations the histogram holds."""
        return sum(self.counts)


class _Buckets:
    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        value = max(0.0, seconds)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> LatencyHistogram:
        return LatencyHistogram(self.bounds, tuple(self.counts), self.total)


class EndToEndLatency:
    """The gateway's two latency histograms, shared by every device binding of one service."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BOUNDS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("latency bounds must be ascending, distinct and not empty")
        self._buckets = {direction: _Buckets(bounds) for direction in Direction}

    def observe(self, direction: Direction, seconds: float) -> None:
        """Record one message that took ``seconds`` (negative clock steps count as 0)."""
        self._buckets[direction].observe(seconds)

    def snapshot(self, direction: Direction) -> LatencyHistogram:
        """The histogram of ``direction`` as it stands."""
        return self._buckets[direction].snapshot()
