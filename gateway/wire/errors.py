"""The wire protocol's error tree and its error codes.

One tree for the whole device protocol's message layer, as h11 and h2 do it: :class:`WireError`
carries the :class:`ErrorCode` that goes into a wire :class:`~gateway.wire.messages.Error` message;
:class:`RemoteWireError` means the peer sent something wrong (drop it, count it, maybe answer with
the code), :class:`LocalWireError` means this program built something invalid (a bug to fix, never
sent).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ErrorCode", "LocalWireError", "RemoteWireError", "WireError"]


class ErrorCode(IntEnum):
    """Protocol error codes (docs/protocol.md, "Error codes"); all fit CBOR's one-byte integers.

    Codes 1-12 describe a message that could not be decoded; codes 13-21 are answers of the gateway
    to a message that decoded but could not be carried out.
    """

    # Not well-formed CBOR: truncated, trailing bytes, reserved header values, bad UTF-8.
    MALFORMED = 1
    # Well-formed CBOR but not in deterministic encoding (RFC 8949 §4.2.1): a longer-than-needed
    # integer or length, map keys out of order, or a default value written out.
    NOT_DETERMINISTIC = 2
    # The same key twice in one map (RFC 8949 §5.6: such a map is not valid).
    DUPLICATE_KEY = 3
    # An indefinite-length string, array or map (RFC 8949 §3.2.2), which this protocol never uses.
    INDEFINITE_LENGTH = 4
    # The input is longer than the receiver's limit; it was rejected before decoding.
    TOO_LARGE = 5
    # Containers nested deeper than the receiver's limit.
    TOO_DEEP = 6
    # CBOR this protocol does not use: tags, floats, other simple values, non-integer keys.
    UNSUPPORTED_DATA = 7
    # A message type number the receiver does not know.
    UNKNOWN_TYPE = 8
    # A non-negative (critical) key the receiver does not know for this message type.
    UNKNOWN_CRITICAL_FIELD = 9
    # A required field is absent.
    MISSING_FIELD = 10
    # A field has the wrong CBOR type, a value out of range, or contradicts another field.
    INVALID_FIELD = 11
    # More messages in one sequence than the receiver accepts.
    TOO_MANY_MESSAGES = 12
    # A valid message that is not allowed in this direction or in the session's current state.
    UNEXPECTED_MESSAGE = 13
    # The alias is not bound for this device.
    UNKNOWN_ALIAS = 14
    # The address is not a valid IM/presence address.
    INVALID_ADDRESS = 15
    # The device's account may not do this (e.g. the contact blocks it, policy forbids it).
    NOT_AUTHORIZED = 16
    # The device sends faster than the gateway accepts; retry later.
    RATE_LIMITED = 17
    # The gateway's queue for this device or this operation is full.
    QUEUE_FULL = 18
    # The device's upstream server cannot be reached now; retry later.
    UPSTREAM_UNAVAILABLE = 19
    # The gateway failed internally; the operation may be retried.
    INTERNAL = 20
    # The content (MIME type, size) is not accepted by the gateway or upstream.
    CONTENT_REJECTED = 21


class WireError(Exception):
    """Base of every wire protocol error; ``code`` is what a wire Error message would carry."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code.name}: {detail}")
        self.code = code
        self.detail = detail


class RemoteWireError(WireError):
    """The peer's bytes are not a valid message (raised by the ``..._untrusted`` decoders only)."""


class LocalWireError(WireError, ValueError):
    """This program built an invalid message or asked to encode what the protocol cannot carry."""
