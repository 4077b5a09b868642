"""What the store holds, as frozen dataclasses: one record type per table, plus the results that
tell a caller what became of a queued item.

Secrets (a SCRAM salted password, a password at rest) are excluded from every ``repr`` so a record
that reaches a log or a traceback shows none of them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EnrollmentState(enum.Enum):
    """A device's enrollment state; a revoked device is refused handshakes and resumptions."""

    ENROLLED = "enrolled"
    REVOKED = "revoked"


@dataclass(frozen=True)
class DeviceRecord:
    """One enrolled (or revoked) device: its EDHOC key id and credential and its bound account."""

    kid: bytes
    credential: bytes
    account_jid: str
    state: EnrollmentState = EnrollmentState.ENROLLED
    created_at: float = 0.0
    revoked_at: float | None = None


@dataclass(frozen=True)
class UpstreamCredential:
    """How the gateway logs in to one account (RFC 5802 SCRAM).

    The SCRAM salted password (``Hi(password, salt, i)``) with its salt, iteration count and hash
    name lets the gateway answer the server's challenge without the password. ``password`` is set
    only where the server's mechanism needs the password itself (PLAIN on loopback, or a server
    that changes the salt); it is stored in its own column and never shown by ``repr``.
    """

    account_jid: str
    hash_name: str
    salt: bytes
    iterations: int
    salted_password: bytes = field(repr=False)
    password: str | None = field(default=None, repr=False)
    updated_at: float = 0.0


@dataclass(frozen=True)
class ContactAlias:
    """A small integer the gateway assigned to one contact of one device; stable while the
    contact stays on the device's roster, so the device can name contacts in a byte or two."""

    device_kid: bytes
    alias: int
    contact_jid: str


class QueueKind(enum.Enum):
    """What a to-device queue item carries; presence items are coalesced per contact."""

    MESSAGE = "message"
    PRESENCE = "presence"
    SUBSCRIPTION = "subscription"
    CONTACTS = "contacts"
    REPORT = "report"


@dataclass(frozen=True)
class DeviceQueueItem:
    """One item waiting for a device, in the order the device will receive it (``seq``).

    ``coalesce_key`` names what a later item replaces: at most one item per (device, key) is
    queued (a contact's presence, a contact's pending subscription request)."""

    seq: int
    device_kid: bytes
    message_id: bytes
    kind: QueueKind
    payload: bytes = field(repr=False)
    enqueued_at: float
    expires_at: float | None
    coalesce_key: str | None = None


class UpstreamState(enum.Enum):
    """Where a to-upstream item stands: not yet written, written to the stream, acknowledged by
    the server (XEP-0198 ``<a h>``)."""

    PENDING = "pending"
    SENT = "sent"
    ACKED = "acked"


@dataclass(frozen=True)
class UpstreamQueueItem:
    """One stanza from a device waiting for (or on its way to) its account's server."""

    seq: int
    account_jid: str
    device_message_id: bytes
    payload: bytes = field(repr=False)
    state: UpstreamState
    enqueued_at: float
    updated_at: float


class EnqueueResult(enum.Enum):
    """What became of an item offered to a queue, so the caller can report it.

    ``OVERFLOW`` means the per-device (or per-account) limit refused it: nothing was stored and
    the sender must hear so (a stanza error, or a FAILED report). ``DUPLICATE`` means an item
    with the same message id is already queued: the earlier one stands.
    """

    QUEUED = "queued"
    REPLACED = "replaced"
    DUPLICATE = "duplicate"
    OVERFLOW = "overflow"


@dataclass(frozen=True)
class EnqueuedUpstream:
    """What :meth:`~gateway.store.GatewayStore.enqueue_upstream_once` did with a device's
    message: ``result`` QUEUED (``seq`` is its place), DUPLICATE (the device sent this id
    before: ``queued`` if it still waits in the queue, else it already left it, acknowledged by
    the server) or OVERFLOW (nothing stored, nothing remembered).

    ``generation`` is the acceptance of the id the answer is about (0 for its first): the one
    queued, or for a DUPLICATE the one accepted before. ``released`` (with DUPLICATE): the id
    was released after its final report and may be accepted again, as ``generation``; nothing
    was written, and the message is to be offered again with that generation's stanza id."""

    result: EnqueueResult
    seq: int | None
    queued: bool
    generation: int = 0
    released: bool = False


@dataclass(frozen=True)
class StreamResumption:
    """One upstream stream's XEP-0198 state: its resumption id and both counters, persisted so a
    restarted gateway resumes the stream and the server redelivers what was not acknowledged."""

    account_jid: str
    resumption_id: str
    h_inbound: int
    h_outbound: int
    location: str | None = None
    updated_at: float = 0.0
