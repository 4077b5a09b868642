"""Interpretation of a decoded CBOR item as a wire message: every field's type, range and key.

Theory of operation (docs/protocol.md, Sections 4.3-4.5 and 6). The strict CBOR reader (cbor.py)
has already refused what is not deterministic CBOR of the protocol's subset; here a bare unsigned
integer becomes a compact Ack and a map is read by the reader for its key-0 message type. Each read
checks the CBOR type exactly (``true`` is not 1), refuses a default written out, and remembers the
key; afterwards a non-negative key nobody read is an unknown critical field, a negative one is an
elective field and ignored. The dataclass constructors check ranges and cross-field rules; their
:class:`LocalWireError` becomes a :class:`RemoteWireError` here: the values came from the peer.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import NoReturn, TypeVar

from gateway.wire.cbor import CborValue
from gateway.wire.enums import (
    DeliveryStatus,
    MessageType,
    Show,
    SignatureStatus,
    SubscriptionAction,
    SubscriptionState,
)
from gateway.wire.errors import ErrorCode, LocalWireError, RemoteWireError
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

__all__ = ["CONTENT_KEYS", "TYPE_KEY", "message_from_cbor"]

TYPE_KEY = 0  # key 0 of every message map holds the MessageType
# Keys shared by SendMessage and IncomingMessage for their content (docs/protocol.md, Section 5).
CONTENT_KEYS = _TEXT, _LANGUAGE, _CONTENT_TYPE, _DATA = 3, 4, 5, 6

Fields = dict[int, CborValue]


def _fail(code: ErrorCode, detail: str) -> NoReturn:
    raise RemoteWireError(code, detail)


class _FieldReader:
    """Typed access to one received map; remembers which keys were read to judge the rest."""

    __slots__ = ("_fields", "_read", "_what")

    def __init__(self, what: str, fields: Fields, *, typed: bool = True) -> None:
        self._what = what
        self._fields = fields
        self._read = {TYPE_KEY} if typed else set()  # contact entries have no type key

    def has(self, key: int) -> bool:
        return key in self._fields

    def __len__(self) -> int:
        return len(self._fields)

    def _value(self, key: int) -> CborValue:
        self._read.add(key)
        return self._fields.get(key)

    def _required(self, key: int) -> CborValue:
        if key not in self._fields:
            _fail(ErrorCode.MISSING_FIELD, f"{self._what}: key {key} is required")
        return self._value(key)

    def _wrong(self, key: int, expected: str) -> NoReturn:
        _fail(ErrorCode.INVALID_FIELD, f"{self._what}: key {key} must be {expected}")

    def _not_default(self, key: int, value: int | bool, default: int | bool) -> None:
        if value == default:  # uint() and boolean() already keep ints and bools apart
            _fail(ErrorCode.NOT_DETERMINISTIC, f"{self._what}: key {key} holds its default")

    def uint(self, key: int) -> int:
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self._wrong(key, "an unsigned integer")
        return value

    def optional_uint(self, key: int) -> int | None:
        return self.uint(key) if key in self._fields else None

    def uint_or(self, key: int, default: int) -> int:
        """An optional integer that is omitted when it equals ``default``."""
        if key not in self._fields:
            return default
        value = self.uint(key)
        self._not_default(key, value, default)
        return value

    def text(self, key: int) -> str:
        value = self._required(key)
        if not isinstance(value, str):
            self._wrong(key, "a text string")
        return value

    def optional_text(self, key: int) -> str | None:
        return self.text(key) if key in self._fields else None

    def byte_string(self, key: int) -> bytes:
        value = self._required(key)
        if not isinstance(value, bytes):
            self._wrong(key, "a byte string")
        return value

    def boolean(self, key: int) -> bool:
        value = self._required(key)
        if not isinstance(value, bool):
            self._wrong(key, "true or false")
        return value

    def optional_boolean(self, key: int) -> bool | None:
        return self.boolean(key) if key in self._fields else None

    def boolean_or(self, key: int, default: bool) -> bool:
        """An optional flag that is omitted when it equals ``default``."""
        if key not in self._fields:
            return default
        value = self.boolean(key)
        self._not_default(key, value, default)
        return value

    def contact_ref(self, key: int) -> ContactRef:
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, int | str):
            self._wrong(key, "an alias (unsigned integer) or an address (text)")
        if isinstance(value, int) and value < 0:
            self._wrong(key, "an alias (unsigned integer) or an address (text)")
        return value

    def array(self, key: int) -> list[CborValue]:
        value = self._required(key)
        if not isinstance(value, list):
            self._wrong(key, "an array")
        if not value:
            _fail(ErrorCode.NOT_DETERMINISTIC, f"{self._what}: empty array at key {key}")
        return value

    def finish(self) -> None:
        """Reject unknown critical (non-negative) keys; ignore unknown elective (negative) ones."""
        for key in self._fields:
            if key >= 0 and key not in self._read:
                _fail(ErrorCode.UNKNOWN_CRITICAL_FIELD, f"{self._what}: unknown critical key {key}")


def _read_content(fields: _FieldReader) -> Content:
    if fields.has(_TEXT):
        if fields.has(_CONTENT_TYPE) or fields.has(_DATA):
            _fail(ErrorCode.INVALID_FIELD, "a message has text or MIME content, not both")
        return TextContent(fields.text(_TEXT), fields.optional_text(_LANGUAGE))
    if fields.has(_LANGUAGE):
        _fail(ErrorCode.INVALID_FIELD, "a language tag belongs to text content")
    return MimeContent(fields.text(_CONTENT_TYPE), fields.byte_string(_DATA))


def _read_ack(fields: _FieldReader) -> Ack:
    cumulative = fields.uint(1)
    if not fields.has(2):
        if len(fields) == 2:  # {0: 0, 1: n} must have been sent as the bare integer n
            _fail(ErrorCode.NOT_DETERMINISTIC, "a cumulative-only ack is a bare integer")
        return Ack(cumulative)
    numbers = fields.array(2)
    if len(numbers) % 2:
        _fail(ErrorCode.INVALID_FIELD, "ack ranges come in (gap, length) pairs")
    selective: list[tuple[int, int]] = []
    previous = cumulative
    for index in range(0, len(numbers), 2):
        gap, length = _ack_number(numbers[index]), _ack_number(numbers[index + 1])
        first = previous + gap + 1
        last = first + length
        selective.append((first, last))
        previous = last
    return Ack(cumulative, tuple(selective))


def _ack_number(value: CborValue) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(ErrorCode.INVALID_FIELD, "ack gaps and lengths are unsigned integers")
    return value


def _read_ping(fields: _FieldReader) -> Ping:
    return Ping(fields.uint_or(1, 0))


def _read_pong(fields: _FieldReader) -> Pong:
    return Pong(fields.uint_or(1, 0))


def _read_error(fields: _FieldReader) -> Error:
    return Error(
        fields.uint(1), fields.optional_uint(2), fields.optional_uint(3), fields.optional_text(4)
    )


def _read_send(fields: _FieldReader) -> SendMessage:
    return SendMessage(
        fields.uint(1), fields.contact_ref(2), _read_content(fields), fields.boolean_or(7, True)
    )


def _read_incoming(fields: _FieldReader) -> IncomingMessage:
    return IncomingMessage(
        fields.uint(1),
        fields.contact_ref(2),
        fields.uint(7),
        _read_content(fields),
        _enum(SignatureStatus, fields.uint_or(8, SignatureStatus.NONE)),
    )


def _read_report(fields: _FieldReader) -> DeliveryReport:
    return DeliveryReport(
        fields.uint(1),
        _enum(DeliveryStatus, fields.uint(2)),
        fields.optional_uint(3),
        fields.optional_text(4),
    )


def _read_set_presence(fields: _FieldReader) -> SetPresence:
    show = fields.optional_uint(2)
    return SetPresence(
        fields.optional_boolean(1),
        None if show is None else _enum(Show, show),
        fields.optional_text(3),
        fields.optional_text(4),
    )


def _read_notification(fields: _FieldReader) -> PresenceNotification:
    return PresenceNotification(
        fields.contact_ref(1),
        fields.boolean(2),
        _enum(Show, fields.uint_or(3, Show.AVAILABLE)),
        fields.optional_text(4),
        fields.optional_text(5),
        _enum(SignatureStatus, fields.uint_or(6, SignatureStatus.NONE)),
    )


def _read_command(fields: _FieldReader) -> SubscriptionCommand:
    return SubscriptionCommand(_enum(SubscriptionAction, fields.uint(1)), fields.contact_ref(2))


def _read_request(fields: _FieldReader) -> SubscriptionRequest:
    return SubscriptionRequest(fields.contact_ref(1), fields.optional_text(2))


def _read_list_request(fields: _FieldReader) -> ContactListRequest:
    return ContactListRequest(fields.optional_uint(1))


def _read_contact(value: CborValue) -> Contact:
    if not isinstance(value, dict):
        _fail(ErrorCode.INVALID_FIELD, "a contact entry is a map")
    fields = _FieldReader("contact", value, typed=False)
    contact = Contact(
        fields.uint(1),
        fields.text(2),
        _enum(SubscriptionState, fields.uint_or(3, SubscriptionState.NONE)),
        fields.optional_text(4),
        fields.boolean_or(5, False),
        fields.boolean_or(6, False),
    )
    fields.finish()
    return contact


def _read_list(fields: _FieldReader) -> ContactList:
    contacts = tuple(_read_contact(entry) for entry in fields.array(2)) if fields.has(2) else ()
    return ContactList(fields.uint(1), contacts, fields.boolean_or(3, False))


def _read_sleep(fields: _FieldReader) -> Sleep:
    return Sleep(fields.uint(1))


def _read_wake(fields: _FieldReader) -> Wake:
    return Wake(fields.boolean_or(1, False))


def _read_summary(fields: _FieldReader) -> MissedSummary:
    counts = [fields.uint_or(key, 0) for key in range(1, 6)]
    return MissedSummary(*counts)


_E = TypeVar("_E", bound=IntEnum)


def _enum(enum: type[_E], value: int) -> _E:
    """Look ``value`` up in a closed enum; an unknown member is an invalid field."""
    try:
        return enum(value)
    except ValueError as exc:
        raise RemoteWireError(ErrorCode.INVALID_FIELD, f"{value} is not a known value") from exc


_READERS: dict[int, Callable[[_FieldReader], Message]] = {
    MessageType.ACK: _read_ack,
    MessageType.PING: _read_ping,
    MessageType.PONG: _read_pong,
    MessageType.ERROR: _read_error,
    MessageType.SEND_MESSAGE: _read_send,
    MessageType.INCOMING_MESSAGE: _read_incoming,
    MessageType.DELIVERY_REPORT: _read_report,
    MessageType.SET_PRESENCE: _read_set_presence,
    MessageType.PRESENCE_NOTIFICATION: _read_notification,
    MessageType.SUBSCRIPTION_COMMAND: _read_command,
    MessageType.SUBSCRIPTION_REQUEST: _read_request,
    MessageType.CONTACT_LIST_REQUEST: _read_list_request,
    MessageType.CONTACT_LIST: _read_list,
    MessageType.SLEEP: _read_sleep,
    MessageType.WAKE: _read_wake,
    MessageType.MISSED_SUMMARY: _read_summary,
}


def message_from_cbor(item: CborValue) -> Message:
    """The message an item encodes; raises only :class:`RemoteWireError`."""
    if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
        return Ack(item)
    if not isinstance(item, dict):
        _fail(ErrorCode.INVALID_FIELD, "a message is a map or an unsigned integer (an ack)")
    message_type = item.get(TYPE_KEY)
    if message_type is None:
        _fail(ErrorCode.MISSING_FIELD, "key 0 (message type) is required")
    if isinstance(message_type, bool) or not isinstance(message_type, int) or message_type < 0:
        _fail(ErrorCode.INVALID_FIELD, "key 0 (message type) must be an unsigned integer")
    reader_function = _READERS.get(message_type)
    if reader_function is None:
        _fail(ErrorCode.UNKNOWN_TYPE, f"unknown message type {message_type}")
    fields = _FieldReader(MessageType(message_type).name, item)
    try:
        message = reader_function(fields)
    except LocalWireError as exc:  # the dataclass refused a value the peer sent
        raise RemoteWireError(exc.code, exc.detail) from exc
    fields.finish()
    return message
