"""Garbage in, WireError out: random bytes and mutated valid frames never raise anything else.

When a mutated frame does decode, it re-encodes to exactly the same bytes unless it carries an
elective (negative) key, which the decoder drops: deterministic encoding leaves no second spelling.
"""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.wire import (
    Message,
    WireError,
    decode_sequence_untrusted,
    decode_untrusted,
    encode,
)
from gateway.wire.cbor import CborReader, CborValue
from tests.wire.strategies import messages


def _has_elective_key(value: CborValue) -> bool:
    if isinstance(value, dict):
        return any(key < 0 or _has_elective_key(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_elective_key(item) for item in value)
    return False


def _check(data: bytes) -> None:
    try:
        message = decode_untrusted(data)
    except WireError:
        pass
    else:
        reencoded = encode(message)
        if reencoded != data:
            assert _has_elective_key(CborReader(data, max_depth=64).read_item())
    with contextlib.suppress(WireError):
        decode_sequence_untrusted(data)


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    message: Message = draw(messages)
    frame = bytearray(encode(message))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append"]))
        position = draw(st.integers(0, max(0, len(frame) - 1)))
        if kind == "flip" and frame:
            frame[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and frame:
            frame[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            frame[position:position] = draw(st.binary(min_size=1, max_size=3))
        elif kind == "delete" and frame:
            del frame[position]
        elif kind == "truncate":
            del frame[position:]
        else:
            frame += draw(st.binary(min_size=1, max_size=3))
    return bytes(frame)


@settings(max_examples=500)
@given(mutated_frames())
def test_mutated_valid_frames(data: bytes) -> None:
    _check(data)


@settings(max_examples=200)
@given(st.lists(st.integers(0, 255), max_size=24).map(bytes), st.sampled_from([0x9F, 0xBF, 0x5F]))
def test_indefinite_and_structural_headers_anywhere(tail: bytes, head: int) -> None:
    _check(bytes([head]) + tail)
    _check(b"\xa2\x00\x04" + bytes([head]) + tail)
