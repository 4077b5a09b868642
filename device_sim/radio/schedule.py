"""When a device's radio is awake, as sans-IO schedules: ``is_awake(now)`` and ``next_wake(now)``.

Two shapes cover the devices the emulator models. :class:`PeriodicWake` wakes every ``period``
seconds and stays awake ``awake`` seconds (a sensor reporting every N minutes, a handheld polling).
:class:`PowerSavingMode` is 3GPP PSM (TS 24.301 §5.3.11; TS 23.682 §4.5.4): after each
mobile-originated transmission and at each periodic tracking-area update (timer T3412, up to
hundreds of hours) the device stays reachable for the active time (timer T3324), then sleeps and
cannot be paged until it sends again or the next update is due.

Both also count what the energy model needs over an interval: the seconds awake and the number of
wake-ups.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

__all__ = ["AlwaysAwake", "PeriodicWake", "PowerSavingMode"]


@dataclass(frozen=True)
class AlwaysAwake:
    """A mains-powered or always-connected device."""

    def is_awake(self, now: float) -> bool:
        """Always."""
        return True

    def next_wake(self, now: float) -> float:
        """Now."""
        return now

    def awake_time(self, start: float, end: float) -> float:
        """All of it."""
        return max(0.0, end - start)

    def wakeups(self, start: float, end: float) -> int:
        """None: it never sleeps."""
        return 0


@dataclass(frozen=True)
class PeriodicWake:
    """Awake during ``[phase + k*period, phase + k*period + awake)`` for every integer k."""

    period: float
    awake: float
    phase: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.awake <= self.period:
            raise ValueError("need 0 < awake <= period")

    def _window(self, now: float) -> int:
        return math.floor((now - self.phase) / self.period)

    def is_awake(self, now: float) -> bool:
        """Whether ``now`` falls inside an awake window."""
        start = self.phase + self._window(now) * self.period
        return now - start < self.awake

    def next_wake(self, now: float) -> float:
        """The earliest time at or after ``now`` when the device is awake."""
        if self.is_awake(now):
            return now
        return self.phase + (self._window(now) + 1) * self.period

    def next_sleep(self, now: float) -> float:
        """When the awake window holding ``now`` ends (``now`` if asleep)."""
        if not self.is_awake(now):
            return now
        return self.phase + self._window(now) * self.period + self.awake

    def awake_time(self, start: float, end: float) -> float:
        """Seconds awake within ``[start, end)``."""
        return max(0.0, self._awake_before(end) - self._awake_before(start))

    def wakeups(self, start: float, end: float) -> int:
        """Awake windows that begin within ``[start, end)``."""
        first = math.ceil((start - self.phase) / self.period)
        last = math.ceil((end - self.phase) / self.period)
        return max(0, last - first)

    def _awake_before(self, t: float) -> float:
        """Awake seconds in ``[phase, t)`` (negative before the phase, by symmetry)."""
        window = self._window(t)
        into = t - (self.phase + window * self.period)
        return window * self.awake + min(into, self.awake)


class PowerSavingMode:
    """3GPP PSM: reachable for ``active_time`` after each uplink and each periodic update.

    ``periodic_update`` is T3412 (extended), ``active_time`` is T3324. Uplinks are noted with
    :meth:`note_uplink` in time order; the schedule is otherwise a pure function of time.
    """

    def __init__(self, *, periodic_update: float, active_time: float, phase: float = 0.0) -> None:
        if not 0 < active_time <= periodic_update:
            raise ValueError("need 0 < active_time <= periodic_update")
        self.periodic_update = periodic_update
        self.active_time = active_time
        self.phase = phase
        self._uplinks: list[float] = []

    def note_uplink(self, now: float) -> None:
        """The device sent at ``now``: it is awake from then for ``active_time``."""
        if self._uplinks and now < self._uplinks[-1]:
            raise ValueError("uplinks must be noted in time order")
        self._uplinks.append(now)

    def _periodic(self) -> PeriodicWake:
        return PeriodicWake(period=self.periodic_update, awake=self.active_time, phase=self.phase)

    def _last_uplink_at_or_before(self, now: float) -> float | None:
        index = bisect.bisect_right(self._uplinks, now)
        return self._uplinks[index - 1] if index else None

    def is_awake(self, now: float) -> bool:
        """Whether the device can be reached at ``now``."""
        last = self._last_uplink_at_or_before(now)
        if last is not None and now - last < self.active_time:
            return True
        return self._periodic().is_awake(now)

    def next_wake(self, now: float) -> float:
        """The earliest time at or after ``now`` when the device is reachable (by its schedule)."""
        if self.is_awake(now):
            return now
        index = bisect.bisect_right(self._uplinks, now)
        periodic = self._periodic().next_wake(now)
        if index < len(self._uplinks):
            return min(periodic, self._uplinks[index])
        return periodic

    def awake_time(self, start: float, end: float) -> float:
        """Seconds reachable within ``[start, end)``: the union of periodic and uplink windows."""
        windows: list[tuple[float, float]] = [(u, u + self.active_time) for u in self._uplinks]
        k = math.floor((start - self.phase) / self.periodic_update)
        while self.phase + k * self.periodic_update < end:
            begin = self.phase + k * self.periodic_update
            windows.append((begin, begin + self.active_time))
            k += 1
        total = 0.0
        cursor = start
        for begin, finish in sorted(windows):
            begin, finish = max(begin, cursor), min(finish, end)
            if finish > begin:
                total += finish - begin
                cursor = finish
        return total

    def wakeups(self, start: float, end: float) -> int:
        """Transitions from asleep to awake within ``[start, end)``."""
        candidates = sorted(
            {u for u in self._uplinks if start <= u < end}
            | {
                self.phase + k * self.periodic_update
                for k in range(
                    math.ceil((start - self.phase) / self.periodic_update),
                    math.ceil((end - self.phase) / self.periodic_update),
                )
            }
        )
        return sum(1 for t in candidates if not self._awake_just_before(t))

    def _awake_just_before(self, t: float) -> bool:
        """Whether a window opened strictly before ``t`` still covers ``t``."""
        index = bisect.bisect_left(self._uplinks, t)
        if index and t - self._uplinks[index - 1] < self.active_time:
            return True
        k = math.floor((t - self.phase) / self.periodic_update)
        begin = self.phase + k * self.periodic_update
        if begin == t:
            begin -= self.periodic_update
        return t - begin < self.active_time
