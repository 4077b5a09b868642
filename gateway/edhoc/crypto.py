"""The cryptographic primitives EDHOC needs, behind one object that can count what it does.

X25519, Ed25519 and ChaCha20-Poly1305 come from pynacl (libsodium); P-256 ECDH and ECDSA and
AES-CCM from cryptography (OpenSSL); SHA-256 and HMAC from the standard library (also OpenSSL).
Public keys of P-256 travel as x-coordinates only (RFC 9528 §3.7, Appendix B): ECDH needs only the
x-coordinate of the shared point, which is the same for either y, so the point is rebuilt from its
compressed form, which also validates it (§9.2). X25519 outputs of all zeros are refused (§9.2).

A :class:`CryptoCounter` handed to :class:`Crypto` counts scalar multiplications, signatures made
and checked, and bytes through the AEAD, the hash and HMAC: the device budget benchmark reads it.

One handshake uses each P-256 key several times (the ephemeral scalar in two ECDHs, the peer's
G_X in the check and two ECDHs), and rebuilding an OpenSSL key object costs a scalar
multiplication (private keys) or a square root (a compressed point). So a :class:`Crypto` keeps
the key objects it built, a few at most (:data:`KEY_OBJECTS_KEPT`): one ``Crypto`` serves one
handshake (each EDHOC endpoint makes its own), and what it keeps goes with it. A public key known
by both coordinates is built from them (an on-curve check) rather than decompressed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TypeVar

import nacl.bindings
import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from gateway.edhoc.errors import (
    AuthenticationFailedError,
    InvalidPublicKeyError,
    LocalEdhocError,
)
from gateway.edhoc.suites import Aead, Curve, Signature, SuiteParameters

_P256 = ec.SECP256R1()
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# P-256 key objects one Crypto keeps (a handshake uses two private and three public keys at most);
# when more are asked for (a Crypto shared by several handshakes) the kept ones are dropped.
KEY_OBJECTS_KEPT = 4


_Key = TypeVar("_Key")


@dataclass
class CryptoCounter:
    """What one or more handshakes computed; mutable, reset by making a new one."""

    scalar_multiplications: int = 0  # key generations and ECDH operations
    signatures_made: int = 0
    signatures_checked: int = 0
    aead_bytes: int = 0  # plaintext bytes encrypted or decrypted
    hash_bytes: int = 0  # bytes hashed for transcript hashes
    hmac_bytes: int = 0  # message bytes through HMAC (HKDF-Extract and -Expand)
    hmac_calls: int = 0


def _p256_public_from_x(x: bytes) -> ec.EllipticCurvePublicKey:
    if len(x) != 32:
        raise InvalidPublicKeyError("P-256 x-coordinate must be 32 bytes")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_P256, b"\x02" + x)
    except ValueError as exc:
        raise InvalidPublicKeyError("not a P-256 point") from exc


def _p256_public(public_key: bytes) -> ec.EllipticCurvePublicKey:
    """The point of a compact x (32 bytes) or a full x || y (64 bytes) P-256 public key."""
    if len(public_key) != 64:
        return _p256_public_from_x(public_key)
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_P256, b"\x04" + public_key)
    except ValueError as exc:
        raise InvalidPublicKeyError("not a P-256 point") from exc


def p256_private_key(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key with the 32-byte big-endian ``scalar``."""
    value = int.from_bytes(scalar, "big")
    if len(scalar) != 32 or not 0 < value < _P256_ORDER:
        raise LocalEdhocError("P-256 private key must be a 32-byte scalar in [1, n-1]")
    return ec.derive_private_key(value, _P256)


