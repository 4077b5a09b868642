"""A wake that waits for the upstream's flush: what the server held must go into the queue.

While the device slept the upstream was told it is inactive (XEP-0352), and a server may hold
unimportant stanzas (presence) for it until it says ``<active/>`` (Prosody's mod_csi_simple
does); besides, stanzas the server already sent may still be on their way to the relay. Were
the device told it is awake at once, all of that would reach it one notification each, after the
MissedSummary, instead of coalesced in its queue (issue 12 §6: one notification per contact).

So the relay sends ``<active/>`` and an :class:`~gateway.relay.commands.UpstreamSync` (a round
trip, an XEP-0199 ping in XMPP) and keeps routing what arrives to the queue until its answer:
the answer comes after everything the server sent before it (stream order, RFC 6120 §10.1), so
the queue then holds the whole night. Only then does the device get the MissedSummary, the drain
and live traffic. Without an answer within ``timeout`` (a server without ping, a lost stream) the
wake completes anyway: nothing is lost, at worst presence arrives uncoalesced.

:class:`WakeFlush` counts the syncs sent and answered, so a late answer of a cancelled wake
(Sleep or a lost link before the answer) does not end a later one early.
"""

from __future__ import annotations

import dataclasses

from gateway.relay.config import DEFAULT_WAKE_SYNC_TIMEOUT

__all__ = ["PendingWake", "WakeFlush"]


@dataclasses.dataclass(slots=True)
class PendingWake:
    """A wake waiting for the sync answer number ``awaits``; what to send when it completes."""

    awaits: int
    deadline: float
    summary: bool  # a Wake (MissedSummary first); False for a session that came back
    snapshot: bool  # the Wake asked for every contact's presence


class WakeFlush:
    """The syncs in flight and the one wake waiting for them (see the module docstring)."""

    __slots__ = ("_answered", "_sent", "pending", "timeout")

    def __init__(self, timeout: float = DEFAULT_WAKE_SYNC_TIMEOUT) -> None:
        self.timeout = timeout
        self.pending: PendingWake | None = None
        self._sent = 0
        self._answered = 0

    def start(self, now: float, *, summary: bool, snapshot: bool) -> None:
        """A sync goes out now; the wake completes at its answer (or at the timeout)."""
        self._sent += 1
        self.pending = PendingWake(self._sent, now + self.timeout, summary, snapshot)

    def answered(self) -> PendingWake | None:
        """One sync was answered (in order); the wake it completes, if any."""
        self._answered = min(self._answered + 1, self._sent)
        pending = self.pending
        if pending is None or self._answered < pending.awaits:
            return None
        self.pending = None
        return pending

    def lost(self) -> PendingWake | None:
        """The upstream stream ended: no sync will be answered; the wake completes now."""
        self._answered = self._sent
        pending, self.pending = self.pending, None
        return pending

    def cancel(self) -> None:
        """The device slept or lost its link before the answer: no wake to complete."""
        self.pending = None

    def due(self, now: float) -> PendingWake | None:
        """The waiting wake, if its timeout has passed (it completes now)."""
        pending = self.pending
        if pending is None or now < pending.deadline:
            return None
        self.pending = None
        return pending

    def next_deadline(self) -> float | None:
        """When the waiting wake times out, if one waits."""
        return None if self.pending is None else self.pending.deadline
