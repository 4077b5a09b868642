"""One strict CBOR core for every protocol of the gateway: deterministic encoder, bounded decoder.

Theory of operation. The protocols here (the wire messages, EDHOC and its credentials, the session's
control items) use one small part of CBOR (RFC 8949): unsigned and negative integers within 64 bits,
byte strings, UTF-8 text strings, definite-length arrays and maps, and the simple values false, true
and null. The encoder writes every head in its shortest form and every length definitely (RFC 8949
§4.2.1); with ``sort_keys`` it also orders map keys by the bytewise order of their encodings, the
core deterministic order of §4.2.1. That is not the length-first order of RFC 7049 §3.9 (cbor2's
``canonical=True``): the two disagree as soon as a negative key meets a two-byte one (``-1`` is
``0x20``, ``24`` is ``0x18 0x18``: bytewise order puts 24 first).

The decoder refuses what a general decoder accepts or silently repairs: over-long heads,
indefinite lengths, tags, floats and other simple values, duplicate keys, and (with
``sorted_keys``) keys out of order. Each package states its policy as arguments: which key types a
map may hold, whether keys must be sorted, how deep containers may nest and how many items one read
may produce. Work is bounded before it is done: every length is checked against the bytes that
remain before anything is sliced or looped over (a head claiming 2^64 items on a 10-byte input
fails at once), depth is checked at the head that would exceed it (the recursion is bounded by the
limit, never by the input), and the items a container announces are counted against ``max_items``
at its head, before one of them is built, so a run of empty containers cannot turn a small input
into a large heap. Decoding raises only
:class:`CborError`, whose :class:`CborReason` each package maps onto its own protocol error.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeAlias

__all__ = [
    "INTEGER_KEY_MAJORS",
    "CborDecoder",
    "CborError",
    "CborReason",
    "CborValue",
    "KeyTypes",
    "encode",
    "encode_head",
    "encode_sorted",
]

CborValue: TypeAlias = (
    "int | bytes | str | bool | list[CborValue] | dict[int | str, CborValue] | None"
)

MAJOR_UNSIGNED = 0
MAJOR_NEGATIVE = 1
MAJOR_BYTES = 2
MAJOR_TEXT = 3
MAJOR_ARRAY = 4
MAJOR_MAP = 5
MAJOR_TAG = 6
MAJOR_SIMPLE = 7
_FALSE, _TRUE, _NULL = 0xF4, 0xF5, 0xF6
_UINT64_LIMIT = 1 << 64
# RFC 8949 §4.2.1: the smallest argument each additional-information value may carry.
_MINIMUM_ARGUMENT = {24: 24, 25: 1 << 8, 26: 1 << 16, 27: 1 << 32}
_ARGUMENT_WIDTH = {24: 1, 25: 2, 26: 4, 27: 8}


class CborReason(Enum):
    """Why bytes were refused or a value could not be encoded."""

    TRUNCATED = "truncated"  # the input ends inside an item, or a length exceeds what remains
    NOT_WELL_FORMED = "not well-formed"  # reserved additional information, a stray break code
    INVALID_UTF8 = "invalid UTF-8"  # a text string that is not UTF-8 (RFC 8949 §3.1)
    TRAILING_DATA = "trailing data"  # bytes after the one item a caller asked for
    INDEFINITE_LENGTH = "indefinite length"  # RFC 8949 §3.2.2, never used here
    NOT_SHORTEST = "not shortest"  # a head longer than needed (RFC 8949 §4.2.1)
    KEYS_OUT_OF_ORDER = "keys out of order"  # with sorted_keys: not bytewise ascending
    DUPLICATE_KEY = "duplicate key"  # RFC 8949 §5.6: such a map is not valid
    UNSUPPORTED_TYPE = "unsupported type"  # tags, floats, other simple values; unencodable types
    UNSUPPORTED_KEY = "unsupported key"  # a map key of a type the policy does not allow
    TOO_DEEP = "too deep"  # nesting beyond max_depth
    TOO_MANY_ITEMS = "too many items"  # more items than max_items
    OUT_OF_RANGE = "out of range"  # encoding: an integer outside CBOR's 64-bit range
    INVALID_TEXT = "invalid text"  # encoding: a str that is not valid Unicode (lone surrogates)


class CborError(Exception):
    """The one error of this module: ``reason`` says what, ``position`` where (for decoding)."""

    def __init__(self, reason: CborReason, detail: str, position: int | None = None) -> None:
        where = "" if position is None else f" (at byte {position})"
        super().__init__(f"{reason.value}: {detail}{where}")
        self.reason = reason
        self.detail = detail
        self.position = position


class KeyTypes(Enum):
    """Which CBOR types may be map keys."""

    INTEGER = "integer"  # major types 0 and 1 only: the wire protocol
    INTEGER_OR_TEXT = "integer or text"  # also major type 3: COSE keys, CWT claims, EDHOC

    @property
    def majors(self) -> frozenset[int]:
        """The major types allowed as keys."""
        return INTEGER_KEY_MAJORS if self is KeyTypes.INTEGER else _INTEGER_OR_TEXT_MAJORS


INTEGER_KEY_MAJORS = frozenset((MAJOR_UNSIGNED, MAJOR_NEGATIVE))  # KeyTypes.INTEGER.majors
_INTEGER_OR_TEXT_MAJORS = frozenset((MAJOR_UNSIGNED, MAJOR_NEGATIVE, MAJOR_TEXT))


# --------------------------------------------------------------------------------------------------
# Encoding


def encode_head(major: int, argument: int) -> bytes:
    """The shortest head for ``argument`` under ``major`` (RFC 8949 §3 and §4.2.1)."""
    out = bytearray()
    _head(out, major, argument)
    return bytes(out)


def _head(out: bytearray, major: int, argument: int) -> None:
    if argument < 24:
        out.append(major << 5 | argument)
    elif argument < 1 << 8:
        out += bytes((major << 5 | 24, argument))
    elif argument < 1 << 16:
        out.append(major << 5 | 25)
        out += argument.to_bytes(2, "big")
    elif argument < 1 << 32:
        out.append(major << 5 | 26)
        out += argument.to_bytes(4, "big")
    elif argument < _UINT64_LIMIT:
        out.append(major << 5 | 27)
        out += argument.to_bytes(8, "big")
    else:
        raise CborError(CborReason.OUT_OF_RANGE, "integer outside CBOR's 64-bit range")


def _encoded_key(key: object, key_types: type | tuple[type, ...]) -> bytes:
    """A map key's encoding (what the deterministic order sorts); small uints come from a table."""
    if type(key) is int and 0 <= key < 24:
        return _SMALL_UINTS[key]
    if isinstance(key, bool) or not isinstance(key, key_types):
        raise CborError(CborReason.UNSUPPORTED_KEY, f"map key of type {type(key).__name__}")
    key_bytes = bytearray()
    _encode_into(key_bytes, key, True, key_types)
    return bytes(key_bytes)


