"""Interpretation of a decoded CBOR item as a wire message: every field's type, range and key.

Theory of operation (docs/protocol.md, Sections 4.3-4.5 and 6). The strict CBOR reader (cbor.py)
has already refused what is not deterministic CBOR of the protocol's subset; here a bare unsigned
integer becomes a compact Ack, a 3-item array a compact SendMessage (its items read as the map keys
1, 2 and 3 would be, so both forms fail alike), and a map is read, field by declared field
(fields.py), for its key-0 message type. Each read checks the CBOR type exactly (``true`` is
not 1) and refuses a default written out; afterwards a non-negative key the message does not
declare is an unknown critical field, a negative one an elective field, ignored. The
declaration is compiled once per class at import (:func:`_compile`): a tuple of (attribute, key,
reader function, default, enum members), so decoding a message does no metadata lookups. The
dataclass constructors check ranges and cross-field rules; their :class:`LocalWireError` becomes a
:class:`RemoteWireError` here: the values came from the peer.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import NoReturn, TypeVar

from gateway.wire.cbor import CborValue
from gateway.wire.errors import ErrorCode, LocalWireError, RemoteWireError
from gateway.wire.fields import (
    CONTENT_KEYS,
    REQUIRED,
    TYPE_KEY,
    Kind,
    declared_fields,
)
from gateway.wire.messages import (
    MESSAGE_CLASSES,
    Ack,
    Contact,
    Message,
    MimeContent,
    SendMessage,
    TextContent,
)

__all__ = ["message_from_cbor"]

_TEXT, _LANGUAGE, _CONTENT_TYPE, _DATA = CONTENT_KEYS

Fields = dict[int, CborValue]


def _fail(code: ErrorCode, detail: str) -> NoReturn:
    raise RemoteWireError(code, detail)


# Each reader takes the received map, the message's name (for details), the field's key, its
# default and, for an ENUM, the enumeration's members by value; it returns the field's value.
# _compile picks one per declared field once, at import, so a read does no metadata lookups.
_Reader = Callable[[Fields, str, int, object, "dict[int, IntEnum] | None"], object]


def _wrong(what: str, key: int, expected: str) -> NoReturn:
    _fail(ErrorCode.INVALID_FIELD, f"{what}: key {key} must be {expected}")


def _missing(what: str, key: int) -> NoReturn:
    _fail(ErrorCode.MISSING_FIELD, f"{what}: key {key} is required")


def _at_default(what: str, key: int) -> NoReturn:
    _fail(ErrorCode.NOT_DETERMINISTIC, f"{what}: key {key} holds its default")


def _uint(fields: Fields, what: str, key: int) -> int:
    if key not in fields:
        _missing(what, key)
    value = fields[key]
    if type(value) is not int or value < 0:  # bool is not int; the reader makes no subclasses
        _wrong(what, key, "an unsigned integer")
    return value


def _read_uint(
    fields: Fields, what: str, key: int, default: object, members: dict[int, IntEnum] | None
) -> object:
    """A UINT or CODE field: required, optional (``None``), or omitted at its default."""
    if key not in fields:
        if default is REQUIRED:
            _missing(what, key)
        return default
    value = fields[key]
    if type(value) is not int or value < 0:
        _wrong(what, key, "an unsigned integer")
    if value == default:  # a None or REQUIRED default never equals a number
        _at_default(what, key)
    return value


def _read_enum(
    fields: Fields, what: str, key: int, default: object, members: dict[int, IntEnum] | None
) -> object:
    """A closed enumeration: its member; an unknown value is an invalid field."""
    if key not in fields:
        if default is REQUIRED:
            _missing(what, key)
        return default
    value = fields[key]
    if type(value) is not int or value < 0:
        _wrong(what, key, "an unsigned integer")
    if value == default:
        _at_default(what, key)
    assert members is not None  # _compile gives every ENUM field its members
    member = members.get(value)
    if member is None:
        _fail(ErrorCode.INVALID_FIELD, f"{value} is not a known value")
    return member


def _read_boolean(
    fields: Fields, what: str, key: int, default: object, members: dict[int, IntEnum] | None
) -> object:
    if key not in fields:
        if default is REQUIRED:
            _missing(what, key)
        return default
    value = fields[key]
    if type(value) is not bool:
        _wrong(what, key, "true or false")
    if value is default:  # a bool default is True or False itself; None and REQUIRED never match
        _at_default(what, key)
    return value


def _text(fields: Fields, what: str, key: int) -> str:
    if key not in fields:
        _missing(what, key)
    value = fields[key]
    if type(value) is not str:
        _wrong(what, key, "a text string")
    return value


def _read_text(
    fields: Fields, what: str, key: int, default: object, members: dict[int, IntEnum] | None
) -> object:
    if default is not REQUIRED and key not in fields:
        return None
    return _text(fields, what, key)


def _read_bytes(
    fields: Fields, what: str, key: int, default: object, members: dict[int, IntEnum] | None
) -> object:
    if key not in fields:
        _missing(what, key)
    value = fields[key]
    if type(value) is not bytes:
        _wrong(what, key, "a byte string")
    return value


def _read_contact_ref(
    fields: Fields, what: str, key: int, default: object, members: dict[int, IntEnum] | None
) -> object:
    if key not in fields:
        if default is not REQUIRED:
            return None  # an optional contact (SetPresence's recipient)
        _missing(what, key)
    value = fields[key]
    if type(value) is int:
        if value >= 0:
            return value
    elif type(value) is str:
        return value
    _wrong(what, key, "an alias (unsigned integer) or an address (text)")


def _read_content(
    fields: Fields, what: str, key: int, default: object, members: dict[int, IntEnum] | None
) -> object:
    if _TEXT in fields:
        if _CONTENT_TYPE in fields or _DATA in fields:
            _fail(ErrorCode.INVALID_FIELD, "a message has text or MIME content, not both")
        text = _text(fields, what, _TEXT)
        return TextContent(text, _text(fields, what, _LANGUAGE) if _LANGUAGE in fields else None)
    if _LANGUAGE in fields:
        _fail(ErrorCode.INVALID_FIELD, "a language tag belongs to text content")
    content_type = _text(fields, what, _CONTENT_TYPE)
    data = _read_bytes(fields, what, _DATA, REQUIRED, None)
    assert isinstance(data, bytes)
    return MimeContent(content_type, data)


def _array(fields: Fields, what: str, key: int) -> list[CborValue]:
    value = fields[key]
    if type(value) is not list:
        _wrong(what, key, "an array")
    if not value:
        _fail(ErrorCode.NOT_DETERMINISTIC, f"{what}: empty array at key {key}")
    return value


def _read_contacts(
    fields: Fields, what: str, key: int, default: object, members: dict[int, IntEnum] | None
) -> object:
    if key not in fields:
        return ()
    return tuple(_read_contact(entry) for entry in _array(fields, what, key))


def _read_ack_ranges(
    fields: Fields, what: str, key: int, default: object, members: dict[int, IntEnum] | None
) -> object:
    """(gap, length) pairs relative to the cumulative ack at key 1 (read, and checked, before)."""
    if key not in fields:
        return ()
    numbers = _array(fields, what, key)
    if len(numbers) % 2:
        _fail(ErrorCode.INVALID_FIELD, "ack ranges come in (gap, length) pairs")
    selective: list[tuple[int, int]] = []
    previous = fields[1]
    assert type(previous) is int
    for index in range(0, len(numbers), 2):
        gap, length = numbers[index], numbers[index + 1]
        if type(gap) is not int or gap < 0 or type(length) is not int or length < 0:
            _fail(ErrorCode.INVALID_FIELD, "ack gaps and lengths are unsigned integers")
        first = previous + gap + 1
        last = first + length
        selective.append((first, last))
        previous = last
    return tuple(selective)


_READER_OF_KIND: dict[Kind, _Reader] = {
    Kind.UINT: _read_uint,
    Kind.CODE: _read_uint,
    Kind.ENUM: _read_enum,
    Kind.BOOL: _read_boolean,
    Kind.TEXT: _read_text,
    Kind.BYTES: _read_bytes,
    Kind.CONTACT_REF: _read_contact_ref,
    Kind.CONTENT: _read_content,
    Kind.CONTACTS: _read_contacts,
    Kind.ACK_RANGES: _read_ack_ranges,
}

_Table = tuple[tuple[str, int, _Reader, object, "dict[int, IntEnum] | None"], ...]


def _compile(cls: type) -> tuple[_Table, frozenset[int]]:
    """The decoder's view of ``cls``: (attribute, key, reader, default, members), and its keys."""
    table: list[tuple[str, int, _Reader, object, dict[int, IntEnum] | None]] = []
    keys: set[int] = set()
    for declared in declared_fields(cls):
        kind = declared.kind
        if kind is Kind.BOOL and declared.default not in (REQUIRED, None, True, False):
            raise TypeError(f"{cls.__name__}.{declared.name}: a flag's default is a bool")
        if kind is Kind.ACK_RANGES and [entry[:2] for entry in table] != [("cumulative", 1)]:
            raise TypeError(f"{cls.__name__}: ack ranges need the cumulative ack at key 1 first")
        members = None
        if declared.enum is not None:
            members = {int(member): member for member in declared.enum}
        table.append(
            (declared.name, declared.key, _READER_OF_KIND[kind], declared.default, members)
        )
        keys.update(CONTENT_KEYS if kind is Kind.CONTENT else (declared.key,))
    return tuple(table), frozenset(keys)


