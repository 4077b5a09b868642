"""Encoding and decoding of wire messages: dataclass <-> integer-keyed CBOR map <-> bytes.

Theory of operation (docs/protocol.md, "Message encoding"). A message is one CBOR item in the
deterministic encoding of RFC 8949 §4.2.1: either a map whose key 0 holds the message type, or - the
one compact form - a bare unsigned integer, which is a cumulative-only :class:`Ack` (so an ack costs
1-3 bytes up to 65535). Field keys are small integers; a non-negative key the receiver does not know
makes the message invalid (critical), a negative key it does not know is ignored (elective), so
later versions can add both kinds of field. Optional fields are omitted when they hold their
default, and writing a default out is rejected as non-deterministic: each message value has exactly
one encoding.

Decoding is total: :func:`decode_untrusted` returns a message or raises :class:`RemoteWireError`
(whose code says what is wrong with the bytes; a non-bytes argument is the caller's
:class:`LocalWireError`). The input size is checked before the first byte is read; the strict reader
is cbor.py, the interpretation of fields decoding.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

from gateway.wire.cbor import CborReader, CborValue, encode_value
from gateway.wire.decoding import CONTENT_KEYS, TYPE_KEY, message_from_cbor
from gateway.wire.enums import MessageType, Show, SignatureStatus, SubscriptionState
from gateway.wire.errors import ErrorCode, LocalWireError, RemoteWireError
from gateway.wire.limits import DEFAULT_LIMITS, DEFAULT_MAX_MESSAGE_SIZE, WireLimits
from gateway.wire.messages import (
    Ack,
    Contact,
    ContactList,
    ContactListRequest,
    Content,
    DeliveryReport,
    Error,
    IncomingMessage,
    Message,
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

__all__ = ["decode_sequence_untrusted", "decode_untrusted", "encode", "encode_sequence"]

_TEXT, _LANGUAGE, _CONTENT_TYPE, _DATA = CONTENT_KEYS

Fields = dict[int, CborValue]


# --------------------------------------------------------------------------------------------------
# Encoding


def _put(fields: Fields, key: int, value: CborValue, default: CborValue = None) -> None:
    """Set ``key`` unless ``value`` is absent (None) or the field's default (never written)."""
    if value is None or (default is not None and value == default):
        return
    fields[key] = value


def _put_content(fields: Fields, content: Content) -> None:
    if isinstance(content, TextContent):
        fields[_TEXT] = content.text
        _put(fields, _LANGUAGE, content.language)
    else:
        fields[_CONTENT_TYPE] = content.content_type
        fields[_DATA] = content.data


def _ack_fields(message: Ack) -> CborValue:
    if not message.selective:
        return message.cumulative  # the compact form: a bare unsigned integer
    # QUIC-style gap/length pairs (RFC 9000 §19.3.1): small numbers, and relative to cumulative.
    ranges: list[CborValue] = []
    previous = message.cumulative
    for first, last in message.selective:
        ranges += [first - previous - 1, last - first]
        previous = last
    return {TYPE_KEY: MessageType.ACK.value, 1: message.cumulative, 2: ranges}


def _ping_fields(message: Ping | Pong) -> Fields:
    fields: Fields = {TYPE_KEY: message.TYPE.value}
    _put(fields, 1, message.id, 0)
    return fields


def _error_fields(message: Error) -> Fields:
    fields: Fields = {TYPE_KEY: MessageType.ERROR.value, 1: int(message.code)}
    _put(fields, 2, message.message_type)
    _put(fields, 3, message.message_id)
    _put(fields, 4, message.text)
    return fields


def _send_fields(message: SendMessage) -> Fields:
    fields: Fields = {TYPE_KEY: MessageType.SEND_MESSAGE.value, 1: message.id, 2: message.to}
    _put_content(fields, message.content)
    _put(fields, 7, message.want_report, True)
    return fields


def _incoming_fields(message: IncomingMessage) -> Fields:
    fields: Fields = {
        TYPE_KEY: MessageType.INCOMING_MESSAGE.value,
        1: message.id,
        2: message.sender,
        7: message.timestamp,
    }
    _put_content(fields, message.content)
    _put(fields, 8, int(message.signature), SignatureStatus.NONE.value)
    return fields


def _report_fields(message: DeliveryReport) -> Fields:
    fields: Fields = {
        TYPE_KEY: MessageType.DELIVERY_REPORT.value,
        1: message.id,
        2: int(message.status),
    }
    _put(fields, 3, None if message.reason is None else int(message.reason))
    _put(fields, 4, message.text)
    return fields


def _set_presence_fields(message: SetPresence) -> Fields:
    fields: Fields = {TYPE_KEY: MessageType.SET_PRESENCE.value}
    _put(fields, 1, message.open)
    _put(fields, 2, None if message.show is None else int(message.show))
    _put(fields, 3, message.note)
    _put(fields, 4, message.note_language)
    return fields


def _notification_fields(message: PresenceNotification) -> Fields:
    fields: Fields = {
        TYPE_KEY: MessageType.PRESENCE_NOTIFICATION.value,
        1: message.contact,
        2: message.open,
    }
    _put(fields, 3, int(message.show), Show.AVAILABLE.value)
    _put(fields, 4, message.note)
    _put(fields, 5, message.note_language)
    _put(fields, 6, int(message.signature), SignatureStatus.NONE.value)
    return fields


def _command_fields(message: SubscriptionCommand) -> Fields:
    return {
        TYPE_KEY: MessageType.SUBSCRIPTION_COMMAND.value,
        1: int(message.action),
        2: message.contact,
    }


