"""Software P-256 for an emulated device without crypto hardware: the pure-Python ``ecdsa`` package.

A device with no accelerator does its P-256 arithmetic in portable code; this module lets an
emulated device do the same, so its EDHOC handshake runs on the ``ecdsa`` package (pure Python,
no OpenSSL) instead of ``cryptography``. :class:`SoftP256Crypto` is EDHOC's
:class:`~gateway.edhoc.crypto.Crypto` with key generation, point validation, ECDH and ES256 sign
and verify on P-256 replaced; everything else (X25519, EdDSA, the AEADs, SHA-256, HKDF) is the
gateway's own code, because a device's software P-256 says nothing about those. Its curve-blind
:class:`~gateway.edhoc.crypto.CryptoCounter` counts exactly what the parent's would.

:class:`MeteredSoftP256Crypto` is :class:`~device_sim.budget.MeteredCrypto` on top of it, so the
per-algorithm accounting of ``device_sim.budget`` sees the same calls: its methods count and then
call ``super()``, which resolves to :class:`SoftP256Crypto` in the method resolution order.

Wire forms are EDHOC's (RFC 9528 §3.7, RFC 9053 §2.1): ephemeral public keys are 32-byte
x-coordinates (the point is rebuilt from the compressed form ``02 || x``, which checks it is on the
curve), static public keys x || y, ECDH outputs the 32-byte x-coordinate of the product,
signatures are r || s of 32 bytes each. Signatures are deterministic (RFC 6979), which needs no
random source on the device, and verify with any ES256 implementation.

The ``ecdsa`` package is not constant-time; that is acceptable for an emulator measuring cost, not
for a real device's key.
"""

from __future__ import annotations

import hashlib
import secrets

import ecdsa
from ecdsa.ellipticcurve import PointJacobi
from ecdsa.keys import BadSignatureError, MalformedPointError
from ecdsa.util import sigdecode_string, sigencode_string

from device_sim.budget import MeteredCrypto
from gateway.edhoc.crypto import Crypto
from gateway.edhoc.errors import (
    AuthenticationFailedError,
    InvalidPublicKeyError,
    LocalEdhocError,
)
from gateway.edhoc.suites import Curve, Signature

__all__ = ["MeteredSoftP256Crypto", "SoftP256Crypto", "scalar_multiplication"]

_CURVE = ecdsa.NIST256p
_ORDER: int = _CURVE.order


def _signing_key(private_key: bytes) -> ecdsa.SigningKey:
    value = int.from_bytes(private_key, "big")
    if len(private_key) != 32 or not 0 < value < _ORDER:
        raise LocalEdhocError("P-256 private key must be a 32-byte scalar in [1, n-1]")
    return ecdsa.SigningKey.from_secret_exponent(value, curve=_CURVE, hashfunc=hashlib.sha256)


def _verifying_key(encoded: bytes) -> ecdsa.VerifyingKey:
    """A point from ``02 || x`` or ``04 || x || y``; anything off the curve is refused."""
    try:
        return ecdsa.VerifyingKey.from_string(
            encoded,
            curve=_CURVE,
            hashfunc=hashlib.sha256,
            valid_encodings=("compressed", "uncompressed"),
        )
    except (MalformedPointError, ValueError, AssertionError) as exc:
        raise InvalidPublicKeyError("not a P-256 point") from exc


def _public_from_x(x: bytes) -> ecdsa.VerifyingKey:
    if len(x) != 32:
        raise InvalidPublicKeyError("P-256 x-coordinate must be 32 bytes")
    return _verifying_key(b"\x02" + x)


def _xy(key: ecdsa.SigningKey) -> bytes:
    return bytes(key.get_verifying_key().to_string("raw"))


