"""Every message type survives encode -> decode, in its one deterministic encoding, in budget."""

from __future__ import annotations

import dataclasses

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.wire import (
    Ack,
    ErrorCode,
    Message,
    MessageType,
    RemoteWireError,
    SendMessage,
    SetPresence,
    Show,
    TextContent,
    decode_sequence_untrusted,
    decode_untrusted,
    encode,
    encode_sequence,
)
from gateway.wire.cbor import CborReader, CborValue, encode_value
from gateway.wire.limits import DEFAULT_MAX_DEPTH
from tests.wire.strategies import messages


def map_form(message: Message) -> Message:
    """``message`` to be encoded as a map (a SendMessage would otherwise go compact)."""
    if isinstance(message, SendMessage):
        return dataclasses.replace(message, compact=False)
    return message


@settings(max_examples=300)
@given(messages)
def test_round_trip(message: Message) -> None:
    encoded = encode(message)
    assert decode_untrusted(encoded) == message
    assert encode(decode_untrusted(encoded)) == encoded


@settings(max_examples=200)
@given(messages)
def test_encoding_is_deterministic_cbor_an_independent_decoder_reads(message: Message) -> None:
    """cbor2 (which we did not write) reads our bytes; its value re-encodes to the same bytes."""
    encoded = encode(message)
    value = cbor2.loads(encoded)
    assert encode_value(value) == encoded
    reader = CborReader(encoded, max_depth=DEFAULT_MAX_DEPTH)
    assert reader.read_item() == value


def test_every_message_type_is_generated() -> None:
    seen: set[int] = set()

    @settings(max_examples=400, database=None)
    @given(messages)
    def collect(message: Message) -> None:
        seen.add(message.TYPE)

    collect()
    assert seen == set(MessageType)


@settings(max_examples=100)
@given(st.lists(messages, max_size=6))
def test_sequence_round_trip(batch: list[Message]) -> None:
    encoded = encode_sequence(batch)
    assert encoded == b"".join(encode(message) for message in batch)
    assert decode_sequence_untrusted(encoded) == batch


@settings(max_examples=100)
@given(messages)
def test_every_proper_prefix_is_rejected(message: Message) -> None:
    """The decoder read whole, then byte by byte: no prefix of a message is a message."""
    encoded = encode(message)
    for end in range(len(encoded)):
        with pytest.raises(RemoteWireError):
            decode_untrusted(encoded[:end])


@settings(max_examples=100)
@given(messages, messages)
def test_trailing_data_is_rejected_by_the_single_decoder(first: Message, second: Message) -> None:
    data = encode(first) + encode(second)
    with pytest.raises(RemoteWireError, match="after the message"):
        decode_untrusted(data)
    assert decode_sequence_untrusted(data) == [first, second]


# Byte budgets of issue 3, checked on the encoder's output before record protection.


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=20, max_size=20),
)
def test_twenty_character_text_to_an_aliased_contact_fits_32_bytes(
    message_id: int, alias: int, text: str
) -> None:
    assert len(encode(SendMessage(message_id, alias, TextContent(text), compact=False))) <= 32


@given(
    st.integers(0, 65535),
    st.integers(0, 255),
    st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=20, max_size=20),
)
def test_twenty_character_text_fits_27_bytes_in_the_compact_form(
    message_id: int, alias: int, text: str
) -> None:
    """§6.4's budget: 27 bytes for ids below 65536 and aliases below 256, 24 when both are small."""
    encoded = encode(SendMessage(message_id, alias, TextContent(text)))
    assert len(encoded) <= 27
    assert len(encoded) == 24 or message_id >= 24 or alias >= 24


@given(
    st.sampled_from(Show),
    st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=10, max_size=10),
)
def test_presence_with_show_and_ten_character_note_fits_24_bytes(show: Show, note: str) -> None:
    assert len(encode(SetPresence(show=show, note=note))) <= 24


@pytest.mark.parametrize("cumulative", [0, 1, 23, 24, 255, 256, 65535])
def test_cumulative_ack_fits_4_bytes(cumulative: int) -> None:
    assert len(encode(Ack(cumulative))) <= 4


@given(st.integers(0, 65535))
def test_every_cumulative_ack_below_65536_fits_4_bytes(cumulative: int) -> None:
    encoded = encode(Ack(cumulative))
    assert len(encoded) <= 4
    assert decode_untrusted(encoded) == Ack(cumulative)


elective_values = st.recursive(
    st.one_of(st.integers(-1000, 1000), st.binary(max_size=8), st.text(max_size=8), st.booleans()),
    lambda children: st.lists(children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150)
@given(
    messages.filter(lambda message: not isinstance(message, Ack) or bool(message.selective)),
    st.dictionaries(st.integers(-(1 << 20), -1), elective_values, min_size=1, max_size=3),
)
def test_unknown_elective_fields_are_ignored(
    message: Message, extension: dict[int, CborValue]
) -> None:
    """A newer sender's elective (negative-key) fields do not change what an old receiver reads."""
    value = CborReader(encode(map_form(message)), max_depth=DEFAULT_MAX_DEPTH).read_item()
    assert isinstance(value, dict)
    extended = encode_value({**value, **extension})
    assert decode_untrusted(extended) == message


@settings(max_examples=150)
@given(messages.filter(lambda message: not isinstance(message, Ack)), st.integers(16, 1000))
def test_unknown_critical_fields_are_refused(message: Message, key: int) -> None:
    value = CborReader(encode(map_form(message)), max_depth=DEFAULT_MAX_DEPTH).read_item()
    assert isinstance(value, dict)
    with pytest.raises(RemoteWireError) as caught:
        decode_untrusted(encode_value({**value, key: 0}))
    assert caught.value.code is ErrorCode.UNKNOWN_CRITICAL_FIELD
