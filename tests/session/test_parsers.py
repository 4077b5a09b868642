"""Parsers of network bytes: whole, byte by byte, with trailing data, and garbage (hypothesis)."""

from __future__ import annotations

import contextlib
import random

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.session import (
    DeviceSession,
    HandshakeKind,
    HandshakePacket,
    PacketError,
    ProtectedRecord,
    SessionError,
    StreamDeframer,
    TicketKeyRing,
    WireCodec,
    frame,
    parse_packet_untrusted,
)
from gateway.session.codec import (
    Close,
    KeepAlive,
    NewTicket,
    PathChallenge,
    PathResponse,
    decode_control_untrusted,
    encode_control,
)
from gateway.session.packets import (
    Content,
    Fragment,
    RecordHeader,
    encode_initial_body,
    parse_initial_body_untrusted,
)
from gateway.session.tickets import ResumeRequest, check_resumed_untrusted
from tests.session.helpers import initiator_factory, make_gateway


def test_handshake_packet_round_trip() -> None:
    packet = HandshakePacket(HandshakeKind.HANDSHAKE, b"\x01\x02", b"edhoc")
    data = packet.encode()
    assert data == bytes([0x22, 1, 2]) + b"edhoc"
    assert parse_packet_untrusted(data, cid_length=2) == packet


def test_record_header_round_trip() -> None:
    header = RecordHeader(1, False, Fragment.LAST, Content.APPLICATION, b"\xaa\xbb", b"\x01\x02")
    data = header.encode() + b"ciphertext"
    packet = parse_packet_untrusted(data, cid_length=2)
    assert isinstance(packet, ProtectedRecord)
    assert packet.header == header
    assert packet.header_bytes == header.encode()
    assert packet.ciphertext == b"ciphertext"  # trailing bytes are the ciphertext, by design


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",  # handshake kind 0 is reserved
        b"\x70",  # handshake kind 7 is unassigned
        b"\x2f\x01",  # cid length 15 but 1 byte
        b"\x80\xaa",  # record truncated before its ciphertext
        b"\x83\xaa\xbb\x01\x00",  # reserved content type 3
        b"\xa4\xaa\xbb\x01\x00\x00",  # unreliable fragment
    ],
)
def test_malformed_packets(data: bytes) -> None:
    with pytest.raises(PacketError):
        parse_packet_untrusted(data, cid_length=2)


def test_initial_body() -> None:
    body = encode_initial_body(b"tok", b"m1")
    assert parse_initial_body_untrusted(body) == (b"tok", b"m1")
    for cut in range(len(body) - 2 + 1):
        with pytest.raises(PacketError):
            parse_initial_body_untrusted(body[:cut] if cut < 5 else b"")


def test_stream_deframer_whole_byte_by_byte_and_trailing() -> None:
    packets = [b"\x81abc", b"\x10" + bytes(300), b"\x22xy"]
    stream = b"".join(frame(p) for p in packets)
    assert StreamDeframer().feed_untrusted(stream) == packets
    deframer = StreamDeframer()
    got: list[bytes] = []
    for byte in stream:
        got += deframer.feed_untrusted(bytes([byte]))
    assert got == packets
    deframer = StreamDeframer()
    assert deframer.feed_untrusted(stream + b"\x00") == packets  # a partial length stays buffered
    with pytest.raises(PacketError):
        deframer.feed_untrusted(b"\x00")  # ... and completes to length 0: framing error


def test_stream_deframer_limits_before_buffering() -> None:
    deframer = StreamDeframer(max_packet_size=100, max_buffer=200)
    with pytest.raises(PacketError):
        deframer.feed_untrusted(b"\x00\x65")  # 101 > 100, refused at the prefix
    with pytest.raises(PacketError):
        StreamDeframer(max_packet_size=100, max_buffer=200).feed_untrusted(bytes(300))