def p256_public_xy(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """x || y (64 bytes) of the public key of ``private_key``."""
    numbers = private_key.public_key().public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def public_key_of(curve: Curve, private_key: bytes) -> bytes:
    """The public key for ``private_key``: 32 bytes for X25519/Ed25519, x || y for P-256."""
    if curve is Curve.X25519:
        return nacl.bindings.crypto_scalarmult_base(private_key)
    if curve is Curve.ED25519:
        return bytes(nacl.signing.SigningKey(private_key).verify_key)
    return p256_public_xy(p256_private_key(private_key))


class Crypto:
    """EDHOC's primitives; pass a :class:`CryptoCounter` to count what they compute."""

    def __init__(self, counter: CryptoCounter | None = None) -> None:
        self.counter = counter if counter is not None else CryptoCounter()
        self._private_keys: dict[bytes, ec.EllipticCurvePrivateKey] = {}
        self._public_keys: dict[bytes, ec.EllipticCurvePublicKey] = {}

    def _p256_private(self, scalar: bytes) -> ec.EllipticCurvePrivateKey:
        """The key object of ``scalar``, built once per :class:`Crypto` (see the module)."""
        key = self._private_keys.get(scalar)
        if key is None:
            key = p256_private_key(scalar)
            self._keep(self._private_keys, scalar, key)
        return key

    def _p256_public(self, public_key: bytes) -> ec.EllipticCurvePublicKey:
        """The validated point of ``public_key`` (x, or x || y), built once per :class:`Crypto`.

        Anything but 64 bytes counts by its first 32 (the x-coordinate; shorter is refused). A
        64-byte key is its own entry, so an x || y whose y is off the curve is never answered by
        the entry of a valid x alone.
        """
        name = public_key if len(public_key) == 64 else public_key[:32]
        key = self._public_keys.get(name)
        if key is None:
            key = _p256_public(name)
            self._keep(self._public_keys, name, key)
        return key

    @staticmethod
    def _keep(kept: dict[bytes, _Key], name: bytes, key: _Key) -> None:
        if len(kept) >= KEY_OBJECTS_KEPT:
            kept.clear()
        kept[name] = key

    def forget_keys(self) -> None:
        """Drop the key objects kept so far (the handshake that used them is over)."""
        self._private_keys.clear()
        self._public_keys.clear()

    # -- hashing and key derivation (RFC 5869; RFC 9528 §4.1.1, §4.1.2) --

    def hash(self, data: bytes) -> bytes:
        """SHA-256, the EDHOC hash of every supported suite."""
        self.counter.hash_bytes += len(data)
        return hashlib.sha256(data).digest()

    def _hmac(self, key: bytes, data: bytes) -> bytes:
        self.counter.hmac_calls += 1
        self.counter.hmac_bytes += len(data)
        return hmac.digest(key, data, "sha256")

    def hkdf_extract(self, salt: bytes, input_key_material: bytes) -> bytes:
        """HKDF-Extract (RFC 5869 §2.2): EDHOC_Extract for SHA-2 suites."""
        return self._hmac(salt, input_key_material)

    def hkdf_expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        """HKDF-Expand (RFC 5869 §2.3): EDHOC_Expand for SHA-2 suites."""
        if length > 255 * 32:
            raise LocalEdhocError("HKDF-Expand output longer than 255 hash lengths")
        if 0 < length <= 32:  # one block, T(1): nearly every EDHOC_KDF call
            return self._hmac(prk, info + b"\x01")[:length]
        output = b""
        block = b""
        counter = 1
        while len(output) < length:
            block = self._hmac(prk, block + info + bytes([counter]))
            output += block
            counter += 1
        return output[:length]

    # -- key exchange (RFC 9528 §3.7, §9.2) --

    def generate_key_pair(self, curve: Curve) -> tuple[bytes, bytes]:
        """A fresh ephemeral key pair: (private key, compact public key G_X / G_Y)."""
        if curve is Curve.X25519:
            private_key = secrets.token_bytes(32)
        else:
            key = ec.generate_private_key(_P256)
            private_key = key.private_numbers().private_value.to_bytes(32, "big")
            self._keep(self._private_keys, private_key, key)
        return private_key, self.ephemeral_public_key(curve, private_key)

    def ephemeral_public_key(self, curve: Curve, private_key: bytes) -> bytes:
        """The compact public key of ``private_key``: u (X25519) or x (P-256), 32 bytes."""
        self.counter.scalar_multiplications += 1
        if curve is Curve.X25519:
            if len(private_key) != 32:
                raise LocalEdhocError("X25519 private key must be 32 bytes")
            return nacl.bindings.crypto_scalarmult_base(private_key)
        return p256_public_xy(self._p256_private(private_key))[:32]

    def validate_public_key(self, curve: Curve, public_key: bytes) -> None:
        """Raise :class:`InvalidPublicKeyError` unless ``public_key`` is usable on ``curve``."""
        if curve is Curve.P256:
            self._p256_public(public_key)
        elif len(public_key) != 32:
            raise InvalidPublicKeyError(f"{curve.value} public key must be 32 bytes")

    def ecdh(self, curve: Curve, private_key: bytes, public_key: bytes) -> bytes:
        """The ECDH shared secret: X25519 output, or the x-coordinate of the P-256 product."""
        self.counter.scalar_multiplications += 1
        if curve is Curve.X25519:
            if len(public_key) != 32 or len(private_key) != 32:
                raise InvalidPublicKeyError("X25519 keys must be 32 bytes")
            try:
                return nacl.bindings.crypto_scalarmult(private_key, public_key)
            except nacl.exceptions.RuntimeError as exc:
                # libsodium refuses an all-zero result: a low-order point (RFC 9528 §9.2).
                raise InvalidPublicKeyError("X25519 public key of low order") from exc
        if curve is not Curve.P256:
            raise LocalEdhocError(f"no ECDH on {curve.value}")
        return self._p256_private(private_key).exchange(ec.ECDH(), self._p256_public(public_key))

    # -- signatures (RFC 9053 §2) --

    def sign(self, algorithm: Signature, private_key: bytes, message: bytes) -> bytes:
        """A COSE signature: 64 bytes for EdDSA (Ed25519) and ES256 (r || s)."""
        self.counter.signatures_made += 1
        if algorithm is Signature.EDDSA:
            if len(private_key) != 32:
                raise LocalEdhocError("Ed25519 private key must be a 32-byte seed")
            return nacl.signing.SigningKey(private_key).sign(message).signature
        der = self._p256_private(private_key).sign(message, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(
        self, algorithm: Signature, public_key: bytes, message: bytes, signature: bytes
    ) -> None:
        """Raise :class:`AuthenticationFailedError` unless ``signature`` verifies."""
        self.counter.signatures_checked += 1
        if len(signature) != 64:
            raise AuthenticationFailedError("signature has the wrong length")
        if algorithm is Signature.EDDSA:
            try:
                nacl.signing.VerifyKey(public_key).verify(message, signature)
            except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
                raise AuthenticationFailedError("EdDSA signature does not verify") from exc
            return
        if len(public_key) != 64:
            raise AuthenticationFailedError("ES256 needs the full public key (x || y)")
        try:
            key = self._p256_public(public_key)
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, InvalidPublicKeyError, ValueError) as exc:
            raise AuthenticationFailedError("ES256 signature does not verify") from exc

    # -- AEAD (RFC 9053 §4) --

    def encrypt(
        self, suite: SuiteParameters, key: bytes, iv: bytes, aad: bytes, plaintext: bytes
    ) -> bytes:
        """AEAD-encrypt ``plaintext``; the result carries the tag."""
        self.counter.aead_bytes += len(plaintext)
        if suite.aead is Aead.CHACHA20_POLY1305:
            return nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, aad, iv, key)
        return AESCCM(key, tag_length=suite.tag_length).encrypt(iv, plaintext, aad)

    def decrypt(
        self, suite: SuiteParameters, key: bytes, iv: bytes, aad: bytes, ciphertext: bytes
    ) -> bytes:
        """AEAD-decrypt; raise :class:`AuthenticationFailedError` on a bad tag."""
        if len(ciphertext) < suite.tag_length:
            raise AuthenticationFailedError("ciphertext shorter than the tag")
        self.counter.aead_bytes += len(ciphertext) - suite.tag_length
        try:
            if suite.aead is Aead.CHACHA20_POLY1305:
                return nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
                    ciphertext, aad, iv, key
                )
            return AESCCM(key, tag_length=suite.tag_length).decrypt(iv, ciphertext, aad)
        except (InvalidTag, nacl.exceptions.CryptoError) as exc:
            raise AuthenticationFailedError("AEAD tag does not verify") from exc
