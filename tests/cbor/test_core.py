"""The strict CBOR core (gateway/cbor.py): three ways per vector, cbor2 as an independent reader.

Each vector is decoded whole, as every proper prefix (which must fail as TRUNCATED) and with
trailing data (which one item leaves unread and ``read_single`` refuses). The package policies
(wire: integer keys in bytewise order; EDHOC: integer or text keys in the sender's order, depth
counted over every item) are tested here as arguments of the one decoder.
"""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cbor import (
    MAJOR_ARRAY,
    CborDecoder,
    CborError,
    CborReason,
    CborValue,
    KeyTypes,
    encode,
    encode_head,
)
from tests.cbor.vectors import RFC8949_APPENDIX_A

# The RFC 8949 Appendix A examples in the subset, plus the edges of each head width.
VECTORS: list[tuple[str, CborValue]] = [
    *RFC8949_APPENDIX_A,
    ("18ff", 255),
    ("190100", 256),
    ("a30018181818002021", {0: 24, 24: 0, -1: -2}),  # bytewise: 0, 24, -1
]


def decoder(data: bytes, *, max_depth: int = 8, max_items: int | None = None) -> CborDecoder:
    return CborDecoder(data, max_depth=max_depth, max_items=max_items)


def reason_of(reader: CborDecoder | bytes) -> CborReason:
    """Why the one item ``reader`` holds is refused (bytes: under the default policy)."""
    if isinstance(reader, bytes):
        reader = decoder(reader)
    with pytest.raises(CborError) as caught:
        reader.read_single()
    return caught.value.reason


@pytest.mark.parametrize(("hex_text", "value"), VECTORS)
def test_vector_whole(hex_text: str, value: CborValue) -> None:
    data = bytes.fromhex(hex_text)
    assert decoder(data).read_single() == value
    assert encode(value) == data
    assert cbor2.loads(data) == value


@pytest.mark.parametrize(("hex_text", "value"), VECTORS)
def test_vector_every_proper_prefix_is_truncated(hex_text: str, value: CborValue) -> None:
    data = bytes.fromhex(hex_text)
    for end in range(len(data)):
        with pytest.raises(CborError) as caught:
            decoder(data[:end]).read_single()
        assert caught.value.reason is CborReason.TRUNCATED, (hex_text, end)


@pytest.mark.parametrize(("hex_text", "value"), VECTORS)
def test_vector_with_trailing_data(hex_text: str, value: CborValue) -> None:
    data = bytes.fromhex(hex_text)
    for trailer in (b"\x00", b"\xff", b"\x18"):
        reader = decoder(data + trailer)
        assert reader.read() == value
        assert reader.position == len(data)
        assert not reader.at_end
        assert reason_of(data + trailer) is CborReason.TRAILING_DATA


@pytest.mark.parametrize(
    ("hex_text", "reason"),
    [
        ("1800", CborReason.NOT_SHORTEST),
        ("190017", CborReason.NOT_SHORTEST),
        ("1b00000000ffffffff", CborReason.NOT_SHORTEST),
        ("3800", CborReason.NOT_SHORTEST),
        ("5801ff", CborReason.NOT_SHORTEST),
        ("9800", CborReason.NOT_SHORTEST),
        ("a202000100", CborReason.KEYS_OUT_OF_ORDER),
        ("a22000181800", CborReason.KEYS_OUT_OF_ORDER),  # -1 before 24: length-first order
        ("a201000100", CborReason.DUPLICATE_KEY),
        ("5f4101ff", CborReason.INDEFINITE_LENGTH),
        ("bf0001ff", CborReason.INDEFINITE_LENGTH),
        ("1f", CborReason.NOT_WELL_FORMED),
        ("ff", CborReason.NOT_WELL_FORMED),
        ("1c", CborReason.NOT_WELL_FORMED),
        ("fe", CborReason.NOT_WELL_FORMED),
        ("62c328", CborReason.INVALID_UTF8),
        ("63eda080", CborReason.INVALID_UTF8),
        ("c11a514b67b0", CborReason.UNSUPPORTED_TYPE),
        ("f93c00", CborReason.UNSUPPORTED_TYPE),
        ("f7", CborReason.UNSUPPORTED_TYPE),
        ("a1616100", CborReason.UNSUPPORTED_KEY),
        ("a1f400", CborReason.UNSUPPORTED_KEY),
        ("9bffffffffffffffff00", CborReason.TRUNCATED),
        ("bbffffffffffffffff0000", CborReason.TRUNCATED),
    ],
)
def test_refusals_carry_their_reason(hex_text: str, reason: CborReason) -> None:
    assert reason_of(bytes.fromhex(hex_text)) is reason


