"""The compact device protocol's in-session messages: message types, CBOR codec and limits.

Sans-IO: bytes in, messages out, and back. The specification is docs/protocol.md; the session layer
(gateway/session) carries these messages, as a CBOR sequence, inside its protected records.

Exported here is what a user of the package needs: the messages and their enumerations, the four
codec functions, the error tree (:class:`LocalWireError` for our misuse, :class:`RemoteWireError`
for the peer's bytes, both carrying the :class:`ErrorCode` to send back) and the receiver limits.
Field-size constants and the limits' individual defaults stay in ``gateway.wire.messages`` and
``gateway.wire.limits``; the CBOR policy in ``gateway.wire.cbor``; field declarations in
``gateway.wire.fields``.
"""

from __future__ import annotations

from gateway.wire.codec import (
    decode_sequence_untrusted,
    decode_untrusted,
    encode,
    encode_sequence,
)
from gateway.wire.enums import (
    DeliveryStatus,
    Direction,
    FailureReason,
    MessageType,
    Show,
    SignatureStatus,
    SubscriptionAction,
    SubscriptionState,
)
from gateway.wire.errors import ErrorCode, LocalWireError, RemoteWireError, WireError
from gateway.wire.limits import DEFAULT_LIMITS, WireLimits
from gateway.wire.messages import (
    Ack,
    Contact,
    ContactList,
    ContactListRequest,
    ContactRef,
    Content,
    DeliveryReport,
    Error,
    IncomingMessage,
    Message,
    MimeContent,
    MissedSummary,
    Ping,
    Pong,
    PresenceNotification,
    SendMessage,
    SetPresence,
    Sleep,
    SubscriptionCommand,
    SubscriptionRequest,
    TextContent,
    Wake,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Ack",
    "Contact",
    "ContactList",
    "ContactListRequest",
    "ContactRef",
    "Content",
    "DeliveryReport",
    "DeliveryStatus",
    "Direction",
    "Error",
    "ErrorCode",
    "FailureReason",
    "IncomingMessage",
    "LocalWireError",
    "Message",
    "MessageType",
    "MimeContent",
    "MissedSummary",
    "Ping",
    "Pong",
    "PresenceNotification",
    "RemoteWireError",
    "SendMessage",
    "SetPresence",
    "Show",
    "SignatureStatus",
    "Sleep",
    "SubscriptionAction",
    "SubscriptionCommand",
    "SubscriptionRequest",
    "SubscriptionState",
    "TextContent",
    "Wake",
    "WireError",
    "WireLimits",
    "decode_sequence_untrusted",
    "decode_untrusted",
    "encode",
    "encode_sequence",
]
