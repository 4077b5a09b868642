"""Stream management bookkeeping (XEP-0198): ack counting, the unacknowledged queue, resumption.

Theory of operation.  Once ``<enabled/>`` arrives (XEP-0198 §3) both sides count the stanzas
(``<message/>``, ``<presence/>``, ``<iq/>``; not nonzas) they *handle* from the other, modulo 2^32
(§4).  We keep every stanza we send in :attr:`StreamManagement.unacknowledged` until the server's
``<a h='N'/>`` says it handled it; ``h`` may only move forward and never past what we sent (a
larger value is the peer's fault, §4 "handled-count-too-high").  Our own count of handled inbound
stanzas answers the server's ``<r/>``.

Deferred inbound acknowledgement.  By default an inbound stanza counts as handled once it is
parsed.  With :attr:`StreamManagement.defer_inbound` the count we report (in ``<a h='N'/>`` and in
``<resume h='N'/>``) covers only a *prefix* of the inbound stanzas that the application has
finished with (:meth:`StreamManagement.acknowledge_inbound`; stanzas the client consumes itself are
acknowledged by it, in order, so ``h`` still counts every stanza, §4), and never more than the
application has said it made durable (:meth:`StreamManagement.release_inbound`): a gateway that
persists ``h`` to resume after a crash must never have told the server more than it persisted,
or the server refuses the resumption (its queue already dropped what we acknowledged).  What the
server sent and we did not report is resent by it after ``<resume/>`` (§5), so nothing the
application had not made durable is lost when the process dies.

When the connection breaks, :meth:`StreamManagement.resumption_token` keeps what a new connection
needs to ``<resume/>`` (§5): the session id, our inbound count and the unacknowledged stanzas.  On
``<resumed h='N'/>`` the stanzas the server handled are dropped and the rest are sent again; on
``<failed/>`` they are handed back for a fresh session, so nothing is lost either way.
"""

from __future__ import annotations

import collections
import dataclasses
import xml.etree.ElementTree as ET
from typing import Final

from gateway.xmpp.errors import LocalXmppError, StreamCondition, StreamError
from gateway.xmpp.jid import Jid

__all__ = [
    "DEFAULT_INBOUND_ACK_DELAY",
    "DEFAULT_INBOUND_ACK_THRESHOLD",
    "DEFAULT_MAX_UNACKNOWLEDGED",
    "SM_NS",
    "ResumptionToken",
    "StreamManagement",
]

SM_NS: Final = "urn:xmpp:sm:3"  # XEP-0198 §2
# XEP-0198 §4: h is an unsigned 32-bit counter that wraps.
_MODULO: Final = 2**32
# Stanzas sent but not yet acknowledged; past this the client refuses more (back-pressure), since
# every one of them must be kept in memory for resending.
DEFAULT_MAX_UNACKNOWLEDGED: Final = 10_000
# Deferred inbound acks: tell the server without being asked once this many more stanzas are
# acknowledged (it can then drop them from its queue, which it bounds)...
DEFAULT_INBOUND_ACK_THRESHOLD: Final = 16
# ...or this many seconds after the first one not yet reported (a trickle is reported too).
DEFAULT_INBOUND_ACK_DELAY: Final = 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class ResumptionToken:
    """What a new connection needs to resume a stream-managed session (XEP-0198 §5)."""

    session_id: str
    jid: Jid
    inbound_handled: int
    outbound_acknowledged: int
    unacknowledged: tuple[ET.Element, ...]
    location: str | None = None
    expires_at: float | None = None
    # Restored from storage after a restart: the stanzas we had sent are gone with the process,
    # so the server's first h is taken as it is rather than checked against them (§5).
    outbound_unknown: bool = False


