"""Each device's S/MIME signing credential, kept in the store across runs (RFC 3923 on behalf).

The service signs what a device sends with a key and certificate its CA issued for the device's
account (docs/signing.md). Issuing one afresh at every start would give a person's client a new
certificate for the same account each time the gateway restarts, and would cost a P-256 key and
a signature per device per start; so the credential is kept in the store as the named blob
:func:`signing_credential_blob` (the certificate in PEM, then the private key sealed under the
CA's key-encryption key for that address, never in the clear) and reused while it is good.

When the store has none yet, the credential ``impp-gateway enroll`` wrote for the device
(``DATA_DIR/devices/KID.crt`` and its sealed ``KID.key``) is taken, so the certificate the
operator saw at enrollment is the one the device signs with. It is issued again only when it is
missing or unreadable, names another account, expires within :data:`RENEW_BEFORE`, or was not
issued by the CA's current key (after ``impp-gateway ca rotate``); a renewal keeps the device's
signing key when the stored one opens.
"""

from __future__ import annotations

import datetime
import enum
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from gateway.impp import ImppAddress
from gateway.signing import CertificateAuthority, KeyEncryptionKey, KeyWrapError, SigningError
from gateway.signing.ca import DeviceCredential, certificate_addresses, read_credential
from gateway.store import GatewayStore

__all__ = [
    "RENEW_BEFORE",
    "CredentialOutcome",
    "device_signing_credential",
    "signing_credential_blob",
]

# Renew this long before the certificate expires: a week of restarts and clock skew to spare.
RENEW_BEFORE: Final = datetime.timedelta(days=7)
_KEY_MARK: Final = b"-----BEGIN "  # where the sealed key's armour starts, after the certificate


class CredentialOutcome(enum.Enum):
    """What :func:`device_signing_credential` did (for the log and the service's counters)."""

    KEPT = "kept"
    ADOPTED = "adopted"  # the credential enrollment wrote, now kept in the store
    ISSUED = "issued"  # none stored, or unreadable, or for another account: a fresh key
    RENEWED_EXPIRING = "renewed-expiring"
    RENEWED_CA_ROTATED = "renewed-ca-rotated"


def signing_credential_blob(kid: bytes) -> str:
    """The named blob holding the signing credential of the device with ``kid``."""
    return f"signing-cert/{kid.hex()}"


def _encode(credential: DeviceCredential, kek: KeyEncryptionKey) -> bytes:
    certificate = credential.certificate.public_bytes(serialization.Encoding.PEM)
    return certificate + kek.seal_private_key(credential.private_key, credential.address)


def _decode(
    blob: bytes, kek: KeyEncryptionKey, address: ImppAddress, ca: CertificateAuthority
) -> DeviceCredential | None:
    """The stored credential, or None when it does not read, open or match ``address``."""
    split = blob.find(_KEY_MARK, len(_KEY_MARK))
    if split < 0:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(blob[:split])
        key = kek.open_private_key(blob[split:], address, what="the stored signing key")
    except (ValueError, KeyWrapError):
        return None
    if address.bare not in certificate_addresses(certificate):
        return None
    public = certificate.public_key()
    if public != key.public_key():
        return None
    return DeviceCredential(address.bare, key, certificate, (ca.certificate,))


def _read_enrolled(
    paths: tuple[Path, Path], kek: KeyEncryptionKey, address: ImppAddress, ca: CertificateAuthority
) -> DeviceCredential | None:
    key_path, certificate_path = paths
    if not (key_path.exists() and certificate_path.exists()):
        return None
    try:
        credential = read_credential(key_path, certificate_path, kek=kek)
    except (SigningError, OSError, ValueError):
        return None
    if credential.address.bare != address.bare:
        return None
    return DeviceCredential(address.bare, credential.private_key, credential.certificate,
                            (ca.certificate,))  # fmt: skip


def _issued_by_current_key(certificate: x509.Certificate, ca: CertificateAuthority) -> bool:
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


async def device_signing_credential(
    store: GatewayStore,
    ca: CertificateAuthority,
    kek: KeyEncryptionKey,
    kid: bytes,
    address: ImppAddress,
    *,
    now: float,
    enrolled: tuple[Path, Path] | None = None,
) -> tuple[DeviceCredential, CredentialOutcome]:
    """The device's signing credential: the stored one while good, else the one enrollment
    wrote (``enrolled``: its key and certificate files), else a new one; what is not the stored
    one is stored (committed) before it is returned."""
    name = signing_credential_blob(kid)
    blob = await store.get_blob(name)
    stored = _decode(blob, kek, address, ca) if blob is not None else None
    adopted = False
    if stored is None and enrolled is not None:
        stored = _read_enrolled(enrolled, kek, address, ca)
        adopted = stored is not None
    if stored is None:
        credential, outcome = ca.enroll(address, now=now), CredentialOutcome.ISSUED
    elif not _issued_by_current_key(stored.certificate, ca):
        credential, outcome = ca.renew(stored, now=now), CredentialOutcome.RENEWED_CA_ROTATED
    elif stored.needs_renewal(now, margin=RENEW_BEFORE):
        credential, outcome = ca.renew(stored, now=now), CredentialOutcome.RENEWED_EXPIRING
    elif adopted:
        credential, outcome = stored, CredentialOutcome.ADOPTED
    else:
        return stored, CredentialOutcome.KEPT
    await store.put_blob(name, _encode(credential, kek), now=now)
    return credential, outcome