def test_bytewise_order_differs_from_cbor2_canonical_for_negative_keys() -> None:
    """RFC 8949 §4.2.1 sorts encoded keys bytewise; RFC 7049 length-first puts -1 before 24."""
    value: dict[int | str, CborValue] = {-1: 0, 24: 0, 256: 0, -25: 0}
    ours = encode(value)
    assert ours == bytes.fromhex("a4" + "181800" + "19010000" + "2000" + "381800")
    assert cbor2.dumps(value, canonical=True) != ours
    assert cbor2.loads(ours) == value
    assert decoder(ours, max_depth=1).read_single() == value
    assert reason_of(cbor2.dumps(value, canonical=True)) is CborReason.KEYS_OUT_OF_ORDER


def test_unsorted_policy_keeps_the_senders_order_and_refuses_duplicates() -> None:
    data = bytes.fromhex("a3" + "0300" + "6161" + "01" + "2002")  # {3: 0, "a": 1, -1: 2}
    either = KeyTypes.INTEGER_OR_TEXT
    value = CborDecoder(data, max_depth=1, key_types=either, sorted_keys=False).read_single()
    assert isinstance(value, dict)
    assert list(value) == [3, "a", -1]
    assert encode(value, sort_keys=False, key_types=either) == data
    assert reason_of(data) is CborReason.UNSUPPORTED_KEY  # the default policy: integer keys only
    for duplicated in ("a2030003f5", "a2616100616101"):
        reader = CborDecoder(
            bytes.fromhex(duplicated), max_depth=1, key_types=either, sorted_keys=False
        )
        assert reason_of(reader) is CborReason.DUPLICATE_KEY


def test_depth_counts_containers_or_every_item() -> None:
    eight = b"\x81" * 8 + b"\x00"  # 8 containers, the scalar at level 8
    assert decoder(eight).read_single() == [[[[[[[[0]]]]]]]]
    assert reason_of(b"\x81" * 9 + b"\x00") is CborReason.TOO_DEEP
    # Counting every item (EDHOC's reader): the scalar is a ninth level.
    assert (
        reason_of(CborDecoder(eight, max_depth=8, depth_counts_leaves=True)) is CborReason.TOO_DEEP
    )
    assert CborDecoder(eight, max_depth=9, depth_counts_leaves=True).read_single() == [
        [[[[[[[0]]]]]]]
    ]
    nine_empty = b"\x81" * 8 + b"\x80"  # an empty container at level 8 has no ninth level
    assert CborDecoder(nine_empty, max_depth=9, depth_counts_leaves=True).read_single()


def test_depth_stops_at_the_header_that_exceeds_it() -> None:
    reader = decoder(b"\x81" * 200_000 + b"\x00")
    with pytest.raises(CborError) as caught:
        reader.read()
    assert caught.value.reason is CborReason.TOO_DEEP
    assert reader.position == 8


def test_items_are_claimed_at_the_container_head() -> None:
    data = encode_head(MAJOR_ARRAY, 1000) + b"\x80" * 1000
    assert decoder(data, max_items=1001).read_single() == [[]] * 1000
    reader = decoder(data, max_items=1000)
    with pytest.raises(CborError) as caught:
        reader.read()
    assert caught.value.reason is CborReason.TOO_MANY_ITEMS
    assert reader.position == 3  # the head of the array, and nothing after it
    # A map announces a key and a value per entry.
    assert decoder(bytes.fromhex("a10102"), max_items=3).read_single() == {1: 2}
    assert reason_of(decoder(bytes.fromhex("a10102"), max_items=2)) is CborReason.TOO_MANY_ITEMS


