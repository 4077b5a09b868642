"""The compact SendMessage ``[id, to, text]`` (docs/protocol.md §4.3, §6.4) against its map form.

Both forms of one message decode to equal values and each re-encodes to its own bytes; every
malformed compact form is refused with the code its map key would get; the decoder stays total on
arbitrary arrays and on arbitrary bytes behind an array head.
"""

from __future__ import annotations

import contextlib
import dataclasses

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.wire import (
    Ack,
    Direction,
    ErrorCode,
    MimeContent,
    RemoteWireError,
    SendMessage,
    TextContent,
    WireError,
    WireLimits,
    decode_sequence_untrusted,
    decode_untrusted,
    encode,
)
from gateway.wire.cbor import CborValue, encode_value
from tests.wire.strategies import contact_refs, uints

TEXT = "Running late, 10 min"
COMPACT = bytes.fromhex("8307037452756e6e696e67206c6174652c203130206d696e")  # §6.4
MAP = bytes.fromhex("a4000401070203037452756e6e696e67206c6174652c203130206d696e")


def refused(data: bytes) -> ErrorCode:
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(data)
    return caught.value.code


def test_the_documented_example_in_both_forms() -> None:
    compact, as_map = decode_untrusted(COMPACT), decode_untrusted(MAP)
    assert isinstance(compact, SendMessage)
    assert isinstance(as_map, SendMessage)
    assert compact == as_map == SendMessage(7, 3, TextContent(TEXT))
    assert (compact.compact, as_map.compact) == (True, False)
    assert (encode(compact), encode(as_map)) == (COMPACT, MAP)
    assert len(MAP) - len(COMPACT) == 5


@settings(max_examples=300)
@given(uints, contact_refs, st.text(max_size=40))
def test_both_forms_are_the_same_message(message_id: int, to: int | str, text: str) -> None:
    message = SendMessage(message_id, to, TextContent(text))
    assert message.compact
    compact = encode(message)
    as_map = encode(dataclasses.replace(message, compact=False))
    assert compact[0] == 0x83
    assert as_map[0] == 0xA4
    assert cbor2.loads(compact) == [message_id, to, text]
    assert cbor2.loads(as_map) == {0: 4, 1: message_id, 2: to, 3: text}
    assert len(as_map) - len(compact) == 5
    for data in (compact, as_map):
        decoded = decode_untrusted(data)
        assert decoded == message
        assert encode(decoded) == data
    assert decode_sequence_untrusted(encode(Ack(4)) + compact + as_map) == [
        Ack(4),
        message,
        message,
    ]


@pytest.mark.parametrize(
    "message",
    [
        SendMessage(1, 2, TextContent("hi", "en")),
        SendMessage(1, 2, TextContent("hi"), want_report=False),
        SendMessage(1, 2, MimeContent("image/png", b"x")),
    ],
)
def test_what_the_compact_form_cannot_carry_goes_as_a_map(message: SendMessage) -> None:
    assert not message.compact
    assert encode(message)[0] >> 5 == 5  # major type 5: a map
    assert decode_untrusted(encode(message)) == message


