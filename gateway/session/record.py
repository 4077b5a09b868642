"""Record protection: AEAD keys per direction, OSCORE-style nonces, partial sequence numbers,
and key update.

Theory of operation.

* Keys. The handshake's exporter (RFC 9528 §4.2.1, private-use label :data:`EXPORTER_LABEL`) yields
  a 32-byte session master secret. HKDF-Expand (RFC 5869) with the labels ``"g2d"``/``"d2g"`` gives
  one traffic secret per direction, and from each a key and an IV (``"key"``, ``"iv"``). Key update
  replaces a direction's traffic secret by HKDF-Expand(secret, ``"update"``) and flips the key phase
  bit of the records (RFC 9000 §6); the receiver derives the next key when it sees the bit flip.
* Nonces (RFC 8613 §5.2). The nonce is ``len(id) || id padded || seq padded to 5 bytes`` XOR the
  direction's IV, where ``id`` is one byte naming the sequence space (0 reliable, 1 unreliable).
  Each direction has its own key, so the two spaces are the only thing that must be separated.
* Sequence numbers. Reliable records are numbered 0, 1, 2, ...; a retransmission resends the
  identical bytes (same number, same plaintext, so the same nonce never covers two plaintexts).
  Acks and probes must not create holes in that numbering, so they go in the unreliable space,
  numbered ``reliable_next * 256 + k`` where ``k`` counts the unreliable records sent since the
  reliable number last advanced (at most 255; then a keep-alive goes reliable instead). On the wire
  only the low 8 (or 16) bits of ``reliable_next`` and ``k`` travel: the receiver reconstructs the
  full number against its own reliable window, which differs from the sender's by less than the
  in-flight bound (RFC 9000 Appendix A.3).
* Limits. A key protects at most :data:`DEFAULT_KEY_UPDATE_AFTER` records before it is updated
  (below the 2^20 confidentiality limit of AES-CCM with 8-byte tags,
  draft-ietf-core-oscore-key-limits);
  failed openings are counted (:attr:`RecordProtection.failed_opens`) but end nothing: a forger who
  knows a connection id could otherwise end the session for 13 bytes a try, while each try has a
  2^-64 chance with 8-byte tags (the arithmetic is in docs/security.md).
  Reliable numbers stop at :data:`MAX_SEQUENCE` (the 5-byte OSCORE partial IV, minus the 8 bits
  the unreliable space needs).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from gateway.session.errors import DropReason, LocalSessionError, RecordRejectedError

EXPORTER_LABEL = 32768  # RFC 9528 §10.1: first private-use exporter label
MASTER_SECRET_LENGTH = 32
MAX_SEQUENCE = 2**32 - 1  # reliable numbers; times 256 still fits OSCORE's 5-byte partial IV
MAX_UNRELIABLE_PER_STEP = 255
DEFAULT_KEY_UPDATE_AFTER = 2**18  # records per key: below AES-CCM-8's 2^20 confidentiality limit
DEFAULT_MAX_FAILED_OPENS = 2**10  # failed openings after which integrity_limit_reached() says so
MIN_TAG_LENGTH = 8  # the shortest AEAD tag of any suite (AES-CCM-16-64-128)
RELIABLE_SPACE = 0
UNRELIABLE_SPACE = 1


class AeadAlgorithm(enum.IntEnum):
    """COSE AEAD algorithms (RFC 9053) used by the EDHOC cipher suites."""

    A128GCM = 1
    A256GCM = 3
    AES_CCM_16_64_128 = 10
    CHACHA20_POLY1305 = 24
    AES_CCM_16_128_128 = 30


@dataclass(frozen=True)
class AeadParameters:
    """Key, nonce and tag lengths of an AEAD algorithm."""

    key_length: int
    nonce_length: int
    tag_length: int


AEAD_PARAMETERS = {
    AeadAlgorithm.A128GCM: AeadParameters(16, 12, 16),
    AeadAlgorithm.A256GCM: AeadParameters(32, 12, 16),
    AeadAlgorithm.AES_CCM_16_64_128: AeadParameters(16, 13, 8),
    AeadAlgorithm.CHACHA20_POLY1305: AeadParameters(32, 12, 16),
    AeadAlgorithm.AES_CCM_16_128_128: AeadParameters(16, 13, 16),
}

# RFC 9528 §10.2: the EDHOC AEAD of each cipher suite, which the records reuse.
SUITE_AEAD = {
    0: AeadAlgorithm.AES_CCM_16_64_128,
    1: AeadAlgorithm.AES_CCM_16_128_128,
    2: AeadAlgorithm.AES_CCM_16_64_128,
    3: AeadAlgorithm.AES_CCM_16_128_128,
    4: AeadAlgorithm.CHACHA20_POLY1305,
    5: AeadAlgorithm.CHACHA20_POLY1305,
    6: AeadAlgorithm.A128GCM,
    24: AeadAlgorithm.A256GCM,
    25: AeadAlgorithm.CHACHA20_POLY1305,
}


def hkdf_expand(secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand with SHA-256 (RFC 5869 §2.3)."""
    return HKDFExpand(hashes.SHA256(), length, b"impp-session " + label).derive(secret)


