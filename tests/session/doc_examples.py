"""Builders for the `hex session:` examples of docs/protocol.md (Section 3).

Each function rebuilds one example with the encoder, from fixed inputs, so the test can compare it
with the document. message_1 is from RFC 9529 §3.3 (trace 2: method 3, cipher suite 2).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from gateway import wire
from gateway.session import (
    ChannelConfig,
    HandshakeKind,
    HandshakePacket,
    TicketKeyRing,
    WireCodec,
    frame,
)
from gateway.session.channel import SecureChannel
from gateway.session.cookies import RetryTokens
from gateway.session.packets import encode_initial_body, parse_packet_untrusted
from gateway.session.record import AeadAlgorithm, RecordProtection, SessionSecrets
from gateway.session.resets import ResetTokens
from gateway.session.tickets import ResumeRequest, resumed_answer

# RFC 9529 §3.3: message_1 of trace 2 (39 bytes).
MESSAGE_1 = bytes.fromhex(
    "0382060258208af6f430ebe18d34184017a9a11bf511c8dff8f834730b96c1b7c8dbca2fc3b637"
)
MASTER_SECRET = bytes(range(32))  # the exporter output assumed by the record examples
GATEWAY_CID = bytes.fromhex("4a17")
TICKET_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
DEVICE_NONCE = bytes.fromhex("a1a2a3a4a5a6a7a8")
GATEWAY_NONCE = bytes.fromhex("b1b2b3b4b5b6b7b8")
COOKIE_KEY = bytes(32)
DEVICE_ADDRESS = ("198.51.100.7", 40000)


def _channels(*, stream: bool = False) -> tuple[SecureChannel, SecureChannel]:
    def channel(is_gateway: bool, peer: bytes) -> SecureChannel:
        secrets_ = SessionSecrets.from_master(
            MASTER_SECRET, AeadAlgorithm.AES_CCM_16_64_128, is_gateway=is_gateway
        )
        return SecureChannel(
            RecordProtection(secrets_),
            codec=WireCodec(),
            peer_connection_id=peer,
            config=ChannelConfig(stream=stream),
            rng=random.Random(0),
        )

    return channel(True, b""), channel(False, GATEWAY_CID)


def initial() -> bytes:
    """INITIAL without a token, carrying message_1."""
    return HandshakePacket(HandshakeKind.INITIAL, b"", encode_initial_body(b"", MESSAGE_1)).encode()


def retry() -> bytes:
    """RETRY with a token for the device's address issued at time 1000."""
    token = RetryTokens(key=COOKIE_KEY).issue(DEVICE_ADDRESS, 1000.0)
    return HandshakePacket(HandshakeKind.RETRY, b"", token).encode()


def initial_with_token() -> bytes:
    """INITIAL repeated with the token."""
    token = RetryTokens(key=COOKIE_KEY).issue(DEVICE_ADDRESS, 1000.0)
    body = encode_initial_body(token, MESSAGE_1)
    return HandshakePacket(HandshakeKind.INITIAL, b"", body).encode()


def record_device() -> bytes:
    """The device's first reliable record: a Ping with id 7."""
    _gateway, device = _channels()
    device.send_operation(wire.Ping(id=7))
    (record,) = device.datagrams_to_send(0.0)
    return record


def record_ack() -> bytes:
    """The gateway's ack-only record (unreliable space) for that Ping."""
    gateway, _device = _channels()
    packet = parse_packet_untrusted(record_device(), cid_length=len(GATEWAY_CID))
    assert not isinstance(packet, HandshakePacket)
    gateway.receive_record(packet, 0.0)
    (record,) = gateway.datagrams_to_send(1.0)
    return record


SEND_TEXT = wire.SendMessage(7, 3, wire.TextContent("Running late, 10 min"))  # §6.4's example


def record_send() -> bytes:
    """The device's first reliable record carrying the compact SendMessage of §6.4."""
    _gateway, device = _channels()
    device.send_operation(SEND_TEXT)
    (record,) = device.datagrams_to_send(0.0)
    return record


def record_send_ack() -> bytes:
    """The gateway's ack-only record for it."""
    gateway, _device = _channels()
    packet = parse_packet_untrusted(record_send(), cid_length=len(GATEWAY_CID))
    assert not isinstance(packet, HandshakePacket)
    gateway.receive_record(packet, 0.0)
    (record,) = gateway.datagrams_to_send(1.0)
    return record


def _ticket() -> tuple[bytes, bytes]:
    ring = TicketKeyRing()
    ring.rotate(1_700_000_000.0, TICKET_KEY)
    return ring.issue(b"\x2b", 2, 1_700_000_000.0, 604800)


def resume() -> bytes:
    """RESUME: ticket, device nonce, binder (40 bytes at most)."""
    ticket, secret = _ticket()
    return ResumeRequest.build(ticket, secret, DEVICE_NONCE).packet


def resumed() -> bytes:
    """RESUMED answering it, with the new connection id."""
    ticket, secret = _ticket()
    request = ResumeRequest.build(ticket, secret, DEVICE_NONCE)
    return resumed_answer(request, secret, GATEWAY_CID, GATEWAY_NONCE)


def _stream_record_device() -> bytes:
    _gateway, device = _channels(stream=True)
    device.send_operation(wire.Ping(id=7))
    (record,) = device.datagrams_to_send(0.0)
    return record


def tcp_frame() -> bytes:
    """The device's first record on a TCP connection: the Ping of record_device, framed."""
    return frame(_stream_record_device())


def tcp_ack() -> bytes:
    """The gateway's ack for it on the TCP connection, sent after the ack delay, framed."""
    gateway, _device = _channels(stream=True)
    packet = parse_packet_untrusted(_stream_record_device(), cid_length=len(GATEWAY_CID))
    assert not isinstance(packet, HandshakePacket)
    gateway.receive_record(packet, 0.0)
    (record,) = gateway.datagrams_to_send(1.0)
    return frame(record)


RESET_KEY = bytes(32)


def reject() -> bytes:
    """REJECT(1) for connection id 4a17 with its reset token under the all-zero reset key."""
    token = ResetTokens(RESET_KEY).token(GATEWAY_CID)
    return HandshakePacket(HandshakeKind.REJECT, b"", b"\x01" + token).encode()


EXAMPLES: dict[str, Callable[[], bytes]] = {
    "initial": initial,
    "retry": retry,
    "initial-with-token": initial_with_token,
    "record-device": record_device,
    "record-ack": record_ack,
    "record-send": record_send,
    "record-send-ack": record_send_ack,
    "resume": resume,
    "resumed": resumed,
    "reject": reject,
    "tcp-frame": tcp_frame,
    "tcp-ack": tcp_ack,
}

if __name__ == "__main__":
    for name, build in EXAMPLES.items():
        print(name, build().hex())
