"""The in-session messages of the compact device protocol, one frozen dataclass per message type.

Each class validates itself on construction, so an invalid message can be neither encoded nor
returned by the decoder (which turns a :class:`LocalWireError` raised here into a
:class:`RemoteWireError`). Field meanings are specified in docs/protocol.md; the IM and presence
operations follow the requirements of RFC 2779 (messages §4, presence §3, subscriptions §5.1,
delivery reports §4.2.1 and §5.4.1), and the contact aliases play the part of MQTT-SN's predefined
topic ids: a gateway-assigned small integer stands for an address that would cost tens of bytes.
Each field also declares, once, its wire key and CBOR kind (``wire_field``, fields.py); its
dataclass default is its protocol default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, TypeVar, get_args

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
from gateway.wire.errors import ErrorCode, LocalWireError
from gateway.wire.fields import CONTENT_KEYS, Kind, form_choice, wire_field

__all__ = [
    "MAX_ADDRESS_SIZE",
    "MAX_ALIAS",
    "MAX_CONTENT_TYPE_SIZE",
    "MAX_SHORT_TEXT_SIZE",
    "MAX_UINT",
    "MESSAGE_CLASSES",
    "Ack",
    "Contact",
    "ContactList",
    "ContactListRequest",
    "ContactRef",
    "Content",
    "DeliveryReport",
    "Error",
    "IncomingMessage",
    "Message",
    "MimeContent",
    "MissedSummary",
    "Ping",
    "Pong",
    "PresenceNotification",
    "SendMessage",
    "SetPresence",
    "Sleep",
    "SubscriptionCommand",
    "SubscriptionRequest",
    "TextContent",
    "Wake",
]

MAX_UINT = (1 << 64) - 1  # CBOR's unsigned integer range
MAX_ALIAS = (1 << 16) - 1  # aliases cost 1-3 bytes; 65536 contacts per device is plenty
MAX_ADDRESS_SIZE = 3071  # bytes of UTF-8: an XMPP address's maximum (RFC 7622 §3.1)
MAX_CONTENT_TYPE_SIZE = 255  # bytes; RFC 6838 §4.2 caps type and subtype names at 127 each
MAX_SHORT_TEXT_SIZE = 1024  # bytes of UTF-8 for notes, names and diagnostics (not message bodies)
MAX_SLEEP_SECONDS = (1 << 32) - 1  # about 136 years: fits a device's 32-bit timer
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*\Z")  # BCP 47 (RFC 5646) syntax
_CONTENT_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:;[ -~]*)?\Z")


def _invalid(detail: str) -> LocalWireError:
    return LocalWireError(ErrorCode.INVALID_FIELD, detail)


def _check_uint(name: str, value: object, maximum: int = MAX_UINT) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise _invalid(f"{name} must be an int in 0..{maximum}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise _invalid(f"{name} must be a bool")


def _check_text(name: str, value: object, max_size: int | None = None) -> None:
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a str")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise _invalid(f"{name} is not valid Unicode") from exc
    if max_size is not None and size > max_size:
        raise _invalid(f"{name} longer than {max_size} bytes of UTF-8")


def _check_language(name: str, value: object) -> None:
    if not isinstance(value, str) or len(value) > 35 or not _LANGUAGE_TAG.match(value):
        raise _invalid(f"{name} must be a language tag such as 'en' or 'pt-BR'")


def _check_contact_ref(name: str, value: object) -> None:
    """An alias (int) or a full address (str): non-empty, no spaces or control characters."""
    if isinstance(value, int) and not isinstance(value, bool):
        _check_uint(name, value, MAX_ALIAS)
        return
    _check_text(name, value, MAX_ADDRESS_SIZE)
    if (
        not isinstance(value, str)
        or not value
        or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    ):
        raise LocalWireError(
            ErrorCode.INVALID_ADDRESS, f"{name} must be a non-empty address without spaces"
        )


_E = TypeVar("_E", bound=IntEnum)


def _coerce_enum(instance: object, name: str, enum: type[_E]) -> None:
    """Replace a plain int field by its enum member (frozen dataclass), rejecting unknown values."""
    value = getattr(instance, name)
    if type(value) is enum:  # already a member (as the decoder passes it): nothing to look up
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{name} must be a {enum.__name__}")
    try:
        member = enum(value)
    except ValueError as exc:
        raise _invalid(f"{name}: {value} is not a {enum.__name__}") from exc
    object.__setattr__(instance, name, member)


def _coerce_code(instance: object, name: str, enum: type[_E]) -> None:
    """Like _coerce_enum for open code spaces: an unknown number stays a plain int."""
    value = getattr(instance, name)
    if type(value) is enum:
        return
    _check_uint(name, value)
    try:
        object.__setattr__(instance, name, enum(value))
    except ValueError:
        object.__setattr__(instance, name, int(value))


ContactRef = int | str
"""A contact: a gateway-assigned alias (int) or a full address such as 'alice@example.com' (str)."""


@dataclass(frozen=True)
class TextContent:
    """A UTF-8 text body with an optional language tag (RFC 2779 §4.1, XMPP <body xml:lang>).

    The body is left out of ``repr()`` so that logging a message never logs what it says.
    """

    text: str = field(repr=False)
    language: str | None = None

    def __post_init__(self) -> None:
        _check_text("text", self.text)
        if self.language is not None:
            _check_language("language", self.language)


@dataclass(frozen=True)
class MimeContent:
    """Any MIME object as bytes with its media type (RFC 2779 §4.1.10), e.g. an image or CPIM."""

    content_type: str
    data: bytes = field(repr=False)  # a message body: never in repr() or logs

    def __post_init__(self) -> None:
        _check_text("content_type", self.content_type, MAX_CONTENT_TYPE_SIZE)
        if not _CONTENT_TYPE.match(self.content_type):
            raise _invalid("content_type must look like 'type/subtype' with optional parameters")
        if not isinstance(self.data, bytes):
            raise _invalid("data must be bytes")


Content = TextContent | MimeContent


def _check_content(value: object) -> None:
    if not isinstance(value, TextContent | MimeContent):
        raise _invalid("content must be a TextContent or a MimeContent")


@dataclass(frozen=True)
class Ack:
    """Acknowledgement of reliable records, used by the session layer (docs/protocol.md §3.5).

    ``cumulative``: every reliable record numbered below it arrived. ``selective``: inclusive
    (first, last) ranges also received, ascending and disjoint, each first above ``cumulative``.
    """

    TYPE: ClassVar[MessageType] = MessageType.ACK
    DIRECTION: ClassVar[Direction] = Direction.BOTH

    cumulative: int = field(metadata=wire_field(1, Kind.UINT))
    selective: tuple[tuple[int, int], ...] = field(
        default=(), metadata=wire_field(2, Kind.ACK_RANGES)
    )

    def __post_init__(self) -> None:
        _check_uint("cumulative", self.cumulative)
        if not isinstance(self.selective, tuple):
            raise _invalid("selective must be a tuple of (first, last) tuples")
        previous_last = self.cumulative
        for block in self.selective:
            if not isinstance(block, tuple) or len(block) != 2:
                raise _invalid("each selective range must be a (first, last) tuple")
            first, last = block
            _check_uint("selective first", first)
            _check_uint("selective last", last)
            # Record `cumulative` itself is missing (else cumulative would be higher), so the first
            # range starts above it; every later range starts above the previous one's last.
            if first <= previous_last:
                raise _invalid("selective ranges must be ascending, disjoint, above cumulative")
            if last < first:
                raise _invalid("a selective range must have first <= last")
            previous_last = last


@dataclass(frozen=True)
class Ping:
    """Liveness probe (like XEP-0199); the receiver answers with a Pong carrying the same id."""

    TYPE: ClassVar[MessageType] = MessageType.PING
    DIRECTION: ClassVar[Direction] = Direction.BOTH

    id: int = field(default=0, metadata=wire_field(1, Kind.UINT))

    def __post_init__(self) -> None:
        _check_uint("id", self.id)


@dataclass(frozen=True)
class Pong:
    """Answer to a Ping, with the Ping's id."""

    TYPE: ClassVar[MessageType] = MessageType.PONG
    DIRECTION: ClassVar[Direction] = Direction.BOTH

    id: int = field(default=0, metadata=wire_field(1, Kind.UINT))

    def __post_init__(self) -> None:
        _check_uint("id", self.id)


