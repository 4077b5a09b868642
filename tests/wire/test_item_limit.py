"""The item limit: a message of empty containers is refused at the head that announces too many.

Issue 10 point 9: 256 KiB of empty arrays in an elective field used to decode (into about 16 MiB of
Python lists) because only bytes and depth were bounded.
"""

from __future__ import annotations

import pytest

from gateway.cbor import MAJOR_ARRAY, encode_head
from gateway.wire import (
    Ack,
    ErrorCode,
    LocalWireError,
    Ping,
    RemoteWireError,
    WireLimits,
    decode_sequence_untrusted,
    decode_untrusted,
)
from gateway.wire.cbor import CborReader
from gateway.wire.limits import DEFAULT_MAX_MESSAGE_ITEMS, DEFAULT_MAX_MESSAGE_SIZE

PING_HEAD = b"\xa2\x00\x01\x20"  # {0: 1 (Ping), -1: ...}: 5 items with the elective value


def ping_with_empty_containers(count: int, empty: bytes = b"\x80") -> bytes:
    """A Ping whose elective key -1 holds an array of ``count`` empty arrays (or maps)."""
    return PING_HEAD + encode_head(MAJOR_ARRAY, count) + empty * count


@pytest.mark.parametrize("empty", [b"\x80", b"\xa0"])
def test_a_full_size_message_of_empty_containers_is_refused(empty: bytes) -> None:
    data = ping_with_empty_containers(DEFAULT_MAX_MESSAGE_SIZE - len(PING_HEAD) - 5, empty)
    assert len(data) == DEFAULT_MAX_MESSAGE_SIZE  # within the size limit: only items refuse it
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(data)
    assert caught.value.code is ErrorCode.TOO_LARGE
    with pytest.raises(RemoteWireError) as caught:
        decode_sequence_untrusted(data)
    assert caught.value.code is ErrorCode.TOO_LARGE


def test_items_are_counted_at_the_header_before_any_is_built() -> None:
    data = ping_with_empty_containers(DEFAULT_MAX_MESSAGE_ITEMS)
    reader = CborReader(data, max_depth=8, max_items=DEFAULT_MAX_MESSAGE_ITEMS)
    with pytest.raises(RemoteWireError) as caught:
        reader.read_item()
    assert caught.value.code is ErrorCode.TOO_LARGE
    # Stopped just after the array's head: not one of the announced items was read.
    assert reader.position == len(PING_HEAD) + len(
        encode_head(MAJOR_ARRAY, DEFAULT_MAX_MESSAGE_ITEMS)
    )


def test_the_item_limit_is_inclusive() -> None:
    at_limit = ping_with_empty_containers(DEFAULT_MAX_MESSAGE_ITEMS - 5)
    assert decode_untrusted(at_limit) == Ping()
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(ping_with_empty_containers(DEFAULT_MAX_MESSAGE_ITEMS - 4))
    assert caught.value.code is ErrorCode.TOO_LARGE


def test_the_limit_is_configurable() -> None:
    limits = WireLimits(max_message_items=10, max_sequence_items=12)
    assert decode_untrusted(ping_with_empty_containers(5), limits=limits) == Ping()
    with pytest.raises(RemoteWireError):
        decode_untrusted(ping_with_empty_containers(6), limits=limits)
    # Each message within its own limit, the sequence beyond its own: refused.
    two = ping_with_empty_containers(5) * 2
    with pytest.raises(RemoteWireError) as caught:
        decode_sequence_untrusted(two, limits=limits)
    assert caught.value.code is ErrorCode.TOO_LARGE
    assert decode_sequence_untrusted(
        ping_with_empty_containers(5) + b"\x01\x02", limits=limits
    ) == [
        Ping(),
        Ack(1),
        Ack(2),
    ]


def test_many_messages_cannot_add_up_past_the_sequence_limit() -> None:
    """32 messages of 8,000 empty arrays each: every one under the per-message limit."""
    data = ping_with_empty_containers(8000) * 32
    assert len(data) < WireLimits().max_sequence_size
    with pytest.raises(RemoteWireError) as caught:
        decode_sequence_untrusted(data)
    assert caught.value.code is ErrorCode.TOO_LARGE


@pytest.mark.parametrize("arguments", [{"max_message_items": 0}, {"max_sequence_items": True}])
def test_item_limits_are_validated(arguments: dict[str, int]) -> None:
    with pytest.raises(LocalWireError, match="must be a positive int"):
        WireLimits(**arguments)