_D = TypeVar("_D")


def _read_declared(
    cls: type[_D], table: _Table, what: str, fields: Fields, form: dict[str, object] | None = None
) -> _D:
    """Build ``cls`` from the fields it declares, in declaration order (``form``: its form flag)."""
    values: dict[str, object] = dict(form) if form else {}
    for name, key, reader, default, members in table:
        values[name] = reader(fields, what, key, default, members)
    return cls(**values)


def _unknown_critical(what: str, fields: Fields, known: frozenset[int]) -> None:
    """Reject unknown critical (non-negative) keys; ignore unknown elective (negative) ones."""
    for key in fields:
        if key >= 0 and key not in known:
            _fail(ErrorCode.UNKNOWN_CRITICAL_FIELD, f"{what}: unknown critical key {key}")


_CONTACT_TABLE, _CONTACT_KEYS = _compile(Contact)


def _read_contact(value: CborValue) -> Contact:
    if type(value) is not dict:
        _fail(ErrorCode.INVALID_FIELD, "a contact entry is a map")
    contact = _read_declared(Contact, _CONTACT_TABLE, "contact", value)
    _unknown_critical("contact", value, _CONTACT_KEYS)
    return contact


class _MessageReader:
    """What decoding one message type needs, compiled once from its declaration."""

    __slots__ = ("cls", "form", "keys", "name", "table")

    def __init__(self, cls: type[Message]) -> None:
        self.cls = cls
        self.name = cls.TYPE.name
        self.table, declared_keys = _compile(cls)
        self.keys = declared_keys | {TYPE_KEY}
        # A SendMessage read from a map remembers it (its re-encoding is the same map).
        self.form: dict[str, object] | None = {"compact": False} if cls is SendMessage else None

    def __call__(self, fields: Fields) -> Message:
        """The message ``fields`` hold, checked against the declaration (without finishing)."""
        message = _read_declared(self.cls, self.table, self.name, fields, self.form)
        if isinstance(message, Ack) and not message.selective and len(fields) == 2:
            # {0: 0, 1: n} must be sent as the bare integer n.
            _fail(ErrorCode.NOT_DETERMINISTIC, "a cumulative-only ack is a bare integer")
        return message