@dataclass(frozen=True)
class Error:
    """A message could not be decoded or carried out.

    ``code`` is an :class:`ErrorCode` (an unknown number from a newer peer stays an int);
    ``message_type`` and ``message_id`` name the message it answers where the sender knows them.
    """

    TYPE: ClassVar[MessageType] = MessageType.ERROR
    DIRECTION: ClassVar[Direction] = Direction.BOTH

    code: ErrorCode | int = field(metadata=wire_field(1, Kind.CODE))
    message_type: int | None = field(default=None, metadata=wire_field(2, Kind.UINT))
    message_id: int | None = field(default=None, metadata=wire_field(3, Kind.UINT))
    text: str | None = field(default=None, metadata=wire_field(4, Kind.TEXT))

    def __post_init__(self) -> None:
        _coerce_code(self, "code", ErrorCode)
        if self.message_type is not None:
            _check_uint("message_type", self.message_type)
        if self.message_id is not None:
            _check_uint("message_id", self.message_id)
        if self.text is not None:
            _check_text("text", self.text, MAX_SHORT_TEXT_SIZE)


@dataclass(frozen=True)
class SendMessage:
    """The device sends an instant message (RFC 2779 §4.1) to an alias or a full address.

    ``id`` is chosen by the device, unique among its messages not yet reported on; the gateway's
    DeliveryReport carries it back, and a retransmitted SendMessage with the same id is not sent
    twice.
    ``want_report=False`` asks for no DELIVERED report; failures are always reported (§5.4.1).

    ``compact`` chooses the encoding (docs/protocol.md §6.4): the compact form, the array
    ``[id, to, text]``, when the message is text without a language tag and wants its report (the
    common case, 5 bytes below the map); the map otherwise, or when ``compact=False`` asks for it.
    It is True exactly when the compact form is used; the decoder sets it to the form received, so
    re-encoding reproduces the received bytes. It takes no part in equality: both forms carry
    the same message.
    """

    TYPE: ClassVar[MessageType] = MessageType.SEND_MESSAGE
    DIRECTION: ClassVar[Direction] = Direction.DEVICE_TO_GATEWAY

    id: int = field(metadata=wire_field(1, Kind.UINT))
    to: ContactRef = field(metadata=wire_field(2, Kind.CONTACT_REF))
    content: Content = field(metadata=wire_field(CONTENT_KEYS[0], Kind.CONTENT))
    want_report: bool = field(default=True, metadata=wire_field(7, Kind.BOOL))
    compact: bool = field(default=True, compare=False, metadata=form_choice())

    def __post_init__(self) -> None:
        _check_uint("id", self.id)
        _check_contact_ref("to", self.to)
        _check_content(self.content)
        _check_bool("want_report", self.want_report)
        _check_bool("compact", self.compact)
        if self.compact and not self.fits_compact_form:
            object.__setattr__(self, "compact", False)

    @property
    def fits_compact_form(self) -> bool:
        """Whether the compact form can carry this message: text, no language, report wanted."""
        content = self.content
        return self.want_report and isinstance(content, TextContent) and content.language is None


