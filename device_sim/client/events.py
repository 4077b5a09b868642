"""Events the device client returns to its application: frozen dataclasses, past tense.

They are what a device's user interface would show: a message that arrived (once), the fate of a
message the device sent, a contact's presence, and the device's own sleep and wake. Message bodies
are kept out of ``repr`` so that an event logged by mistake does not leak one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway import wire


class ClientEvent:
    """Base class of device client events."""

    __slots__ = ()


@dataclass(frozen=True)
class Connected(ClientEvent):
    """A session with the gateway is open; ``resumed`` when a ticket opened it in one round trip."""

    resumed: bool


@dataclass(frozen=True)
class MessageArrived(ClientEvent):
    """An instant message for the device, shown once whatever the network repeated."""

    message_id: int
    sender: wire.ContactRef
    text: str | None = field(repr=False)
    timestamp: int


@dataclass(frozen=True)
class DeliveryReported(ClientEvent):
    """The gateway's final word on a message the device sent; the device may now forget it."""

    message_id: int
    status: wire.DeliveryStatus
    reason: wire.FailureReason | int | None


@dataclass(frozen=True)
class PresenceChanged(ClientEvent):
    """A contact's presence as the gateway relayed it."""

    contact: wire.ContactRef
    available: bool
    show: wire.Show


@dataclass(frozen=True)
class BacklogAnnounced(ClientEvent):
    """After a Wake: what the gateway held while the device slept (a MissedSummary)."""

    messages: int
    delivery_reports: int


@dataclass(frozen=True)
class Slept(ClientEvent):
    """The device told the gateway it sleeps and turned its radio off until ``wake_at``."""

    wake_at: float


@dataclass(frozen=True)
class Woke(ClientEvent):
    """The device turned its radio on again and started resuming its session."""

    with_ticket: bool


@dataclass(frozen=True)
class ClientClosed(ClientEvent):
    """The client stopped: closed by the application or the gateway, or failed (``failed``)."""

    reason: str
    failed: bool