_INTEGER = KeyTypes.INTEGER
_INTEGER_KEYS: type | tuple[type, ...] = int
_INTEGER_OR_TEXT_KEYS: type | tuple[type, ...] = (int, str)
_SMALL_UINTS = tuple(bytes((value,)) for value in range(24))


def _encode_into(
    out: bytearray, value: Any, sort_keys: bool, key_types: type | tuple[type, ...]
) -> None:
    kind = type(value)  # exact types first: the common case costs one comparison
    if kind is int:
        if 0 <= value < 24:
            out.append(value)
        elif value >= 0:
            _head(out, MAJOR_UNSIGNED, value)
        else:
            _head(out, MAJOR_NEGATIVE, -1 - value)
    elif kind is str:
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CborError(CborReason.INVALID_TEXT, "text is not valid Unicode") from exc
        size = len(encoded)
        if size < 24:
            out.append(0x60 | size)
        else:
            _head(out, MAJOR_TEXT, size)
        out += encoded
    elif kind is bytes:
        size = len(value)
        if size < 24:
            out.append(0x40 | size)
        else:
            _head(out, MAJOR_BYTES, size)
        out += value
    elif value is None:
        out.append(_NULL)
    elif isinstance(value, bool):  # before int: bool is an int in Python, not in CBOR
        out.append(_TRUE if value else _FALSE)
    elif isinstance(value, int):
        if value >= 0:
            _head(out, MAJOR_UNSIGNED, value)
        else:
            _head(out, MAJOR_NEGATIVE, -1 - value)
    elif isinstance(value, bytes):
        _head(out, MAJOR_BYTES, len(value))
        out += value
    elif isinstance(value, str):  # a subclass of str: its characters, as for str itself
        try:
            encoded = str.encode(value, "utf-8")
        except UnicodeEncodeError as exc:
            raise CborError(CborReason.INVALID_TEXT, "text is not valid Unicode") from exc
        _head(out, MAJOR_TEXT, len(encoded))
        out += encoded
    elif isinstance(value, list):
        _head(out, MAJOR_ARRAY, len(value))
        for item in value:
            _encode_into(out, item, sort_keys, key_types)
    elif isinstance(value, dict):
        _head(out, MAJOR_MAP, len(value))
        entries = [
            (
                _SMALL_UINTS[key]
                if type(key) is int and 0 <= key < 24
                else _encoded_key(key, key_types),
                item,
            )
            for key, item in value.items()
        ]
        if sort_keys:
            # RFC 8949 §4.2.1: bytewise order. Encoded keys of distinct keys differ, so the
            # tuples compare on their first element alone.
            entries.sort()
        for encoded_key, item in entries:
            out += encoded_key
            _encode_into(out, item, sort_keys, key_types)
    else:
        raise CborError(CborReason.UNSUPPORTED_TYPE, f"cannot encode {type(value).__name__}")


