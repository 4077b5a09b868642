"""The per-signer cache of sign_detached (the encoded issuerAndSerialNumber and certificates):
reused for one credential, never standing in for a renewed one, never letting a key sign under
a certificate that is not its own, bounded; openssl still verifies what it builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.impp.address import ImppAddress
from gateway.signing import cms
from gateway.signing.ca import CertificateAuthority, DeviceCredential
from gateway.signing.cms import SignatureError, sign_detached
from gateway.signing.smime import sign_multipart, verify_multipart_signed_untrusted
from tests.signing.test_smime import DAY, NOW, RFC3923_EXAMPLE_1, _openssl_verify


@pytest.fixture
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(now=NOW - DAY)


@pytest.fixture
def juliet(ca: CertificateAuthority) -> DeviceCredential:
    return ca.enroll(ImppAddress.parse("juliet@example.com"), now=NOW - DAY)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cms._signer_templates.clear()


def _sign(credential: DeviceCredential) -> bytes:
    return sign_multipart(
        RFC3923_EXAMPLE_1,
        private_key=credential.private_key,
        certificate=credential.certificate,
        chain=credential.chain,
        now=NOW,
    )


def test_the_second_signature_reuses_the_entry_and_openssl_verifies_both(
    ca: CertificateAuthority, juliet: DeviceCredential, tmp_path: Path
) -> None:
    first = _sign(juliet)
    second = _sign(juliet)

    assert list(cms._signer_templates) == [(juliet.certificate, *juliet.chain)]
    for signed in (first, second):
        assert _openssl_verify(signed, ca, tmp_path) == (0, RFC3923_EXAMPLE_1)


def test_a_renewed_credential_signs_with_its_new_certificate(
    ca: CertificateAuthority, juliet: DeviceCredential, tmp_path: Path
) -> None:
    _sign(juliet)  # the old certificate's entry is cached
    renewed = ca.renew(juliet, now=NOW)
    assert renewed.certificate.serial_number != juliet.certificate.serial_number

    signed = _sign(renewed)

    verified = verify_multipart_signed_untrusted(signed, ca.trust_store(), now=NOW)
    assert verified.signer.certificate == renewed.certificate
    assert _openssl_verify(signed, ca, tmp_path)[0] == 0


def test_a_renewal_under_a_rotated_ca_carries_the_new_chain(
    ca: CertificateAuthority, juliet: DeviceCredential, tmp_path: Path
) -> None:
    _sign(juliet)
    rotated = ca.rotate(now=NOW - DAY / 2)
    renewed = rotated.renew(juliet, now=NOW, new_key=True)

    signed = _sign(renewed)

    verified = verify_multipart_signed_untrusted(signed, rotated.trust_store(), now=NOW)
    assert verified.signer.certificate == renewed.certificate
    assert _openssl_verify(signed, rotated, tmp_path)[0] == 0


def test_a_cached_certificate_still_refuses_another_key(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    _sign(juliet)
    other = ca.enroll(ImppAddress.parse("romeo@example.net"), now=NOW - DAY)

    with pytest.raises(SignatureError, match="does not match"):
        sign_detached(
            b"content", private_key=other.private_key, certificate=juliet.certificate, now=NOW
        )


def test_the_cache_is_bounded_least_recently_used_first(
    ca: CertificateAuthority, juliet: DeviceCredential, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cms, "_SIGNER_TEMPLATE_CACHE_SIZE", 2)
    others = [ca.enroll(ImppAddress.parse(f"d{i}@example.com"), now=NOW - DAY) for i in (1, 2)]

    _sign(juliet)
    _sign(others[0])
    _sign(juliet)  # used again: now the most recent
    _sign(others[1])

    assert list(cms._signer_templates) == [
        (juliet.certificate, *juliet.chain),
        (others[1].certificate, *others[1].chain),
    ]
