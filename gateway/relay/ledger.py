"""The inbound ledger: each IncomingMessage from its arrival until the device acknowledged it.

The relay must be able to tell a message's sender what became of it (RFC 2779 §4.2.1, §5.4.1):
a receipt once the device acknowledged it (XEP-0184), a stanza error when the device's queue
refused it or it expired there. So every IncomingMessage is remembered by its wire id with its
sender and upstream id until then (at most ``max_owed_receipts``, the oldest forgotten first),
and a message queued for a sleeping device is watched for ``queue_lifetime`` (at most
``max_tracked_queue``). The ledger also counts what was queued for the device's MissedSummary:
messages, reports, presence and requests (coalesced ones once), expired messages.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable

from gateway.relay.config import RelayConfig
from gateway.wire import DeliveryReport, MissedSummary, PresenceNotification, SubscriptionRequest
from gateway.wire import Message as WireMessage
from gateway.xmpp import Jid

__all__ = ["InboundLedger", "Sender"]

_SUMMARY_FIELDS: dict[type, str] = {
    DeliveryReport: "delivery_reports",
    PresenceNotification: "presence_notifications",
    SubscriptionRequest: "subscription_requests",
}


@dataclasses.dataclass(frozen=True)
class Sender:
    """Whom to tell what became of an IncomingMessage: its sender and the stanza's id."""

    address: Jid
    upstream_id: str | None


@dataclasses.dataclass(slots=True)
class _Inbound:
    sender: Sender
    receipt_requested: bool


class InboundLedger:
    """What the relay remembers of inbound messages (see the module docstring)."""

    __slots__ = (
        "_coalesced",
        "_config",
        "_count",
        "_expiry",
        "_inbound",
        "_missed",
        "_queue_may_hold",
    )

    def __init__(
        self, config: RelayConfig, summary: MissedSummary, count: Callable[[str], None]
    ) -> None:
        self._config = config
        self._count = count
        self._inbound: OrderedDict[int, _Inbound] = OrderedDict()
        self._expiry: dict[int, float | None] = {}  # queued messages: when each expires
        self._missed = dataclasses.asdict(summary)
        self._coalesced: set[str] | None = None  # keys queued since the last drain, if any
        self._queue_may_hold = any(self._missed.values())

    @property
    def owed_receipts(self) -> int:
        """Messages whose sender asked for a receipt that the device has not earned yet."""
        return sum(entry.receipt_requested for entry in self._inbound.values())

    @property
    def tracked(self) -> int:
        """Queued messages watched for expiry."""
        return len(self._expiry)

    def arrived(self, message_id: int, sender: Sender, receipt_requested: bool) -> None:
        """IncomingMessage ``message_id`` was made from a stanza of ``sender``."""
        self._inbound[message_id] = _Inbound(sender, receipt_requested)
        while len(self._inbound) > self._config.max_owed_receipts:
            _, forgotten = self._inbound.popitem(last=False)
            self._count("receipt-forgotten" if forgotten.receipt_requested else "sender-forgotten")

    def queued_message(self, message_id: int, now: float) -> float | None:
        """The message goes to the queue of a device that does not listen: when it expires."""
        self._missed["messages"] += 1
        if len(self._expiry) >= self._config.max_tracked_queue:
            self._count("queue-untracked")
            return None
        expires_at = now + self._config.queue_lifetime
        self._expiry[message_id] = expires_at
        return expires_at

    def queued_other(self, message: WireMessage, coalesce_key: str | None) -> None:
        """A report, presence or request was queued (one with a known key replaced another)."""
        field = _SUMMARY_FIELDS.get(type(message))
        if field is None:
            return
        if coalesce_key is None:
            self._missed[field] += 1
            return
        if self._coalesced is None:
            self._coalesced = set()
        if coalesce_key not in self._coalesced:
            self._missed[field] += 1
            self._coalesced.add(coalesce_key)

    def delivered(self, message_id: int) -> Sender | None:
        """The device acknowledged ``message_id``: its sender if a receipt is owed."""
        self._expiry.pop(message_id, None)
        entry = self._inbound.pop(message_id, None)
        if entry is None or not entry.receipt_requested or entry.sender.upstream_id is None:
            return None
        return entry.sender

    def overflowed(self, message_id: int) -> Sender | None:
        """The queue refused ``message_id``: its sender, to be told (None if forgotten)."""
        if message_id in self._expiry:
            del self._expiry[message_id]
            self._missed["messages"] = max(0, self._missed["messages"] - 1)
        entry = self._inbound.pop(message_id, None)
        return None if entry is None else entry.sender

    def next_expiry(self) -> float | None:
        """When the next queued message expires."""
        return min((e for e in self._expiry.values() if e is not None), default=None)

    def expire(self, now: float) -> list[tuple[int, Sender | None]]:
        """The queued messages expired at ``now``, each with its sender (None if forgotten)."""
        expired: list[tuple[int, Sender | None]] = []
        for message_id, expires_at in list(self._expiry.items()):
            if expires_at is not None and now >= expires_at:
                del self._expiry[message_id]
                entry = self._inbound.pop(message_id, None)
                self._missed["expired"] += 1
                self._missed["messages"] = max(0, self._missed["messages"] - 1)
                expired.append((message_id, None if entry is None else entry.sender))
        return expired

    def summary(self) -> MissedSummary:
        """What was queued since the device last listened."""
        return MissedSummary(**self._missed)

    def drained(self) -> bool:
        """The queue goes to the device now: whether it may hold anything; counting restarts."""
        drain = self._queue_may_hold or any(self._missed.values())
        self._expiry = {}  # being delivered now; no longer the relay's to expire
        self._missed = dict.fromkeys(self._missed, 0)
        self._coalesced = None
        self._queue_may_hold = False
        return drain
