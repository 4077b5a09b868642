"""A status source the tests control."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.statuspage import SessionStatus, StatusTotals


def session(kid: str = "0a01", account: str = "alice@example.org", **changes: Any) -> SessionStatus:
    base = SessionStatus(
        kid=kid,
        account=account,
        state="established",
        transport="udp",
        queue_depth=3,
        idle_seconds=1.25,
    )
    return dataclasses.replace(base, **changes)


@dataclass
class FakeSource:
    """Sessions and totals set by the test; counts how often it was asked."""

    live: list[SessionStatus] = field(default_factory=list)
    now: StatusTotals = field(default_factory=StatusTotals)
    session_calls: int = 0

    def sessions(self) -> Sequence[SessionStatus]:
        self.session_calls += 1
        return list(self.live)

    def totals(self) -> StatusTotals:
        return self.now