def test_the_compact_form_is_a_device_to_gateway_send_message() -> None:
    decoded = decode_untrusted(COMPACT)
    assert isinstance(decoded, SendMessage)
    assert decoded.DIRECTION is Direction.DEVICE_TO_GATEWAY


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ([], ErrorCode.INVALID_FIELD),
        ([7], ErrorCode.INVALID_FIELD),
        ([7, 3], ErrorCode.INVALID_FIELD),
        ([7, 3, "hi", False], ErrorCode.INVALID_FIELD),  # no want-report flag in this form
        ([7, 3, "hi", "en"], ErrorCode.INVALID_FIELD),  # nor a language tag
        ([4, 7, 3, "hi"], ErrorCode.INVALID_FIELD),  # nor a type
        ([-1, 3, "hi"], ErrorCode.INVALID_FIELD),
        ([True, 3, "hi"], ErrorCode.INVALID_FIELD),
        (["7", 3, "hi"], ErrorCode.INVALID_FIELD),
        ([None, 3, "hi"], ErrorCode.INVALID_FIELD),
        ([[7], 3, "hi"], ErrorCode.INVALID_FIELD),
        ([7, True, "hi"], ErrorCode.INVALID_FIELD),
        ([7, -3, "hi"], ErrorCode.INVALID_FIELD),
        ([7, 65536, "hi"], ErrorCode.INVALID_FIELD),  # aliases stop at 65535
        ([7, b"a@b", "hi"], ErrorCode.INVALID_FIELD),
        ([7, {1: 1}, "hi"], ErrorCode.INVALID_FIELD),
        ([7, "", "hi"], ErrorCode.INVALID_ADDRESS),
        ([7, "a b@c", "hi"], ErrorCode.INVALID_ADDRESS),
        ([7, "a@b\x00", "hi"], ErrorCode.INVALID_ADDRESS),
        ([7, 3, b"hi"], ErrorCode.INVALID_FIELD),
        ([7, 3, 5], ErrorCode.INVALID_FIELD),
        ([7, 3, None], ErrorCode.INVALID_FIELD),
        ([7, 3, ["hi"]], ErrorCode.INVALID_FIELD),
        ([7, 3, {3: "hi"}], ErrorCode.INVALID_FIELD),
    ],
)
def test_malformed_compact_forms_are_refused(value: CborValue, code: ErrorCode) -> None:
    assert refused(encode_value(value)) is code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("98030703626869", ErrorCode.NOT_DETERMINISTIC),  # array length in a longer head
        ("83180703626869", ErrorCode.NOT_DETERMINISTIC),  # id 7 in two bytes
        ("8307190003626869", ErrorCode.NOT_DETERMINISTIC),  # alias 3 in three bytes
        ("9f0703626869ff", ErrorCode.INDEFINITE_LENGTH),
        ("83077f6268 69ff", ErrorCode.INDEFINITE_LENGTH),  # indefinite text
        ("830703", ErrorCode.MALFORMED),  # truncated
        ("8307037468", ErrorCode.MALFORMED),  # text shorter than its head says
        ("8307036280ff", ErrorCode.MALFORMED),  # invalid UTF-8
        ("830703c16268", ErrorCode.UNSUPPORTED_DATA),  # a tag
        ("8307f93c00626869", ErrorCode.UNSUPPORTED_DATA),  # a float
        ("83070362686900", ErrorCode.MALFORMED),  # a byte after the message
    ],
)
def test_malformed_compact_encodings_are_refused(data: str, code: ErrorCode) -> None:
    assert refused(bytes.fromhex(data.replace(" ", ""))) is code


def test_the_compact_form_is_bounded_like_any_item() -> None:
    big = encode(SendMessage(1, 2, TextContent("x" * 200)))
    limits = WireLimits(max_message_size=100)
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(big, limits=limits)
    assert caught.value.code is ErrorCode.TOO_LARGE
    # An array of 5000 items is refused at its head, before any of them is read.
    huge = b"\x99\x13\x88" + b"\x00" * 5000
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(huge, limits=WireLimits(max_message_items=100))
    assert caught.value.code is ErrorCode.TOO_LARGE
    deep = b"\x83\x81" * 10 + b"\x00"
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(deep)
    assert caught.value.code is ErrorCode.TOO_DEEP


_scalars = st.one_of(
    st.integers(-(1 << 64), (1 << 64) - 1),
    st.binary(max_size=8),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)
_items = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.integers(-30, 30), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=400)
@given(st.lists(_items, max_size=5))
def test_any_array_is_a_send_message_or_refused(value: list[CborValue]) -> None:
    """Totality: any top-level array decodes to a valid SendMessage or raises RemoteWireError."""
    try:
        message = decode_untrusted(encode_value(value))
    except RemoteWireError:
        return
    assert isinstance(message, SendMessage)
    assert message.compact
    assert isinstance(message.content, TextContent)
    assert value == [message.id, message.to, message.content.text]


@settings(max_examples=400)
@given(st.integers(0x80, 0x9F), st.binary(max_size=40))
def test_arbitrary_bytes_behind_an_array_head(head: int, tail: bytes) -> None:
    data = bytes([head]) + tail
    for decode in (decode_untrusted, decode_sequence_untrusted):
        with contextlib.suppress(WireError):
            decode(data)


def _outcome(data: bytes) -> SendMessage | ErrorCode:
    try:
        message = decode_untrusted(data)
    except RemoteWireError as exc:
        return exc.code
    assert isinstance(message, SendMessage)
    return message


@settings(max_examples=400)
@given(_items, _items, _items)
def test_each_item_is_judged_as_its_map_key(
    message_id: CborValue, to: CborValue, text: CborValue
) -> None:
    """Equivalence, refusals included: [a, b, c] decodes (or fails) as {0: 4, 1: a, 2: b, 3: c}."""
    compact = _outcome(encode_value([message_id, to, text]))
    as_map = _outcome(encode_value({0: 4, 1: message_id, 2: to, 3: text}))
    assert compact == as_map
