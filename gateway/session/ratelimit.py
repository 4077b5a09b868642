"""Token-bucket rate limits per key (address, device), with bounded memory.

Each key has a bucket of ``burst`` tokens refilled at ``rate`` per second (``now`` is passed in).
The table keeps at most ``max_keys`` buckets; the least recently used is forgotten first, which only
ever gives a forgotten key a full bucket again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

DEFAULT_MAX_KEYS = 65536  # buckets remembered per limiter


class RateLimiter:
    """Per-key token buckets."""

    def __init__(self, *, rate: float, burst: float, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def has(self, key: Hashable, now: float, cost: float = 1.0) -> bool:
        """True if ``key``'s bucket holds ``cost`` tokens; spends nothing (check, then
        :meth:`allow` once the work proved legitimate)."""
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - stamp) * self.rate) >= cost

    def allow(self, key: Hashable, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens of ``key``'s bucket if it has them."""
        tokens, stamp = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - stamp) * self.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed
