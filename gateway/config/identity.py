"""The gateway's own EDHOC identity at rest: its static P-256 key and its CCS credential.

The key file is PKCS #8 PEM (unencrypted, mode 0600; ``openssl pkey`` reads it); the credential
file is the CCS exactly as it enters EDHOC's transcript (RFC 9528 §3.5.3.1, RFC 8392 claims with
a COSE_Key in ``cnf`` carrying the kid), built by :meth:`gateway.edhoc.Credential.new_ccs`, the
constructor the demo uses too. Both are written with :func:`gateway.signing.write_protected_file`
(atomic, never wider than 0600) and read with its counterpart, which refuses looser modes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway import edhoc
from gateway.edhoc import Credential, Curve
from gateway.signing.keyfiles import read_protected_file, write_protected_file

__all__ = [
    "GATEWAY_KID",
    "IdentityError",
    "load_gateway_identity",
    "new_gateway_identity",
    "write_gateway_identity",
]

# One byte, so ID_CRED_R travels in EDHOC's compact kid form (RFC 9528 §3.5.3.2); a device
# trusts one gateway, so the kid needs no more room to be unique where it is looked up.
GATEWAY_KID: Final = b"\x0a"


class IdentityError(Exception):
    """The gateway's key or credential file is missing, unsafe or does not hold what it should."""


def new_gateway_identity(*, subject: str, kid: bytes = GATEWAY_KID) -> Credential:
    """A fresh static P-256 key pair and its CCS credential (holding the private key)."""
    scalar = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return Credential.new_ccs(
        curve=Curve.P256, private_key=scalar.to_bytes(32, "big"), kid=kid, subject=subject
    )


def write_gateway_identity(credential: Credential, key_file: Path, credential_file: Path) -> None:
    """Write the private key (PKCS #8 PEM) and the public CCS, each mode 0600."""
    if credential.private_key is None or credential.curve is not Curve.P256:
        raise IdentityError("the gateway's identity needs its P-256 private key")
    key = ec.derive_private_key(int.from_bytes(credential.private_key, "big"), ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_protected_file(key_file, pem)
    write_protected_file(credential_file, credential.encoded)


def load_gateway_identity(key_file: Path, credential_file: Path) -> Credential:
    """The credential with its private key; raises :class:`IdentityError` saying what is wrong.

    Mode checks and size limits are :func:`gateway.signing.read_protected_file`'s (its
    ``KeyFileError`` passes through unchanged, for the caller to report).
    """
    pem = read_protected_file(key_file)
    encoded = read_protected_file(credential_file)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"{key_file} does not hold an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise IdentityError(f"{key_file} does not hold a P-256 key")
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    try:
        credential = Credential.from_ccs(encoded)
    except edhoc.LocalEdhocError as exc:
        raise IdentityError(f"{credential_file} is not a CCS credential: {exc}") from exc
    if credential.kid is None:
        raise IdentityError(f"{credential_file} carries no kid")
    try:
        return credential.with_private_key(scalar)
    except edhoc.LocalEdhocError as exc:
        raise IdentityError(f"{key_file} does not match {credential_file}: {exc}") from exc