@dataclass(frozen=True)
class IncomingMessage:
    """The gateway delivers an instant message that arrived for the device.

    ``id`` is assigned by the gateway, increasing per device; ``timestamp`` is when the message
    reached the gateway (or the sender's stated time, XEP-0203), in whole seconds since 1970 UTC.
    """

    TYPE: ClassVar[MessageType] = MessageType.INCOMING_MESSAGE
    DIRECTION: ClassVar[Direction] = Direction.GATEWAY_TO_DEVICE

    id: int = field(metadata=wire_field(1, Kind.UINT))
    sender: ContactRef = field(metadata=wire_field(2, Kind.CONTACT_REF))
    timestamp: int = field(metadata=wire_field(7, Kind.UINT))
    content: Content = field(metadata=wire_field(CONTENT_KEYS[0], Kind.CONTENT))
    signature: SignatureStatus = field(
        default=SignatureStatus.NONE, metadata=wire_field(8, Kind.ENUM, SignatureStatus)
    )

    def __post_init__(self) -> None:
        _check_uint("id", self.id)
        _check_contact_ref("sender", self.sender)
        _check_uint("timestamp", self.timestamp)
        _check_content(self.content)
        _coerce_enum(self, "signature", SignatureStatus)


@dataclass(frozen=True)
class DeliveryReport:
    """What became of the device's SendMessage ``id`` (RFC 2779 §4.2.1, §5.4.1).

    ``reason`` (a :class:`FailureReason`, or an unknown number from a newer gateway) is required
    with FAILED and forbidden otherwise; ``text`` is an optional explanation of a failure.
    """

    TYPE: ClassVar[MessageType] = MessageType.DELIVERY_REPORT
    DIRECTION: ClassVar[Direction] = Direction.GATEWAY_TO_DEVICE

    id: int = field(metadata=wire_field(1, Kind.UINT))
    status: DeliveryStatus = field(metadata=wire_field(2, Kind.ENUM, DeliveryStatus))
    reason: FailureReason | int | None = field(default=None, metadata=wire_field(3, Kind.CODE))
    text: str | None = field(default=None, metadata=wire_field(4, Kind.TEXT))

    def __post_init__(self) -> None:
        _check_uint("id", self.id)
        _coerce_enum(self, "status", DeliveryStatus)
        if self.status is DeliveryStatus.FAILED:
            if self.reason is None:
                raise _invalid("a FAILED report needs a reason")
            _coerce_code(self, "reason", FailureReason)
        elif self.reason is not None or self.text is not None:
            raise _invalid("reason and text belong to FAILED reports only")
        if self.text is not None:
            _check_text("text", self.text, MAX_SHORT_TEXT_SIZE)


