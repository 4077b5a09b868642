"""The session layer's error tree: our misuse versus the peer's fault, each with a drop reason.

Every function that reads network bytes (``..._untrusted``) raises only :class:`PacketError` (a
:class:`RemoteSessionError`); the receive paths catch :class:`RemoteSessionError`, drop the packet
and count it under its :class:`DropReason` without ending any loop.
"""

from __future__ import annotations

import enum


class DropReason(enum.Enum):
    """Why an incoming packet was dropped; the keys of the per-reason counters."""

    MALFORMED = "malformed"  # does not parse as a packet
    UNKNOWN_CONNECTION = "unknown_connection"  # no session holds this connection id
    AUTHENTICATION_FAILED = "authentication_failed"  # AEAD open failed (forged, corrupt, stale)
    REPLAYED = "replayed"  # already seen, or left of the replay window
    OUT_OF_WINDOW = "out_of_window"  # too far ahead of the receive window
    UNEXPECTED = "unexpected"  # valid packet that the state machine does not accept now
    RATE_LIMITED = "rate_limited"  # per-address or per-device budget exhausted
    HANDSHAKE_FAILED = "handshake_failed"  # the handshake rejected a message
    TICKET_REJECTED = "ticket_rejected"  # resumption ticket bad, expired or already used
    COOKIE_REQUIRED = "cookie_required"  # under load: answered with a stateless retry
    TOO_LARGE = "too_large"  # exceeds a configured size limit
    AMPLIFICATION_LIMITED = "amplification_limited"  # outgoing packet held back by the 3x bound


class SessionError(Exception):
    """Base of every session-layer error."""

    reason: DropReason = DropReason.UNEXPECTED

    def __init__(self, message: str, *, reason: DropReason | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class LocalSessionError(SessionError, ValueError):
    """We used the API wrongly (wrong state, oversized operation, exhausted sequence numbers).

    Also a ``ValueError``, as ``gateway.wire.LocalWireError`` is: an invalid argument or
    configuration is this kind of error and reads as Python's convention for one.
    """


class RemoteSessionError(SessionError):
    """The peer (or an attacker in its place) sent something we must reject."""


class PacketError(RemoteSessionError):
    """Bytes from the network that do not parse as a session packet."""

    reason = DropReason.MALFORMED


class RecordRejectedError(RemoteSessionError):
    """A protected record that failed authentication, replay or window checks."""

    reason = DropReason.AUTHENTICATION_FAILED


class DuplicateRecordError(RecordRejectedError):
    """A record that authenticated but was already received (the peer's retransmission)."""

    reason = DropReason.REPLAYED


class SessionFailedError(RemoteSessionError):
    """The session cannot continue (peer violated the protocol, or it stopped answering)."""
