"""A minimal device built only from docs/protocol.md (Section 3) and RFC 9528, for spec tests.

It deliberately imports nothing from ``gateway`` or ``device_sim``: CBOR comes from cbor2, AES-CCM,
HMAC and HKDF from ``cryptography``, and EDHOC (the device is the Initiator) from lakers. Each
function cites the section of docs/protocol.md it follows, so a gap in the text shows up here as
a guess. It is a test tool: one session, no retransmission timers of its own (the tests decide
when to resend), sequence numbers small enough that the 1-byte partial numbers never wrap.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from dataclasses import dataclass, field

import cbor2
import lakers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

# Section 3.1: handshake kinds, protected-record bits.
KIND_INITIAL = 1
KIND_HANDSHAKE = 2
KIND_RETRY = 3
KIND_RESUME = 4
KIND_RESUMED = 5
KIND_REJECT = 6
PROTECTED = 0x80
CONTENT_APPLICATION = 0
CONTENT_CONTROL = 1
FRAGMENT_WHOLE, FRAGMENT_FIRST, FRAGMENT_MIDDLE, FRAGMENT_LAST = 0, 1, 2, 3
RELIABLE, UNRELIABLE = 0, 1
MAX_DATAGRAM = 1232  # Section 3.2
EXPORTER_LABEL = 32768  # Section 3.3
TAG_LENGTH = 8  # suite 2: AES-CCM-16-64-128 (Section 3.4.1)
KEY_LENGTH = 16
NONCE_LENGTH = 13
CID_LENGTH = 2  # Section 3.1: the gateway's default connection id length
REFERENCE_C_I = b"\x37"  # Section 3.3


class SpecViolationError(Exception):
    """The gateway sent something docs/protocol.md does not allow."""


def expand(secret: bytes, label: str, length: int) -> bytes:
    """Section 3.4.1: HKDF-Expand(secret, info = "impp-session " || label, length)."""
    info = b"impp-session " + label.encode()
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


@dataclass
class Direction:
    """One direction's AEAD key and IV (Section 3.4.1) and nonce construction (Section 3.4.2)."""

    key: bytes
    iv: bytes

    @classmethod
    def derive(cls, master: bytes, label: str) -> Direction:
        secret = expand(master, label, 32)
        return cls(expand(secret, "key", KEY_LENGTH), expand(secret, "iv", NONCE_LENGTH))

    def nonce(self, space: int, sequence: int) -> bytes:
        plain = b"\x01" + space.to_bytes(NONCE_LENGTH - 6, "big") + sequence.to_bytes(5, "big")
        return bytes(a ^ b for a, b in zip(plain, self.iv, strict=True))

    def seal(self, space: int, sequence: int, aad: bytes, plaintext: bytes) -> bytes:
        aead = AESCCM(self.key, tag_length=TAG_LENGTH)
        return aead.encrypt(self.nonce(space, sequence), plaintext, aad)

    def open(self, space: int, sequence: int, aad: bytes, ciphertext: bytes) -> bytes:
        aead = AESCCM(self.key, tag_length=TAG_LENGTH)
        return aead.decrypt(self.nonce(space, sequence), ciphertext, aad)


@dataclass(frozen=True)
class Record:
    """A record the device opened (Section 3.4)."""

    space: int
    sequence: int
    fragment: int
    content: int
    plaintext: bytes


@dataclass(frozen=True)
class NewTicket:
    """Section 3.4.5 NewTicket, with the suite the device remembers next to it (Section 3.8)."""

    ticket: bytes
    resumption_secret: bytes
    lifetime: int
    reset_token: bytes


def closest(expected: int, partial: int, bits: int) -> int:
    """RFC 9000 Appendix A.3: nearest ``expected`` whose low ``bits`` are ``partial``."""
    window = 1 << bits
    candidate = (expected & ~(window - 1)) | partial
    if candidate + window // 2 <= expected:
        candidate += window
    elif candidate > expected + window // 2 and candidate >= window:
        candidate -= window
    return candidate