def test_control_items_round_trip() -> None:
    items: list[NewTicket | PathChallenge | PathResponse | KeepAlive | Close] = [
        NewTicket(b"t" * 20, b"s" * 16, 60),
        PathChallenge(b"12345678"),
        KeepAlive(),
    ]
    assert decode_control_untrusted(encode_control(items)) == items
    with pytest.raises(PacketError):
        decode_control_untrusted(encode_control(items)[:-1])


def test_control_items_are_the_bytes_cbor2_writes() -> None:
    items: list[NewTicket | PathChallenge | PathResponse | KeepAlive | Close] = [
        NewTicket(b"t" * 20, b"s" * 16, 604800, b"r" * 16),
        PathChallenge(b"12345678"),
        PathResponse(b"87654321"),
        KeepAlive(),
        Close(70000),
    ]
    expected = b"".join(
        cbor2.dumps(value)
        for value in (
            [1, b"t" * 20, b"s" * 16, 604800, b"r" * 16],
            [2, b"12345678"],
            [3, b"87654321"],
            [4],
            [5, 70000],
        )
    )
    assert encode_control(items) == expected
    assert decode_control_untrusted(expected) == items


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("811804"),  # [4] with the kind in a two-byte head
        bytes.fromhex("9f04ff"),  # [4] as an indefinite-length array
        bytes.fromhex("c18104"),  # [4] under a tag
        bytes.fromhex("8205f93c00"),  # Close with a half-float reason
        bytes.fromhex("82048104"),  # a nested array
        bytes.fromhex("8102"),  # PathChallenge without its data
        bytes.fromhex("81f5"),  # the kind is true, not an integer
        bytes.fromhex("8104") * 9,  # nine items: more than a record may hold
    ],
)
def test_control_items_refuse_what_is_not_strict_cbor(data: bytes) -> None:
    with pytest.raises(PacketError):
        decode_control_untrusted(data)


@settings(max_examples=300)
@given(st.binary(max_size=80), st.integers(0, 4))
def test_packet_parser_garbage(data: bytes, cid_length: int) -> None:
    with contextlib.suppress(PacketError):
        parse_packet_untrusted(data, cid_length=cid_length)


@settings(max_examples=200)
@given(st.binary(max_size=80))
def test_control_parser_garbage(data: bytes) -> None:
    with contextlib.suppress(PacketError):
        decode_control_untrusted(data)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=40), max_size=5))
def test_deframer_garbage(chunks: list[bytes]) -> None:
    deframer = StreamDeframer(max_packet_size=64, max_buffer=128)
    try:
        for chunk in chunks:
            deframer.feed_untrusted(chunk)
    except PacketError:
        pass


@settings(max_examples=200)
@given(st.binary(max_size=60))
def test_resume_and_ticket_parsers_garbage(data: bytes) -> None:
    ring = TicketKeyRing()
    ring.rotate(0.0, bytes(16))
    try:
        packet = parse_packet_untrusted(data, cid_length=0)
        if isinstance(packet, HandshakePacket):
            request = ResumeRequest.parse_untrusted(packet, data)
            ring.open_untrusted(request.ticket, 0.0)
            check_resumed_untrusted(packet, request, bytes(16))
    except SessionError:
        pass


@settings(max_examples=150)
@given(st.lists(st.binary(max_size=60), max_size=6))
def test_endpoints_never_raise_on_garbage(datagrams: list[bytes]) -> None:
    gateway = make_gateway()
    device = DeviceSession(
        handshake_factory=initiator_factory(), codec=WireCodec(), rng=random.Random(1)
    )
    device.connect(0.0)
    for datagram in datagrams:
        gateway.receive_datagram(datagram, ("192.0.2.1", 1), 0.0)
        device.receive_datagram(datagram, 0.0)
    stats = gateway.statistics()
    incoming = {k: v for k, v in stats.dropped.items() if k != "amplification_limited"}
    assert sum(incoming.values()) + stats.handshakes_in_progress == len(datagrams)
