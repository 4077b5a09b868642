"""Stream management bookkeeping (XEP-0198): ack counting, the unacknowledged queue, resumption.

Theory of operation.  Once ``<enabled/>`` arrives (XEP-0198 §3) both sides count the stanzas
(``<message/>``, ``<presence/>``, ``<iq/>``; not nonzas) they *handle* from the other, modulo 2^32
(§4).  We keep every stanza we send in :attr:`StreamManagement.unacknowledged` until the server's
``<a h='N'/>`` says it handled it; ``h`` may only move forward and never past what we sent (a
larger value is the peer's fault, §4 "handled-count-too-high").  Our own count of handled inbound
stanzas answers the server's ``<r/>``.

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

from gateway.xmpp.errors import LocalProtocolError, StreamCondition, StreamError
from gateway.xmpp.jid import Jid

__all__ = [
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


class StreamManagement:
    """Counters and the unacknowledged queue of one stream-managed session."""

    def __init__(self, *, max_unacknowledged: int = DEFAULT_MAX_UNACKNOWLEDGED) -> None:
        self.max_unacknowledged = max_unacknowledged
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

    def enable_untrusted(self, enabled: ET.Element) -> None:
        """Record the server's ``<enabled/>`` (XEP-0198 §3)."""
        self.enabled = True
        self.session_id = enabled.get("id")
        self.resumable = enabled.get("resume") in ("true", "1") and bool(self.session_id)
        self.location = enabled.get("location")
        maximum = enabled.get("max")
        self.max_resume_seconds = None
        if maximum is not None and maximum.isdigit() and len(maximum) < 10:
            self.max_resume_seconds = float(int(maximum))
        self.inbound_handled = 0
        self.outbound_acknowledged = 0

    def restore(self, token: ResumptionToken) -> None:
        """Take over a previous session's counters and queue before ``<resume/>``."""
        self.enabled = True
        self.resumable = True
        self.session_id = token.session_id
        self.location = token.location
        self.inbound_handled = token.inbound_handled
        self.outbound_acknowledged = token.outbound_acknowledged
        self.unacknowledged = collections.deque(token.unacknowledged)

    def record_sent(self, stanza: ET.Element) -> None:
        """Keep a stanza we are sending until the server acknowledges it."""
        if not self.enabled:
            return
        if len(self.unacknowledged) >= self.max_unacknowledged:
            raise LocalProtocolError("too many unacknowledged stanzas; wait for acks")
        self.unacknowledged.append(stanza)

    def record_handled(self) -> int:
        """Count one inbound stanza as handled; return its sequence number (1-based)."""
        if not self.enabled:
            return 0
        self.inbound_handled = (self.inbound_handled + 1) % _MODULO
        return self.inbound_handled

    def acknowledge_untrusted(self, handled: object) -> list[ET.Element]:
        """Apply the server's ``h`` (from ``<a/>``, ``<resumed/>`` or ``<failed/>``).

        Returns the stanzas it newly acknowledges; raises :class:`StreamError` if ``h`` is not a
        number or acknowledges more than we sent (XEP-0198 §4).
        """
        if not isinstance(handled, str) or not handled.isdigit() or len(handled) > 10:
            raise StreamError(StreamCondition.INVALID_XML, "'h' is not a 32-bit counter")
        value = int(handled)
        if value >= _MODULO:
            raise StreamError(StreamCondition.INVALID_XML, "'h' is not a 32-bit counter")
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
            inbound_handled=self.inbound_handled,
            outbound_acknowledged=self.outbound_acknowledged,
            unacknowledged=tuple(self.unacknowledged),
            location=self.location,
            expires_at=expires_at,
        )