def test_item_budget_runs_over_a_sequence() -> None:
    reader = decoder(b"\x01\x02\x03", max_items=2)
    assert (reader.read(), reader.read()) == (1, 2)
    assert reader.items_left == 0
    with pytest.raises(CborError) as caught:
        reader.read()
    assert caught.value.reason is CborReason.TOO_MANY_ITEMS
    reader.items_left = 1  # a caller may grant the next item its own budget
    assert reader.read() == 3


def test_raw_spans_are_the_bytes_read() -> None:
    data = bytes.fromhex("a1044102" + "1818")
    reader = decoder(data)
    assert reader.read_with_raw() == ({4: b"\x02"}, data[:4])
    assert reader.peek_initial() == 0x18
    assert reader.read_with_raw() == (24, b"\x18\x18")
    assert reader.at_end
    with pytest.raises(CborError):
        reader.peek_initial()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1 << 64, CborReason.OUT_OF_RANGE),
        (-(1 << 64) - 1, CborReason.OUT_OF_RANGE),
        (1.5, CborReason.UNSUPPORTED_TYPE),
        ((1, 2), CborReason.UNSUPPORTED_TYPE),
        ({"a": 1}, CborReason.UNSUPPORTED_KEY),
        ({True: 1}, CborReason.UNSUPPORTED_KEY),
        ("\ud800", CborReason.INVALID_TEXT),
    ],
)
def test_encoder_refuses_what_the_subset_cannot_carry(value: object, reason: CborReason) -> None:
    with pytest.raises(CborError) as caught:
        encode(value)
    assert caught.value.reason is reason


integers = st.integers(-(1 << 64), (1 << 64) - 1)
scalars = st.one_of(
    integers, st.binary(max_size=20), st.text(max_size=20), st.booleans(), st.none()
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(integers, children, max_size=4)
    ),
    max_leaves=16,
)


@settings(max_examples=300)
@given(values)
def test_round_trip_against_cbor2(value: CborValue) -> None:
    encoded = encode(value)
    assert cbor2.loads(encoded) == value  # an independent reader agrees on the meaning
    assert decoder(encoded, max_depth=64).read_single() == value
    assert encode(cbor2.loads(encoded)) == encoded


@settings(max_examples=200)
@given(st.dictionaries(st.integers(-24, 23), st.integers(0, 100), max_size=10))
def test_one_byte_keys_sort_as_cbor2_canonical(value: dict[int | str, CborValue]) -> None:
    """For one-byte keys length-first and bytewise order coincide."""
    assert encode(value) == cbor2.dumps(value, canonical=True)


@settings(max_examples=500)
@given(
    st.binary(max_size=64),
    st.sampled_from(list(KeyTypes)),
    st.booleans(),
    st.booleans(),
    st.integers(1, 8),
    st.one_of(st.none(), st.integers(0, 16)),
)
def test_garbage_raises_only_cbor_error(
    data: bytes,
    key_types: KeyTypes,
    sorted_keys: bool,
    depth_counts_leaves: bool,
    max_depth: int,
    max_items: int | None,
) -> None:
    reader = CborDecoder(
        data,
        max_depth=max_depth,
        max_items=max_items,
        key_types=key_types,
        sorted_keys=sorted_keys,
        depth_counts_leaves=depth_counts_leaves,
    )
    try:
        while not reader.at_end:
            start = reader.position
            value, raw = reader.read_with_raw()
            assert raw == data[start : reader.position]
            if sorted_keys:  # strict decoding leaves one spelling: it re-encodes to the same bytes
                assert encode(value, key_types=key_types) == raw
            else:
                assert encode(value, sort_keys=False, key_types=key_types) == raw
    except CborError:
        pass
