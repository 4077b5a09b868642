"""Packet formats of the session layer: the header byte, handshake packets, protected records,
and the length prefix used on streams.

Theory of operation. Every packet starts with one header byte owned by this layer.

* Bit 7 clear: a *handshake packet* ``0 KKK LLLL || cid (L bytes) || body``. ``KKK`` is the
  :class:`HandshakeKind`; ``LLLL`` the length (0-15) of the gateway connection id that follows.
  The body is an EDHOC message (RFC 9528 §5), a retry token, or a resumption request/answer.
* Bit 7 set: a *protected record* ``1 P U L FF CC || cid || psn || ciphertext``:
  ``P`` key phase (RFC 9000 §6 style key update), ``U`` sequence space (0 reliable, 1 unreliable:
  acks, path probes, keep-alives), ``L`` long partial sequence number, ``FF`` fragment position,
  ``CC`` content type. The connection id has the fixed length the receiver chose (the gateway's
  ``cid_length``; zero toward a device). ``psn`` is the partial sequence number: the low 8 bits
  (16 if ``L``) of the reliable record number, reconstructed by the receiver against its receive
  window (RFC 9000 §17.1, Appendix A); unreliable records append one more byte, the count of
  unreliable records sent since the reliable number last advanced (see record.py).
  Header byte, cid and psn are the AEAD additional data (RFC 8613 §5.4 protects its header fields
  the same way).

On streams (TCP) each packet is preceded by its length as a 16-bit big-endian integer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.session.errors import LocalSessionError, PacketError

PROTECTED_BIT = 0x80
KEY_PHASE_BIT = 0x40
UNRELIABLE_BIT = 0x20
LONG_PSN_BIT = 0x10
FRAGMENT_SHIFT = 2
FRAGMENT_MASK = 0x0C
CONTENT_MASK = 0x03
HANDSHAKE_KIND_SHIFT = 4
HANDSHAKE_KIND_MASK = 0x70
HANDSHAKE_CID_MASK = 0x0F
MAX_CID_LENGTH = 15
MAX_TOKEN_LENGTH = 255
STREAM_LENGTH_BYTES = 2
MAX_STREAM_PACKET = 0xFFFF


class HandshakeKind(enum.IntEnum):
    """Kinds of handshake packet (bits 6-4 of the header byte)."""

    INITIAL = 1  # device -> gateway: token length, retry token, EDHOC message_1
    HANDSHAKE = 2  # both ways: EDHOC message_2 / message_3 / message_4 / error, cid = gateway's
    RETRY = 3  # gateway -> device: stateless retry token (RFC 9000 §8.1.2 in spirit)
    RESUME = 4  # device -> gateway: ticket, device nonce, binder
    RESUMED = 5  # gateway -> device: new cid, gateway nonce, confirmation tag
    REJECT = 6  # gateway -> device: reason byte, reset token (resets.py)


class Fragment(enum.IntEnum):
    """Where a record's plaintext sits in its operation (bits 3-2)."""

    WHOLE = 0  # a CBOR sequence of complete wire messages
    FIRST = 1
    MIDDLE = 2
    LAST = 3


class Content(enum.IntEnum):
    """What a record's plaintext holds (bits 1-0)."""

    APPLICATION = 0  # wire messages (gateway.wire), acks among them
    CONTROL = 1  # session control items (tickets, path challenge/response, keep-alive)


class RejectReason(enum.IntEnum):
    """The reason byte of a REJECT packet."""

    UNKNOWN_CONNECTION = 1  # followed by the connection id's reset token (or a decoy)
    TICKET_REJECTED = 2  # answers a RESUME; followed by 16 bytes of the binder's HMAC (tickets.py)
    HANDSHAKE_FAILED = 3  # reserved, never sent: garbage for a half-open handshake is dropped


REJECT_BODY_LENGTH = 1 + 16  # reason byte and reset token (resets.RESET_TOKEN_LENGTH)


@dataclass(frozen=True)
class HandshakePacket:
    """A handshake-class packet (bit 7 of the header clear)."""

    kind: HandshakeKind
    connection_id: bytes
    body: bytes

    def encode(self) -> bytes:
        """The packet's bytes."""
        if len(self.connection_id) > MAX_CID_LENGTH:
            raise LocalSessionError("connection id longer than 15 bytes")
        header = (int(self.kind) << HANDSHAKE_KIND_SHIFT) | len(self.connection_id)
        return bytes([header]) + self.connection_id + self.body


@dataclass(frozen=True)
class RecordHeader:
    """The cleartext part of a protected record; its bytes are the AEAD additional data."""

    key_phase: int
    unreliable: bool
    fragment: Fragment
    content: Content
    connection_id: bytes
    partial_sequence: bytes  # 1 or 2 bytes (reliable), 2 or 3 bytes (unreliable)

    def encode(self) -> bytes:
        """The header byte, connection id and partial sequence number."""
        long_psn = len(self.partial_sequence) == (3 if self.unreliable else 2)
        first = (
            PROTECTED_BIT
            | (KEY_PHASE_BIT if self.key_phase & 1 else 0)
            | (UNRELIABLE_BIT if self.unreliable else 0)
            | (LONG_PSN_BIT if long_psn else 0)
            | (int(self.fragment) << FRAGMENT_SHIFT)
            | int(self.content)
        )
        return bytes([first]) + self.connection_id + self.partial_sequence