def oscore_nonce(common_iv: bytes, id_piv: bytes, partial_iv: int) -> bytes:
    """RFC 8613 §5.2: ``len(id) || id left-padded to n-6 || PIV left-padded to 5`` XOR Common IV."""
    length = len(common_iv)
    padded_id = id_piv.rjust(length - 6, b"\x00")
    nonce = bytes([len(id_piv)]) + padded_id + partial_iv.to_bytes(5, "big")
    if len(nonce) != length:
        raise ValueError(f"identifier of {len(id_piv)} bytes does not fit a {length}-byte nonce")
    mixed = int.from_bytes(nonce, "big") ^ int.from_bytes(common_iv, "big")
    return mixed.to_bytes(length, "big")


def make_nonce(iv: bytes, space: int, sequence: int) -> bytes:
    """The record nonce: OSCORE's construction with the sequence space as the one-byte id."""
    return oscore_nonce(iv, bytes([space]), sequence)


def _new_aead(algorithm: AeadAlgorithm, key: bytes) -> AESCCM | AESGCM | ChaCha20Poly1305:
    if algorithm in (AeadAlgorithm.AES_CCM_16_64_128, AeadAlgorithm.AES_CCM_16_128_128):
        return AESCCM(key, tag_length=AEAD_PARAMETERS[algorithm].tag_length)
    if algorithm is AeadAlgorithm.CHACHA20_POLY1305:
        return ChaCha20Poly1305(key)
    return AESGCM(key)


