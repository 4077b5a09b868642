"""Receiver limits of the wire protocol, enforced before decoding (docs/protocol.md, "Limits").

A limit is a number a receiver chooses; the defaults below are what the gateway uses and what a
device may assume the gateway accepts. Each is checked before work proportional to the input is
done: the frame size before the first header is read, the nesting depth at the container header that
would exceed it, the number of data items at each container header (before the items it announces
are built), the number of messages before the next one is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.wire.errors import ErrorCode, LocalWireError

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_MESSAGE_ITEMS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_SEQUENCE_ITEMS",
    "DEFAULT_MAX_SEQUENCE_MESSAGES",
    "DEFAULT_MAX_SEQUENCE_SIZE",
    "HARD_MAX_DEPTH",
    "WireLimits",
]

DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024  # a photo-sized MIME payload; a 1 MB frame must be rejected
DEFAULT_MAX_SEQUENCE_SIZE = DEFAULT_MAX_MESSAGE_SIZE + 1024  # one full-size message plus its acks
DEFAULT_MAX_DEPTH = 8  # version 1 nests 3 deep (message, contact array, entry); room for extensions
DEFAULT_MAX_SEQUENCE_MESSAGES = 256  # a record full of 1-byte messages is an attack, not traffic
# Data items (every integer, string, array, map, key and value counts one) in one message. A byte
# costs a small heap object, so a count bounded only by the size let 256 KiB of empty arrays take
# 16 MiB; 8192 items hold a ContactList of about 600 fully described contacts (larger lists are
# split, docs/protocol.md §6.12) and cost at most about 0.6 MiB of objects.
DEFAULT_MAX_MESSAGE_ITEMS = 8192
DEFAULT_MAX_SEQUENCE_ITEMS = DEFAULT_MAX_MESSAGE_ITEMS + 1024  # one full message plus its acks
HARD_MAX_DEPTH = 64  # the decoder recurses once per level: never let a caller configure deeper


@dataclass(frozen=True)
class WireLimits:
    """What a receiver accepts: sizes in bytes of the encoded input, depth in nested containers,
    items in decoded CBOR data items (per message, and over a whole sequence)."""

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_sequence_size: int = DEFAULT_MAX_SEQUENCE_SIZE
    max_depth: int = DEFAULT_MAX_DEPTH
    max_sequence_messages: int = DEFAULT_MAX_SEQUENCE_MESSAGES
    max_message_items: int = DEFAULT_MAX_MESSAGE_ITEMS
    max_sequence_items: int = DEFAULT_MAX_SEQUENCE_ITEMS

    def __post_init__(self) -> None:
        for name in (
            "max_message_size",
            "max_sequence_size",
            "max_sequence_messages",
            "max_message_items",
            "max_sequence_items",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LocalWireError(ErrorCode.INVALID_FIELD, f"{name} must be a positive int")
        depth = self.max_depth
        if (
            isinstance(depth, bool)
            or not isinstance(depth, int)
            or not 1 <= depth <= HARD_MAX_DEPTH
        ):
            raise LocalWireError(
                ErrorCode.INVALID_FIELD, f"max_depth must be an int in 1..{HARD_MAX_DEPTH}"
            )


DEFAULT_LIMITS = WireLimits()