@dataclass
class SessionKeys:
    """An established session's record state on the device (Sections 3.4-3.6)."""

    connection_id: bytes
    master: bytes
    send: Direction = field(init=False)
    receive: Direction = field(init=False)
    next_reliable: int = 0  # our next reliable number
    unreliable_step: int = 0  # k: unreliable records since next_reliable last changed
    received_reliable: set[int] = field(default_factory=set)  # from the gateway
    reassembly: bytes = b""

    def __post_init__(self) -> None:
        self.send = Direction.derive(self.master, "d2g")
        self.receive = Direction.derive(self.master, "g2d")

    @property
    def cumulative(self) -> int:
        """Section 6.1: every gateway reliable record below this number has arrived."""
        number = 0
        while number in self.received_reliable:
            number += 1
        return number

    def reliable_record(
        self,
        plaintext: bytes,
        *,
        content: int = CONTENT_APPLICATION,
        fragment: int = FRAGMENT_WHOLE,
    ) -> bytes:
        """Section 3.4: the next reliable record, to the gateway (its connection id, 1-byte psn)."""
        sequence = self.next_reliable
        self.next_reliable += 1
        self.unreliable_step = 0
        header = PROTECTED | (fragment << 2) | content
        aad = bytes([header]) + self.connection_id + bytes([sequence & 0xFF])
        return aad + self.send.seal(RELIABLE, sequence, aad, plaintext)

    def unreliable_record(self, plaintext: bytes) -> bytes:
        """Section 3.4.3: an unreliable record numbered N * 256 + k; on the wire N partial, k."""
        k = self.unreliable_step
        self.unreliable_step += 1
        sequence = self.next_reliable * 256 + k
        header = PROTECTED | 0x20
        aad = bytes([header]) + self.connection_id + bytes([self.next_reliable & 0xFF, k])
        return aad + self.send.seal(UNRELIABLE, sequence, aad, plaintext)

    def ack_record(self) -> bytes:
        """Section 3.5: a lone Ack (compact form, Section 4.3) in an unreliable record."""
        return self.unreliable_record(cbor2.dumps(self.cumulative))

    def fragments(self, encoded: bytes) -> list[bytes]:
        """Section 3.6: one message too large for a record, as first, middle..., last records."""
        room = MAX_DATAGRAM - (1 + CID_LENGTH + 1) - TAG_LENGTH
        if len(encoded) <= room:
            return [self.reliable_record(encoded)]
        pieces = [encoded[i : i + room] for i in range(0, len(encoded), room)]
        positions = [FRAGMENT_FIRST] + [FRAGMENT_MIDDLE] * (len(pieces) - 2) + [FRAGMENT_LAST]
        return [
            self.reliable_record(piece, fragment=position)
            for piece, position in zip(pieces, positions, strict=True)
        ]

    def open_record(self, datagram: bytes) -> Record:
        """Open a record from the gateway: no connection id (Section 3.1)."""
        header = datagram[0]
        if not header & PROTECTED:
            raise SpecViolationError(f"not a record: header {header:#04x}")
        phase, space, long_psn = (header >> 6) & 1, (header >> 5) & 1, (header >> 4) & 1
        if phase or long_psn:
            raise SpecViolationError("key phase 1 / long psn never needed in these tests")
        fragment, content = (header >> 2) & 3, header & 3
        expected = self.cumulative
        if space == RELIABLE:
            sequence = closest(expected, datagram[1], 8)
            aad, body = datagram[:2], datagram[2:]
        else:
            sequence = closest(expected, datagram[1], 8) * 256 + datagram[2]
            aad, body = datagram[:3], datagram[3:]
        plaintext = self.receive.open(space, sequence, aad, body)
        if space == RELIABLE:
            self.received_reliable.add(sequence)
        return Record(space, sequence, fragment, content, plaintext)


