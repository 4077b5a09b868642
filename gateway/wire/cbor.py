"""The wire protocol's policy for the strict CBOR core (gateway/cbor.py) and its error mapping.

Wire messages use integer map keys only, in RFC 8949 §4.2.1 bytewise order, and the depth and item
limits of :class:`~gateway.wire.limits.WireLimits`. The core's :class:`~gateway.cbor.CborError`
becomes a :class:`RemoteWireError` when the peer's bytes are refused and a :class:`LocalWireError`
when this program asks to encode what the subset cannot carry, each with the error code
docs/protocol.md §4 and §8.1 give for that fault.
"""

from __future__ import annotations

from typing import TypeAlias, cast

from gateway.cbor import INTEGER_KEY_MAJORS, CborDecoder, CborError, CborReason, encode_sorted
from gateway.wire.errors import ErrorCode, LocalWireError, RemoteWireError

__all__ = ["CborReader", "CborValue", "encode_value", "wire_error_code"]

CborValue: TypeAlias = "int | bytes | str | bool | list[CborValue] | dict[int, CborValue] | None"

_CODES = {
    CborReason.TRUNCATED: ErrorCode.MALFORMED,
    CborReason.NOT_WELL_FORMED: ErrorCode.MALFORMED,
    CborReason.INVALID_UTF8: ErrorCode.MALFORMED,
    CborReason.TRAILING_DATA: ErrorCode.MALFORMED,
    CborReason.INDEFINITE_LENGTH: ErrorCode.INDEFINITE_LENGTH,
    CborReason.NOT_SHORTEST: ErrorCode.NOT_DETERMINISTIC,
    CborReason.KEYS_OUT_OF_ORDER: ErrorCode.NOT_DETERMINISTIC,
    CborReason.DUPLICATE_KEY: ErrorCode.DUPLICATE_KEY,
    CborReason.UNSUPPORTED_TYPE: ErrorCode.UNSUPPORTED_DATA,
    CborReason.UNSUPPORTED_KEY: ErrorCode.UNSUPPORTED_DATA,
    CborReason.TOO_DEEP: ErrorCode.TOO_DEEP,
    CborReason.TOO_MANY_ITEMS: ErrorCode.TOO_LARGE,  # docs/protocol.md §9: items bound the size
    CborReason.OUT_OF_RANGE: ErrorCode.INVALID_FIELD,
    CborReason.INVALID_TEXT: ErrorCode.INVALID_FIELD,
}


def wire_error_code(reason: CborReason) -> ErrorCode:
    """The wire error code (docs/protocol.md §8.1) for a reason the CBOR core gave."""
    return _CODES[reason]


def encode_value(value: CborValue) -> bytes:
    """Encode ``value`` in the deterministic encoding of RFC 8949 §4.2.1; integer keys only."""
    try:
        return encode_sorted(value)
    except CborError as exc:
        raise LocalWireError(wire_error_code(exc.reason), exc.detail) from exc


class CborReader(CborDecoder):
    """Reads wire CBOR items one after another from ``data`` (a CBOR sequence, RFC 8742).

    ``max_items`` bounds the items of everything this reader reads (``items_left`` may be lowered
    before each message). :meth:`read_item` raises only :class:`RemoteWireError`.
    """

    __slots__ = ()

    def __init__(self, data: bytes, *, max_depth: int, max_items: int | None = None) -> None:
        # CborDecoder.__init__ with the wire's policy (integer keys in bytewise order), its
        # attributes set here directly: a reader is made for every message received.
        self._data = data
        self._max_depth = max_depth
        self._key_majors = INTEGER_KEY_MAJORS
        self._sorted_keys = True
        self._depth_counts_leaves = False
        self.items_left = max_items
        self.position = 0

    def read_item(self) -> CborValue:
        """Read the next whole item; the reader then stands just after it."""
        try:
            return cast(CborValue, self.read())
        except CborError as exc:
            raise RemoteWireError(wire_error_code(exc.reason), str(exc)) from exc