@dataclass(frozen=True)
class SetPresence:
    """The device changes its own presence; ``None`` fields are unchanged (a partial update).

    ``note=""`` removes the note. ``note_language`` may only accompany a non-empty note.
    With ``to`` the update is directed presence (RFC 2779 §2.3.3, §5.2.3): it changes what that
    one watcher sees, over the broadcast presence, and nothing else; ``to`` alone ends the
    direction, so the watcher sees the broadcast presence again (docs/protocol.md §6.7).
    """

    TYPE: ClassVar[MessageType] = MessageType.SET_PRESENCE
    DIRECTION: ClassVar[Direction] = Direction.DEVICE_TO_GATEWAY

    open: bool | None = field(default=None, metadata=wire_field(1, Kind.BOOL))
    show: Show | None = field(default=None, metadata=wire_field(2, Kind.ENUM, Show))
    note: str | None = field(default=None, metadata=wire_field(3, Kind.TEXT))
    note_language: str | None = field(default=None, metadata=wire_field(4, Kind.TEXT))
    to: ContactRef | None = field(default=None, metadata=wire_field(5, Kind.CONTACT_REF))

    def __post_init__(self) -> None:
        if self.to is not None:
            _check_contact_ref("to", self.to)
        elif self.open is None and self.show is None and self.note is None:
            raise _invalid("a broadcast presence update must change open, show or note")
        if self.open is not None:
            _check_bool("open", self.open)
        if self.show is not None:
            _coerce_enum(self, "show", Show)
        if self.note is not None:
            _check_text("note", self.note, MAX_SHORT_TEXT_SIZE)
        if self.note_language is not None:
            if not self.note:
                raise _invalid("note_language needs a non-empty note")
            _check_language("note_language", self.note_language)


