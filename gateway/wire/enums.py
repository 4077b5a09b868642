"""The enumerations of the wire protocol (docs/protocol.md, Sections 8.3 and 12.1).

Closed enumerations (an unknown value is an invalid field) except where noted: error codes live in
errors.py and failure reasons here are open code spaces, whose unknown numbers a receiver keeps.
"""

from __future__ import annotations

from enum import Enum, IntEnum

from gateway.signature_status import SignatureStatus

__all__ = [
    "DeliveryStatus",
    "Direction",
    "FailureReason",
    "MessageType",
    "Show",
    "SignatureStatus",
    "SubscriptionAction",
    "SubscriptionState",
]


class MessageType(IntEnum):
    """The number in key 0 of every message map (docs/protocol.md, "Message types")."""

    ACK = 0
    PING = 1
    PONG = 2
    ERROR = 3
    SEND_MESSAGE = 4
    INCOMING_MESSAGE = 5
    DELIVERY_REPORT = 6
    SET_PRESENCE = 7
    PRESENCE_NOTIFICATION = 8
    SUBSCRIPTION_COMMAND = 9
    SUBSCRIPTION_REQUEST = 10
    CONTACT_LIST_REQUEST = 11
    CONTACT_LIST = 12
    SLEEP = 13
    WAKE = 14
    MISSED_SUMMARY = 15


class Direction(Enum):
    """Who may send a message type; a wrong-way message is answered with UNEXPECTED_MESSAGE."""

    DEVICE_TO_GATEWAY = "device-to-gateway"
    GATEWAY_TO_DEVICE = "gateway-to-device"
    BOTH = "both"


class Show(IntEnum):
    """Availability detail of an open presence (XMPP's <show/>, RFC 6121 §4.7.2.1)."""

    AVAILABLE = 0
    CHAT = 1
    AWAY = 2
    EXTENDED_AWAY = 3
    DO_NOT_DISTURB = 4


class DeliveryStatus(IntEnum):
    """Outcome of a sent message (RFC 2779 §4.2.1, §5.4.1)."""

    DELIVERED = 0  # the recipient's client confirmed receipt (XEP-0184)
    FAILED = 1  # the message will not be delivered; see the reason
    UNKNOWN = 2  # handed on to a system that gives no delivery status


class FailureReason(IntEnum):
    """Why a message was not delivered. Receivers treat an unknown number like OTHER."""

    OTHER = 0
    RECIPIENT_UNKNOWN = 1
    NOT_AUTHORIZED = 2
    RECIPIENT_UNAVAILABLE = 3
    EXPIRED = 4
    TOO_LARGE = 5
    REMOTE_SERVER_UNREACHABLE = 6
    REJECTED = 7
    RESOURCE_CONSTRAINT = 8  # the recipient's queue (or server) is full (RFC 6120 §8.3.3.18)


class SubscriptionAction(IntEnum):
    """What a device asks of its presence subscriptions and block list (RFC 2779 §5.1)."""

    SUBSCRIBE = 0  # ask to see the contact's presence
    UNSUBSCRIBE = 1  # stop seeing it
    APPROVE = 2  # let the contact see mine (answer to a SubscriptionRequest, or pre-approve)
    DENY = 3  # refuse, or revoke, the contact's subscription to mine
    BLOCK = 4  # no messages or presence from the contact at all (RFC 2779 §5.4.10)
    UNBLOCK = 5


class SubscriptionState(IntEnum):
    """Subscription between the device and a contact, in XMPP roster terms (RFC 6121 §2.1.2.5)."""

    NONE = 0
    TO = 1  # the device sees the contact's presence
    FROM = 2  # the contact sees the device's presence
    BOTH = 3
    REMOVED = 4  # the contact is gone and its alias is released
