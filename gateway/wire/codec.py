"""Encoding and decoding of wire messages: dataclass <-> integer-keyed CBOR map <-> bytes.

Theory of operation (docs/protocol.md, "Message encoding"). A message is one CBOR item in the
deterministic encoding of RFC 8949 §4.2.1: a map whose key 0 holds the message type, or one of the
two compact forms, where the CBOR major type stands for the message type: a bare unsigned integer
is a cumulative-only :class:`Ack` (so an ack costs 1-3 bytes up to 65535), and a 3-item array
``[id, to, text]`` is a text :class:`SendMessage` that wants its report (5 bytes below its map:
the type and three keys). Field keys are small integers; a non-negative key the receiver does not
know makes the message invalid (critical), a negative key it does not know is ignored (elective),
so later versions can add both kinds of field. Optional fields are omitted when they hold their
default, and writing a default out is rejected as non-deterministic: each message value has
exactly one encoding in each form. A cumulative-only Ack has only its compact form; a SendMessage
that fits the compact form may also come as a map (devices built before the compact form send
that), and its ``compact`` flag records which, so that re-encoding reproduces the received bytes.

Decoding is total: :func:`decode_untrusted` returns a message or raises :class:`RemoteWireError`
(whose code says what is wrong with the bytes; a non-bytes argument is the caller's
:class:`LocalWireError`). The input size is checked before the first byte is read, the item count
at each container header; the strict reader is gateway/cbor.py under the wire policy of cbor.py,
the interpretation of fields decoding.py. Both directions walk the one declaration of each
message's fields (fields.py, in messages.py's dataclass metadata).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from gateway.wire.cbor import CborReader, CborValue, encode_value
from gateway.wire.decoding import message_from_cbor
from gateway.wire.errors import ErrorCode, LocalWireError, RemoteWireError
from gateway.wire.fields import CONTENT_KEYS, TYPE_KEY, Kind, declared_fields
from gateway.wire.limits import DEFAULT_LIMITS, DEFAULT_MAX_MESSAGE_SIZE, WireLimits
from gateway.wire.messages import (
    MESSAGE_CLASSES,
    Ack,
    Contact,
    Message,
    SendMessage,
    TextContent,
)

__all__ = ["decode_sequence_untrusted", "decode_untrusted", "encode", "encode_sequence"]

_TEXT, _LANGUAGE, _CONTENT_TYPE, _DATA = CONTENT_KEYS

Fields = dict[int, CborValue]


# --------------------------------------------------------------------------------------------------
# Encoding


# The put functions take the attribute as ``Any``: the dataclass's own checks (messages.py) have
# already given it the type its kind names, and the hot path repeats no isinstance test.


def _put_value(fields: Fields, key: int, item: Any, default: object) -> None:
    """A UINT, BOOL, TEXT, BYTES or CONTACT_REF field, left out when absent or at its default."""
    if item is not None and item != default:
        fields[key] = item


def _put_number(fields: Fields, key: int, item: Any, default: object) -> None:
    """An ENUM or CODE field as its plain number, left out when absent or at its default."""
    if item is not None and item != default:
        fields[key] = int(item)


def _put_content(fields: Fields, key: int, content: Any, default: object) -> None:
    """Text content at keys 3 and 4 or MIME content at keys 5 and 6 (CONTENT_KEYS)."""
    if isinstance(content, TextContent):
        fields[_TEXT] = content.text
        if content.language is not None:
            fields[_LANGUAGE] = content.language
    else:  # a MimeContent: the dataclass admits only these two
        fields[_CONTENT_TYPE] = content.content_type
        fields[_DATA] = content.data


def _put_contacts(fields: Fields, key: int, contacts: Any, default: object) -> None:
    """A non-empty array of contact maps; an empty list is omitted."""
    if contacts:
        fields[key] = [_declared_map(contact, _CONTACT_TABLE, {}) for contact in contacts]


def _put_ack_ranges(fields: Fields, key: int, selective: Any, default: object) -> None:
    """QUIC-style gap/length pairs (RFC 9000 §19.3.1): small numbers, relative to cumulative."""
    if not selective:
        return
    ranges: list[CborValue] = []
    previous: Any = fields[1]  # the cumulative ack (_compile checks that it comes first)
    append = ranges.append
    for first, last in selective:
        append(first - previous - 1)
        append(last - first)
        previous = last
    fields[key] = ranges


_Put = Callable[[Fields, int, Any, object], None]
_Table = tuple[tuple[int, str, _Put, object], ...]

_PUTS: dict[Kind, _Put] = {
    Kind.UINT: _put_value,
    Kind.BOOL: _put_value,
    Kind.TEXT: _put_value,
    Kind.BYTES: _put_value,
    Kind.CONTACT_REF: _put_value,
    Kind.ENUM: _put_number,
    Kind.CODE: _put_number,
    Kind.CONTENT: _put_content,
    Kind.CONTACTS: _put_contacts,
    Kind.ACK_RANGES: _put_ack_ranges,
}


def _compile(cls: type) -> _Table:
    """The encoder's view of ``cls``'s declared fields: (key, attribute, put function, default)."""
    table = tuple(
        (declared.key, declared.name, _PUTS[declared.kind], declared.default)
        for declared in declared_fields(cls)
    )
    keys = [key for key, _, put, _ in table if put is _put_ack_ranges]
    if keys and table[0][:2] != (1, "cumulative"):  # ack ranges are relative to key 1
        raise TypeError(f"{cls.__name__}: ack ranges need the cumulative ack at key 1 first")
    return table


def _declared_map(value: object, table: _Table, fields: Fields) -> Fields:
    """Add the fields ``value`` declares (fields.py), leaving out absent ones and defaults."""
    for key, name, put, default in table:
        put(fields, key, getattr(value, name), default)
    return fields


_CONTACT_TABLE = _compile(Contact)
_TABLES: dict[type, tuple[int, _Table]] = {
    cls: (cls.TYPE.value, _compile(cls)) for cls in MESSAGE_CLASSES
}


def _table_of(message: object) -> tuple[int, _Table]:
    """The compiled table of ``message``'s class, or of the message class it derives from."""
    compiled = _TABLES.get(type(message))
    if compiled is not None:
        return compiled
    for cls in type(message).__mro__:
        if cls in _TABLES:
            return _TABLES[cls]
    raise LocalWireError(ErrorCode.UNKNOWN_TYPE, f"not a wire message: {type(message).__name__}")