@dataclass(frozen=True)
class PresenceNotification:
    """A contact's current presence, whole (RFC 2779 §3.2): open or closed, show, note."""

    TYPE: ClassVar[MessageType] = MessageType.PRESENCE_NOTIFICATION
    DIRECTION: ClassVar[Direction] = Direction.GATEWAY_TO_DEVICE

    contact: ContactRef = field(metadata=wire_field(1, Kind.CONTACT_REF))
    open: bool = field(metadata=wire_field(2, Kind.BOOL))
    show: Show = field(default=Show.AVAILABLE, metadata=wire_field(3, Kind.ENUM, Show))
    note: str | None = field(default=None, metadata=wire_field(4, Kind.TEXT))
    note_language: str | None = field(default=None, metadata=wire_field(5, Kind.TEXT))
    signature: SignatureStatus = field(
        default=SignatureStatus.NONE, metadata=wire_field(6, Kind.ENUM, SignatureStatus)
    )

    def __post_init__(self) -> None:
        _check_contact_ref("contact", self.contact)
        _check_bool("open", self.open)
        _coerce_enum(self, "show", Show)
        if not self.open and self.show is not Show.AVAILABLE:
            raise _invalid("a closed presence has no show")
        if self.note is not None:
            _check_text("note", self.note, MAX_SHORT_TEXT_SIZE)
            if not self.note:
                raise _invalid("an absent note is None, not ''")
        if self.note_language is not None:
            if self.note is None:
                raise _invalid("note_language needs a note")
            _check_language("note_language", self.note_language)
        _coerce_enum(self, "signature", SignatureStatus)


@dataclass(frozen=True)
class SubscriptionCommand:
    """The device subscribes, unsubscribes, approves, denies, blocks or unblocks a contact."""

    TYPE: ClassVar[MessageType] = MessageType.SUBSCRIPTION_COMMAND
    DIRECTION: ClassVar[Direction] = Direction.DEVICE_TO_GATEWAY

    action: SubscriptionAction = field(metadata=wire_field(1, Kind.ENUM, SubscriptionAction))
    contact: ContactRef = field(metadata=wire_field(2, Kind.CONTACT_REF))

    def __post_init__(self) -> None:
        _coerce_enum(self, "action", SubscriptionAction)
        _check_contact_ref("contact", self.contact)


@dataclass(frozen=True)
class SubscriptionRequest:
    """Someone asks to see the device's presence (RFC 2779 §5.1.3); answer with APPROVE or DENY."""

    TYPE: ClassVar[MessageType] = MessageType.SUBSCRIPTION_REQUEST
    DIRECTION: ClassVar[Direction] = Direction.GATEWAY_TO_DEVICE

    sender: ContactRef = field(metadata=wire_field(1, Kind.CONTACT_REF))
    note: str | None = field(default=None, metadata=wire_field(2, Kind.TEXT))

    def __post_init__(self) -> None:
        _check_contact_ref("sender", self.sender)
        if self.note is not None:
            _check_text("note", self.note, MAX_SHORT_TEXT_SIZE)


@dataclass(frozen=True)
class ContactListRequest:
    """The device asks for its contact list: all of it, or the changes since ``known_version``."""

    TYPE: ClassVar[MessageType] = MessageType.CONTACT_LIST_REQUEST
    DIRECTION: ClassVar[Direction] = Direction.DEVICE_TO_GATEWAY

    known_version: int | None = field(default=None, metadata=wire_field(1, Kind.UINT))

    def __post_init__(self) -> None:
        if self.known_version is not None:
            _check_uint("known_version", self.known_version)


@dataclass(frozen=True)
class Contact:
    """One alias binding and what the gateway knows of the contact behind it."""

    alias: int = field(metadata=wire_field(1, Kind.UINT))
    address: str = field(metadata=wire_field(2, Kind.TEXT))
    subscription: SubscriptionState = field(
        default=SubscriptionState.NONE, metadata=wire_field(3, Kind.ENUM, SubscriptionState)
    )
    name: str | None = field(default=None, metadata=wire_field(4, Kind.TEXT))
    # The device asked to subscribe; the contact has not answered.
    pending_out: bool = field(default=False, metadata=wire_field(5, Kind.BOOL))
    blocked: bool = field(default=False, metadata=wire_field(6, Kind.BOOL))

    def __post_init__(self) -> None:
        _check_uint("alias", self.alias, MAX_ALIAS)
        if not isinstance(self.address, str):
            raise _invalid("address must be a str")
        _check_contact_ref("address", self.address)
        _coerce_enum(self, "subscription", SubscriptionState)
        if self.name is not None:
            _check_text("name", self.name, MAX_SHORT_TEXT_SIZE)
        _check_bool("pending_out", self.pending_out)
        _check_bool("blocked", self.blocked)