class StreamManagement:
    """Counters and the unacknowledged queue of one stream-managed session."""

    def __init__(
        self,
        *,
        max_unacknowledged: int = DEFAULT_MAX_UNACKNOWLEDGED,
        defer_inbound: bool = False,
        inbound_ack_threshold: int = DEFAULT_INBOUND_ACK_THRESHOLD,
    ) -> None:
        self.max_unacknowledged = max_unacknowledged
        self.defer_inbound = defer_inbound
        self.inbound_ack_threshold = inbound_ack_threshold
        self.reset()

    def reset(self) -> None:
        """Forget the session (after a failed resumption), keeping the limits."""
        self.enabled = False
        self.resumable = False
        self.session_id: str | None = None
        self.location: str | None = None
        self.max_resume_seconds: float | None = None
        self.inbound_handled = 0  # stanzas received and handled since enabled (mod 2^32)
        self.outbound_acknowledged = 0  # the last h the server sent (mod 2^32)
        self.unacknowledged: collections.deque[ET.Element] = collections.deque()
        self.ack_requested = False  # an <r/> of ours is outstanding
        self._outbound_unknown = False
        self._reset_inbound(0)

    def _reset_inbound(self, start: int) -> None:
        """Start deferred inbound bookkeeping at the count ``start`` (0, or a resumed h).

        Counts here are not wrapped (Python integers); only what goes on the wire is mod 2^32.
        """
        self._received = start  # stanzas received, including the ``start`` already handled
        self._pending: collections.deque[int] = collections.deque()  # received, not yet done
        self._done_early: set[int] = set()  # done, but behind a stanza still pending
        self._released = start  # the application has made this count durable
        self._reported = start  # the last h we sent

    def enable_untrusted(self, enabled: ET.Element) -> None:
        """Record the server's ``<enabled/>`` (XEP-0198 §3)."""
        self.enabled = True
        self.session_id = enabled.get("id")
        self.resumable = enabled.get("resume") in ("true", "1") and bool(self.session_id)
        self.location = enabled.get("location")
        maximum = enabled.get("max")
        self.max_resume_seconds = None
        if maximum is not None and maximum.isascii() and maximum.isdigit() and len(maximum) < 10:
            self.max_resume_seconds = float(int(maximum))
        self.inbound_handled = 0
        self.outbound_acknowledged = 0
        self._reset_inbound(0)

    def restore(self, token: ResumptionToken) -> None:
        """Take over a previous session's counters and queue before ``<resume/>``."""
        self.enabled = True
        self.resumable = True
        self.session_id = token.session_id
        self.location = token.location
        self.inbound_handled = token.inbound_handled
        self.outbound_acknowledged = token.outbound_acknowledged
        self.unacknowledged = collections.deque(token.unacknowledged)
        self._outbound_unknown = token.outbound_unknown and not token.unacknowledged
        self._reset_inbound(token.inbound_handled)

    def record_sent(self, stanza: ET.Element) -> None:
        """Keep a stanza we are sending until the server acknowledges it."""
        if not self.enabled:
            return
        if len(self.unacknowledged) >= self.max_unacknowledged:
            raise LocalXmppError("too many unacknowledged stanzas; wait for acks")
        self.unacknowledged.append(stanza)

    def record_handled(self) -> int:
        """Count one inbound stanza as handled; return its sequence number (1-based)."""
        if not self.enabled:
            return 0
        self.inbound_handled = (self.inbound_handled + 1) % _MODULO
        self._received += 1
        if self.defer_inbound:
            self._pending.append(self._received)
        return self.inbound_handled

    # -- deferred inbound acknowledgement ---------------------------------------------------

    def acknowledge_inbound(self, sequence: int) -> None:
        """The application is done with the inbound stanza numbered ``sequence`` (mod 2^32).

        Idempotent; a number not received on this stream (0, a future one, one already done)
        is ignored, so what is reported never passes what was received.
        """
        if not (self.enabled and self.defer_inbound and self._pending):
            return
        if not 0 < sequence < _MODULO:
            return
        # The most recent stanza with this number (counts wrap only after 2^32 stanzas).
        unwrapped = self._received - (self.inbound_handled - sequence) % _MODULO
        if unwrapped < self._pending[0]:
            return
        self._done_early.add(unwrapped)
        while self._pending and self._pending[0] in self._done_early:
            self._done_early.discard(self._pending.popleft())

    def release_inbound(self, handled: int) -> None:
        """The application has made ``handled`` (an :attr:`inbound_acknowledged` value) durable."""
        if not (self.defer_inbound and 0 <= handled < _MODULO):
            return
        unwrapped = self._received - (self.inbound_handled - handled) % _MODULO
        self._released = max(self._released, min(unwrapped, self._acknowledged()))

    def _acknowledged(self) -> int:
        return self._pending[0] - 1 if self._pending else self._received

    @property
    def inbound_acknowledged(self) -> int:
        """Received stanzas done with, in order (mod 2^32): what :meth:`release_inbound` takes."""
        if not self.defer_inbound:
            return self.inbound_handled
        return self._acknowledged() % _MODULO

    def reportable_inbound(self) -> int:
        """The ``h`` we may tell the server now (mod 2^32): see the module docstring."""
        if not self.defer_inbound:
            return self.inbound_handled
        return min(self._acknowledged(), self._released) % _MODULO

    def inbound_unreported(self) -> int:
        """How many stanzas we could report beyond the last ``h`` we sent."""
        if not self.defer_inbound:
            return 0
        return min(self._acknowledged(), self._released) - self._reported

    def reported_inbound(self) -> int:
        """Record that :meth:`reportable_inbound` was just sent; return it."""
        self._reported = min(self._acknowledged(), self._released)
        return self.reportable_inbound()

    def acknowledge_untrusted(self, handled: object) -> list[ET.Element]:
        """Apply the server's ``h`` (from ``<a/>``, ``<resumed/>`` or ``<failed/>``).

        Returns the stanzas it newly acknowledges; raises :class:`StreamError` if ``h`` is not a
        number or acknowledges more than we sent (XEP-0198 §4).
        """
        if (
            not isinstance(handled, str)
            or not (handled.isascii() and handled.isdigit())
            or len(handled) > 10
        ):
            raise StreamError(StreamCondition.INVALID_XML, "'h' is not a 32-bit counter")
        value = int(handled)
        if value >= _MODULO:
            raise StreamError(StreamCondition.INVALID_XML, "'h' is not a 32-bit counter")
        if self._outbound_unknown:
            self._outbound_unknown = False
            self.outbound_acknowledged = value
            return []
        newly = (value - self.outbound_acknowledged) % _MODULO
        if newly > len(self.unacknowledged):
            raise StreamError(StreamCondition.UNDEFINED_CONDITION, "handled-count-too-high")
        acknowledged = [self.unacknowledged.popleft() for _ in range(newly)]
        self.outbound_acknowledged = value
        return acknowledged

    def take_unacknowledged(self) -> tuple[ET.Element, ...]:
        """Remove and return every unacknowledged stanza (resumption failed)."""
        stanzas = tuple(self.unacknowledged)
        self.unacknowledged.clear()
        return stanzas

    def resumption_token(self, jid: Jid, now: float) -> ResumptionToken | None:
        """What a new connection needs to resume, or None if this session cannot be resumed."""
        if not (self.enabled and self.resumable and self.session_id):
            return None
        expires_at = None if self.max_resume_seconds is None else now + self.max_resume_seconds
        return ResumptionToken(
            session_id=self.session_id,
            jid=jid,
            inbound_handled=self.reportable_inbound(),
            outbound_acknowledged=self.outbound_acknowledged,
            unacknowledged=tuple(self.unacknowledged),
            location=self.location,
            expires_at=expires_at,
        )
