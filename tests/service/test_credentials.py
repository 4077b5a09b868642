"""Each device's signing credential is kept in the store and reissued only when it must be."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from gateway.impp import ImppAddress
from gateway.service.credentials import (
    RENEW_BEFORE,
    CredentialOutcome,
    device_signing_credential,
    signing_credential_blob,
)
from gateway.signing import CertificateAuthority, KeyEncryptionKey
from gateway.signing.ca import DeviceCredential, write_credential
from gateway.store import open_sqlite_store

KID = b"\x01\x02"
ALICE = ImppAddress.parse("alice@example.org")


def _public(credential: DeviceCredential) -> bytes:
    key = credential.private_key.public_key()
    return bytes(
        key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    )


async def test_kept_across_runs_renewed_when_expiring_or_the_ca_rotated(tmp_path: Path) -> None:
    now = time.time()
    ca = CertificateAuthority.create(now=now)
    kek = KeyEncryptionKey.generate()
    async with open_sqlite_store(tmp_path / "gateway.db") as store:
        first, outcome = await device_signing_credential(store, ca, kek, KID, ALICE, now=now)
        assert outcome is CredentialOutcome.ISSUED
        blob = await store.get_blob(signing_credential_blob(KID))
        assert blob is not None
        assert b"PRIVATE KEY" not in blob  # the key is sealed under the KEK, never in the clear

        again, outcome = await device_signing_credential(store, ca, kek, KID, ALICE, now=now + 60)
        assert outcome is CredentialOutcome.KEPT
        assert again.certificate.serial_number == first.certificate.serial_number
        assert _public(again) == _public(first)

        soon = first.expires() - RENEW_BEFORE.total_seconds() + 3600
        renewed, outcome = await device_signing_credential(store, ca, kek, KID, ALICE, now=soon)
        assert outcome is CredentialOutcome.RENEWED_EXPIRING
        assert renewed.certificate.serial_number != first.certificate.serial_number
        assert _public(renewed) == _public(first)  # the device keeps its signing key
        assert renewed.expires() > first.expires()

        rotated = ca.rotate(now=now + 120)
        moved, outcome = await device_signing_credential(
            store, rotated, kek, KID, ALICE, now=now + 180
        )
        assert outcome is CredentialOutcome.RENEWED_CA_ROTATED
        moved.certificate.verify_directly_issued_by(rotated.certificate)
        kept, outcome = await device_signing_credential(
            store, rotated, kek, KID, ALICE, now=now + 240
        )
        assert outcome is CredentialOutcome.KEPT
        assert kept.certificate.serial_number == moved.certificate.serial_number


async def test_unreadable_or_foreign_credential_is_issued_afresh(tmp_path: Path) -> None:
    now = time.time()
    ca = CertificateAuthority.create(now=now)
    kek = KeyEncryptionKey.generate()
    async with open_sqlite_store(tmp_path / "gateway.db") as store:
        await store.put_blob(signing_credential_blob(KID), b"not a credential", now=now)
        _, outcome = await device_signing_credential(store, ca, kek, KID, ALICE, now=now)
        assert outcome is CredentialOutcome.ISSUED
        # Another account's credential (the device was enrolled again for bob) is not reused.
        bob = ImppAddress.parse("bob@example.org")
        _, outcome = await device_signing_credential(store, ca, kek, KID, bob, now=now)
        assert outcome is CredentialOutcome.ISSUED
        # Sealed under another KEK (the CA directory was replaced): issued afresh.
        _, outcome = await device_signing_credential(
            store, ca, KeyEncryptionKey.generate(), KID, bob, now=now
        )
        assert outcome is CredentialOutcome.ISSUED


async def test_the_credential_enrollment_wrote_is_adopted(tmp_path: Path) -> None:
    now = time.time()
    ca = CertificateAuthority.create(now=now)
    kek = KeyEncryptionKey.generate()
    enrolled = ca.enroll(ALICE, now=now)
    key_path, certificate_path = tmp_path / "0102.key", tmp_path / "0102.crt"
    write_credential(enrolled, key_path, certificate_path, kek=kek)
    async with open_sqlite_store(tmp_path / "gateway.db") as store:
        adopted, outcome = await device_signing_credential(
            store, ca, kek, KID, ALICE, now=now, enrolled=(key_path, certificate_path)
        )
        assert outcome is CredentialOutcome.ADOPTED
        assert adopted.certificate.serial_number == enrolled.certificate.serial_number
        key_path.unlink()  # from now on the store holds it
        kept, outcome = await device_signing_credential(
            store, ca, kek, KID, ALICE, now=now, enrolled=(key_path, certificate_path)
        )
        assert outcome is CredentialOutcome.KEPT
        assert kept.certificate.serial_number == enrolled.certificate.serial_number