@dataclass(frozen=True)
class ContactList:
    """Alias bindings and contacts; the whole list (``complete``) or changes (RFC 6121 §2.6 style).

    ``version`` is the gateway's list version after these changes; the device stores it with the
    bindings and sends it back in a ContactListRequest. A REMOVED entry releases its alias.
    """

    TYPE: ClassVar[MessageType] = MessageType.CONTACT_LIST
    DIRECTION: ClassVar[Direction] = Direction.GATEWAY_TO_DEVICE

    version: int = field(metadata=wire_field(1, Kind.UINT))
    contacts: tuple[Contact, ...] = field(default=(), metadata=wire_field(2, Kind.CONTACTS))
    complete: bool = field(default=False, metadata=wire_field(3, Kind.BOOL))

    def __post_init__(self) -> None:
        _check_uint("version", self.version)
        if not isinstance(self.contacts, tuple) or not all(
            isinstance(contact, Contact) for contact in self.contacts
        ):
            raise _invalid("contacts must be a tuple of Contact")
        aliases = [contact.alias for contact in self.contacts]
        if len(set(aliases)) != len(aliases):
            raise _invalid("an alias appears twice in one contact list")
        _check_bool("complete", self.complete)


@dataclass(frozen=True)
class Sleep:
    """The device will turn its radio off for ``duration`` seconds; the gateway queues meanwhile."""

    TYPE: ClassVar[MessageType] = MessageType.SLEEP
    DIRECTION: ClassVar[Direction] = Direction.DEVICE_TO_GATEWAY

    duration: int = field(metadata=wire_field(1, Kind.UINT))

    def __post_init__(self) -> None:
        _check_uint("duration", self.duration, MAX_SLEEP_SECONDS)
        if self.duration == 0:
            raise _invalid("duration must be at least one second")


@dataclass(frozen=True)
class Wake:
    """The device is listening again; the gateway answers with a MissedSummary, then the backlog.

    ``presence_snapshot=True`` asks for every contact's current presence rather than only the
    changes during sleep (after the device lost its state).
    """

    TYPE: ClassVar[MessageType] = MessageType.WAKE
    DIRECTION: ClassVar[Direction] = Direction.DEVICE_TO_GATEWAY

    presence_snapshot: bool = field(default=False, metadata=wire_field(1, Kind.BOOL))

    def __post_init__(self) -> None:
        _check_bool("presence_snapshot", self.presence_snapshot)


@dataclass(frozen=True)
class MissedSummary:
    """What the gateway holds for a waking device: how many messages of each kind follow.

    ``expired`` counts messages the gateway could not keep (queue lifetime or size exceeded); their
    senders got failure reports.
    """

    TYPE: ClassVar[MessageType] = MessageType.MISSED_SUMMARY
    DIRECTION: ClassVar[Direction] = Direction.GATEWAY_TO_DEVICE

    messages: int = field(default=0, metadata=wire_field(1, Kind.UINT))
    delivery_reports: int = field(default=0, metadata=wire_field(2, Kind.UINT))
    presence_notifications: int = field(default=0, metadata=wire_field(3, Kind.UINT))
    subscription_requests: int = field(default=0, metadata=wire_field(4, Kind.UINT))
    expired: int = field(default=0, metadata=wire_field(5, Kind.UINT))

    def __post_init__(self) -> None:
        for name in (
            "messages",
            "delivery_reports",
            "presence_notifications",
            "subscription_requests",
            "expired",
        ):
            _check_uint(name, getattr(self, name))


Message = (
    Ack
    | Ping
    | Pong
    | Error
    | SendMessage
    | IncomingMessage
    | DeliveryReport
    | SetPresence
    | PresenceNotification
    | SubscriptionCommand
    | SubscriptionRequest
    | ContactListRequest
    | ContactList
    | Sleep
    | Wake
    | MissedSummary
)
"""Every in-session message of protocol version 1."""

MESSAGE_CLASSES: tuple[type[Message], ...] = get_args(Message)
"""The classes of :data:`Message`, for ``isinstance`` and for walking every type."""
