"""Device signing keys at rest: sealed under one key-encryption key (KEK) that the CA holds.

Theory of operation. A gateway holds one signing key per device identity, thousands of them in
time, so each key file must be useless to whoever copies it (a backup, a copy of the store, a
directory handed to the wrong service) and cheap to open (no password hashing per key). The CA
directory holds one random 256-bit KEK in ``device-kek.pem`` (mode 0600). Each device key is sealed
as its PKCS #8 DER under AES-256-GCM with a fresh 96-bit nonce (NIST SP 800-38D §8.2.2: random
nonces stay safe far beyond 2^32 sealings) and the device's bare JID as associated data, so a
sealed key opens only as the identity it was sealed for: swapping two devices' key files fails.

When the CA key is protected by a passphrase, the KEK file is sealed with the same passphrase:
scrypt (RFC 7914; N = 2^15, r = 8, p = 1: about 32 MiB and 0.3 s here, paid once per process)
derives an AES-256-GCM key that seals the KEK. Without a passphrase the KEK file holds the KEK
itself and only its file mode protects it, exactly as the unencrypted CA key beside it. Either way
the device keys are no weaker than the CA key, whose holder can certify a new key for any identity
anyway.

File formats (PEM armour, RFC 7468 style, base64 of the bytes below):

* ``IMPP-GATEWAY DEVICE KEK``: ``01 00 || KEK`` (plain) or
  ``01 01 || salt(16) || log2 N(1) || r(1) || p(1) || nonce(12) || AES-GCM(KEK)`` (passphrase),
  associated data ``b"impp-gateway device-kek v1"``;
* ``IMPP-GATEWAY SEALED DEVICE KEY``: ``01 || nonce(12) || AES-GCM(PKCS #8 DER)``, associated data
  ``b"impp-gateway device key v1\\x00" || bare JID``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from gateway.impp.address import ImppAddress
from gateway.signing.errors import SigningError
from gateway.signing.keyfiles import read_protected_file, write_protected_file

__all__ = [
    "DEVICE_KEK_FILE",
    "SEALED_KEY_LABEL",
    "KeyEncryptionKey",
    "KeyWrapError",
    "is_sealed_key",
]

DEVICE_KEK_FILE = "device-kek.pem"
KEK_LABEL = "IMPP-GATEWAY DEVICE KEK"
SEALED_KEY_LABEL = "IMPP-GATEWAY SEALED DEVICE KEY"
KEK_LENGTH = 32  # AES-256
NONCE_LENGTH = 12  # the GCM nonce size SP 800-38D recommends
SALT_LENGTH = 16
SCRYPT_LOG2_N = 15  # 2^15 * r=8 * 128 bytes = 32 MiB per derivation, about 0.3 s here
SCRYPT_R = 8
SCRYPT_P = 1
MAX_SCRYPT_LOG2_N = 20  # a KEK file asking for more work than this (1 GiB) is refused
_FORMAT_VERSION = 1
_PLAIN, _PASSPHRASE = 0, 1
_KEK_AAD = b"impp-gateway device-kek v1"
_KEY_AAD = b"impp-gateway device key v1\x00"


class KeyWrapError(SigningError):
    """A KEK or sealed key file cannot be read, or does not open (local, not a peer's fault).

    ``passphrase`` is True when the passphrase is what is wrong (missing, unneeded or wrong).
    """

    def __init__(self, message: str, *, passphrase: bool = False) -> None:
        super().__init__(message, remote=False)
        self.passphrase = passphrase


def _armour(label: str, body: bytes) -> bytes:
    lines = base64.encodebytes(body).decode("ascii")
    return f"-----BEGIN {label}-----\n{lines}-----END {label}-----\n".encode("ascii")


def _unarmour(data: bytes, label: str, what: str) -> bytes:
    match = re.fullmatch(
        rf"\s*-----BEGIN {label}-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END {label}-----\s*",
        data.decode("ascii", errors="replace"),
    )
    if match is None:
        raise KeyWrapError(f"{what} is not a {label} file")
    try:
        return base64.b64decode(re.sub(r"\s", "", match.group(1)), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyWrapError(f"{what} is not valid base64") from exc


def is_sealed_key(data: bytes) -> bool:
    """True when ``data`` is a sealed device key file (rather than a PKCS #8 PEM key)."""
    return f"-----BEGIN {SEALED_KEY_LABEL}-----".encode("ascii") in data[:100]


def _passphrase_key(passphrase: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=KEK_LENGTH, n=1 << log2_n, r=r, p=p).derive(passphrase)


def _identity_aad(address: ImppAddress) -> bytes:
    return _KEY_AAD + address.bare.jid.encode("utf-8")


@dataclass(frozen=True)
class KeyEncryptionKey:
    """The CA's key-encryption key for device signing keys (AES-256-GCM)."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEK_LENGTH:
            raise KeyWrapError(f"a key-encryption key is {KEK_LENGTH} bytes")

    @classmethod
    def generate(cls) -> KeyEncryptionKey:
        """A fresh random KEK."""
        return cls(secrets.token_bytes(KEK_LENGTH))

    # -- device keys ------------------------------------------------------------------------

    def seal_private_key(self, key: ec.EllipticCurvePrivateKey, address: ImppAddress) -> bytes:
        """The contents of a sealed key file for ``address``'s signing ``key``."""
        plain = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        nonce = secrets.token_bytes(NONCE_LENGTH)
        sealed = AESGCM(self.secret).encrypt(nonce, plain, _identity_aad(address))
        return _armour(SEALED_KEY_LABEL, bytes([_FORMAT_VERSION]) + nonce + sealed)

    def open_private_key(
        self, data: bytes, address: ImppAddress, *, what: str = "the key file"
    ) -> ec.EllipticCurvePrivateKey:
        """The signing key sealed in ``data`` for ``address``; raises :class:`KeyWrapError`."""
        body = _unarmour(data, SEALED_KEY_LABEL, what)
        if len(body) < 1 + NONCE_LENGTH + 16 or body[0] != _FORMAT_VERSION:
            raise KeyWrapError(f"{what} has an unknown sealed-key format")
        nonce, sealed = body[1 : 1 + NONCE_LENGTH], body[1 + NONCE_LENGTH :]
        try:
            plain = AESGCM(self.secret).decrypt(nonce, sealed, _identity_aad(address))
        except InvalidTag as exc:
            raise KeyWrapError(
                f"{what} does not open: it was sealed under another CA's key-encryption key, "
                f"or for another identity than {address.bare.jid}, or it was altered"
            ) from exc
        try:
            key = serialization.load_der_private_key(plain, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyWrapError(f"{what} holds no usable private key") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyWrapError(f"{what} holds no P-256 key")
        return key

    # -- the KEK file ----------------------------------------------------------------------

    def to_file_bytes(self, passphrase: bytes | None) -> bytes:
        """The KEK file contents: sealed with ``passphrase`` (scrypt) when one is given."""
        if not passphrase:
            return _armour(KEK_LABEL, bytes([_FORMAT_VERSION, _PLAIN]) + self.secret)
        salt = secrets.token_bytes(SALT_LENGTH)
        wrapping = _passphrase_key(passphrase, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
        nonce = secrets.token_bytes(NONCE_LENGTH)
        sealed = AESGCM(wrapping).encrypt(nonce, self.secret, _KEK_AAD)
        header = bytes([_FORMAT_VERSION, _PASSPHRASE]) + salt
        header += bytes([SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P])
        return _armour(KEK_LABEL, header + nonce + sealed)

    @classmethod
    def from_file_bytes(
        cls, data: bytes, passphrase: bytes | None, *, what: str = DEVICE_KEK_FILE
    ) -> KeyEncryptionKey:
        """Read a KEK file; a wrong, missing or unneeded passphrase is a :class:`KeyWrapError`."""
        body = _unarmour(data, KEK_LABEL, what)
        if len(body) < 2 or body[0] != _FORMAT_VERSION:
            raise KeyWrapError(f"{what} has an unknown format")
        if body[1] == _PLAIN and len(body) == 2 + KEK_LENGTH:
            if passphrase:
                raise KeyWrapError(
                    f"{what} is not protected by a passphrase, but one was given", passphrase=True
                )
            return cls(body[2:])
        header = 2 + SALT_LENGTH + 3
        if body[1] != _PASSPHRASE or len(body) != header + NONCE_LENGTH + KEK_LENGTH + 16:
            raise KeyWrapError(f"{what} has an unknown format")
        if not passphrase:
            raise KeyWrapError(
                f"{what} is protected by a passphrase, and none was given", passphrase=True
            )
        salt = body[2 : 2 + SALT_LENGTH]
        log2_n, r, p = body[2 + SALT_LENGTH : header]
        if not 1 <= log2_n <= MAX_SCRYPT_LOG2_N or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise KeyWrapError(f"{what} asks for scrypt parameters outside the allowed range")
        wrapping = _passphrase_key(passphrase, salt, log2_n, r, p)
        nonce, sealed = body[header : header + NONCE_LENGTH], body[header + NONCE_LENGTH :]
        try:
            return cls(AESGCM(wrapping).decrypt(nonce, sealed, _KEK_AAD))
        except InvalidTag as exc:
            raise KeyWrapError(
                f"the passphrase does not open {what} (wrong passphrase)", passphrase=True
            ) from exc

    def save(self, directory: str | os.PathLike[str], *, passphrase: bytes | None) -> Path:
        """Write the KEK file into the CA ``directory`` (mode 0600); return its path."""
        path = Path(directory) / DEVICE_KEK_FILE
        write_protected_file(path, self.to_file_bytes(passphrase))
        return path

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], *, passphrase: bytes | None
    ) -> KeyEncryptionKey:
        """Read the KEK file of the CA ``directory`` (refused unless mode 0600)."""
        path = Path(directory) / DEVICE_KEK_FILE
        return cls.from_file_bytes(read_protected_file(path), passphrase, what=str(path))