_READERS: dict[int, _MessageReader] = {
    cls.TYPE.value: _MessageReader(cls) for cls in MESSAGE_CLASSES
}


_COMPACT_SEND = "compact SendMessage"


def _compact_send_message(item: list[CborValue]) -> SendMessage:
    """``[id, to, text]``: a text SendMessage without language that wants its report (§6.4).

    Each item is checked as its map key would be (id as key 1, to as key 2, text as key 3), with
    the same error codes; the array's length is fixed, so a longer array (an extension this
    revision does not define) and a shorter one are INVALID_FIELD.
    """
    if len(item) != 3:
        _fail(ErrorCode.INVALID_FIELD, "a top-level array is a compact SendMessage of 3 items")
    fields: Fields = {1: item[0], 2: item[1], 3: item[2]}
    message_id = _uint(fields, _COMPACT_SEND, 1)
    to = fields[2]
    if type(to) is not str and (type(to) is not int or to < 0):
        _wrong(_COMPACT_SEND, 2, "an alias (unsigned integer) or an address (text)")
    text = _text(fields, _COMPACT_SEND, 3)
    try:
        return SendMessage(message_id, to, TextContent(text))
    except LocalWireError as exc:  # an alias above 65535, an address with spaces
        raise RemoteWireError(exc.code, exc.detail) from exc


def message_from_cbor(item: CborValue) -> Message:
    """The message an item encodes; raises only :class:`RemoteWireError`."""
    if type(item) is int:
        if item >= 0:
            return Ack(item)
    elif type(item) is list:
        return _compact_send_message(item)
    elif type(item) is dict:
        message_type = item.get(TYPE_KEY)
        if message_type is None:
            _fail(ErrorCode.MISSING_FIELD, "key 0 (message type) is required")
        if type(message_type) is not int or message_type < 0:
            _fail(ErrorCode.INVALID_FIELD, "key 0 (message type) must be an unsigned integer")
        reader = _READERS.get(message_type)
        if reader is None:
            _fail(ErrorCode.UNKNOWN_TYPE, f"unknown message type {message_type}")
        try:
            message = reader(item)
        except LocalWireError as exc:  # the dataclass refused a value the peer sent
            raise RemoteWireError(exc.code, exc.detail) from exc
        _unknown_critical(reader.name, item, reader.keys)
        return message
    _fail(ErrorCode.INVALID_FIELD, "a message is a map, an unsigned integer or a 3-item array")
