"""The gateway CA: device certificates name the identity; renewal, rotation, files at rest."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.impp.address import ImppAddress
from gateway.signing.ca import (
    ID_ON_XMPPADDR,
    CaError,
    CertificateAuthority,
    certificate_addresses,
    read_credential,
    write_credential,
)
from gateway.signing.cms import SignatureError

NOW = 1_700_000_000.0
DAY = 86_400.0
JULIET = ImppAddress.parse("juliet@example.com")


@pytest.fixture
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(now=NOW)


def test_device_certificate_names_the_address_three_ways(ca: CertificateAuthority) -> None:
    credential = ca.enroll(ImppAddress.parse("juliet@example.com/balcony"), now=NOW)
    names = credential.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["im:juliet@example.com", "pres:juliet@example.com"]
    others = names.get_values_for_type(x509.OtherName)
    assert len(others) == 1
    assert others[0].type_id == ID_ON_XMPPADDR
    # RFC 6120 §13.7.1.4: the value is a UTF8String (tag 12) of the bare JID.
    assert others[0].value == b"\x0c\x12juliet@example.com"
    assert certificate_addresses(credential.certificate) == (JULIET,)
    assert credential.address == JULIET


def test_xmpp_addr_of_an_internationalized_address_is_utf8(ca: CertificateAuthority) -> None:
    address = ImppAddress.parse("jürgen@exämple.de")
    credential = ca.enroll(address, now=NOW)
    names = credential.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    (other,) = names.get_values_for_type(x509.OtherName)
    text = "jürgen@exämple.de".encode()
    assert other.value == bytes([0x0C, len(text)]) + text
    assert certificate_addresses(credential.certificate) == (address,)


def test_device_certificate_is_an_smime_signing_certificate(ca: CertificateAuthority) -> None:
    certificate = ca.enroll(JULIET, now=NOW).certificate
    extensions = certificate.extensions
    assert extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    purposes = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(purposes) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    certificate.verify_directly_issued_by(ca.certificate)


def test_device_certificate_does_not_outlive_the_ca() -> None:
    ca = CertificateAuthority.create(now=NOW, validity=datetime.timedelta(days=30))
    certificate = ca.enroll(JULIET, now=NOW).certificate
    assert certificate.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_issuing_after_the_ca_expired_is_refused() -> None:
    ca = CertificateAuthority.create(now=NOW, validity=datetime.timedelta(days=1))
    with pytest.raises(CaError, match="rotate"):
        ca.enroll(JULIET, now=NOW + 2 * DAY)


def test_only_p256_keys_are_certified(ca: CertificateAuthority) -> None:
    other_curve = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(CaError, match="P-256"):
        ca.issue(JULIET, other_curve, now=NOW)


def test_renewal_keeps_the_key_unless_asked(ca: CertificateAuthority) -> None:
    credential = ca.enroll(JULIET, now=NOW)
    renewed = ca.renew(credential, now=NOW + 300 * DAY)
    assert renewed.private_key is credential.private_key
    assert renewed.certificate.serial_number != credential.certificate.serial_number
    assert renewed.expires() > credential.expires()
    rekeyed = ca.renew(credential, now=NOW + 300 * DAY, new_key=True)
    assert rekeyed.certificate.public_key() != credential.certificate.public_key()
    assert credential.needs_renewal(NOW + 340 * DAY, margin=datetime.timedelta(days=30))
    assert not credential.needs_renewal(NOW, margin=datetime.timedelta(days=30))


def test_rotation_keeps_the_old_ca_trusted_and_renews_under_the_new(
    ca: CertificateAuthority,
) -> None:
    credential = ca.enroll(JULIET, now=NOW)
    rotated = ca.rotate(now=NOW + DAY)
    assert rotated.certificate.subject == ca.certificate.subject
    assert rotated.certificate.public_key() != ca.certificate.public_key()
    assert rotated.trust_bundle() == (rotated.certificate, ca.certificate)
    # A certificate from before the rotation still chains to the bundle...
    rotated.trust_store().verify_path(credential.certificate, [], now=NOW + 2 * DAY)
    # ...and a renewal is issued by the new key.
    renewed = rotated.renew(credential, now=NOW + 2 * DAY)
    renewed.certificate.verify_directly_issued_by(rotated.certificate)
    with pytest.raises(SignatureError):
        CertificateAuthority(ca.private_key, ca.certificate).trust_store().verify_path(
            renewed.certificate, [], now=NOW + 2 * DAY
        )


def test_prune_drops_expired_previous_ca_certificates() -> None:
    old = CertificateAuthority.create(now=NOW, validity=datetime.timedelta(days=10))
    rotated = old.rotate(now=NOW + DAY)
    assert rotated.prune(now=NOW + 5 * DAY).previous_certificates == (old.certificate,)
    assert rotated.prune(now=NOW + 11 * DAY).previous_certificates == ()


def _modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}


def test_ca_save_and_load_round_trip_with_0600_files(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    rotated = ca.rotate(now=NOW + DAY)
    rotated.save(tmp_path)
    assert _modes(tmp_path) == {
        "ca-key.pem": 0o600,
        "ca-cert.pem": 0o600,
        "ca-previous.pem": 0o600,
    }
    loaded = CertificateAuthority.load(tmp_path)
    assert loaded.certificate == rotated.certificate
    assert loaded.previous_certificates == (ca.certificate,)
    assert loaded.private_key.public_key() == rotated.private_key.public_key()


def test_ca_key_may_be_encrypted_at_rest(ca: CertificateAuthority, tmp_path: Path) -> None:
    ca.save(tmp_path, passphrase=b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / "ca-key.pem").read_bytes()
    assert CertificateAuthority.load(tmp_path, passphrase=b"correct horse").certificate == (
        ca.certificate
    )
    with pytest.raises(CaError, match="passphrase"):
        CertificateAuthority.load(tmp_path, passphrase=b"wrong")


def test_loading_a_key_that_does_not_match_the_certificate_fails(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    ca.save(tmp_path)
    other = CertificateAuthority.create(now=NOW)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other.save(other_dir)
    (tmp_path / "ca-key.pem").write_bytes((other_dir / "ca-key.pem").read_bytes())
    with pytest.raises(CaError, match="does not match"):
        CertificateAuthority.load(tmp_path)


def test_device_credential_files_round_trip_with_0600(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    credential = ca.enroll(JULIET, now=NOW)
    write_credential(credential, tmp_path / "juliet.key", tmp_path / "juliet.crt")
    assert _modes(tmp_path) == {"juliet.key": 0o600, "juliet.crt": 0o600}
    loaded = read_credential(tmp_path / "juliet.key", tmp_path / "juliet.crt")
    assert loaded.address == JULIET
    assert loaded.certificate == credential.certificate
    assert loaded.chain == (ca.certificate,)


def test_credential_repr_holds_no_key_material(ca: CertificateAuthority) -> None:
    credential = ca.enroll(JULIET, now=NOW)
    assert "private_key" not in repr(credential)
    assert "private_key" not in repr(ca)