def decode_sequence(plaintext: bytes) -> list[object]:
    """Section 4.7: a record plaintext is a CBOR sequence of messages."""
    items: list[object] = []
    stream = io.BytesIO(plaintext)
    while stream.tell() < len(plaintext):
        items.append(cbor2.CBORDecoder(stream).decode())
    return items


def send_message(message_id: int, to: int | str, text: str) -> bytes:
    """Section 6.4: a text without language tag, report wanted, in the compact form [id, to, text].

    cbor2 writes shortest heads and definite lengths (Section 4.2), all this form needs.
    """
    return cbor2.dumps([message_id, to, text])


def send_message_map(message_id: int, to: int | str, text: str) -> bytes:
    """Section 6.4: the same SendMessage as a map (what a device of the earlier text sends)."""
    return cbor2.dumps({0: 4, 1: message_id, 2: to, 3: text})


def decode_control(plaintext: bytes) -> list[list[object]]:
    """Section 3.4.5: a CBOR sequence of arrays."""
    items: list[list[object]] = []
    for item in decode_sequence(plaintext):
        if not isinstance(item, list) or not item or not isinstance(item[0], int):
            raise SpecViolationError(f"control item is not an array with a type: {item!r}")
        items.append(item)
    return items


def parse_new_ticket(item: list[object]) -> NewTicket:
    """Section 3.4.5: ``[1, ticket, resumption_secret, lifetime, reset_token]``."""
    if len(item) != 5 or item[0] != 1:
        raise SpecViolationError(f"not a NewTicket: {item!r}")
    _, ticket, secret, lifetime, token = item
    if not (isinstance(ticket, bytes) and 17 <= len(ticket) <= 23):
        raise SpecViolationError("ticket must be a bstr of 17-23 bytes")
    if not (isinstance(secret, bytes) and len(secret) == 16):
        raise SpecViolationError("resumption_secret must be a 16-byte bstr")
    if not (isinstance(lifetime, int) and not isinstance(lifetime, bool) and lifetime >= 0):
        raise SpecViolationError("lifetime must be a uint")
    if not (isinstance(token, bytes) and len(token) == 16):
        raise SpecViolationError("reset_token must be a 16-byte bstr")
    return NewTicket(ticket, secret, lifetime, token)


def handshake_packet(kind: int, connection_id: bytes, body: bytes) -> bytes:
    """Section 3.1: ``0 KKK LLLL | connection id | body``."""
    return bytes([(kind << 4) | len(connection_id)]) + connection_id + body


def parse_handshake_packet(datagram: bytes) -> tuple[int, bytes, bytes]:
    """Section 3.1: (kind, connection id, body) of a handshake packet."""
    header = datagram[0]
    if header & PROTECTED:
        raise SpecViolationError("a record where a handshake packet was expected")
    length = header & 0x0F
    return header >> 4, datagram[1 : 1 + length], datagram[1 + length :]


def edhoc_kdf(prk: bytes, label: int, context: bytes, length: int) -> bytes:
    """RFC 9528 §4.1.2: HKDF-Expand(PRK, info = CBOR sequence (label, context, length))."""
    info = cbor2.dumps(label) + cbor2.dumps(context) + cbor2.dumps(length)
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def exporter(prk_out: bytes, label: int, context: bytes, length: int) -> bytes:
    """RFC 9528 §4.2.1 computed from PRK_out.

    lakers-python's ``edhoc_exporter`` takes the label as a u8, so it cannot compute the
    private-use label 32768 that Section 3.3 names; a device with such a library does this.
    """
    prk_exporter = edhoc_kdf(prk_out, 10, b"", 32)
    return edhoc_kdf(prk_exporter, label, context, length)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


