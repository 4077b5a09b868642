"""The device's messages on their way: each SendMessage until its outcome is known.

A SendMessage is tracked from the moment it goes upstream until a receipt (XEP-0184), a stanza
error, a dropped stanza or ``report_timeout`` of silence decides it (RFC 2779 §4.2.1), both by the
device's id (retransmissions) and by the upstream id the relay gave it (what comes back).
:data:`FAILURE_REASONS` maps a stanza error's condition (RFC 6120 §8.3.3) onto the wire's
:class:`~gateway.wire.FailureReason`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from gateway.relay import commands as cmd
from gateway.wire import DeliveryReport, DeliveryStatus, FailureReason, SendMessage
from gateway.xmpp import Jid, StanzaErrorCondition

__all__ = ["FAILURE_REASONS", "Outgoing", "OutgoingMessages"]

_C = StanzaErrorCondition
FAILURE_REASONS: dict[object, FailureReason] = {
    _C.ITEM_NOT_FOUND: FailureReason.RECIPIENT_UNKNOWN,
    _C.GONE: FailureReason.RECIPIENT_UNKNOWN,
    _C.JID_MALFORMED: FailureReason.RECIPIENT_UNKNOWN,
    _C.RECIPIENT_UNAVAILABLE: FailureReason.RECIPIENT_UNAVAILABLE,
    _C.SERVICE_UNAVAILABLE: FailureReason.RECIPIENT_UNAVAILABLE,
    _C.FORBIDDEN: FailureReason.NOT_AUTHORIZED,
    _C.NOT_AUTHORIZED: FailureReason.NOT_AUTHORIZED,
    _C.NOT_ALLOWED: FailureReason.NOT_AUTHORIZED,
    _C.SUBSCRIPTION_REQUIRED: FailureReason.NOT_AUTHORIZED,
    _C.REGISTRATION_REQUIRED: FailureReason.NOT_AUTHORIZED,
    _C.REMOTE_SERVER_NOT_FOUND: FailureReason.REMOTE_SERVER_UNREACHABLE,
    _C.REMOTE_SERVER_TIMEOUT: FailureReason.REMOTE_SERVER_UNREACHABLE,
    _C.POLICY_VIOLATION: FailureReason.REJECTED,
    _C.NOT_ACCEPTABLE: FailureReason.REJECTED,
    _C.RESOURCE_CONSTRAINT: FailureReason.RESOURCE_CONSTRAINT,
}

_NO_IDS: frozenset[int] = frozenset()  # shared by every relay restored with no ids


@dataclasses.dataclass(slots=True)
class Outgoing:
    """A SendMessage awaiting its outcome."""

    device_message_id: int
    upstream_id: str
    want_report: bool
    deadline: float
    acknowledged: bool = False


class OutgoingMessages:
    """The SendMessages awaiting an outcome, by device id and by upstream id.

    ``restored_ids`` are ids the store remembers from before a restart: seen, outcome unknown
    here, so a retransmission of one is acknowledged again and never resent.
    """

    __slots__ = (
        "_by_device_id",
        "_by_upstream_id",
        "_counter",
        "_prefix",
        "_report_timeout",
        "_restored_ids",
    )

    def __init__(self, prefix: str, report_timeout: float, restored_ids: Iterable[int]) -> None:
        self._prefix = prefix  # upstream ids are this, then a counter
        self._report_timeout = report_timeout
        self._restored_ids = frozenset(restored_ids) or _NO_IDS
        self._counter = 0
        self._by_device_id: dict[int, Outgoing] = {}
        self._by_upstream_id: dict[str, Outgoing] = {}

    def __len__(self) -> int:
        return len(self._by_device_id)

    def retransmission(self, message_id: int) -> list[cmd.Command] | None:
        """The answer to a SendMessage whose id is known (None if it is new): acknowledged
        again if it was acknowledged (or restored), else nothing (its outcome will come)."""
        known = self._by_device_id.get(message_id)
        if known is not None:
            return [cmd.AcknowledgeDevice(message_id)] if known.acknowledged else []
        if message_id in self._restored_ids:
            return [cmd.AcknowledgeDevice(message_id)]
        return None

    def start(
        self, message: SendMessage, recipient: Jid, signed: bytes | None, now: float
    ) -> list[cmd.Command]:
        """Send ``message`` upstream with a fresh upstream id and track it until its outcome."""
        self._counter += 1
        record = Outgoing(
            message.id,
            f"{self._prefix}{self._counter}",
            message.want_report,
            now + self._report_timeout,
        )
        self._by_device_id[record.device_message_id] = record
        self._by_upstream_id[record.upstream_id] = record
        return [
            cmd.RecordDeduplicationId(message.id),
            cmd.UpstreamSendMessage(
                to=recipient,
                content=message.content,
                message_id=record.upstream_id,
                device_message_id=message.id,
                signed=signed,
                request_receipt=True,
            ),
        ]

    def acknowledged(self, upstream_ids: Iterable[str | None]) -> list[cmd.Command]:
        """The server accepted these stanzas (XEP-0198): the device may forget its messages."""
        commands: list[cmd.Command] = []
        for upstream_id in upstream_ids:
            record = self._by_upstream_id.get(upstream_id or "")
            if record is not None and not record.acknowledged:
                record.acknowledged = True
                commands.append(cmd.AcknowledgeDevice(record.device_message_id))
        return commands

    def by_upstream_id(self, upstream_id: str) -> Outgoing | None:
        """The record the upstream names by ``upstream_id``."""
        return self._by_upstream_id.get(upstream_id)

    def finish(
        self,
        record: Outgoing,
        status: DeliveryStatus,
        reason: FailureReason | None,
        report: Callable[[DeliveryReport], list[cmd.Command]],
    ) -> list[cmd.Command]:
        """The final outcome of a SendMessage: acknowledge, ``report`` it, forget its id.

        A DELIVERED outcome is reported only if the device asked (``want_report``).
        """
        del self._by_device_id[record.device_message_id]
        del self._by_upstream_id[record.upstream_id]
        if not self._by_device_id:  # nothing awaits an outcome: drop the tables they grew
            self._by_device_id, self._by_upstream_id = {}, {}
        commands: list[cmd.Command] = []
        if not record.acknowledged:
            commands.append(cmd.AcknowledgeDevice(record.device_message_id))
        if status is not DeliveryStatus.DELIVERED or record.want_report:
            commands += report(DeliveryReport(record.device_message_id, status, reason))
        commands.append(cmd.ForgetDeduplicationId(record.device_message_id))
        return commands

    def next_deadline(self) -> float | None:
        """The earliest report timeout."""
        return min((o.deadline for o in self._by_device_id.values()), default=None)

    def due(self, now: float) -> list[Outgoing]:
        """The records whose report timeout has passed at ``now``."""
        return [o for o in self._by_device_id.values() if now >= o.deadline]