@dataclass(frozen=True)
class ProtectedRecord:
    """A parsed protected record: its header, the header's bytes (AAD) and the ciphertext."""

    header: RecordHeader
    header_bytes: bytes
    ciphertext: bytes


Packet = HandshakePacket | ProtectedRecord


_FRAGMENTS = tuple(Fragment)  # by value 0-3: a table, not an Enum call per record
_CONTENTS = tuple(Content)  # by value, each below CONTROL + 1 once checked


def parse_packet_untrusted(data: bytes, *, cid_length: int) -> Packet:
    """Parse one packet whose protected records carry a ``cid_length``-byte connection id.

    Total: returns a packet or raises :class:`PacketError`.
    """
    if not data:
        raise PacketError("empty packet")
    first = data[0]
    if not first & PROTECTED_BIT:
        kind_value = (first & HANDSHAKE_KIND_MASK) >> HANDSHAKE_KIND_SHIFT
        try:
            kind = HandshakeKind(kind_value)
        except ValueError as exc:
            raise PacketError(f"unknown handshake kind {kind_value}") from exc
        cid_end = 1 + (first & HANDSHAKE_CID_MASK)
        if len(data) < cid_end:
            raise PacketError("truncated connection id")
        return HandshakePacket(kind, bytes(data[1:cid_end]), bytes(data[cid_end:]))
    content_value = first & CONTENT_MASK
    if content_value > Content.CONTROL:
        raise PacketError(f"reserved content type {content_value}")
    unreliable = bool(first & UNRELIABLE_BIT)
    psn_length = (2 if first & LONG_PSN_BIT else 1) + (1 if unreliable else 0)
    header_end = 1 + cid_length + psn_length
    if len(data) <= header_end:
        raise PacketError("truncated record")
    header = RecordHeader(
        key_phase=1 if first & KEY_PHASE_BIT else 0,
        unreliable=unreliable,
        fragment=_FRAGMENTS[(first & FRAGMENT_MASK) >> FRAGMENT_SHIFT],
        content=_CONTENTS[content_value],
        connection_id=bytes(data[1 : 1 + cid_length]),
        partial_sequence=bytes(data[1 + cid_length : header_end]),
    )
    if unreliable and header.fragment is not Fragment.WHOLE:
        raise PacketError("unreliable records are never fragments")
    return ProtectedRecord(header, bytes(data[:header_end]), bytes(data[header_end:]))


def parse_initial_body_untrusted(body: bytes) -> tuple[bytes, bytes]:
    """Split an INITIAL body ``token length (1) || token || message_1`` into (token, message_1)."""
    if not body:
        raise PacketError("empty INITIAL body")
    end = 1 + body[0]
    if len(body) <= end:
        raise PacketError("INITIAL without a handshake message")
    return bytes(body[1:end]), bytes(body[end:])


def encode_initial_body(token: bytes, message_1: bytes) -> bytes:
    """The body of an INITIAL packet."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise LocalSessionError("token too long")
    return bytes([len(token)]) + token + message_1


def frame(packet: bytes) -> bytes:
    """Prefix a packet with its 16-bit length for a stream transport."""
    if not packet or len(packet) > MAX_STREAM_PACKET:
        raise LocalSessionError("packet length must be 1..65535 on a stream")
    return len(packet).to_bytes(STREAM_LENGTH_BYTES, "big") + packet


DEFAULT_MAX_STREAM_PACKET = 16 * 1024  # bigger records save little; bounds per-connection memory
DEFAULT_MAX_STREAM_BUFFER = 64 * 1024  # unread bytes held per connection before we refuse more


class StreamDeframer:
    """Cut a byte stream into length-prefixed packets, enforcing the size limit before buffering."""

    def __init__(
        self,
        *,
        max_packet_size: int = DEFAULT_MAX_STREAM_PACKET,
        max_buffer: int = DEFAULT_MAX_STREAM_BUFFER,
    ) -> None:
        self.max_packet_size = max_packet_size
        self.max_buffer = max_buffer
        self._buffer = bytearray()

    def feed_untrusted(self, data: bytes | bytearray) -> list[bytes]:
        """Add stream bytes; return every complete packet. Raises :class:`PacketError`."""
        if len(self._buffer) + len(data) > self.max_buffer + STREAM_LENGTH_BYTES:
            raise PacketError("stream buffer limit exceeded")
        self._buffer += data
        packets: list[bytes] = []
        while len(self._buffer) >= STREAM_LENGTH_BYTES:
            length = int.from_bytes(self._buffer[:STREAM_LENGTH_BYTES], "big")
            if length == 0 or length > self.max_packet_size:
                raise PacketError(f"stream packet length {length} out of range")
            end = STREAM_LENGTH_BYTES + length
            if len(self._buffer) < end:
                break
            packets.append(bytes(self._buffer[STREAM_LENGTH_BYTES:end]))
            del self._buffer[:end]
        return packets
