"""What the XMPP client tells its user: one frozen dataclass per happening, named in the past tense.

:meth:`gateway.xmpp.client.XmppClient.receive_data_untrusted` and ``handle_timer`` return lists of
these.  Stanza elements carried here (``extensions``, ``unacknowledged``) are the parser's
:class:`xml.etree.ElementTree.Element` trees; treat them as read-only.
"""

from __future__ import annotations

import dataclasses
import enum
import xml.etree.ElementTree as ET

from gateway.xmpp.archive import ArchivedMessage
from gateway.xmpp.errors import StanzaError, XmppError
from gateway.xmpp.jid import Jid
from gateway.xmpp.stanzas import MessageStanza, PresenceStanza, RosterItem, SubscriptionKind

__all__ = [
    "ArchiveResultReceived",
    "Authenticated",
    "ConnectionClosed",
    "ConnectionOpened",
    "Event",
    "IqFailed",
    "IqResultReceived",
    "IqTimedOut",
    "KeyDerivationRequested",
    "MessageFailed",
    "MessageReceived",
    "PingAnswered",
    "PresenceFailed",
    "PresenceReceived",
    "ReceiptReceived",
    "ResumptionFailed",
    "RosterPushed",
    "RosterReceived",
    "SessionEstablished",
    "SessionResumed",
    "StanzaDropReason",
    "StanzaDropped",
    "StanzasAcknowledged",
    "StreamEnded",
    "SubscriptionReceived",
    "TlsRequested",
    "UpstreamSessionEvent",
]


class StanzaDropReason(enum.StrEnum):
    """Why a stanza was dropped: in :class:`StanzaDropped` and the client's ``dropped`` counters.

    A ``StrEnum``, so each member equals (and hashes as) its wire-style string.
    """

    # Outbound: a stanza we were asked to send (StanzaDropped.reason).
    TOO_LARGE = "too-large"  # over the server's advertised limit (XEP-0478), learnt once queued
    POLICY_VIOLATION = "policy-violation"  # in flight when the server ended the stream for policy
    REFUSED = "refused"  # refused by the upstream adapter before it reached the client
    # Inbound: a received stanza dropped and counted, the stream going on (STYLE rule 8).
    MALFORMED_MESSAGE = "malformed-message"
    MALFORMED_PRESENCE = "malformed-presence"
    MALFORMED_IQ = "malformed-iq"
    RECEIPT_WITHOUT_ID = "receipt-without-id"  # XEP-0184 <received/> without an id
    SUBSCRIPTION_WITHOUT_FROM = "subscription-without-from"
    PRESENCE_TYPE = "presence-type"  # probes and unknown types (RFC 6121 §4.3)
    IQ_WITHOUT_ID = "iq-without-id"
    ROSTER_PUSH_NOT_FROM_SERVER = "roster-push-not-from-server"  # RFC 6121 §2.1.6
    UNEXPECTED_IQ_ANSWER = "unexpected-iq-answer"  # no request of ours has that id
    IQ_ANSWER_FROM_ELSEWHERE = "iq-answer-from-elsewhere"  # RFC 6120 §8.1.2.1: spoofing
    MALFORMED_ARCHIVE_RESULT = "malformed-archive-result"  # XEP-0313 §4.2
    ARCHIVE_RESULT_FROM_ELSEWHERE = "archive-result-from-elsewhere"  # not our archive: spoofing


@dataclasses.dataclass(frozen=True)
class TlsRequested:
    """The server said ``<proceed/>`` (RFC 6120 §5.4.2.3): start TLS, then ``tls_established()``."""


@dataclasses.dataclass(frozen=True)
class Authenticated:
    """SASL succeeded and the server proved its knowledge of the password (SCRAM)."""

    mechanism: str


@dataclasses.dataclass(frozen=True)
class SessionEstablished:
    """A fresh session is bound to ``jid`` (RFC 6120 §7); stanzas flow from now on.

    ``resumable`` says whether XEP-0198 resumption was granted for this session.
    """

    jid: Jid
    stream_management: bool
    resumable: bool


@dataclasses.dataclass(frozen=True)
class SessionResumed:
    """The previous session was resumed (XEP-0198 §5); ``resent`` stanzas were sent again."""

    jid: Jid
    resent: int


@dataclasses.dataclass(frozen=True, eq=False)
class ResumptionFailed:
    """The server could not resume (XEP-0198 §5): a fresh session follows.

    ``unacknowledged`` are the stanzas the old session sent that the server never acknowledged,
    handed back so that they can be sent again on the fresh session (none is lost).
    """

    unacknowledged: tuple[ET.Element, ...]


@dataclasses.dataclass(frozen=True)
class StanzasAcknowledged:
    """The server acknowledged ``count`` more of our stanzas (XEP-0198 §4); ``ids`` their ids."""

    count: int
    ids: tuple[str | None, ...]


@dataclasses.dataclass(frozen=True)
class MessageReceived:
    """A message arrived; ``sequence`` is its XEP-0198 inbound number (0 without SM)."""

    message: MessageStanza
    sequence: int = 0


