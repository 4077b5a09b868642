"""What the status page shows, as the service supplies it: a :class:`StatusSource`.

The page holds no state of the gateway's own; each request and each sample asks the source. The
service implements the protocol directly or wraps two callables in :class:`StatusCallables`.
Both calls run on the trio thread between checkpoints, so they must be quick and must not block:
they read counters and tables the service already keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["SessionStatus", "StatusCallables", "StatusSource", "StatusTotals"]


@dataclass(frozen=True)
class SessionStatus:
    """One live device session as the page lists it."""

    kid: str  # the device's kid in hex
    account: str  # the upstream account JID bound to it
    state: str  # e.g. "established", "resuming"
    transport: str  # the listener's name, e.g. "udp"
    queue_depth: int  # items waiting for the device
    idle_seconds: float  # since the device was last heard from


@dataclass(frozen=True)
class StatusTotals:
    """Cumulative counters since start (the page turns them into rates) and current depths."""

    handshakes_ok: int = 0
    handshakes_failed: int = 0
    deliveries_ok: int = 0
    deliveries_failed: int = 0
    queued: int = 0  # items queued for all devices now
    upstreams: Mapping[str, int] = field(default_factory=dict)  # upstream sessions by state


class StatusSource(Protocol):
    """The service's side of the status page."""

    def sessions(self) -> Sequence[SessionStatus]:
        """The live device sessions."""
        ...

    def totals(self) -> StatusTotals:
        """The counters now."""
        ...


@dataclass(frozen=True)
class StatusCallables:
    """A :class:`StatusSource` made of two callables."""

    sessions_of: Callable[[], Sequence[SessionStatus]]
    totals_of: Callable[[], StatusTotals]

    def sessions(self) -> Sequence[SessionStatus]:
        """The live device sessions, from ``sessions_of``."""
        return self.sessions_of()

    def totals(self) -> StatusTotals:
        """The counters now, from ``totals_of``."""
        return self.totals_of()
