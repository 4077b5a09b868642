"""A strict, deterministic CBOR subset: the encoding under every wire message.

Theory of operation. The wire protocol uses a small part of CBOR (RFC 8949): unsigned and negative
integers, byte strings, UTF-8 text strings, definite-length arrays, maps with integer keys, and the
simple values false, true and null. Everything is written in the deterministic encoding of RFC 8949
§4.2.1 (shortest-form arguments, definite lengths, map keys sorted by the bytewise order of their
encodings), so a value has exactly one encoding and the bytes a device authenticates are the bytes
the gateway parses.

The decoder is written here rather than taken from cbor2 because it must refuse what a general
decoder accepts or silently repairs: duplicate keys (cbor2 keeps the last), unsorted keys, over-long
integers and lengths, indefinite lengths, tags and floats. It checks every length against the bytes
that remain before it slices or loops (a header claiming 2^64 items on a 10-byte input fails at
once), checks the depth at each container header before it descends (so deep nesting fails after
reading one header per level, and the recursion is bounded by the limit, never by the input), and
never raises anything but :class:`RemoteWireError`. Size limits are the caller's job and are checked
before this module runs.
"""

from __future__ import annotations

from typing import TypeAlias

from gateway.wire.errors import ErrorCode, LocalWireError, RemoteWireError

__all__ = ["CborReader", "CborValue", "encode_value"]

CborValue: TypeAlias = "int | bytes | str | bool | list[CborValue] | dict[int, CborValue] | None"

_MAJOR_UNSIGNED = 0
_MAJOR_NEGATIVE = 1
_MAJOR_BYTES = 2
_MAJOR_TEXT = 3
_MAJOR_ARRAY = 4
_MAJOR_MAP = 5
_MAJOR_TAG = 6
_MAJOR_SIMPLE = 7
_FALSE, _TRUE, _NULL = 0xF4, 0xF5, 0xF6
_UINT64_LIMIT = 1 << 64
# RFC 8949 §4.2.1: the smallest argument each additional-information value may carry.
_MINIMUM_ARGUMENT = {24: 24, 25: 1 << 8, 26: 1 << 16, 27: 1 << 32}
_ARGUMENT_WIDTH = {24: 1, 25: 2, 26: 4, 27: 8}


def _head(out: bytearray, major: int, argument: int) -> None:
    """Append the shortest head for ``argument`` (RFC 8949 §3 and §4.2.1)."""
    if argument < 24:
        out.append(major << 5 | argument)
    elif argument < 1 << 8:
        out.append(major << 5 | 24)
        out.append(argument)
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
        raise LocalWireError(ErrorCode.INVALID_FIELD, "integer outside CBOR's 64-bit range")


def _encode_into(out: bytearray, value: CborValue) -> None:
    if value is None:
        out.append(_NULL)
    elif isinstance(value, bool):  # before int: bool is an int in Python, not in CBOR
        out.append(_TRUE if value else _FALSE)
    elif isinstance(value, int):
        if value >= 0:
            _head(out, _MAJOR_UNSIGNED, value)
        else:
            _head(out, _MAJOR_NEGATIVE, -1 - value)
    elif isinstance(value, bytes):
        _head(out, _MAJOR_BYTES, len(value))
        out += value
    elif isinstance(value, str):
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates cannot be sent
            raise LocalWireError(ErrorCode.INVALID_FIELD, "text is not valid Unicode") from exc
        _head(out, _MAJOR_TEXT, len(encoded))
        out += encoded
    elif isinstance(value, list):
        _head(out, _MAJOR_ARRAY, len(value))
        for item in value:
            _encode_into(out, item)
    elif isinstance(value, dict):
        entries: list[tuple[bytes, CborValue]] = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, int):
                raise LocalWireError(ErrorCode.UNSUPPORTED_DATA, "map keys must be integers")
            entries.append((encode_value(key), item))
        entries.sort(key=lambda entry: entry[0])  # RFC 8949 §4.2.1: bytewise order of encoded keys
        _head(out, _MAJOR_MAP, len(entries))
        for encoded_key, item in entries:
            out += encoded_key
            _encode_into(out, item)
    else:
        raise LocalWireError(ErrorCode.UNSUPPORTED_DATA, f"cannot encode {type(value).__name__}")


def encode_value(value: CborValue) -> bytes:
    """Encode ``value`` in the deterministic encoding of RFC 8949 §4.2.1."""
    out = bytearray()
    _encode_into(out, value)
    return bytes(out)


