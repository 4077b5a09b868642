"""The XMPP client's clocks: negotiation timeout, keep-alive and IQ request timeouts.

Theory of operation.  The client is sans-IO, so time enters as ``now`` and every timer is a
deadline in :class:`ClientTimers`; :meth:`ClientTimers.next_deadline` is the earliest of them,
which the adapter sleeps toward before calling the client's ``handle_timer``.

- Negotiation: from our first stream header to a usable session (``negotiation_timeout``);
  cleared once the session is up.
- Keep-alive: after ``keepalive_interval`` seconds without a byte from the server the client
  probes it (an XEP-0198 ``<r/>``, or an XEP-0199 ping); if nothing arrives within
  ``keepalive_timeout`` the connection is dead.  Any received byte clears the probe.
- Requests: each get/set IQ we send waits at most ``iq_timeout`` for its answer (RFC 6120 §8.2.3
  answers are mandatory, but a server may lose them), and is reported as timed out after.
- Acknowledgement: while stanzas we sent are unacknowledged (XEP-0198 §4) and our ``<r/>`` is
  out, an ``<a/>`` must come within ``ack_timeout``; other bytes from the server do not count,
  since a server that still writes may have stopped reading us.  Past it the connection is
  dead and the session resumes on a new one, as mobile clients do.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from gateway.xmpp.jid import Jid

__all__ = [
    "DEFAULT_ACK_TIMEOUT",
    "DEFAULT_IQ_TIMEOUT",
    "DEFAULT_KEEPALIVE_INTERVAL",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_NEGOTIATION_TIMEOUT",
    "ClientTimers",
    "IqKind",
    "PendingIq",
]

# Our stanzas unacknowledged this long after our <r/>: the server no longer reads this connection.
DEFAULT_ACK_TIMEOUT: Final = 30.0
# A request nobody answers within this many seconds is reported as IqTimedOut.
DEFAULT_IQ_TIMEOUT: Final = 60.0
# Silence after which we probe the server: under the ~5 minute idle timeout of common NATs.
DEFAULT_KEEPALIVE_INTERVAL: Final = 240.0
# How long the probe may stay unanswered before the connection is declared dead.
DEFAULT_KEEPALIVE_TIMEOUT: Final = 60.0
# From our stream header to a usable session; a GPRS-class link needs a few round trips of ~1 s.
DEFAULT_NEGOTIATION_TIMEOUT: Final = 60.0


class IqKind(enum.Enum):
    """What a request we sent was for, which decides the event its answer becomes."""

    ROSTER_GET = "roster-get"  # answered by RosterReceived
    ROSTER_SET = "roster-set"  # answered by IqResultReceived (the change comes as a push)
    PING = "ping"  # an application's XEP-0199 ping: PingAnswered
    KEEPALIVE = "keepalive"  # our own probe of a silent server: no event
    GENERIC = "generic"  # any other request: IqResultReceived


@dataclasses.dataclass
class PendingIq:
    """A request waiting for its answer."""

    kind: IqKind
    to: Jid | None
    sent_at: float
    deadline: float


class ClientTimers:
    """The deadlines of one stream; see the module docstring."""

    def __init__(
        self,
        *,
        iq_timeout: float,
        keepalive_interval: float,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
    ) -> None:
        self._iq_timeout = iq_timeout
        self._keepalive_interval = keepalive_interval
        self._ack_timeout = ack_timeout
        self.ack_deadline: float | None = None  # an <a/> for our stanzas must come by then
        self._ack_wait_unarmed = False  # an <a/> is awaited since a moment not yet known
        self.pending: dict[str, PendingIq] = {}
        self.negotiation_deadline: float | None = None
        self.keepalive_deadline: float | None = None  # set while a probe is unanswered
        self.last_received = 0.0

    def started(self, now: float, negotiation_timeout: float) -> None:
        """Our stream header went out at ``now``: the negotiation clock runs."""
        self.last_received = now
        self.negotiation_deadline = now + negotiation_timeout

    def received(self, now: float) -> None:
        """Bytes came from the server: it is alive (whether it reads us, only ``<a/>`` says)."""
        self.last_received = now
        self.keepalive_deadline = None
        self.tell_time(now)

    def awaiting_ack(self, now: float | None) -> None:
        """Our stanzas are out and an ``<r/>`` asks for them: the acknowledgement clock runs.

        Without ``now`` (output taken without a time) it starts at the next time the client
        is told, so it can only run late, never fire early.
        """
        if self.ack_deadline is not None:
            return
        if now is None:
            self._ack_wait_unarmed = True
        else:
            self._ack_wait_unarmed = False
            self.ack_deadline = now + self._ack_timeout

    def ack_received(self) -> None:
        """An ``<a/>`` came: the server reads us; a new ``<r/>`` starts the clock again."""
        self.ack_deadline = None
        self._ack_wait_unarmed = False

    def tell_time(self, now: float) -> None:
        """Start an acknowledgement clock that was waiting for the time."""
        if self._ack_wait_unarmed:
            self._ack_wait_unarmed = False
            self.ack_deadline = now + self._ack_timeout

    def ack_expired(self, now: float) -> bool:
        """Whether our stanzas went unacknowledged for too long."""
        return self.ack_deadline is not None and now >= self.ack_deadline

    def negotiated(self) -> None:
        """The session is up: negotiation can no longer time out."""
        self.negotiation_deadline = None

    def track(self, iq_id: str, kind: IqKind, to: Jid | None, now: float) -> None:
        """Wait for the answer to the request ``iq_id`` sent at ``now``."""
        self.pending[iq_id] = PendingIq(kind, to, now, now + self._iq_timeout)

    def keepalive_due_at(self) -> float:
        """When the silent server gets probed (once the session is up)."""
        return self.last_received + self._keepalive_interval

    def next_deadline(self, *, ready: bool) -> float | None:
        """The earliest deadline; the keep-alive probe counts only when the session is ``ready``."""
        deadlines = [pending.deadline for pending in self.pending.values()]
        if self.negotiation_deadline is not None:
            deadlines.append(self.negotiation_deadline)
        if self.ack_deadline is not None:
            deadlines.append(self.ack_deadline)
        if self.keepalive_deadline is not None:
            deadlines.append(self.keepalive_deadline)
        elif ready:
            deadlines.append(self.keepalive_due_at())
        return min(deadlines) if deadlines else None

    def negotiation_expired(self, now: float) -> bool:
        """Whether the session failed to come up in time."""
        return self.negotiation_deadline is not None and now >= self.negotiation_deadline

    def probe_expired(self, now: float) -> bool:
        """Whether the keep-alive probe went unanswered for too long."""
        return self.keepalive_deadline is not None and now >= self.keepalive_deadline

    def take_expired_requests(self, now: float) -> list[str]:
        """The ids of requests whose answer is overdue, forgotten from now on."""
        expired = [iq_id for iq_id, pending in self.pending.items() if now >= pending.deadline]
        for iq_id in expired:
            del self.pending[iq_id]
        return expired

    def probe_due(self, now: float) -> bool:
        """Whether the server has been silent long enough to probe, with no probe out."""
        return self.keepalive_deadline is None and now >= self.keepalive_due_at()

    def probe_sent(self, now: float, keepalive_timeout: float) -> None:
        """A probe went out at ``now``: the server must answer within ``keepalive_timeout``."""
        self.keepalive_deadline = now + keepalive_timeout