@dataclasses.dataclass(frozen=True)
class MessageFailed:
    """A message we sent bounced with a stanza error (RFC 6120 §8.3)."""

    id: str | None
    from_: Jid | None
    error: StanzaError


@dataclasses.dataclass(frozen=True)
class ReceiptReceived:
    """``from_`` confirmed delivery of our message ``message_id`` (XEP-0184 §5.2)."""

    from_: Jid | None
    message_id: str
    sequence: int = 0


@dataclasses.dataclass(frozen=True)
class PresenceReceived:
    """Someone's availability changed (RFC 6121 §4.4)."""

    presence: PresenceStanza
    sequence: int = 0


@dataclasses.dataclass(frozen=True)
class PresenceFailed:
    """A presence we sent bounced with a stanza error (RFC 6121 §4.7.2)."""

    from_: Jid | None
    error: StanzaError


@dataclasses.dataclass(frozen=True)
class SubscriptionReceived:
    """A subscription request, approval or cancellation arrived (RFC 6121 §3)."""

    from_: Jid
    kind: SubscriptionKind
    sequence: int = 0


@dataclasses.dataclass(frozen=True)
class RosterReceived:
    """The answer to our roster get (RFC 6121 §2.1.3)."""

    items: tuple[RosterItem, ...]
    version: str | None


@dataclasses.dataclass(frozen=True)
class RosterPushed:
    """The server pushed a roster change (RFC 6121 §2.1.6); already acknowledged."""

    item: RosterItem
    version: str | None


@dataclasses.dataclass(frozen=True, eq=False)
class IqResultReceived:
    """A result for one of our requests; ``payload`` is its child element, if any."""

    id: str
    from_: Jid | None
    payload: ET.Element | None


@dataclasses.dataclass(frozen=True)
class IqFailed:
    """One of our requests ended with a stanza error (RFC 6120 §8.3), a typed result."""

    id: str
    from_: Jid | None
    error: StanzaError


@dataclasses.dataclass(frozen=True)
class ArchiveResultReceived:
    """One result of our archive query (XEP-0313 §4.2), from the account's own archive."""

    result: ArchivedMessage


@dataclasses.dataclass(frozen=True)
class IqTimedOut:
    """No answer to our request ``id`` before its deadline."""

    id: str


@dataclasses.dataclass(frozen=True)
class PingAnswered:
    """Our XEP-0199 ping ``id`` was answered after ``round_trip`` seconds."""

    id: str
    round_trip: float


@dataclasses.dataclass(frozen=True)
class KeyDerivationRequested:
    """SCRAM needs its salted password (RFC 5802 Hi()) and no cached one fits.

    Run ``client.pending_key_derivation().derive()`` (a worker thread keeps the event loop free),
    then call ``client.key_derived(key, now)``.  The event carries no secret.
    """

    iterations: int


@dataclasses.dataclass(frozen=True, eq=False)
class StanzaDropped:
    """A stanza we were asked to send will never be sent: a delivery failure for its ``id``.

    ``reason`` is :attr:`StanzaDropReason.TOO_LARGE` (over the server's advertised limit,
    XEP-0478, learnt after it was queued), :attr:`StanzaDropReason.POLICY_VIOLATION` (the server
    closed the stream with ``<policy-violation/>`` while it was in flight, and it is the likely
    cause, so it is not resent on the next session, where it would end that one too) or
    :attr:`StanzaDropReason.REFUSED` (an upstream adapter refused it before sending).
    """

    id: str | None
    reason: StanzaDropReason
    size: int
    stanza: ET.Element


@dataclasses.dataclass(frozen=True)
class StreamEnded:
    """The stream is over: closed cleanly (``error`` None) or failed with ``error``.

    Send what ``data_to_send()`` still holds (perhaps a ``<stream:error/>``), then close the socket.
    """

    error: XmppError | None


Event = (
    TlsRequested
    | KeyDerivationRequested
    | StanzaDropped
    | Authenticated
    | SessionEstablished
    | SessionResumed
    | ResumptionFailed
    | StanzasAcknowledged
    | MessageReceived
    | MessageFailed
    | ReceiptReceived
    | PresenceReceived
    | PresenceFailed
    | SubscriptionReceived
    | RosterReceived
    | RosterPushed
    | IqResultReceived
    | IqFailed
    | IqTimedOut
    | ArchiveResultReceived
    | PingAnswered
    | StreamEnded
)


@dataclasses.dataclass(frozen=True)
class ConnectionOpened:
    """The connection manager reached ``host``:``port`` (a stream negotiation follows)."""

    host: str
    port: int


@dataclasses.dataclass(frozen=True)
class ConnectionClosed:
    """The connection manager lost or gave up a connection.

    ``reconnect_delay`` is the back-off before the next attempt, or None when the session stops
    (closed by us, or a failure retrying cannot fix, such as a refused password).
    """

    error: Exception | None
    reconnect_delay: float | None


UpstreamSessionEvent = Event | ConnectionOpened | ConnectionClosed
