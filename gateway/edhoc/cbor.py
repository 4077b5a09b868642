"""EDHOC's policy for the strict CBOR core (gateway/cbor.py), with EDHOC's error type.

RFC 9528 §3.1 and Appendix C.1 require deterministic CBOR (RFC 8949 §4.2.1): shortest argument
encodings and definite lengths, which the core enforces, so the invalid encodings of RFC 9529 §4.1
and §4.3 are refused. EDHOC's maps (ID_CRED_x, CCS claims, COSE keys) have integer or text keys in
the order their owner wrote them, because transcript hashes and MACs cover those bytes: maps are
neither sorted on encoding nor required to be sorted on decoding, only free of duplicates. Decoding
returns each item's value together with its exact bytes, and raises only
:class:`~gateway.edhoc.errors.MessageDecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from gateway.cbor import (
    MAJOR_BYTES,
    MAJOR_NEGATIVE,
    MAJOR_UNSIGNED,
    CborDecoder,
    CborError,
    CborReason,
    KeyTypes,
    encode_head,
)
from gateway.cbor import encode as encode_cbor
from gateway.edhoc.errors import MessageDecodeError

# Deepest nesting accepted: a CCS is map -> cnf map -> COSE_Key map, inside an ID_CRED map.
DEFAULT_MAX_DEPTH = 8

CborValue = int | bytes | str | bool | None | list["CborValue"] | dict["CborValue", "CborValue"]


def encode(value: object) -> bytes:
    """Encode ``value`` deterministically (maps keep the order given: EDHOC needs no sorting).

    Arrays are lists and maps are dicts with integer or text keys; anything else is a
    :class:`TypeError`, an integer beyond 64 bits a :class:`ValueError`.
    """
    try:
        return encode_cbor(value, sort_keys=False, key_types=KeyTypes.INTEGER_OR_TEXT)
    except CborError as exc:
        if exc.reason in (CborReason.OUT_OF_RANGE, CborReason.INVALID_TEXT):
            raise ValueError(str(exc)) from exc
        raise TypeError(str(exc)) from exc


def encode_bstr(data: bytes) -> bytes:
    """The CBOR byte string holding ``data``."""
    length = len(data)
    if length < 24:  # the key schedule's many short items: the head in one byte, at once
        return bytes((MAJOR_BYTES << 5 | length,)) + data
    return encode_head(MAJOR_BYTES, length) + data


def encode_int(value: int) -> bytes:
    """The CBOR integer ``value``."""
    if -24 <= value < 24:  # labels and lengths of the key schedule: one byte
        return bytes((value,) if value >= 0 else (MAJOR_NEGATIVE << 5 | (-1 - value),))
    try:
        if value >= 0:
            return encode_head(MAJOR_UNSIGNED, value)
        return encode_head(MAJOR_NEGATIVE, -1 - value)
    except CborError as exc:
        raise ValueError(str(exc)) from exc


@dataclass(frozen=True)
class Item:
    """One decoded data item: its value and the exact bytes it was read from."""

    value: CborValue
    raw: bytes


class Reader:
    """Reads the data items of a CBOR sequence (RFC 8742) one by one, strictly.

    ``max_depth`` counts every item, scalars included: a top-level item is at depth 0 and nothing
    may stand deeper than ``max_depth``.
    """

    __slots__ = ("_decoder",)

    def __init__(self, data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self._decoder = CborDecoder(
            data,
            max_depth=max_depth + 1,
            key_types=KeyTypes.INTEGER_OR_TEXT,
            sorted_keys=False,
            depth_counts_leaves=True,
        )

    def at_end(self) -> bool:
        """True when every byte has been consumed."""
        return self._decoder.at_end

    def peek_major(self) -> int:
        """The major type of the next item (the reader must not be at its end)."""
        return self.peek_byte() >> 5

    def peek_byte(self) -> int:
        """The first byte of the next item."""
        try:
            return self._decoder.peek_initial()
        except CborError as exc:
            raise MessageDecodeError(f"CBOR {exc}") from exc

    def read_item(self) -> Item:
        """The next item with its raw bytes."""
        try:
            value, raw = self._decoder.read_with_raw()
        except CborError as exc:
            raise MessageDecodeError(f"CBOR {exc}") from exc
        return Item(cast(CborValue, value), raw)

    def read(self) -> CborValue:
        """The next item's value."""
        try:
            return cast(CborValue, self._decoder.read())
        except CborError as exc:
            raise MessageDecodeError(f"CBOR {exc}") from exc


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
