"""Events the session cores return: frozen dataclasses named in the past tense.

The two that open a session are ``DeviceSession...`` so that the service can import them next to
the XMPP client's ``SessionEstablished`` / ``SessionResumed`` (gateway.xmpp.events), which name the
upstream account's session, without aliasing either.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from gateway import wire


class Event:
    """Base class of session events."""

    __slots__ = ()


@dataclass(frozen=True)
class DeviceSessionEstablished(Event):
    """A full handshake completed; ``peer_identity`` names the authenticated peer."""

    connection_id: bytes
    peer_identity: bytes


@dataclass(frozen=True)
class DeviceSessionResumed(Event):
    """A session was resumed from a ticket in one round trip, without a handshake."""

    connection_id: bytes
    peer_identity: bytes


@dataclass(frozen=True)
class OperationReceived(Event):
    """One wire message arrived, exactly once and in order.

    ``receipt`` is unique within the session. A gateway that holds acknowledgements
    (``GatewayConfig.hold_acknowledgements``) acknowledges the record the message came in only
    once the application has released the receipt of every message in it
    (``GatewaySessions.release``): release it when the operation is durable.
    """

    message: wire.Message
    receipt: int


@dataclass(frozen=True)
class OperationRejected(Event):
    """An authenticated record held operations the wire codec refused (docs/protocol.md §4.7).

    The record still counts as received and is acknowledged; the application answers with a wire
    Error carrying ``error`` 's code.
    """

    error: wire.RemoteWireError


@dataclass(frozen=True)
class OperationAcknowledged(Event):
    """Every record of the operation numbered ``operation_id`` was acknowledged by the peer.

    ``message`` is the operation itself, so that a device can tell which of its messages the
    gateway now holds durably (docs/protocol.md §3.5).
    """

    operation_id: int
    message: wire.Message = field(repr=False)


@dataclass(frozen=True)
class TicketReceived(Event):
    """The gateway issued a resumption ticket (device side)."""

    ticket: bytes
    resumption_secret: bytes = field(repr=False)  # a secret: never in a repr or a log line
    lifetime: int


@dataclass(frozen=True)
class PathMigrated(Event):
    """The peer's address changed (NAT rebinding or mobility); validation has started."""

    old_address: Hashable
    new_address: Hashable


@dataclass(frozen=True)
class PathValidated(Event):
    """The peer proved it receives at ``address`` (RFC 9000 §8.2)."""

    address: Hashable


@dataclass(frozen=True)
class KeyUpdated(Event):
    """The sending key of this endpoint moved to the next key phase."""

    phase: int


@dataclass(frozen=True)
class SessionClosed(Event):
    """The session ended; ``reason`` says why (never contains secrets)."""

    reason: str