def scalar_multiplication(scalar: bytes, x: bytes) -> bytes:
    """x-coordinate of ``scalar`` times the point with x-coordinate ``x``: one ECDH, in software."""
    point = _public_from_x(x).pubkey.point
    product = int.from_bytes(scalar, "big") * point
    if not isinstance(product, PointJacobi) or product == ecdsa.ellipticcurve.INFINITY:
        raise InvalidPublicKeyError("P-256 product is the point at infinity")
    return int(product.x()).to_bytes(32, "big")


class SoftP256Crypto(Crypto):
    """EDHOC's primitives with P-256 in pure Python (``ecdsa``); the rest as the gateway's."""

    def generate_key_pair(self, curve: Curve) -> tuple[bytes, bytes]:
        """A fresh ephemeral key pair; P-256 scalars drawn uniformly from [1, n-1]."""
        if curve is not Curve.P256:
            return super().generate_key_pair(curve)
        private_key = (1 + secrets.randbelow(_ORDER - 1)).to_bytes(32, "big")
        return private_key, self.ephemeral_public_key(curve, private_key)

    def ephemeral_public_key(self, curve: Curve, private_key: bytes) -> bytes:
        """The x-coordinate of ``private_key`` times the generator (a fixed-base multiplication)."""
        if curve is not Curve.P256:
            return super().ephemeral_public_key(curve, private_key)
        self.counter.scalar_multiplications += 1
        return _xy(_signing_key(private_key))[:32]

    def validate_public_key(self, curve: Curve, public_key: bytes) -> None:
        """Raise :class:`InvalidPublicKeyError` unless ``public_key`` is on P-256 (x or x || y)."""
        if curve is not Curve.P256:
            super().validate_public_key(curve, public_key)
            return
        _public_from_x(public_key[:32])
        if len(public_key) == 64:
            _verifying_key(b"\x04" + public_key)

    def ecdh(self, curve: Curve, private_key: bytes, public_key: bytes) -> bytes:
        """The x-coordinate of the P-256 product of ``private_key`` and the peer's point."""
        if curve is not Curve.P256:
            return super().ecdh(curve, private_key, public_key)
        self.counter.scalar_multiplications += 1
        _signing_key(private_key)  # range check of the scalar
        return scalar_multiplication(private_key, public_key[:32])

    def sign(self, algorithm: Signature, private_key: bytes, message: bytes) -> bytes:
        """ES256 over ``message`` as r || s, deterministic (RFC 6979)."""
        if algorithm is not Signature.ES256:
            return super().sign(algorithm, private_key, message)
        self.counter.signatures_made += 1
        signature = _signing_key(private_key).sign_deterministic(
            message, hashfunc=hashlib.sha256, sigencode=sigencode_string
        )
        return bytes(signature)

    def verify(
        self, algorithm: Signature, public_key: bytes, message: bytes, signature: bytes
    ) -> None:
        """Raise :class:`AuthenticationFailedError` unless the ES256 ``signature`` verifies."""
        if algorithm is not Signature.ES256:
            super().verify(algorithm, public_key, message, signature)
            return
        self.counter.signatures_checked += 1
        if len(signature) != 64:
            raise AuthenticationFailedError("signature has the wrong length")
        if len(public_key) != 64:
            raise AuthenticationFailedError("ES256 needs the full public key (x || y)")
        try:
            key = _verifying_key(b"\x04" + public_key)
        except InvalidPublicKeyError as exc:
            raise AuthenticationFailedError("ES256 public key is not a P-256 point") from exc
        try:
            ok = key.verify(signature, message, hashfunc=hashlib.sha256, sigdecode=sigdecode_string)
        except (BadSignatureError, ValueError, AssertionError) as exc:
            raise AuthenticationFailedError("ES256 signature does not verify") from exc
        if not ok:
            raise AuthenticationFailedError("ES256 signature does not verify")


class MeteredSoftP256Crypto(MeteredCrypto, SoftP256Crypto):
    """:class:`SoftP256Crypto` counted by algorithm, as :class:`MeteredCrypto` counts its parent."""
