"""What the relay asks its caller to do: frozen dataclasses in three families.

* :data:`DeviceCommand` -- toward the device: send now, queue for a sleeping device, drain the
  queue, acknowledge an operation, drop an expired queued item.
* :data:`UpstreamCommand` -- toward the account's domain, through an abstract upstream: nothing
  here names XMPP, so a XEP-0114 component or a SIP upstream can carry out the same commands
  (:mod:`gateway.relay.xmpp_upstream` is the XMPP client's adapter).
* :data:`StoreCommand` -- for the durable store, carried out by the service layer.

Commands are returned in the order they must take effect: a :class:`DrainQueue` is carried out
(the queued items handed to the session) before any later :class:`SendToDevice`.
"""

from __future__ import annotations

import dataclasses
import enum

from gateway.wire import Content, FailureReason, Show
from gateway.wire import Message as WireMessage
from gateway.xmpp import Jid

__all__ = [
    "AcknowledgeDevice",
    "Command",
    "DeviceCommand",
    "DrainQueue",
    "DropQueued",
    "EnqueueForDevice",
    "ForgetDeduplicationId",
    "PersistAlias",
    "PersistContactListVersion",
    "RecordDeduplicationId",
    "ReleaseAlias",
    "SendToDevice",
    "StoreCommand",
    "SubscriptionVerb",
    "UpstreamBlock",
    "UpstreamCommand",
    "UpstreamDeliveryFailed",
    "UpstreamRosterRequest",
    "UpstreamSendMessage",
    "UpstreamSendPresence",
    "UpstreamSendReceipt",
    "UpstreamSetActive",
    "UpstreamSubscription",
    "UpstreamSync",
    "UpstreamUnblock",
]


# -- toward the device ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SendToDevice:
    """Send ``message`` to the device now (it is awake, or this answers what it just sent).

    ``upstream_sequence`` is the XEP-0198 number of the inbound stanza it carries, if any: the
    service acknowledges that stanza upstream once the device has acknowledged the message.
    """

    message: WireMessage
    upstream_sequence: int | None = None


@dataclasses.dataclass(frozen=True)
class EnqueueForDevice:
    """Append ``message`` to the device's durable queue (the device sleeps).

    With a ``coalesce_key``, the queued item with the same key is replaced (presence per contact:
    a device that wakes after a night gets one notification per contact). ``expires_at`` is when
    the relay will report the item expired. ``upstream_sequence``: the inbound stanza it carries,
    to acknowledge upstream once the enqueue is committed.
    """

    message: WireMessage
    coalesce_key: str | None = None
    expires_at: float | None = None
    upstream_sequence: int | None = None


@dataclasses.dataclass(frozen=True)
class DrainQueue:
    """Hand the device's queue to its session, oldest first, paced for the link."""


@dataclasses.dataclass(frozen=True)
class DropQueued:
    """Remove the queued IncomingMessage ``message_id``: it expired and its sender was told."""

    message_id: int


@dataclasses.dataclass(frozen=True)
class AcknowledgeDevice:
    """The device's SendMessage ``message_id`` is accepted upstream: the device may forget it."""

    message_id: int


# -- toward the upstream --------------------------------------------------------------------------


class SubscriptionVerb(enum.Enum):
    """A presence subscription operation, named independently of any upstream protocol."""

    SUBSCRIBE = "subscribe"  # ask to see the contact's presence
    UNSUBSCRIBE = "unsubscribe"  # stop seeing it
    APPROVE = "approve"  # let the contact see ours (or pre-approve)
    DENY = "deny"  # refuse or revoke the contact's subscription to ours


@dataclasses.dataclass(frozen=True)
class UpstreamSendMessage:
    """Send a chat message for the device's SendMessage ``device_message_id``.

    ``message_id`` is the upstream id the relay chose (receipts and errors come back with it);
    ``signed`` is the RFC 3923 signed entity (multipart/signed over the Message/CPIM object made
    from the operation) or None when signing is off.
    """

    to: Jid
    content: Content
    message_id: str
    device_message_id: int
    signed: bytes | None = dataclasses.field(default=None, repr=False)
    request_receipt: bool = True


@dataclasses.dataclass(frozen=True)
class UpstreamSendPresence:
    """Broadcast the device's presence (or direct it at ``to``); ``signed`` is the signed PIDF."""

    available: bool
    show: Show = Show.AVAILABLE
    status: str | None = None
    status_language: str | None = None
    to: Jid | None = None
    signed: bytes | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class UpstreamSubscription:
    """Send the subscription operation ``verb`` about the contact ``to`` (a bare address)."""

    to: Jid
    verb: SubscriptionVerb


@dataclasses.dataclass(frozen=True)
class UpstreamRosterRequest:
    """Fetch the account's contact list (answered by a roster event)."""


@dataclasses.dataclass(frozen=True)
class UpstreamBlock:
    """Block ``contact`` (XEP-0191): no traffic from it, and it sees the device offline."""

    contact: Jid


@dataclasses.dataclass(frozen=True)
class UpstreamUnblock:
    """Lift the block on ``contact`` (XEP-0191)."""

    contact: Jid


@dataclasses.dataclass(frozen=True)
class UpstreamSetActive:
    """Tell the server whether the device listens (XEP-0352 client state indication)."""

    active: bool


@dataclasses.dataclass(frozen=True)
class UpstreamSync:
    """A round trip to the server (an XEP-0199 ping in XMPP) whose answer comes after every
    stanza the server sent before it: the relay hears it as the end of a flush
    (:mod:`gateway.relay.flush`)."""


@dataclasses.dataclass(frozen=True)
class UpstreamSendReceipt:
    """Confirm to ``to`` that its message ``message_id`` reached the device (XEP-0184)."""

    to: Jid
    message_id: str


@dataclasses.dataclass(frozen=True)
class UpstreamDeliveryFailed:
    """Tell ``to`` that its message ``message_id`` will not reach the device (RFC 2779 §5.4.1)."""

    to: Jid
    message_id: str | None
    reason: FailureReason


# -- for the store --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PersistAlias:
    """Keep ``alias`` bound to ``contact`` for this device (aliases are stable per contact)."""

    contact: Jid
    alias: int


@dataclasses.dataclass(frozen=True)
class ReleaseAlias:
    """The contact left the roster; its alias is free again."""

    contact: Jid
    alias: int


@dataclasses.dataclass(frozen=True)
class PersistContactListVersion:
    """The contact list version the relay is about to give the device; keep it across restarts."""

    version: int


@dataclasses.dataclass(frozen=True)
class RecordDeduplicationId:
    """Remember the device's SendMessage id until it is reported on (retransmission guard)."""

    message_id: int


@dataclasses.dataclass(frozen=True)
class ForgetDeduplicationId:
    """The SendMessage id was reported on; the device may use it again."""

    message_id: int


DeviceCommand = SendToDevice | EnqueueForDevice | DrainQueue | DropQueued | AcknowledgeDevice
UpstreamCommand = (
    UpstreamSendMessage
    | UpstreamSendPresence
    | UpstreamSubscription
    | UpstreamRosterRequest
    | UpstreamBlock
    | UpstreamUnblock
    | UpstreamSetActive
    | UpstreamSync
    | UpstreamSendReceipt
    | UpstreamDeliveryFailed
)
StoreCommand = (
    PersistAlias
    | ReleaseAlias
    | PersistContactListVersion
    | RecordDeduplicationId
    | ForgetDeduplicationId
)
Command = DeviceCommand | UpstreamCommand | StoreCommand
