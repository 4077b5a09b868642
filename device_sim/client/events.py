"""Events the device client returns to its application: frozen dataclasses, past tense.

They are what a device's user interface would show: a message that arrived (once), the fate of a
message the device sent (accepted by the gateway, then reported), a contact's presence, and the
device's own sleep and wake. Message bodies are kept out of ``repr`` so that an event logged by
mistake does not leak one.
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
class MessageAccepted(ClientEvent):
    """The gateway acknowledged a message the device sent: it is durable at the gateway and will
    not be sent again; its DeliveryReport is still to come when one was asked for."""

    message_id: int


@dataclass(frozen=True)
class DeliveryReported(ClientEvent):
    """The gateway's final word on a message the device sent; the device may now forget it."""

    message_id: int
    status: wire.DeliveryStatus
    reason: wire.FailureReason | int | None


@dataclass(frozen=True)
class OperationRefused(ClientEvent):
    """The gateway answered an operation with a wire Error (docs/protocol.md §6.3, §8.1).

    ``message_id`` is the refused SendMessage's id when the Error names one (its type is
    SendMessage and it carries the id), else None. ``retry_at`` is when the client sends that
    message again (a code that means "later": RATE_LIMITED, QUEUE_FULL, UPSTREAM_UNAVAILABLE,
    INTERNAL); None when it will not: the refusal is final, and a message that awaited a report
    gets a FAILED :class:`DeliveryReported` right after this event.
    """

    message_id: int | None
    code: wire.ErrorCode | int
    message_type: int | None = None
    retry_at: float | None = None


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