class CborReader:
    """Reads deterministic CBOR items one after another from ``data`` (a CBOR sequence, RFC 8742).

    Every method raises only :class:`RemoteWireError`.
    """

    __slots__ = ("_data", "_max_depth", "position")

    def __init__(self, data: bytes, *, max_depth: int) -> None:
        self._data = data
        self._max_depth = max_depth
        self.position = 0

    @property
    def at_end(self) -> bool:
        """Whether every byte has been read."""
        return self.position >= len(self._data)

    def read_item(self) -> CborValue:
        """Read the next whole item; the reader then stands just after it."""
        if self.at_end:
            raise RemoteWireError(ErrorCode.MALFORMED, "no CBOR item: input is empty")
        return self._item(1)

    def _fail(self, code: ErrorCode, detail: str) -> RemoteWireError:
        return RemoteWireError(code, f"{detail} (at byte {self.position})")

    def _take(self, count: int) -> bytes:
        end = self.position + count
        if end > len(self._data):
            raise self._fail(ErrorCode.MALFORMED, "truncated item")
        chunk = self._data[self.position : end]
        self.position = end
        return chunk

    def _read_head(self) -> tuple[int, int]:
        """Read one head and return (major type, argument); reject what this subset forbids."""
        if self.at_end:
            raise self._fail(ErrorCode.MALFORMED, "truncated item")
        initial = self._data[self.position]
        major, info = initial >> 5, initial & 0x1F
        if major == _MAJOR_SIMPLE:
            if initial in (_FALSE, _TRUE, _NULL):
                self.position += 1
                return major, info
            if info == 31:
                raise self._fail(ErrorCode.MALFORMED, "break code outside an indefinite item")
            if 28 <= info <= 30:
                raise self._fail(ErrorCode.MALFORMED, "reserved additional information")
            raise self._fail(ErrorCode.UNSUPPORTED_DATA, "floats and simple values are not used")
        if major == _MAJOR_TAG:
            raise self._fail(ErrorCode.UNSUPPORTED_DATA, "tags are not used")
        if info < 24:
            self.position += 1
            return major, info
        if info == 31:
            if major in (_MAJOR_BYTES, _MAJOR_TEXT, _MAJOR_ARRAY, _MAJOR_MAP):
                raise self._fail(ErrorCode.INDEFINITE_LENGTH, "indefinite length")
            raise self._fail(ErrorCode.MALFORMED, "indefinite length on an integer")
        if info > 27:
            raise self._fail(ErrorCode.MALFORMED, "reserved additional information")
        width = _ARGUMENT_WIDTH[info]
        if self.position + 1 + width > len(self._data):
            raise self._fail(ErrorCode.MALFORMED, "truncated head")
        start = self.position + 1
        argument = int.from_bytes(self._data[start : start + width], "big")
        if argument < _MINIMUM_ARGUMENT[info]:
            raise self._fail(ErrorCode.NOT_DETERMINISTIC, "argument not in shortest form")
        self.position = start + width
        return major, argument

    def _item(self, depth: int) -> CborValue:
        start = self.position
        major, argument = self._read_head()
        if major == _MAJOR_UNSIGNED:
            return argument
        if major == _MAJOR_NEGATIVE:
            return -1 - argument
        if major == _MAJOR_BYTES:
            return self._take(argument)
        if major == _MAJOR_TEXT:
            raw = self._take(argument)
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise self._fail(ErrorCode.MALFORMED, "text string is not UTF-8") from exc
        if major == _MAJOR_SIMPLE:
            initial = self._data[start]
            return None if initial == _NULL else initial == _TRUE
        # A container: check depth and claimed size before descending or looping.
        if depth > self._max_depth:
            self.position = start
            raise self._fail(ErrorCode.TOO_DEEP, f"nesting deeper than {self._max_depth}")
        remaining = len(self._data) - self.position
        if major == _MAJOR_ARRAY:
            if argument > remaining:  # every item takes at least one byte
                raise self._fail(ErrorCode.MALFORMED, "array longer than the input")
            return [self._item(depth + 1) for _ in range(argument)]
        if argument > remaining // 2:  # every key and every value take at least one byte
            raise self._fail(ErrorCode.MALFORMED, "map longer than the input")
        result: dict[int, CborValue] = {}
        previous_key = b""
        for _ in range(argument):
            key_start = self.position
            if self.at_end:
                raise self._fail(ErrorCode.MALFORMED, "truncated map")
            if self._data[key_start] >> 5 not in (_MAJOR_UNSIGNED, _MAJOR_NEGATIVE):
                raise self._fail(ErrorCode.UNSUPPORTED_DATA, "map key is not an integer")
            key = self._item(depth + 1)
            encoded_key = self._data[key_start : self.position]
            if encoded_key == previous_key:
                raise self._fail(ErrorCode.DUPLICATE_KEY, f"duplicate map key {key!r}")
            if encoded_key < previous_key:
                raise self._fail(ErrorCode.NOT_DETERMINISTIC, "map keys not in bytewise order")
            previous_key = encoded_key
            if not isinstance(key, int):  # unreachable: the major type was checked above
                raise self._fail(ErrorCode.UNSUPPORTED_DATA, "map key is not an integer")
            result[key] = self._item(depth + 1)
        return result
