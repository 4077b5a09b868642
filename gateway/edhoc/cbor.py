"""A small, strict CBOR codec for EDHOC: deterministic encoding in, deterministic encoding out.

RFC 9528 §3.1 and Appendix C.1 require deterministic CBOR (RFC 8949 §4.2.1): shortest argument
encodings and definite lengths. General-purpose decoders accept other encodings, so EDHOC messages
are read here instead, which also rejects the invalid encodings of RFC 9529 §4.1 and §4.3. Only
what EDHOC and its credentials use is supported: integers, byte and text strings, arrays, maps,
false, true and null. Tags and floats are refused. Decoding returns each item's value together
with its exact bytes, because transcript hashes and MACs cover the bytes as received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.edhoc.errors import MessageDecodeError

# Deepest nesting accepted: a CCS is map -> cnf map -> COSE_Key map, inside an ID_CRED map.
DEFAULT_MAX_DEPTH = 8

CborValue = int | bytes | str | bool | None | list["CborValue"] | dict["CborValue", "CborValue"]


def _head(major: int, argument: int) -> bytes:
    if argument < 24:
        return bytes([major << 5 | argument])
    if argument < 0x100:
        return bytes([major << 5 | 24, argument])
    if argument < 0x10000:
        return bytes([major << 5 | 25]) + argument.to_bytes(2, "big")
    if argument < 0x100000000:
        return bytes([major << 5 | 26]) + argument.to_bytes(4, "big")
    if argument < 0x10000000000000000:
        return bytes([major << 5 | 27]) + argument.to_bytes(8, "big")
    raise ValueError("CBOR argument too large")


def encode(value: object) -> bytes:
    """Encode ``value`` deterministically (maps keep the order given: EDHOC needs no sorting)."""
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(value, Mapping):
        parts = [_head(5, len(value))]
        for key, item in value.items():
            parts.append(encode(key))
            parts.append(encode(item))
        return b"".join(parts)
    if isinstance(value, Sequence):
        return _head(4, len(value)) + b"".join(encode(item) for item in value)
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def encode_bstr(data: bytes) -> bytes:
    """The CBOR byte string holding ``data``."""
    return _head(2, len(data)) + data


def encode_int(value: int) -> bytes:
    """The CBOR integer ``value``."""
    return _head(0, value) if value >= 0 else _head(1, -1 - value)


@dataclass(frozen=True)
class Item:
    """One decoded data item: its value and the exact bytes it was read from."""

    value: CborValue
    raw: bytes


class Reader:
    """Reads the data items of a CBOR sequence (RFC 8742) one by one, strictly."""

    def __init__(self, data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self._data = data
        self._position = 0
        self._max_depth = max_depth

    def at_end(self) -> bool:
        """True when every byte has been consumed."""
        return self._position >= len(self._data)

    def peek_major(self) -> int:
        """The major type of the next item (the reader must not be at its end)."""
        if self.at_end():
            raise MessageDecodeError("truncated: item expected")
        return self._data[self._position] >> 5

    def peek_byte(self) -> int:
        """The first byte of the next item."""
        if self.at_end():
            raise MessageDecodeError("truncated: item expected")
        return self._data[self._position]

    def read_item(self) -> Item:
        """The next item with its raw bytes."""
        start = self._position
        value = self._read(0)
        return Item(value, self._data[start : self._position])

    def read(self) -> CborValue:
        """The next item's value."""
        return self._read(0)

    def _take(self, count: int) -> bytes:
        end = self._position + count
        if end > len(self._data):
            raise MessageDecodeError("truncated CBOR item")
        chunk = self._data[self._position : end]
        self._position = end
        return chunk

    def _argument(self, info: int) -> int:
        if info < 24:
            return info
        if info > 27:
            raise MessageDecodeError("indefinite length or reserved CBOR encoding")
        size = 1 << (info - 24)
        value = int.from_bytes(self._take(size), "big")
        minimum = 24 if size == 1 else 1 << (4 * size)
        if value < minimum:
            raise MessageDecodeError("CBOR argument not in its shortest encoding")
        return value

    def _read(self, depth: int) -> CborValue:
        if depth > self._max_depth:
            raise MessageDecodeError("CBOR nesting too deep")
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if major == 7:
            simple = {20: False, 21: True, 22: None}
            if info in simple:
                return simple[info]
            raise MessageDecodeError("CBOR float or unsupported simple value")
        argument = self._argument(info)
        if major == 0:
            return argument
        if major == 1:
            return -1 - argument
        if major == 2:
            return self._take(argument)
        if major == 3:
            try:
                return self._take(argument).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MessageDecodeError("CBOR text string is not UTF-8") from exc
        if major == 4:
            if argument > len(self._data) - self._position:
                raise MessageDecodeError("truncated CBOR array")
            return [self._read(depth + 1) for _ in range(argument)]
        if major == 5:
            if argument * 2 > len(self._data) - self._position:
                raise MessageDecodeError("truncated CBOR map")
            result: dict[CborValue, CborValue] = {}
            for _ in range(argument):
                key = self._read(depth + 1)
                if not isinstance(key, int | str) or isinstance(key, bool):
                    raise MessageDecodeError("CBOR map key is neither int nor text")
                if key in result:
                    raise MessageDecodeError("duplicate CBOR map key")
                result[key] = self._read(depth + 1)
            return result
        raise MessageDecodeError("CBOR tags are not accepted in EDHOC")


def decode_single_untrusted(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> CborValue:
    """Decode exactly one data item; trailing bytes are an error."""
    reader = Reader(data, max_depth=max_depth)
    value = reader.read()
    if not reader.at_end():
        raise MessageDecodeError("trailing bytes after CBOR item")
    return value


def is_int(value: object) -> bool:
    """True for a CBOR integer (Python's ``bool`` is an ``int`` but not a CBOR integer)."""
    return isinstance(value, int) and not isinstance(value, bool)