class DirectionKey:
    """The key and IV of one direction in one key phase."""

    def __init__(self, algorithm: AeadAlgorithm, secret: bytes, phase: int) -> None:
        self.algorithm = algorithm
        self.secret = secret
        self.phase = phase
        params = AEAD_PARAMETERS[algorithm]
        self._aead = _new_aead(algorithm, hkdf_expand(secret, b"key", params.key_length))
        self._iv = hkdf_expand(secret, b"iv", params.nonce_length)

    def next(self) -> DirectionKey:
        """The key of the next phase (key update)."""
        return DirectionKey(self.algorithm, hkdf_expand(self.secret, b"update", 32), self.phase + 1)

    def seal(self, space: int, sequence: int, aad: bytes, plaintext: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``; returns ciphertext with the tag appended."""
        return self._aead.encrypt(make_nonce(self._iv, space, sequence), plaintext, aad)

    def open(self, space: int, sequence: int, aad: bytes, ciphertext: bytes) -> bytes:
        """Verify and decrypt; raises :class:`RecordRejectedError` on any failure."""
        try:
            return self._aead.decrypt(make_nonce(self._iv, space, sequence), ciphertext, aad)
        except (InvalidTag, ValueError) as exc:
            raise RecordRejectedError("record authentication failed") from exc


@dataclass(frozen=True)
class SessionSecrets:
    """The traffic secrets of one session, from one side's point of view."""

    algorithm: AeadAlgorithm
    send_secret: bytes = field(repr=False)  # secrets: never in a repr or a log line
    receive_secret: bytes = field(repr=False)

    @classmethod
    def from_master(
        cls, master_secret: bytes, algorithm: AeadAlgorithm, *, is_gateway: bool
    ) -> SessionSecrets:
        """Derive both directions' secrets from the exported master secret."""
        g2d = hkdf_expand(master_secret, b"g2d", 32)
        d2g = hkdf_expand(master_secret, b"d2g", 32)
        if is_gateway:
            return cls(algorithm, g2d, d2g)
        return cls(algorithm, d2g, g2d)


def reconstruct(partial: int, bits: int, expected: int) -> int:
    """The number closest to ``expected`` whose low ``bits`` bits are ``partial`` (RFC 9000 A.3)."""
    window = 1 << bits
    half = window >> 1
    candidate = (expected & ~(window - 1)) | partial
    if candidate <= expected - half and candidate + window <= MAX_SEQUENCE + 1:
        return candidate + window
    if candidate > expected + half and candidate >= window:
        return candidate - window
    return candidate


def partial_length(sequence: int, oldest_unacknowledged: int) -> int:
    """Bytes (1 or 2) of partial sequence number that the receiver can reconstruct unambiguously."""
    distance = sequence - oldest_unacknowledged + 1
    return 1 if distance < 0x80 else 2


class RecordProtection:
    """Seals outgoing and opens incoming records for one session, with key update."""

    def __init__(
        self,
        secrets: SessionSecrets,
        *,
        key_update_after: int = DEFAULT_KEY_UPDATE_AFTER,
        max_failed_opens: int = DEFAULT_MAX_FAILED_OPENS,
    ) -> None:
        self.algorithm = secrets.algorithm
        self.tag_length = AEAD_PARAMETERS[secrets.algorithm].tag_length
        self.key_update_after = key_update_after
        self.max_failed_opens = max_failed_opens
        self._send = DirectionKey(secrets.algorithm, secrets.send_secret, 0)
        self._receive = DirectionKey(secrets.algorithm, secrets.receive_secret, 0)
        self._receive_previous: DirectionKey | None = None
        self._receive_next: DirectionKey | None = None
        self.sealed_with_current_key = 0
        self.failed_opens = 0
        self.send_phase_confirmed = True  # the peer has opened a record of our current phase

    @property
    def send_phase(self) -> int:
        """The current sending key phase (0, 1, 2, ...; its low bit is on the wire)."""
        return self._send.phase

    def update_due(self) -> bool:
        """True when the sending key has protected enough records to be replaced."""
        return self.sealed_with_current_key >= self.key_update_after and self.send_phase_confirmed

    def update_send_key(self) -> None:
        """Move the sending direction to the next key phase (RFC 9000 §6.1)."""
        if not self.send_phase_confirmed:
            raise LocalSessionError("previous key update not yet confirmed by the peer")
        self._send = self._send.next()
        self.sealed_with_current_key = 0
        self.send_phase_confirmed = False

    def seal(self, space: int, sequence: int, aad: bytes, plaintext: bytes) -> bytes:
        """Protect one record with the current sending key."""
        self.sealed_with_current_key += 1
        return self._send.seal(space, sequence, aad, plaintext)

    def open(
        self, phase_bit: int, space: int, sequence: int, aad: bytes, ciphertext: bytes
    ) -> bytes:
        """Open one record; accepts the current, previous or next receive phase."""
        if phase_bit == self._receive.phase & 1:
            candidates = [self._receive]
        else:
            if self._receive_next is None:
                self._receive_next = self._receive.next()
            candidates = [self._receive_next]
            if self._receive_previous is not None:
                candidates.append(self._receive_previous)
        for key in candidates:
            try:
                plaintext = key.open(space, sequence, aad, ciphertext)
            except RecordRejectedError:
                continue
            if key is self._receive_next:
                self._receive_previous = self._receive
                self._receive = key
                self._receive_next = None
            return plaintext
        self.failed_opens += 1
        raise RecordRejectedError(
            "record authentication failed", reason=DropReason.AUTHENTICATION_FAILED
        )

    def integrity_limit_reached(self) -> bool:
        """True after ``max_failed_opens`` forged or corrupt records (a metric: nothing ends)."""
        return self.failed_opens >= self.max_failed_opens