def _request_fields(message: SubscriptionRequest) -> Fields:
    fields: Fields = {TYPE_KEY: MessageType.SUBSCRIPTION_REQUEST.value, 1: message.sender}
    _put(fields, 2, message.note)
    return fields


def _list_request_fields(message: ContactListRequest) -> Fields:
    fields: Fields = {TYPE_KEY: MessageType.CONTACT_LIST_REQUEST.value}
    _put(fields, 1, message.known_version)
    return fields


def _contact_fields(contact: Contact) -> Fields:
    fields: Fields = {1: contact.alias, 2: contact.address}
    _put(fields, 3, int(contact.subscription), SubscriptionState.NONE.value)
    _put(fields, 4, contact.name)
    _put(fields, 5, contact.pending_out, False)
    _put(fields, 6, contact.blocked, False)
    return fields


def _list_fields(message: ContactList) -> Fields:
    fields: Fields = {TYPE_KEY: MessageType.CONTACT_LIST.value, 1: message.version}
    if message.contacts:
        fields[2] = [_contact_fields(contact) for contact in message.contacts]
    _put(fields, 3, message.complete, False)
    return fields


def _sleep_fields(message: Sleep) -> Fields:
    return {TYPE_KEY: MessageType.SLEEP.value, 1: message.duration}


def _wake_fields(message: Wake) -> Fields:
    fields: Fields = {TYPE_KEY: MessageType.WAKE.value}
    _put(fields, 1, message.presence_snapshot, False)
    return fields


def _summary_fields(message: MissedSummary) -> Fields:
    fields: Fields = {TYPE_KEY: MessageType.MISSED_SUMMARY.value}
    _put(fields, 1, message.messages, 0)
    _put(fields, 2, message.delivery_reports, 0)
    _put(fields, 3, message.presence_notifications, 0)
    _put(fields, 4, message.subscription_requests, 0)
    _put(fields, 5, message.expired, 0)
    return fields


def _to_cbor(message: Message) -> CborValue:
    if isinstance(message, Ack):
        return _ack_fields(message)
    if isinstance(message, Ping | Pong):
        return _ping_fields(message)
    if isinstance(message, Error):
        return _error_fields(message)
    if isinstance(message, SendMessage):
        return _send_fields(message)
    if isinstance(message, IncomingMessage):
        return _incoming_fields(message)
    if isinstance(message, DeliveryReport):
        return _report_fields(message)
    if isinstance(message, SetPresence):
        return _set_presence_fields(message)
    if isinstance(message, PresenceNotification):
        return _notification_fields(message)
    if isinstance(message, SubscriptionCommand):
        return _command_fields(message)
    if isinstance(message, SubscriptionRequest):
        return _request_fields(message)
    if isinstance(message, ContactListRequest):
        return _list_request_fields(message)
    if isinstance(message, ContactList):
        return _list_fields(message)
    if isinstance(message, Sleep):
        return _sleep_fields(message)
    if isinstance(message, Wake):
        return _wake_fields(message)
    if isinstance(message, MissedSummary):
        return _summary_fields(message)
    raise LocalWireError(ErrorCode.UNKNOWN_TYPE, f"not a wire message: {type(message).__name__}")


def encode(message: Message, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    """Encode one message deterministically; refuse one the peer's default limit would reject."""
    encoded = encode_value(_to_cbor(message))
    if len(encoded) > max_size:
        raise LocalWireError(
            ErrorCode.TOO_LARGE, f"message of {len(encoded)} bytes exceeds {max_size}"
        )
    return encoded


def encode_sequence(messages: Iterable[Message]) -> bytes:
    """Encode messages as a CBOR sequence (RFC 8742): their encodings one after another."""
    return b"".join(encode(message) for message in messages)


# --------------------------------------------------------------------------------------------------
# Decoding


def _fail(code: ErrorCode, detail: str) -> NoReturn:
    raise RemoteWireError(code, detail)


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise LocalWireError(ErrorCode.INVALID_FIELD, "decode needs bytes")


def decode_untrusted(data: bytes, *, limits: WireLimits = DEFAULT_LIMITS) -> Message:
    """Decode exactly one message from ``data`` (no trailing bytes); raise only WireError."""
    data = _as_bytes(data)
    if len(data) > limits.max_message_size:  # before reading a single header
        _fail(ErrorCode.TOO_LARGE, f"{len(data)} bytes exceed {limits.max_message_size}")
    reader = CborReader(data, max_depth=limits.max_depth)
    item = reader.read_item()
    if not reader.at_end:
        _fail(ErrorCode.MALFORMED, f"{len(data) - reader.position} bytes after the message")
    return message_from_cbor(item)


def decode_sequence_untrusted(data: bytes, *, limits: WireLimits = DEFAULT_LIMITS) -> list[Message]:
    """Decode a CBOR sequence of messages (a record's plaintext, RFC 8742); raise only WireError."""
    data = _as_bytes(data)
    if len(data) > limits.max_sequence_size:
        _fail(ErrorCode.TOO_LARGE, f"{len(data)} bytes exceed {limits.max_sequence_size}")
    reader = CborReader(data, max_depth=limits.max_depth)
    messages: list[Message] = []
    while not reader.at_end:
        if len(messages) >= limits.max_sequence_messages:
            _fail(ErrorCode.TOO_MANY_MESSAGES, f"more than {limits.max_sequence_messages}")
        start = reader.position
        item = reader.read_item()
        if reader.position - start > limits.max_message_size:
            _fail(ErrorCode.TOO_LARGE, f"a message exceeds {limits.max_message_size} bytes")
        messages.append(message_from_cbor(item))
    return messages