def _to_cbor(message: Message) -> CborValue:
    compiled = _table_of(message)
    if isinstance(message, Ack) and not message.selective:
        return message.cumulative  # the compact form: a bare unsigned integer
    if isinstance(message, SendMessage) and message.compact:
        return _compact_send_message(message)
    message_type, table = compiled
    return _declared_map(message, table, {TYPE_KEY: message_type})


def _compact_send_message(message: SendMessage) -> CborValue:
    """The compact form ``[id, to, text]`` (docs/protocol.md §6.4); ``compact`` says it fits."""
    content = message.content
    assert isinstance(content, TextContent)  # SendMessage clears ``compact`` for anything else
    return [message.id, message.to, content.text]


def encode(message: Message, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    """Encode one message deterministically; refuse one the peer's default limit would reject."""
    if type(message) is Ack and not message.selective:  # the commonest message, without a table
        encoded = encode_value(message.cumulative)
    else:
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
    reader = CborReader(data, max_depth=limits.max_depth, max_items=limits.max_message_items)
    item = reader.read_item()
    if reader.position != len(data):
        _fail(ErrorCode.MALFORMED, f"{len(data) - reader.position} bytes after the message")
    return message_from_cbor(item)


def decode_sequence_untrusted(data: bytes, *, limits: WireLimits = DEFAULT_LIMITS) -> list[Message]:
    """Decode a CBOR sequence of messages (a record's plaintext, RFC 8742); raise only WireError."""
    data = _as_bytes(data)
    if len(data) > limits.max_sequence_size:
        _fail(ErrorCode.TOO_LARGE, f"{len(data)} bytes exceed {limits.max_sequence_size}")
    reader = CborReader(data, max_depth=limits.max_depth)
    messages: list[Message] = []
    sequence_items_left = limits.max_sequence_items
    while not reader.at_end:
        if len(messages) >= limits.max_sequence_messages:
            _fail(ErrorCode.TOO_MANY_MESSAGES, f"more than {limits.max_sequence_messages}")
        start = reader.position
        budget = min(limits.max_message_items, sequence_items_left)
        reader.items_left = budget  # each message within its own limit and the sequence's
        item = reader.read_item()
        sequence_items_left -= budget - (reader.items_left or 0)
        if reader.position - start > limits.max_message_size:
            _fail(ErrorCode.TOO_LARGE, f"a message exceeds {limits.max_message_size} bytes")
        messages.append(message_from_cbor(item))
    return messages
