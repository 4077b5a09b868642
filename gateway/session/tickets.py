"""Resumption tickets: sealed by a rotating gateway key, one round trip, at most 40 device bytes.

Theory of operation (in the spirit of TLS 1.3 PSK resumption, RFC 8446 §2.2, made compact).

* Issue. After a handshake (or a resumption) the gateway sends the device, inside the protected
  channel, a ticket and its resumption secret. The ticket is
  ``key_id (1) || serial (3) || AES-CCM-16-64-128(ticket key, expiry (4) || suite (1) || identity)``
  with the serial as nonce, so it is opaque to everyone but the gateway and needs no per-session
  state there. The resumption secret is HMAC-SHA-256(ticket key, "psk" || ticket)[:16]: the gateway
  recomputes it from the ticket alone.
* Resume (device -> gateway, kind RESUME): ``header || ticket || device nonce (8) || binder (8)``,
  binder = HMAC(secret, "resume" || everything before it)[:8]. With a 6-byte identity that is
  40 bytes.
* Answer (kind RESUMED, cid = the new gateway connection id): ``gateway nonce (8) || confirm (8)``,
  confirm = HMAC(secret, "resumed" || request || cid || gateway nonce)[:8]. Both sides then derive
  the session master secret from the secret and both nonces (HKDF, RFC 5869): one round trip.
* Replay. A ticket serial is accepted once (the ring remembers used serials until they expire);
  an identical copy of an accepted request gets the cached answer and creates nothing; another
  request with a used ticket is rejected. The memory is bounded per identity: an identity keeps at
  most ``max_used_per_identity`` spent serials, and when one is forgotten its expiry becomes that
  identity's floor, below which (inclusive) its tickets are refused. A device always resumes with
  its newest ticket, which expires after every ticket it spent, so only the identity that spends
  tickets fast pays for it: nobody can fill the memory of another identity (nor force it to
  resume: a REJECT cannot be forged, resets.py), and a bystander's ticket is still accepted.
* Rotation. Keys rotate every ``rotation_interval``; the previous ``retain`` keys still open
  tickets. The ring (keys and used serials) is what a gateway persists to resume across restarts.
* Persistence. :meth:`TicketKeyRing.to_bytes` gives a CBOR snapshot (keep it in a 0600 file,
  e.g. with ``gateway.signing.keyfiles.write_protected_file``); :meth:`TicketKeyRing.from_bytes`
  restores it and immediately rotates to a fresh key. That rotation is what makes a stale snapshot
  safe: tickets issued after the snapshot was taken used serials the snapshot does not know, and
  reusing one under the same key would reuse an AES-CCM nonce; a fresh key can never collide.
  Tickets sealed under the restored keys still open. A ticket spent after the last snapshot is
  not known to be spent, so the caller saves the ring after each resumption it accepts (and after
  each rotation). The snapshot also holds the gateway's reset key (resets.py), so REJECTs after a
  restart still carry the tokens devices hold.
* Why cbor2 and not gateway/cbor.py for the snapshot. Tickets themselves are not CBOR (fixed
  fields under AES-CCM). The snapshot is a file this gateway writes and reads back itself, never
  bytes from the network: it is read whole, bounded by :data:`MAX_RING_SNAPSHOT`, and every field
  is type- and range-checked after decoding. It holds floats (rotation interval and times), which
  the strict protocol core deliberately refuses, and cbor2's C decoder reads a full used-serial
  memory (about 20 MB) quickly. Leniency toward non-canonical encodings does no harm here, which
  is where the project keeps cbor2 (docs/architecture.md).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from gateway.session.errors import DropReason, LocalSessionError, PacketError, RemoteSessionError
from gateway.session.packets import HandshakeKind, HandshakePacket
from gateway.session.resets import RESET_KEY_LENGTH

TICKET_KEY_LENGTH = 16
RESUMPTION_SECRET_LENGTH = 16
NONCE_LENGTH = 8
BINDER_LENGTH = 8
MAX_IDENTITY_LENGTH = 6  # keeps the RESUME packet within 40 bytes
MIN_TICKET_LENGTH = 1 + 3 + 5 + 8
MAX_TICKET_LENGTH = MIN_TICKET_LENGTH + MAX_IDENTITY_LENGTH
MAX_RESUME_PACKET = 40
DEFAULT_TICKET_LIFETIME = 7 * 24 * 3600  # seconds a ticket stays valid (a week of sleep)
DEFAULT_ROTATION_INTERVAL = 7 * 24 * 3600  # seconds between ticket key rotations
DEFAULT_RETAIN_KEYS = 2  # old keys kept so tickets issued before a rotation still open
DEFAULT_MAX_USED_TICKETS = 1_000_000  # remembered used serials (anti-replay memory bound)
DEFAULT_MAX_USED_PER_IDENTITY = 4  # spent serials remembered per identity before its floor rises
RING_FORMAT_VERSION = 2  # of the persisted snapshot (2 added the reset key and identities)
MAX_RING_SNAPSHOT = 64 * 1024 * 1024  # bytes; a full used-serial memory is about 20 MB


class TicketRingFileError(LocalSessionError):
    """A persisted ticket ring snapshot is corrupt or of an unknown version (an operator matter)."""


class TicketRejectedError(RemoteSessionError):
    """A resumption request that must not resume anything."""

    reason = DropReason.TICKET_REJECTED


def _hmac(key: bytes, *parts: bytes) -> bytes:
    return hmac.digest(key, b"".join(parts), "sha256")


def _ticket_nonce(key_id: int, serial: int) -> bytes:
    return bytes([key_id]) + serial.to_bytes(3, "big") + bytes(9)


@dataclass
class TicketKeyRing:
    """The gateway's rotating ticket keys and the serials already used (persist this)."""

    rotation_interval: float = DEFAULT_ROTATION_INTERVAL
    retain: int = DEFAULT_RETAIN_KEYS
    max_used: int = DEFAULT_MAX_USED_TICKETS
    keys: dict[int, bytes] = field(default_factory=dict, repr=False)  # secrets: not in logs
    current: int = -1
    rotated_at: float = 0.0
    next_serial: int = 0
    used: dict[tuple[int, int], float] = field(  # (key, serial) -> expiry
        default_factory=dict, repr=False
    )
    max_used_per_identity: int = DEFAULT_MAX_USED_PER_IDENTITY
    reset_key: bytes = field(  # resets.py; a secret: not in logs
        default_factory=lambda: secrets.token_bytes(RESET_KEY_LENGTH), repr=False
    )
    spent_by: dict[bytes, list[tuple[int, int]]] = field(  # identity -> its spent (key, serial)
        default_factory=dict, repr=False
    )
    floors: dict[bytes, float] = field(  # identity -> expiry at or below which tickets are refused
        default_factory=dict, repr=False
    )

    def rotate(self, now: float, key: bytes | None = None) -> None:
        """Start a new current key (fresh random unless given); forget keys beyond ``retain``."""
        self.current = (self.current + 1) % 256
        self.keys[self.current] = key if key is not None else secrets.token_bytes(TICKET_KEY_LENGTH)
        self.rotated_at = now
        self.next_serial = 0
        oldest_kept = [(self.current - i) % 256 for i in range(self.retain + 1)]
        for key_id in list(self.keys):
            if key_id not in oldest_kept:
                del self.keys[key_id]

    def _maybe_rotate(self, now: float) -> None:
        if (
            self.current < 0
            or now >= self.rotated_at + self.rotation_interval
            or self.next_serial >= 1 << 24
        ):
            self.rotate(now)

    def issue(
        self, identity: bytes, suite: int, now: float, lifetime: int = DEFAULT_TICKET_LIFETIME
    ) -> tuple[bytes, bytes]:
        """Seal a ticket for ``identity``; returns ``(ticket, resumption secret)``."""
        if len(identity) > MAX_IDENTITY_LENGTH or not 0 <= suite < 256:
            raise LocalSessionError("ticket identity longer than 6 bytes or suite out of range")
        self._maybe_rotate(now)
        key_id, serial = self.current, self.next_serial
        self.next_serial += 1
        head = bytes([key_id]) + serial.to_bytes(3, "big")
        body = int(now + lifetime).to_bytes(4, "big") + bytes([suite]) + identity
        sealed = AESCCM(self.keys[key_id], tag_length=8).encrypt(
            _ticket_nonce(key_id, serial), body, head
        )
        ticket = head + sealed
        return ticket, _hmac(self.keys[key_id], b"psk", ticket)[:RESUMPTION_SECRET_LENGTH]

    def open_untrusted(self, ticket: bytes, now: float) -> OpenedTicket:
        """Authenticate and decrypt a ticket; raises :class:`TicketRejectedError`."""
        if not MIN_TICKET_LENGTH <= len(ticket) <= MAX_TICKET_LENGTH:
            raise TicketRejectedError("ticket length out of range")
        key_id, serial = ticket[0], int.from_bytes(ticket[1:4], "big")
        key = self.keys.get(key_id)
        if key is None:
            raise TicketRejectedError("ticket key retired or unknown")
        try:
            body = AESCCM(key, tag_length=8).decrypt(
                _ticket_nonce(key_id, serial), ticket[4:], ticket[:4]
            )
        except (InvalidTag, ValueError) as exc:
            raise TicketRejectedError("ticket does not authenticate") from exc
        expiry = int.from_bytes(body[:4], "big")
        if now >= expiry:
            raise TicketRejectedError("ticket expired")
        return OpenedTicket(
            key_id=key_id,
            serial=serial,
            expiry=expiry,
            suite=body[4],
            identity=body[5:],
            resumption_secret=_hmac(key, b"psk", ticket)[:RESUMPTION_SECRET_LENGTH],
        )

    def to_bytes(self) -> bytes:
        """A snapshot of the ring (keys, rotation state, spent serials) for a 0600 file."""
        return bytes(
            cbor2.dumps(
                [
                    RING_FORMAT_VERSION,
                    self.rotation_interval,
                    self.retain,
                    self.max_used,
                    {key_id: key for key_id, key in sorted(self.keys.items())},
                    self.current,
                    self.rotated_at,
                    self.next_serial,
                    [[k, s, expiry] for (k, s), expiry in sorted(self.used.items())],
                    self.reset_key,
                    {ident: list(map(list, spent)) for ident, spent in self.spent_by.items()},
                    dict(self.floors),
                ]
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes, now: float) -> TicketKeyRing:
        """Restore a snapshot from :meth:`to_bytes`, drop expired spent serials, rotate the key.

        Raises :class:`TicketRingFileError` on a corrupt or unknown snapshot.
        """
        if len(data) > MAX_RING_SNAPSHOT:
            raise TicketRingFileError(f"ticket ring snapshot larger than {MAX_RING_SNAPSHOT} bytes")
        try:
            decoded: Any = cbor2.loads(data)
            version = decoded[0]
        except (cbor2.CBORDecodeError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise TicketRingFileError(f"ticket ring snapshot is corrupt: {exc}") from exc
        if version not in (1, RING_FORMAT_VERSION):
            raise TicketRingFileError(f"ticket ring snapshot version {version!r} is unknown")
        try:
            ring = cls._from_fields(decoded[1:9], now)
            if version >= 2:
                ring._restore_identities(decoded[9:], now)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise TicketRingFileError(f"ticket ring snapshot is corrupt: {exc}") from exc
        if ring.current >= 0 and ring.current not in ring.keys:
            raise TicketRingFileError("ticket ring snapshot names a current key it does not hold")
        ring.rotate(now)
        return ring

    @classmethod
    def _from_fields(cls, fields: Any, now: float) -> TicketKeyRing:
        (interval, retain, max_used, keys, current, rotated_at, serial, used) = fields
        ring = cls(
            rotation_interval=_number(interval),
            retain=_small_int(retain, 0, 255),
            max_used=_small_int(max_used, 1, 1 << 40),
            keys={_small_int(k, 0, 255): _key(v) for k, v in dict(keys).items()},
            current=_small_int(current, -1, 255),
            rotated_at=_number(rotated_at),
            next_serial=_small_int(serial, 0, 1 << 24),
        )
        for key_id, serial_number, expiry in used:
            if _number(expiry) > now:
                spent = (_small_int(key_id, 0, 255), _small_int(serial_number, 0, 1 << 24))
                ring.used[spent] = _number(expiry)
        return ring

    def _restore_identities(self, fields: Any, now: float) -> None:
        reset_key, spent_by, floors = fields
        if not isinstance(reset_key, bytes) or len(reset_key) != RESET_KEY_LENGTH:
            raise ValueError("the reset key is a 32-byte string")
        self.reset_key = reset_key
        for identity, spent in dict(spent_by).items():
            kept = [
                (_small_int(k, 0, 255), _small_int(s, 0, 1 << 24))
                for k, s in spent
                if (_small_int(k, 0, 255), _small_int(s, 0, 1 << 24)) in self.used
            ]
            if kept:
                self.spent_by[_identity(identity)] = kept
        for identity, floor in dict(floors).items():
            if _number(floor) > now:
                self.floors[_identity(identity)] = _number(floor)

    def mark_used(self, opened: OpenedTicket, now: float) -> None:
        """Remember a serial as spent until it would expire anyway; raises if already spent."""
        ident = (opened.key_id, opened.serial)
        if ident in self.used or opened.expiry <= self.floors.get(opened.identity, -1.0):
            raise TicketRejectedError("ticket already used")
        if len(self.used) >= self.max_used:
            self._forget_expired(now)
            if len(self.used) >= self.max_used:
                raise TicketRejectedError("used-ticket memory full")
        self.used[ident] = opened.expiry
        spent = self.spent_by.setdefault(opened.identity, [])
        spent.append(ident)
        while len(spent) > self.max_used_per_identity:
            oldest = spent.pop(0)
            expiry = self.used.pop(oldest, None)
            if expiry is not None:
                self.floors[opened.identity] = max(self.floors.get(opened.identity, 0.0), expiry)

    def _forget_expired(self, now: float) -> None:
        for stale in [k for k, expiry in self.used.items() if expiry <= now]:
            del self.used[stale]
        for identity in list(self.spent_by):
            kept = [k for k in self.spent_by[identity] if k in self.used]
            if kept:
                self.spent_by[identity] = kept
            else:
                del self.spent_by[identity]
        for identity in [i for i, floor in self.floors.items() if floor <= now]:
            del self.floors[identity]


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, found {type(value).__name__}")
    return float(value)


def _small_int(value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"expected an integer in [{low}, {high}], found {value!r}")
    return value


def _identity(value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) > MAX_IDENTITY_LENGTH:
        raise ValueError("identities are byte strings of at most 6 bytes")
    return value


def _key(value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != TICKET_KEY_LENGTH:
        raise ValueError("ticket keys are 16-byte strings")
    return value


@dataclass(frozen=True)
class OpenedTicket:
    """What a valid ticket says."""

    key_id: int
    serial: int
    expiry: int
    suite: int
    identity: bytes
    resumption_secret: bytes = field(repr=False)


@dataclass(frozen=True)
class ResumeRequest:
    """A parsed RESUME packet."""

    ticket: bytes
    device_nonce: bytes
    binder: bytes
    packet: bytes

    @classmethod
    def build(cls, ticket: bytes, resumption_secret: bytes, device_nonce: bytes) -> ResumeRequest:
        """The device's request for ``ticket``."""
        head = HandshakePacket(HandshakeKind.RESUME, b"", ticket + device_nonce).encode()
        binder = _hmac(resumption_secret, b"resume", head)[:BINDER_LENGTH]
        return cls(ticket, device_nonce, binder, head + binder)

    @classmethod
    def parse_untrusted(cls, packet: HandshakePacket, raw: bytes) -> ResumeRequest:
        """Split a RESUME packet; raises :class:`PacketError`."""
        body = packet.body
        if len(raw) > MAX_RESUME_PACKET or packet.connection_id:
            raise PacketError("RESUME packet too long or with a connection id")
        ticket_length = len(body) - NONCE_LENGTH - BINDER_LENGTH
        if not MIN_TICKET_LENGTH <= ticket_length <= MAX_TICKET_LENGTH:
            raise PacketError("RESUME ticket length out of range")
        return cls(
            ticket=body[:ticket_length],
            device_nonce=body[ticket_length : ticket_length + NONCE_LENGTH],
            binder=body[ticket_length + NONCE_LENGTH :],
            packet=raw,
        )

    def verify(self, resumption_secret: bytes) -> None:
        """Check the binder in constant time; raises :class:`TicketRejectedError`."""
        expected = _hmac(resumption_secret, b"resume", self.packet[:-BINDER_LENGTH])[:BINDER_LENGTH]
        if not hmac.compare_digest(expected, self.binder):
            raise TicketRejectedError("binder does not verify")


def resumed_answer(
    request: ResumeRequest, resumption_secret: bytes, connection_id: bytes, gateway_nonce: bytes
) -> bytes:
    """The RESUMED packet answering ``request``."""
    confirm = _hmac(resumption_secret, b"resumed", request.packet, connection_id, gateway_nonce)
    body = gateway_nonce + confirm[:BINDER_LENGTH]
    return HandshakePacket(HandshakeKind.RESUMED, connection_id, body).encode()


def check_resumed_untrusted(
    packet: HandshakePacket, request: ResumeRequest, resumption_secret: bytes
) -> bytes:
    """Verify a RESUMED answer on the device; returns the gateway nonce or raises."""
    if len(packet.body) != NONCE_LENGTH + BINDER_LENGTH or not packet.connection_id:
        raise PacketError("RESUMED body has the wrong size")
    gateway_nonce = packet.body[:NONCE_LENGTH]
    expected = _hmac(
        resumption_secret, b"resumed", request.packet, packet.connection_id, gateway_nonce
    )[:BINDER_LENGTH]
    if not hmac.compare_digest(expected, packet.body[NONCE_LENGTH:]):
        raise TicketRejectedError("RESUMED confirmation does not verify")
    return gateway_nonce


def rejected_proof(request: ResumeRequest, resumption_secret: bytes) -> bytes:
    """The 16 bytes after the reason of a REJECT(2): only a holder of the secret can make them."""
    return _hmac(resumption_secret, b"rejected", request.packet)[:16]


def resumed_master_secret(
    resumption_secret: bytes, device_nonce: bytes, gateway_nonce: bytes
) -> bytes:
    """The master secret of a resumed session: HKDF-SHA-256 (RFC 5869), 32 bytes, so one block
    of HKDF-Expand, computed with the standard library's one-shot HMAC."""
    prk = hmac.digest(device_nonce + gateway_nonce, resumption_secret, "sha256")
    return hmac.digest(prk, b"impp-session resumed master\x01", "sha256")