@dataclass
class Handshake:
    """The device's EDHOC run (Section 3.3) with lakers as the Initiator, method 3, suite 2."""

    private_key: bytes
    credential: bytes  # the device's CCS, as enrolled
    gateway_credential: bytes  # the gateway's CCS, as enrolled
    initiator: lakers.EdhocInitiator = field(default_factory=lakers.EdhocInitiator)

    def initial(self) -> tuple[bytes, bytes]:
        """INITIAL (no token): the datagram and the message_1 it carries."""
        message_1 = bytes(self.initiator.prepare_message_1(c_i=REFERENCE_C_I, ead_1=None))
        return handshake_packet(KIND_INITIAL, b"", b"\x00" + message_1), message_1

    def finish(self, datagram: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """Process HANDSHAKE(message_2); return (C_R, message_2, message_3 datagram, master)."""
        kind, header_cid, message_2 = parse_handshake_packet(datagram)
        if kind != KIND_HANDSHAKE:
            raise SpecViolationError(f"expected HANDSHAKE, got kind {kind}")
        c_r, id_cred_r, _ead_2 = self.initiator.parse_message_2(message_2)
        gateway = lakers.credential_check_or_fetch(
            id_cred_r, lakers.Credential(self.gateway_credential)
        )
        self.initiator.verify_message_2(
            self.private_key, lakers.Credential(self.credential), gateway
        )
        message_3, prk_out = self.initiator.prepare_message_3(
            lakers.CredentialTransfer.ByReference, None
        )
        self.initiator.completed_without_message_4()
        connection_id = bytes(c_r)  # Section 3.3: taken from EDHOC, not from the header
        if connection_id != header_cid:
            raise SpecViolationError("header connection id differs from C_R")
        master = exporter(bytes(prk_out), EXPORTER_LABEL, b"", 32)
        # The by-hand exporter agrees with lakers' own wherever lakers can compute one.
        if exporter(bytes(prk_out), 0, b"", 16) != bytes(self.initiator.edhoc_exporter(0, b"", 16)):
            raise SpecViolationError("exporter formula of Section 3.3 disagrees with lakers")
        packet = handshake_packet(KIND_HANDSHAKE, connection_id, bytes(message_3))
        return connection_id, message_2, packet, master


@dataclass(frozen=True)
class Resume:
    """Section 3.8: a RESUME the device sent, and what it needs to check the answer."""

    packet: bytes
    device_nonce: bytes
    secret: bytes

    @classmethod
    def build(cls, ticket: NewTicket, device_nonce: bytes) -> Resume:
        unbound = bytes([KIND_RESUME << 4]) + ticket.ticket + device_nonce
        binder = _hmac(ticket.resumption_secret, b"resume" + unbound)[:8]
        return cls(unbound + binder, device_nonce, ticket.resumption_secret)

    def accept(self, datagram: bytes) -> tuple[bytes, bytes]:
        """Check RESUMED's confirmation; return (new connection id, new master secret)."""
        kind, connection_id, body = parse_handshake_packet(datagram)
        if kind != KIND_RESUMED or len(body) != 16:
            raise SpecViolationError(f"expected RESUMED, got kind {kind} with {len(body)} bytes")
        gateway_nonce, confirm = body[:8], body[8:]
        expected = _hmac(self.secret, b"resumed" + self.packet + connection_id + gateway_nonce)
        if not hmac.compare_digest(expected[:8], confirm):
            raise SpecViolationError("RESUMED confirmation does not verify")
        master = HKDF(
            hashes.SHA256(),
            32,
            salt=self.device_nonce + gateway_nonce,
            info=b"impp-session resumed master",
        ).derive(self.secret)
        return connection_id, master

    def rejected_proof(self) -> bytes:
        """Section 3.8: the proof a REJECT(2) carries for this RESUME."""
        return _hmac(self.secret, b"rejected" + self.packet)[:16]


def parse_reject(datagram: bytes) -> tuple[int, bytes]:
    """Section 3.9: REJECT = 0x60 || reason || 16-byte token; (reason, token)."""
    kind, connection_id, body = parse_handshake_packet(datagram)
    if kind != KIND_REJECT or connection_id or len(body) != 17:
        raise SpecViolationError(f"not a REJECT: {datagram.hex()}")
    return body[0], body[1:]
