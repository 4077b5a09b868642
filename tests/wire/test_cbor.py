"""The strict CBOR subset: what it accepts, what it refuses and why, and that limits come first."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.wire.codec
from gateway.wire import (
    ErrorCode,
    IncomingMessage,
    LocalWireError,
    MimeContent,
    RemoteWireError,
    WireLimits,
    decode_sequence_untrusted,
    decode_untrusted,
    encode,
)
from gateway.wire.cbor import CborReader, CborValue, encode_value
from gateway.wire.limits import DEFAULT_MAX_MESSAGE_SIZE
from tests.cbor.vectors import RFC8949_APPENDIX_A


def read(data: bytes, max_depth: int = 8) -> CborValue:
    reader = CborReader(data, max_depth=max_depth)
    value = reader.read_item()
    assert reader.at_end
    return value


def code_of(data: bytes, max_depth: int = 8) -> ErrorCode:
    with pytest.raises(RemoteWireError) as caught:
        read(data, max_depth)
    return caught.value.code


@pytest.mark.parametrize(("hex_text", "value"), RFC8949_APPENDIX_A)
def test_rfc8949_examples_decode_and_encode(hex_text: str, value: CborValue) -> None:
    assert read(bytes.fromhex(hex_text)) == value
    assert encode_value(value) == bytes.fromhex(hex_text)


@pytest.mark.parametrize(
    ("hex_text", "code"),
    [
        # RFC 8949 §4.2.1: shortest form for every argument.
        ("1800", ErrorCode.NOT_DETERMINISTIC),
        ("1817", ErrorCode.NOT_DETERMINISTIC),
        ("190017", ErrorCode.NOT_DETERMINISTIC),
        ("1900ff", ErrorCode.NOT_DETERMINISTIC),
        ("1a0000ffff", ErrorCode.NOT_DETERMINISTIC),
        ("1b00000000ffffffff", ErrorCode.NOT_DETERMINISTIC),
        ("3800", ErrorCode.NOT_DETERMINISTIC),
        ("5801ff", ErrorCode.NOT_DETERMINISTIC),
        ("780161", ErrorCode.NOT_DETERMINISTIC),
        ("9800", ErrorCode.NOT_DETERMINISTIC),
        ("b800", ErrorCode.NOT_DETERMINISTIC),
        # Map keys in bytewise order of their encodings, no duplicates (RFC 8949 §4.2.1, §5.6).
        ("a202000100", ErrorCode.NOT_DETERMINISTIC),
        ("a22000181800", ErrorCode.NOT_DETERMINISTIC),  # -1 (0x20) sorts after 24 (0x18 0x18)
        ("a201000100", ErrorCode.DUPLICATE_KEY),
        ("a3000001000100", ErrorCode.DUPLICATE_KEY),
        # A duplicate that is not adjacent is first seen as keys out of order.
        ("a3000001000000", ErrorCode.NOT_DETERMINISTIC),
        # Indefinite lengths (RFC 8949 §3.2.2) are never used.
        ("5f4101ff", ErrorCode.INDEFINITE_LENGTH),
        ("7f6161ff", ErrorCode.INDEFINITE_LENGTH),
        ("9f01ff", ErrorCode.INDEFINITE_LENGTH),
        ("bf0001ff", ErrorCode.INDEFINITE_LENGTH),
        ("1f", ErrorCode.MALFORMED),
        ("ff", ErrorCode.MALFORMED),
        # Reserved additional information 28-30 (RFC 8949 §3).
        ("1c", ErrorCode.MALFORMED),
        ("5d", ErrorCode.MALFORMED),
        ("fe", ErrorCode.MALFORMED),
        # Truncation.
        ("18", ErrorCode.MALFORMED),
        ("1a0001", ErrorCode.MALFORMED),
        ("430102", ErrorCode.MALFORMED),
        ("8301", ErrorCode.MALFORMED),
        ("a101", ErrorCode.MALFORMED),
        ("9bffffffffffffffff00", ErrorCode.MALFORMED),  # claims 2^64-1 items, has one byte
        ("bbffffffffffffffff0000", ErrorCode.MALFORMED),
        ("5bffffffffffffffff00", ErrorCode.MALFORMED),
        # Invalid UTF-8 in a text string (RFC 8949 §3.1 requires valid UTF-8).
        ("62c328", ErrorCode.MALFORMED),
        ("63eda080", ErrorCode.MALFORMED),  # an encoded surrogate
        # Outside the subset: tags, floats, undefined, other simple values, non-integer keys.
        ("c11a514b67b0", ErrorCode.UNSUPPORTED_DATA),
        ("d8184100", ErrorCode.UNSUPPORTED_DATA),
        ("f93c00", ErrorCode.UNSUPPORTED_DATA),
        ("fa47c35000", ErrorCode.UNSUPPORTED_DATA),
        ("fb3ff199999999999a", ErrorCode.UNSUPPORTED_DATA),
        ("f7", ErrorCode.UNSUPPORTED_DATA),
        ("f0", ErrorCode.UNSUPPORTED_DATA),
        ("f820", ErrorCode.UNSUPPORTED_DATA),
        ("a1616100", ErrorCode.UNSUPPORTED_DATA),
        ("a1f400", ErrorCode.UNSUPPORTED_DATA),
        ("a1410000", ErrorCode.UNSUPPORTED_DATA),
    ],
)
def test_refused_encodings(hex_text: str, code: ErrorCode) -> None:
    assert code_of(bytes.fromhex(hex_text)) is code


def test_empty_input_is_malformed() -> None:
    assert code_of(b"") is ErrorCode.MALFORMED


def test_depth_is_checked_at_the_header_that_exceeds_it() -> None:
    """200,000 nested arrays: refused after reading 9 headers, with no deep recursion."""
    data = b"\x81" * 200_000 + b"\x00"
    reader = CborReader(data, max_depth=8)
    with pytest.raises(RemoteWireError) as caught:
        reader.read_item()
    assert caught.value.code is ErrorCode.TOO_DEEP
    assert reader.position == 8  # the ninth header, at offset 8, is where it stopped
    assert read(b"\x81" * 8 + b"\x00") == [[[[[[[[0]]]]]]]]


def test_deep_maps_count_too() -> None:
    data = b"\xa1\x01" * 9 + b"\x00"
    assert code_of(data) is ErrorCode.TOO_DEEP
    assert read(data, max_depth=9) == {1: {1: {1: {1: {1: {1: {1: {1: {1: 0}}}}}}}}}


def test_deep_nesting_inside_a_message_is_refused_by_the_message_decoder() -> None:
    data = b"\xa2\x00\x01\x20" + b"\x81" * 100_000 + b"\x00"  # elective key -1 hides the nesting
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(data)
    assert caught.value.code is ErrorCode.TOO_DEEP


class _ReaderMustNotRun:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the decoder started on input that exceeds the size limit")


def test_one_megabyte_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.wire.codec, "CborReader", _ReaderMustNotRun)
    frame = b"\x5a\x00\x10\x00\x00" + bytes(1 << 20)  # a 1 MiB byte string, well-formed
    for decode in (decode_untrusted, decode_sequence_untrusted):
        with pytest.raises(RemoteWireError) as caught:
            decode(frame)
        assert caught.value.code is ErrorCode.TOO_LARGE


def test_size_limit_is_inclusive_and_configurable() -> None:
    # An IncomingMessage with a photo exactly at the limit: empty payload's size, minus the one-byte
    # head of an empty byte string, plus the 5-byte head of a long one.
    def photo(size: int) -> IncomingMessage:
        return IncomingMessage(1, 2, 1_700_000_000, MimeContent("image/jpeg", bytes(size)))

    payload = DEFAULT_MAX_MESSAGE_SIZE - (len(encode(photo(0))) - 1 + 5)
    frame = encode(photo(payload))
    assert len(frame) == DEFAULT_MAX_MESSAGE_SIZE
    assert decode_untrusted(frame) == photo(payload)
    with pytest.raises(LocalWireError):
        encode(photo(payload + 1))
    decode_untrusted(frame)
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(frame + b"\x00")
    assert caught.value.code is ErrorCode.TOO_LARGE
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(frame, limits=WireLimits(max_message_size=1000))
    assert caught.value.code is ErrorCode.TOO_LARGE


def test_sequence_message_count_limit() -> None:
    limits = WireLimits(max_sequence_messages=3)
    assert len(decode_sequence_untrusted(b"\x00\x01\x02", limits=limits)) == 3
    with pytest.raises(RemoteWireError) as caught:
        decode_sequence_untrusted(b"\x00\x01\x02\x03", limits=limits)
    assert caught.value.code is ErrorCode.TOO_MANY_MESSAGES


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_depth": 0},
        {"max_depth": 65},
        {"max_depth": True},
        {"max_message_size": 0},
        {"max_sequence_messages": -1},
    ],
)
def test_limits_are_validated(arguments: dict[str, int]) -> None:
    with pytest.raises(LocalWireError):
        WireLimits(**arguments)


# Values in the subset: everything the encoder writes, the decoder reads back identically.
scalars = st.one_of(
    st.integers(-(1 << 64), (1 << 64) - 1),
    st.binary(max_size=20),
    st.text(max_size=20),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.integers(-(1 << 64), (1 << 64) - 1), children, max_size=4),
    ),
    max_leaves=12,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    return 0


@settings(max_examples=300)
@given(values)
def test_subset_round_trip_and_agreement_with_cbor2(value: CborValue) -> None:
    encoded = encode_value(value)
    assert cbor2.loads(encoded) == value  # an independent decoder agrees on the meaning
    assert read(encoded, max_depth=max(1, _depth(value))) == value
    if _depth(value) > 1:
        assert code_of(encoded, max_depth=_depth(value) - 1) is ErrorCode.TOO_DEEP


@settings(max_examples=200)
@given(st.dictionaries(st.integers(-24, 23), st.integers(0, 100), max_size=10))
def test_key_order_matches_cbor2_canonical_for_one_byte_keys(value: dict[int, CborValue]) -> None:
    """For one-byte keys RFC 7049 length-first order and RFC 8949 bytewise order coincide."""
    assert encode_value(value) == cbor2.dumps(value, canonical=True)


@pytest.mark.parametrize(
    "value",
    [1 << 64, -(1 << 64) - 1, 1.5, {"a": 1}, {True: 1}, (1, 2), "\ud800"],
)
def test_encoder_refuses_what_the_subset_cannot_carry(value: object) -> None:
    with pytest.raises(LocalWireError):
        encode_value(value)  # type: ignore[arg-type]