def encode(
    value: object, *, sort_keys: bool = True, key_types: KeyTypes = KeyTypes.INTEGER
) -> bytes:
    """Encode ``value`` with shortest heads; sort map keys bytewise unless ``sort_keys`` is false.

    Only ``list`` is an array and only ``dict`` a map. Without ``sort_keys`` a map keeps the order
    it was given (EDHOC's credentials are hashed as their owner wrote them). Raises
    :class:`CborError` for what the subset cannot carry.
    """
    allowed = _INTEGER_KEYS if key_types is _INTEGER else _INTEGER_OR_TEXT_KEYS
    out = bytearray()
    _encode_into(out, value, sort_keys, allowed)
    return bytes(out)


def encode_sorted(value: object) -> bytes:
    """``encode(value)`` with its defaults (bytewise-sorted integer keys), without option handling.

    The wire protocol encodes every message this way; this entry point saves it the keyword
    arguments and the policy test on each call.
    """
    out = bytearray()
    _encode_into(out, value, True, _INTEGER_KEYS)
    return bytes(out)


# --------------------------------------------------------------------------------------------------
# Decoding


class CborDecoder:
    """Reads items one after another from ``data`` (a CBOR sequence, RFC 8742), strictly.

    Policy, fixed at construction: ``max_depth`` nested containers (with ``depth_counts_leaves``,
    every item counts as a level, scalars included, as EDHOC's reader always did); ``max_items``
    items over this decoder's life, or ``None`` for no count (``items_left`` is the budget that
    remains, and a caller reading a sequence may lower it before each item to bound each one);
    ``key_types`` for map keys; ``sorted_keys`` to require bytewise-ascending keys (otherwise a map
    keeps the order it was sent in, and only duplicates are refused). Every method raises only
    :class:`CborError`.
    """

    __slots__ = (
        "_data",
        "_depth_counts_leaves",
        "_key_majors",
        "_max_depth",
        "_sorted_keys",
        "items_left",
        "position",
    )

    def __init__(
        self,
        data: bytes,
        *,
        max_depth: int,
        max_items: int | None = None,
        key_types: KeyTypes = KeyTypes.INTEGER,
        sorted_keys: bool = True,
        depth_counts_leaves: bool = False,
    ) -> None:
        self._data = data
        self._max_depth = max_depth
        # An identity test, not a lookup: hashing an Enum member runs Python code.
        self._key_majors = INTEGER_KEY_MAJORS if key_types is _INTEGER else _INTEGER_OR_TEXT_MAJORS
        self._sorted_keys = sorted_keys
        self._depth_counts_leaves = depth_counts_leaves
        self.items_left = max_items
        self.position = 0

    @property
    def at_end(self) -> bool:
        """Whether every byte has been read."""
        return self.position >= len(self._data)

    def peek_initial(self) -> int:
        """The initial byte of the next item, without reading it."""
        if self.at_end:
            raise self._error(CborReason.TRUNCATED, "item expected")
        return self._data[self.position]

    def read(self) -> CborValue:
        """Read the next whole item; the decoder then stands just after it."""
        if self.position >= len(self._data):
            raise self._error(CborReason.TRUNCATED, "no CBOR item: input is empty")
        left = self.items_left
        if left is not None:
            if left < 1:
                self._claim(1)  # raises TOO_MANY_ITEMS
            self.items_left = left - 1
        return self._item(0)

    def read_single(self) -> CborValue:
        """Read the one item the whole input must be; trailing bytes are ``TRAILING_DATA``."""
        value = self.read()
        if not self.at_end:
            trailing = len(self._data) - self.position
            raise self._error(CborReason.TRAILING_DATA, f"{trailing} bytes after the item")
        return value

    def read_with_raw(self) -> tuple[CborValue, bytes]:
        """Read the next item and return it with the exact bytes it was read from."""
        start = self.position
        value = self.read()
        return value, self._data[start : self.position]

    def _error(self, reason: CborReason, detail: str) -> CborError:
        return CborError(reason, detail, self.position)

    def _claim(self, count: int) -> None:
        """Count ``count`` items against the budget before any of them is built."""
        left = self.items_left
        if left is None:
            return
        if count > left:
            raise self._error(CborReason.TOO_MANY_ITEMS, f"more items than the {left} allowed")
        self.items_left = left - count

    def _take(self, count: int) -> bytes:
        end = self.position + count
        if end > len(self._data):
            raise self._error(CborReason.TRUNCATED, "truncated item")
        chunk = self._data[self.position : end]
        self.position = end
        return chunk

    def _read_head(self) -> tuple[int, int]:
        """Read one head and return (major type, argument); refuse what the subset forbids."""
        data = self._data
        position = self.position
        if position >= len(data):
            raise self._error(CborReason.TRUNCATED, "truncated item")
        initial = data[position]
        major, info = initial >> 5, initial & 0x1F
        if major == MAJOR_SIMPLE:
            if initial in (_FALSE, _TRUE, _NULL):
                self.position = position + 1
                return major, info
            raise self._error(*_simple_refusal(info))
        if major == MAJOR_TAG:
            raise self._error(CborReason.UNSUPPORTED_TYPE, "tags are not used")
        if info < 24:
            self.position = position + 1
            return major, info
        if info == 31:
            if major in (MAJOR_BYTES, MAJOR_TEXT, MAJOR_ARRAY, MAJOR_MAP):
                raise self._error(CborReason.INDEFINITE_LENGTH, "indefinite length")
            raise self._error(CborReason.NOT_WELL_FORMED, "indefinite length on an integer")
        if info > 27:
            raise self._error(CborReason.NOT_WELL_FORMED, "reserved additional information")
        width = _ARGUMENT_WIDTH[info]
        start = position + 1
        if start + width > len(data):
            raise self._error(CborReason.TRUNCATED, "truncated head")
        argument = int.from_bytes(data[start : start + width], "big")
        if argument < _MINIMUM_ARGUMENT[info]:
            raise self._error(CborReason.NOT_SHORTEST, "argument not in shortest form")
        self.position = start + width
        return major, argument

    def _item(self, level: int) -> CborValue:
        """The item at ``level`` containers deep (0 for a top-level item)."""
        data = self._data
        start = self.position
        if self._depth_counts_leaves and level >= self._max_depth:
            raise self._error(CborReason.TOO_DEEP, f"nesting deeper than {self._max_depth}")
        if start < len(data):
            initial = data[start]
            if initial < 0x18:  # an unsigned integer below 24: the head is the value
                self.position = start + 1
                return initial
        major, argument = self._read_head()
        if major == MAJOR_UNSIGNED:
            return argument
        if major in (MAJOR_TEXT, MAJOR_BYTES):
            position = self.position
            end = position + argument
            if end > len(data):
                raise self._error(CborReason.TRUNCATED, "truncated item")
            self.position = end
            if major == MAJOR_BYTES:
                return data[position:end]
            try:
                return data[position:end].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise self._error(CborReason.INVALID_UTF8, "text string is not UTF-8") from exc
        if major == MAJOR_NEGATIVE:
            return -1 - argument
        if major == MAJOR_SIMPLE:
            initial = data[start]
            return None if initial == _NULL else initial == _TRUE
        # A container: check depth, claimed size and item budget before descending or looping.
        if level >= self._max_depth and not self._depth_counts_leaves:
            self.position = start
            raise self._error(CborReason.TOO_DEEP, f"nesting deeper than {self._max_depth}")
        remaining = len(data) - self.position
        if major == MAJOR_ARRAY:
            if argument > remaining:  # every item takes at least one byte
                raise self._error(CborReason.TRUNCATED, "array longer than the input")
            self._claim(argument)
            item = self._item
            return [item(level + 1) for _ in range(argument)]
        if argument > remaining // 2:  # every key and every value take at least one byte
            raise self._error(CborReason.TRUNCATED, "map longer than the input")
        self._claim(2 * argument)
        return self._map(argument, level)

    def _map(self, count: int, level: int) -> dict[int | str, CborValue]:
        data = self._data
        size = len(data)
        key_majors = self._key_majors
        sorted_keys = self._sorted_keys
        item = self._item
        inner = level + 1
        # A one-byte key (a uint below 24) is read here without a call, unless it counts as a level.
        inline_keys = not self._depth_counts_leaves or inner < self._max_depth
        result: dict[int | str, CborValue] = {}
        previous_key = b""
        for _ in range(count):
            key_start = self.position
            if key_start >= size:
                raise self._error(CborReason.TRUNCATED, "truncated map")
            initial = data[key_start]
            key: int | str | CborValue
            if initial < 0x18 and inline_keys:
                key = initial
                self.position = key_end = key_start + 1
            else:
                if initial >> 5 not in key_majors:
                    raise self._error(CborReason.UNSUPPORTED_KEY, "map key of a type not allowed")
                key = item(inner)
                key_end = self.position
            if not isinstance(key, int | str):  # unreachable: the major type was checked above
                raise self._error(CborReason.UNSUPPORTED_KEY, "map key of a type not allowed")
            if sorted_keys:
                encoded_key = data[key_start:key_end]
                if encoded_key <= previous_key:
                    if encoded_key == previous_key:
                        raise self._error(CborReason.DUPLICATE_KEY, f"duplicate map key {key!r}")
                    raise self._error(CborReason.KEYS_OUT_OF_ORDER, "keys not in bytewise order")
                previous_key = encoded_key
            elif key in result:
                raise self._error(CborReason.DUPLICATE_KEY, f"duplicate map key {key!r}")
            result[key] = item(inner)
        return result


def _simple_refusal(info: int) -> tuple[CborReason, str]:
    """Why a major-type-7 head other than false, true and null is refused."""
    if info == 31:
        return CborReason.NOT_WELL_FORMED, "break code outside an indefinite item"
    if 28 <= info <= 30:
        return CborReason.NOT_WELL_FORMED, "reserved additional information"
    return CborReason.UNSUPPORTED_TYPE, "floats and simple values are not used"
