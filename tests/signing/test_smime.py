"""S/MIME multipart/signed with CMS SignedData: openssl agrees with us, tampering is caught.

The Message/CPIM object below is RFC 3923 §3.2 Example 1 (copied from rfc3923.txt).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.impp.address import ImppAddress
from gateway.signing import der
from gateway.signing.ca import CertificateAuthority, DeviceCredential
from gateway.signing.cms import (
    SignatureError,
    SignerTrustStore,
    VerificationFailure,
    sign_detached,
    verify_detached_untrusted,
)
from gateway.signing.smime import (
    canonicalize_line_endings,
    mime_entity,
    parse_multipart_signed_untrusted,
    sign_multipart,
    verify_multipart_signed_untrusted,
)

NOW = 1_700_000_000.0
DAY = 86_400.0

# RFC 3923 §3.2, Example 1: the Message/CPIM object a sending agent generates.
RFC3923_EXAMPLE_1 = (
    b"Content-type: Message/CPIM\r\n"
    b"\r\n"
    b"From: Juliet Capulet <im:juliet@example.com>\r\n"
    b"To: Romeo Montague <im:romeo@example.net>\r\n"
    b"DateTime: 2003-12-09T11:45:36.66Z\r\n"
    b"Subject: Imploring\r\n"
    b"\r\n"
    b"Content-type: text/plain; charset=utf-8\r\n"
    b"Content-ID: <1234567890@example.com>\r\n"
    b"\r\n"
    b"Wherefore art thou, Romeo?\r\n"
)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(now=NOW - DAY)


@pytest.fixture(scope="module")
def juliet(ca: CertificateAuthority) -> DeviceCredential:
    return ca.enroll(ImppAddress.parse("juliet@example.com"), now=NOW - DAY)


def _sign(credential: DeviceCredential, entity: bytes = RFC3923_EXAMPLE_1) -> bytes:
    return sign_multipart(
        entity, private_key=credential.private_key, certificate=credential.certificate, now=NOW
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _openssl_verify(signed: bytes, ca: CertificateAuthority, folder: Path) -> tuple[int, bytes]:
    (folder / "ca.pem").write_bytes(b"".join(_pem(c) for c in ca.trust_bundle()))
    (folder / "signed.eml").write_bytes(signed)
    result = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-in",
            str(folder / "signed.eml"),
            "-CAfile",
            str(folder / "ca.pem"),
            "-attime",
            str(int(NOW)),
            "-out",
            str(folder / "content"),
        ],
        capture_output=True,
        check=False,
    )
    content = (folder / "content").read_bytes() if result.returncode == 0 else b""
    return result.returncode, content


def test_openssl_verifies_our_signature(
    ca: CertificateAuthority, juliet: DeviceCredential, tmp_path: Path
) -> None:
    signed = _sign(juliet)
    code, content = _openssl_verify(signed, ca, tmp_path)
    assert code == 0
    assert content == RFC3923_EXAMPLE_1


def test_openssl_verifies_our_signature_with_the_chain_included(
    ca: CertificateAuthority, juliet: DeviceCredential, tmp_path: Path
) -> None:
    signed = sign_multipart(
        RFC3923_EXAMPLE_1,
        private_key=juliet.private_key,
        certificate=juliet.certificate,
        chain=juliet.chain,
        now=NOW,
    )
    assert _openssl_verify(signed, ca, tmp_path)[0] == 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Juliet Capulet", b"Juliet Capulat"),  # a message header byte
        (b"Content-type: text/plain", b"Content-type: text/plaim"),  # an encapsulated header
        (b"Wherefore art thou", b"Wherefore art thee"),  # a body byte
        (b"Content-type: Message/CPIM", b"Content-type: Message/CPIN"),  # the part's header
    ],
)
def test_openssl_and_we_reject_a_changed_byte(
    ca: CertificateAuthority,
    juliet: DeviceCredential,
    tmp_path: Path,
    old: bytes,
    new: bytes,
) -> None:
    signed = _sign(juliet)
    tampered = signed.replace(old, new, 1)
    assert tampered != signed
    assert _openssl_verify(tampered, ca, tmp_path)[0] != 0
    with pytest.raises(SignatureError):
        verify_multipart_signed_untrusted(tampered, ca.trust_store(), now=NOW)


def test_openssl_rejects_a_signature_from_another_ca(
    juliet: DeviceCredential, tmp_path: Path
) -> None:
    stranger = CertificateAuthority.create(now=NOW - DAY)
    assert _openssl_verify(_sign(juliet), stranger, tmp_path)[0] != 0


def test_we_verify_our_signature(ca: CertificateAuthority, juliet: DeviceCredential) -> None:
    verified = verify_multipart_signed_untrusted(_sign(juliet), ca.trust_store(), now=NOW)
    assert verified.content == RFC3923_EXAMPLE_1
    assert verified.content_type == "message/cpim"
    assert verified.body == RFC3923_EXAMPLE_1.split(b"\r\n\r\n", 1)[1]
    assert verified.signer.certificate == juliet.certificate
    assert verified.signer.signing_time == NOW
    assert verified.signer.chain[-1] == ca.certificate


def test_we_verify_what_openssl_signed(
    ca: CertificateAuthority, juliet: DeviceCredential, tmp_path: Path
) -> None:
    (tmp_path / "content").write_bytes(RFC3923_EXAMPLE_1)
    (tmp_path / "cert.pem").write_bytes(_pem(juliet.certificate))
    (tmp_path / "key.pem").write_bytes(
        juliet.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    subprocess.run(
        [
            "openssl",
            "cms",
            "-sign",
            "-in",
            str(tmp_path / "content"),
            "-signer",
            str(tmp_path / "cert.pem"),
            "-inkey",
            str(tmp_path / "key.pem"),
            "-md",
            "sha256",
            "-out",
            str(tmp_path / "signed.eml"),
        ],
        check=True,
        capture_output=True,
    )
    signed = (tmp_path / "signed.eml").read_bytes()
    verified = verify_multipart_signed_untrusted(signed, ca.trust_store(), now=NOW)
    assert verified.content == RFC3923_EXAMPLE_1
    assert verified.signer.certificate == juliet.certificate


def test_we_verify_what_cryptography_signed(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    # cryptography's builder (OpenSSL inside) adds SMIMECapabilities; we ignore extra attributes.
    signature = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(RFC3923_EXAMPLE_1)
        .add_signer(juliet.certificate, juliet.private_key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )
    verified = verify_detached_untrusted(RFC3923_EXAMPLE_1, signature, ca.trust_store(), now=NOW)
    assert verified.certificate == juliet.certificate
    with pytest.raises(SignatureError) as caught:
        verify_detached_untrusted(RFC3923_EXAMPLE_1 + b"!", signature, ca.trust_store(), now=NOW)
    assert caught.value.reason is VerificationFailure.BAD_SIGNATURE


def test_ber_indefinite_lengths_of_streaming_encoders_are_accepted(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    der = sign_detached(
        b"content", private_key=juliet.private_key, certificate=juliet.certificate, now=NOW
    )
    # ContentInfo ::= 30 82 LL LL, OID (11 bytes), A0 82 LL LL, SignedData: re-wrap both
    # constructed headers with indefinite lengths (X.690 §8.1.3.6) as streaming encoders do.
    assert der[0:2] == b"\x30\x82"
    assert der[15:17] == b"\xa0\x82"
    ber = b"\x30\x80" + der[4:15] + b"\xa0\x80" + der[19:] + b"\x00\x00\x00\x00"
    verified = verify_detached_untrusted(b"content", ber, ca.trust_store(), now=NOW)
    assert verified.certificate == juliet.certificate
    with pytest.raises(SignatureError):  # end-of-contents missing
        verify_detached_untrusted(b"content", ber[:-2], ca.trust_store(), now=NOW)


def _content_span(signed: bytes) -> tuple[int, int]:
    start = signed.index(b"Content-type: Message/CPIM")
    return start, start + len(RFC3923_EXAMPLE_1)


def test_every_single_byte_change_of_the_signed_part_is_caught(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    signed = _sign(juliet)
    store = ca.trust_store()
    start, end = _content_span(signed)
    assert signed[start:end] == RFC3923_EXAMPLE_1
    for position in range(start, end):
        tampered = bytearray(signed)
        tampered[position] ^= 0x01
        with pytest.raises(SignatureError):
            verify_multipart_signed_untrusted(bytes(tampered), store, now=NOW)


def test_every_change_of_the_signature_is_caught_or_harmless(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    # The certificate inside the SignedData is unsigned by the SignedData and its own outer
    # signature encoding is malleable; a change there may still verify, but then the signer's
    # certified contents and the replay key must be exactly the original ones.
    signed = _sign(juliet)
    store = ca.trust_store()
    original = verify_multipart_signed_untrusted(signed, store, now=NOW).signer
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    header_end = signed.index(b"filename=smime.p7s\r\n\r\n") + len(b"filename=smime.p7s\r\n\r\n")
    closing = signed.rindex(b"\r\n--")
    caught = 0
    for position in range(header_end, closing):
        byte = signed[position]
        if byte not in alphabet:
            continue
        tampered = bytearray(signed)
        tampered[position] = alphabet[(alphabet.index(byte) + 1) % 64]
        try:
            survivor = verify_multipart_signed_untrusted(bytes(tampered), store, now=NOW).signer
        except SignatureError:
            caught += 1
            continue
        tbs = survivor.certificate.tbs_certificate_bytes
        assert tbs == original.certificate.tbs_certificate_bytes
        assert survivor.replay_key == original.replay_key
    assert caught >= (closing - header_end) * 0.9


def test_malleated_ecdsa_signature_is_still_the_same_for_replay(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    signature = sign_detached(
        b"content", private_key=juliet.private_key, certificate=juliet.certificate, now=NOW
    )
    marker = b"\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02"  # ecdsa-with-SHA256 in SignerInfo
    start = signature.rindex(marker) + len(marker)
    assert signature[start] == 0x04  # OCTET STRING holding ECDSA-Sig-Value
    r, s = decode_dss_signature(signature[start + 2 :])
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 n
    twin = encode_dss_signature(r, order - s)
    rebuilt = _rewrap_signature(signature, start, twin)
    first = verify_detached_untrusted(b"content", signature, ca.trust_store(), now=NOW)
    second = verify_detached_untrusted(b"content", rebuilt, ca.trust_store(), now=NOW)
    assert rebuilt != signature
    assert first.replay_key == second.replay_key


def _rewrap_signature(signature: bytes, start: int, value: bytes) -> bytes:
    """Replace the OCTET STRING at ``start`` and re-encode every enclosing length."""

    def rebuild(node: der.Node) -> bytes:
        if node.start == start:
            return der.encode(0x04, value)
        if not node.constructed or not node.start <= start < node.end:
            return node.encoded
        return der.encode(node.tag, b"".join(rebuild(c) for c in der.children(node, 0)))

    return rebuild(der.parse(signature))


def test_lf_line_endings_after_xml_transport_still_verify(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    signed = _sign(juliet).replace(b"\r\n", b"\n")
    verified = verify_multipart_signed_untrusted(signed, ca.trust_store(), now=NOW)
    assert verified.content == RFC3923_EXAMPLE_1


def test_signing_canonicalizes_bare_line_feeds(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    entity = mime_entity("text/plain; charset=utf-8", b"line one\nline two\n")
    assert entity == b"Content-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n"
    verified = verify_multipart_signed_untrusted(_sign(juliet, entity), ca.trust_store(), now=NOW)
    assert verified.body == b"line one\r\nline two\r\n"
    assert canonicalize_line_endings(b"a\rb\nc\r\nd") == b"a\r\nb\r\nc\r\nd"


def test_multipart_header_says_what_rfc_8551_asks(juliet: DeviceCredential) -> None:
    head = _sign(juliet).split(b"\r\n\r\n", 1)[0]
    assert b"multipart/signed" in head
    assert b'protocol="application/pkcs7-signature"' in head
    assert b"micalg=sha-256" in head
    entity = parse_multipart_signed_untrusted(_sign(juliet))
    assert entity.micalg == "sha-256"


def test_certificate_expired_at_verification_time_is_untrusted(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_multipart_signed_untrusted(_sign(juliet), ca.trust_store(), now=NOW + 400 * DAY)
    assert caught.value.reason is VerificationFailure.UNTRUSTED_CERTIFICATE


def test_empty_trust_store_trusts_nobody(juliet: DeviceCredential) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_multipart_signed_untrusted(_sign(juliet), SignerTrustStore(()), now=NOW)
    assert caught.value.reason is VerificationFailure.UNTRUSTED_CERTIFICATE


def test_a_ca_certificate_cannot_sign_messages(ca: CertificateAuthority) -> None:
    signed = sign_multipart(
        RFC3923_EXAMPLE_1, private_key=ca.private_key, certificate=ca.certificate, now=NOW
    )
    with pytest.raises(SignatureError) as caught:
        verify_multipart_signed_untrusted(signed, ca.trust_store(), now=NOW)
    assert caught.value.reason in (
        VerificationFailure.UNTRUSTED_CERTIFICATE,
        VerificationFailure.CERTIFICATE_USAGE,
    )


def test_signing_with_a_key_that_is_not_the_certificates_is_local_misuse(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    with pytest.raises(SignatureError) as caught:
        sign_detached(b"x", private_key=ca.private_key, certificate=juliet.certificate, now=NOW)
    assert caught.value.remote is False


def test_attached_signature_and_encrypted_objects_are_refused(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    attached = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(b"hello")
        .add_signer(juliet.certificate, juliet.private_key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    with pytest.raises(SignatureError, match="detached"):
        verify_detached_untrusted(b"hello", attached, ca.trust_store(), now=NOW)
    enveloped = b"\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03\xa0\x00"  # envelopedData OID
    with pytest.raises(SignatureError) as caught:
        verify_detached_untrusted(b"hello", enveloped, ca.trust_store(), now=NOW)
    assert caught.value.reason is VerificationFailure.UNSUPPORTED


def test_oversized_inputs_are_refused_before_parsing(ca: CertificateAuthority) -> None:
    with pytest.raises(SignatureError) as caught:
        parse_multipart_signed_untrusted(b"x" * 101, max_size=100)
    assert caught.value.reason is VerificationFailure.TOO_LARGE
    with pytest.raises(SignatureError) as caught:
        verify_detached_untrusted(b"", b"\x30" * 40_000, ca.trust_store(), now=NOW)
    assert caught.value.reason is VerificationFailure.TOO_LARGE


def test_trailing_data_after_the_signature_is_refused(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    signed = _sign(juliet)
    signature = parse_multipart_signed_untrusted(signed).signature
    with pytest.raises(SignatureError, match="trailing"):
        verify_detached_untrusted(RFC3923_EXAMPLE_1, signature + b"\x00", ca.trust_store(), now=NOW)


def test_third_part_and_missing_closing_boundary_are_refused(juliet: DeviceCredential) -> None:
    signed = _sign(juliet)
    boundary = parse_boundary(signed)
    third = signed.replace(
        b"--" + boundary + b"--",
        b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + boundary + b"--",
    )
    with pytest.raises(SignatureError, match="two parts"):
        parse_multipart_signed_untrusted(third)
    with pytest.raises(SignatureError):
        parse_multipart_signed_untrusted(signed[: signed.rindex(b"--" + boundary)])


def parse_boundary(signed: bytes) -> bytes:
    start = signed.index(b'boundary="') + len(b'boundary="')
    return signed[start : signed.index(b'"', start)]


def _synthetic(signature_base64: bytes) -> bytes:
    return (
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";'
        b" micalg=sha-256; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: application/pkcs7-signature\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + signature_base64 + b"\r\n--b--\r\n"
    )


def test_parser_reads_a_minimal_multipart_whole_and_with_a_preamble() -> None:
    entity = parse_multipart_signed_untrusted(_synthetic(b"AA=="))
    assert (entity.content, entity.body, entity.signature) == (
        b"Content-Type: text/plain\r\n\r\nhi",
        b"hi",
        b"\x00",
    )
    with_preamble = _synthetic(b"AA==").replace(b"\r\n\r\n--b", b"\r\n\r\npreamble\r\n--b", 1)
    assert parse_multipart_signed_untrusted(with_preamble) == entity
    assert parse_multipart_signed_untrusted(_synthetic(b"AA==") + b"epilogue\r\n") == entity
    headerless = _synthetic(b"AA==").replace(b"Content-Type: text/plain\r\n\r\nhi", b"\r\nhi")
    bare = parse_multipart_signed_untrusted(headerless)  # RFC 2045 §5.2 default type
    assert (bare.content_type, bare.body) == ("text/plain", b"hi")


def test_non_canonical_base64_is_refused() -> None:
    # "AB==" decodes to the same byte as "AA==" with an unused bit set: one encoding only.
    with pytest.raises(SignatureError, match="canonical"):
        parse_multipart_signed_untrusted(_synthetic(b"AB=="))
    with pytest.raises(SignatureError, match="base64"):
        parse_multipart_signed_untrusted(_synthetic(b"A*=="))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_multipart_raises_only_signature_error(data: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_multipart_signed_untrusted(data, SignerTrustStore(()), now=NOW)


_FRAGMENTS = [
    b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b',
    b"Content-Type: application/pkcs7-signature",
    b"Content-Type: text/plain",
    b"Content-Transfer-Encoding: base64",
    b"micalg=sha-256",
    b"--b",
    b"--b--",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b";",
    b"=",
    b'"',
    b"MIIB",
    b"AA==",
    b"\xff\xfe",
    b"\x00",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=40))
def test_multipart_shaped_garbage_raises_only_signature_error(pieces: list[bytes]) -> None:
    try:
        parse_multipart_signed_untrusted(b"".join(pieces))
    except SignatureError:
        return
    with pytest.raises(SignatureError):
        verify_multipart_signed_untrusted(b"".join(pieces), SignerTrustStore(()), now=NOW)


@pytest.fixture(scope="module")
def cms_signature(juliet: DeviceCredential) -> bytes:
    return sign_detached(
        b"content", private_key=juliet.private_key, certificate=juliet.certificate, now=NOW
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_cms_raises_only_signature_error(
    ca: CertificateAuthority, cms_signature: bytes, data: st.DataObject
) -> None:
    mutated = bytearray(cms_signature)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    candidate = bytes(mutated[: data.draw(st.integers(0, len(mutated)))])
    try:
        verify_detached_untrusted(b"content", candidate, ca.trust_store(), now=NOW)
    except SignatureError:
        return
    assert candidate == cms_signature  # only the unchanged signature may verify


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_cms_raises_only_signature_error(data: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_detached_untrusted(b"content", data, SignerTrustStore(()), now=NOW)
