"""CMS SignedData (RFC 5652 §5): detached signatures with ECDSA and SHA-256, and their check.

Theory of operation. :func:`sign_detached` signs content with one SignerInfo identified by issuer
and serial number, carrying the signed attributes contentType, signingTime and messageDigest
(RFC 5652 §11.1-11.3); the signature is ECDSA over the DER of the signed attributes (§5.4) with
SHA-256 (RFC 5753 §2.1.1, RFC 5754, RFC 5758 §3.2). The encapsulated content is absent (detached,
§5.2) and the signer's certificate and its CA certificate travel in ``certificates``.

:func:`verify_detached_untrusted` does RFC 5652 §5.6: it parses the SignedData with the total
DER reader of :mod:`gateway.signing.der` (cryptography 50 builds SignedData but cannot verify it),
checks the messageDigest attribute against the content, the signature with the signer's key
(ECDSA; RSA PKCS #1 v1.5 for third-party signers), and the certificate path to a
:class:`SignerTrustStore` (path building and validity by ``cryptography.x509.verification``), plus
the S/MIME key usages of RFC 8551 §4.4. Sizes are bounded before anything is converted: the whole
object (``max_signature_size``), and inside it object identifiers, INTEGERs and the values of each
SEQUENCE/SET (:mod:`gateway.signing.der`), certificates by count. Every failure is a
:class:`SignatureError` with a :class:`VerificationFailure`, never another exception.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import hmac
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.signing import der
from gateway.signing.der import DerError, Node
from gateway.signing.errors import SigningError

__all__ = [
    "DEFAULT_MAX_SIGNATURE_SIZE",
    "SignatureError",
    "SignerTrustStore",
    "VerificationFailure",
    "VerifiedSignature",
    "sign_detached",
    "verify_detached_untrusted",
]

DEFAULT_MAX_SIGNATURE_SIZE = 32 * 1024  # SignedData with a few certificates is ~1-3 KiB
MAX_CERTIFICATES = 8  # signer, intermediates and roots a sender may reasonably include
MAX_CHAIN_DEPTH = 4  # intermediates between a signer and a trust anchor

# What cryptography raises on certificates it cannot read or use (peer data, so never fatal).
X509_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.ExtensionNotFound,
)
_PATH_ERRORS: tuple[type[Exception], ...] = (verification.VerificationError, *X509_ERRORS)
_E = TypeVar("_E", bound=x509.ExtensionType)
_CERTIFICATE_LOAD_ERRORS: tuple[type[Exception], ...] = (
    CryptographyDeprecationWarning,
    *X509_ERRORS,
)

# RFC 5652 §14, RFC 5754, RFC 5758, RFC 8017 object identifiers.
OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
_DIGESTS: dict[str, hashes.HashAlgorithm] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256(),
    "2.16.840.1.101.3.4.2.2": hashes.SHA384(),
    "2.16.840.1.101.3.4.2.3": hashes.SHA512(),
}
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
_ECDSA_SIGNATURES: dict[str, hashes.HashAlgorithm] = {
    OID_ECDSA_WITH_SHA256: hashes.SHA256(),
    "1.2.840.10045.4.3.3": hashes.SHA384(),
    "1.2.840.10045.4.3.4": hashes.SHA512(),
}
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"  # some signers name the key, not the algorithm
_RSA_SIGNATURES: dict[str, hashes.HashAlgorithm] = {
    "1.2.840.113549.1.1.11": hashes.SHA256(),
    "1.2.840.113549.1.1.12": hashes.SHA384(),
    "1.2.840.113549.1.1.13": hashes.SHA512(),
}
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"


class VerificationFailure(enum.StrEnum):
    """Why an inbound signature was not accepted: a short, bounded label for logs and metrics."""

    MALFORMED = "malformed"
    TOO_LARGE = "too-large"
    UNSUPPORTED = "unsupported"
    BAD_SIGNATURE = "bad-signature"
    NO_CERTIFICATE = "no-certificate"
    UNTRUSTED_CERTIFICATE = "untrusted-certificate"
    CERTIFICATE_USAGE = "certificate-usage"
    NAME_MISMATCH = "name-mismatch"
    MISSING_TIMESTAMP = "missing-timestamp"
    OLD_TIMESTAMP = "old-timestamp"
    FUTURE_TIMESTAMP = "future-timestamp"
    DECREASING_TIMESTAMP = "decreasing-timestamp"
    REPLAYED = "replayed"
    REPLAY_MEMORY_FULL = "replay-memory-full"
    CONTENT_MISMATCH = "content-mismatch"  # the stanza says something its signed object does not


class SignatureError(SigningError):
    """A signed object is malformed, does not verify, or cannot be trusted.

    ``reason`` is a :class:`VerificationFailure` for metrics; the message never holds key material.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: VerificationFailure = VerificationFailure.MALFORMED,
        remote: bool = True,
    ) -> None:
        super().__init__(message, remote=remote)
        self.reason = reason


def _fail(
    message: str, reason: VerificationFailure = VerificationFailure.MALFORMED
) -> SignatureError:
    return SignatureError(message, reason=reason)


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    context = hashes.Hash(algorithm)
    context.update(data)
    return context.finalize()


# ---------------------------------------------------------------------------------------------
# Trust and results


@dataclass(frozen=True)
class SignerTrustStore:
    """Trust anchors (root CA certificates) for S/MIME signatures; empty trusts nobody."""

    anchors: tuple[x509.Certificate, ...]
    _store: verification.Store | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchors", tuple(self.anchors))
        store = verification.Store(list(self.anchors)) if self.anchors else None
        object.__setattr__(self, "_store", store)

    def verify_path(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        *,
        now: float,
    ) -> tuple[x509.Certificate, ...]:
        """Check ``leaf`` chains to an anchor at ``now`` and may sign S/MIME; return the path."""
        if self._store is None:
            raise _fail("the trust store is empty", VerificationFailure.UNTRUSTED_CERTIFICATE)
        policy = (
            verification.PolicyBuilder()
            .store(self._store)
            .time(datetime.datetime.fromtimestamp(now, datetime.UTC))
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
        )
        try:
            verified = policy.build_client_verifier().verify(leaf, list(intermediates))
        except _PATH_ERRORS as exc:
            raise _fail(
                f"the signer's certificate does not chain to a trusted CA: {exc}",
                VerificationFailure.UNTRUSTED_CERTIFICATE,
            ) from exc
        _check_smime_usage(leaf)
        return tuple(verified.chain)


def _check_smime_usage(certificate: x509.Certificate) -> None:
    # RFC 8551 §4.4.2-4.4.4: digitalSignature (or nonRepudiation); emailProtection if EKU present.
    try:
        extensions = certificate.extensions
        usage = _extension(extensions, x509.KeyUsage)
        purposes = _extension(extensions, x509.ExtendedKeyUsage)
    except X509_ERRORS as exc:
        raise _fail("the certificate's extensions are malformed") from exc
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise _fail("the certificate may not sign", VerificationFailure.CERTIFICATE_USAGE)
    if purposes is not None and not (
        ExtendedKeyUsageOID.EMAIL_PROTECTION in purposes
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in purposes
    ):
        raise _fail("the certificate is not for S/MIME", VerificationFailure.CERTIFICATE_USAGE)


def _extension(extensions: x509.Extensions, kind: type[_E]) -> _E | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


@dataclass(frozen=True)
class VerifiedSignature:
    """A CMS signature that verified: who signed, when they said they did, and a replay key."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    signing_time: float | None
    # SHA-256 of what the signature covers (signed attributes, else the content). Not of the
    # signature value: ECDSA signatures are malleable ((r, s) and (r, n - s) both verify), so a
    # replay with the twin signature must map to the same key.
    replay_key: bytes = field(repr=False)


# ---------------------------------------------------------------------------------------------
# Signing


@dataclass(frozen=True)
class _SignerTemplate:
    """The parts of a SignedData that depend only on the signer's certificates, encoded once."""

    issuer_and_serial: bytes
    certificates: bytes  # the [0] IMPLICIT SET OF Certificate field


_SIGNER_TEMPLATE_CACHE_SIZE = 4096  # signers whose encoded parts are kept (~1.5 KB each)
_signer_templates: OrderedDict[tuple[x509.Certificate, ...], _SignerTemplate] = OrderedDict()

# Constant DER pieces of every signature this module writes.
_SHA256_ALGORITHM = der.encode_sequence(der.encode_oid(OID_SHA256))  # RFC 5754 §2: no parameters
_ECDSA_SHA256_ALGORITHM = der.encode_sequence(der.encode_oid(OID_ECDSA_WITH_SHA256))
_CONTENT_TYPE_DATA = der.encode_sequence(der.encode_oid(OID_DATA))
_DIGEST_ALGORITHMS = der.encode_set_of([_SHA256_ALGORITHM])
_VERSION_1 = der.encode_integer(1)
_SIGNED_DATA_OID = der.encode_oid(OID_SIGNED_DATA)
_CONTENT_TYPE_ATTRIBUTE_TYPE = der.encode_oid(OID_CONTENT_TYPE)
_SIGNING_TIME_ATTRIBUTE_TYPE = der.encode_oid(OID_SIGNING_TIME)
_MESSAGE_DIGEST_ATTRIBUTE_TYPE = der.encode_oid(OID_MESSAGE_DIGEST)
_CONTENT_TYPE_ATTRIBUTE = der.encode_sequence(
    _CONTENT_TYPE_ATTRIBUTE_TYPE, der.encode_set_of([der.encode_oid(OID_DATA)])
)


def _signer_template(certificates: tuple[x509.Certificate, ...]) -> _SignerTemplate:
    """The encoded issuerAndSerialNumber and certificates of a signer, from a bounded cache.

    Certificates are immutable values, so an entry never goes stale: a renewed credential has
    another certificate and gets its own entry; the least recently used entries are dropped.
    """
    template = _signer_templates.get(certificates)
    if template is not None:
        _signer_templates.move_to_end(certificates)
        return template
    certificate = certificates[0]
    encoded = [c.public_bytes(serialization.Encoding.DER) for c in certificates]
    template = _SignerTemplate(
        issuer_and_serial=der.encode_sequence(
            certificate.issuer.public_bytes(), der.encode_integer(certificate.serial_number)
        ),
        certificates=der.encode_set_of(dict.fromkeys(encoded), tag=0xA0),
    )
    _signer_templates[certificates] = template
    if len(_signer_templates) > _SIGNER_TEMPLATE_CACHE_SIZE:
        _signer_templates.popitem(last=False)
    return template


def sign_detached(
    content: bytes,
    *,
    private_key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    now: float,
) -> bytes:
    """DER CMS ContentInfo(SignedData) signing ``content`` (detached; RFC 5652 §5, RFC 5753).

    ``content`` is signed exactly as given; :func:`sign_multipart` canonicalizes it first. What
    depends only on the certificates is encoded once per signer (:func:`_signer_template`); the
    key is checked against the certificate at every call.
    """
    if certificate.public_key() != private_key.public_key():
        raise SignatureError("the private key does not match the certificate", remote=False)
    template = _signer_template((certificate, *chain))
    digest = hashlib.sha256(content).digest()
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    attributes = [
        _CONTENT_TYPE_ATTRIBUTE,
        der.encode_sequence(
            _SIGNING_TIME_ATTRIBUTE_TYPE, der.encode(0x31, der.encode_time(moment))
        ),
        der.encode_sequence(
            _MESSAGE_DIGEST_ATTRIBUTE_TYPE, der.encode(0x31, der.encode(0x04, digest))
        ),
    ]
    signed_attributes = der.encode_set_of(attributes)  # RFC 5652 §5.4: signed as a SET OF
    signature = private_key.sign(signed_attributes, ec.ECDSA(hashes.SHA256()))
    signer_info = der.encode_sequence(
        _VERSION_1,
        template.issuer_and_serial,
        _SHA256_ALGORITHM,
        b"\xa0" + signed_attributes[1:],  # [0] IMPLICIT
        _ECDSA_SHA256_ALGORITHM,
        der.encode(0x04, signature),
    )
    signed_data = der.encode_sequence(
        _VERSION_1,
        _DIGEST_ALGORITHMS,
        _CONTENT_TYPE_DATA,
        template.certificates,
        der.encode(0x31, signer_info),  # a SET OF one element
    )
    return der.encode_sequence(_SIGNED_DATA_OID, der.encode(0xA0, signed_data))


# ---------------------------------------------------------------------------------------------
# Verification of CMS SignedData (RFC 5652 §5.6)


@dataclass(frozen=True)
class _SignerInfo:
    issuer: bytes | None  # DER Name, with serial, or
    serial: int | None
    key_identifier: bytes | None  # subjectKeyIdentifier (SignerInfo version 3)
    digest_oid: str
    signed_attributes: Node | None
    signature_oid: str
    signature: bytes


def _parse_signed_data(encoded: bytes) -> tuple[str, list[Node], _SignerInfo, set[str]]:
    """(eContentType, certificate nodes, the one SignerInfo, digestAlgorithms) of a ContentInfo."""
    content_info = der.children(der.expect(der.parse(encoded), 0x30, "ContentInfo"), 0)
    if len(content_info) != 2:
        raise _fail("ContentInfo must hold a content type and a content")
    content_type = der.read_oid(content_info[0], "contentType")
    if content_type == OID_ENVELOPED_DATA:
        raise _fail(
            "encrypted (EnvelopedData) objects are not supported", VerificationFailure.UNSUPPORTED
        )
    if content_type != OID_SIGNED_DATA:
        raise _fail("the CMS object is not SignedData", VerificationFailure.UNSUPPORTED)
    wrapper = der.children(der.expect(content_info[1], 0xA0, "content"), 1)
    if len(wrapper) != 1:
        raise _fail("[0] content must hold exactly one SignedData")
    fields = der.children(der.expect(wrapper[0], 0x30, "SignedData"), 2)
    if len(fields) < 4:
        raise _fail("SignedData is missing fields")
    version = der.read_integer(fields[0], "SignedData version")
    if version not in (1, 3):
        raise _fail(f"unsupported SignedData version {version}", VerificationFailure.UNSUPPORTED)
    digest_oids = {
        der.read_algorithm(n, 4, "digestAlgorithm")
        for n in der.children(der.expect(fields[1], 0x31, "digestAlgorithms"), 3)
    }
    encapsulated = der.children(der.expect(fields[2], 0x30, "encapContentInfo"), 3)
    if len(encapsulated) != 1:
        raise _fail("the signature is not detached (encapContentInfo carries content)")
    econtent_type = der.read_oid(encapsulated[0], "eContentType")
    rest = fields[3:]
    certificates: list[Node] = []
    if rest and rest[0].tag == 0xA0:
        certificates = der.children(rest[0], 3, max_items=MAX_CERTIFICATES)
        rest = rest[1:]
    if rest and rest[0].tag == 0xA1:  # revocation information: not used
        rest = rest[1:]
    if len(rest) != 1:
        raise _fail("SignedData has unexpected fields after certificates")
    signer_infos = der.children(der.expect(rest[0], 0x31, "signerInfos"), 3)
    if len(signer_infos) != 1:
        raise _fail(f"expected exactly one SignerInfo, found {len(signer_infos)}")
    signer_info = _parse_signer_info(signer_infos[0])
    # RFC 5652 §5.1: version 3 exactly when a SignerInfo is version 3 (for what we accept).
    if version != (3 if signer_info.key_identifier is not None else 1):
        raise _fail("SignedData version does not match its SignerInfo (RFC 5652 §5.1)")
    return econtent_type, certificates, signer_info, digest_oids


def _parse_signer_info(node: Node) -> _SignerInfo:
    fields = der.children(der.expect(node, 0x30, "SignerInfo"), 4)
    if len(fields) < 5:
        raise _fail("SignerInfo is missing fields")
    version = der.read_integer(fields[0], "SignerInfo version")
    issuer: bytes | None = None
    serial: int | None = None
    key_identifier: bytes | None = None
    if version == 1:
        sid = der.children(der.expect(fields[1], 0x30, "issuerAndSerialNumber"), 5)
        if len(sid) != 2:
            raise _fail("malformed issuerAndSerialNumber")
        issuer = der.expect(sid[0], 0x30, "issuer").encoded
        serial = der.read_integer(sid[1], "serialNumber")
    elif version == 3:
        key_identifier = der.expect(fields[1], 0x80, "subjectKeyIdentifier").content
    else:
        raise _fail(f"unsupported SignerInfo version {version}", VerificationFailure.UNSUPPORTED)
    digest_oid = der.read_algorithm(fields[2], 5, "digestAlgorithm")
    rest = fields[3:]
    signed_attributes: Node | None = None
    if rest[0].tag == 0xA0:
        signed_attributes = rest[0]
        rest = rest[1:]
    if len(rest) not in (2, 3) or (len(rest) == 3 and rest[2].tag != 0xA1):
        raise _fail("SignerInfo has unexpected fields")
    signature_oid = der.read_algorithm(rest[0], 5, "signatureAlgorithm")
    signature = der.expect(rest[1], 0x04, "signature").content
    return _SignerInfo(
        issuer, serial, key_identifier, digest_oid, signed_attributes, signature_oid, signature
    )


def _load_certificates(nodes: Sequence[Node]) -> list[x509.Certificate]:
    if len(nodes) > MAX_CERTIFICATES:
        raise _fail(f"more than {MAX_CERTIFICATES} certificates in the signature")
    loaded: list[x509.Certificate] = []
    for node in nodes:
        if node.tag != 0x30:  # other CertificateChoices (attribute certificates...) are ignored
            continue
        try:
            with warnings.catch_warnings():
                # A certificate that breaks RFC 5280 (e.g. a negative serial) only draws a
                # deprecation warning from cryptography today: from a peer, it is malformed.
                warnings.simplefilter("error", CryptographyDeprecationWarning)
                loaded.append(x509.load_der_x509_certificate(node.encoded))
        except _CERTIFICATE_LOAD_ERRORS as exc:
            raise _fail("a certificate in the signature is malformed") from exc
    return loaded


def _find_signer(info: _SignerInfo, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    for certificate in certificates:
        try:
            if info.issuer is not None:
                if (
                    certificate.serial_number == info.serial
                    and certificate.issuer.public_bytes() == info.issuer
                ):
                    return certificate
            else:
                identifier = certificate.extensions.get_extension_for_class(
                    x509.SubjectKeyIdentifier
                ).value.digest
                if info.key_identifier is not None and hmac.compare_digest(
                    identifier, info.key_identifier
                ):
                    return certificate
        except X509_ERRORS:
            continue
    raise _fail(
        "the signer's certificate is not in the signature", VerificationFailure.NO_CERTIFICATE
    )


def _read_signed_attributes(node: Node, econtent_type: str) -> tuple[bytes, float | None]:
    """(messageDigest, signingTime) from signed attributes, checked per RFC 5652 §5.3, §11."""
    seen: dict[str, list[Node]] = {}
    for attribute in der.children(node, 5):
        parts = der.children(der.expect(attribute, 0x30, "Attribute"), 6)
        if len(parts) != 2:
            raise _fail("malformed signed attribute")
        oid = der.read_oid(parts[0], "attrType")
        if oid in seen:
            raise _fail("a signed attribute appears twice (RFC 5652 §5.3)")
        seen[oid] = der.children(der.expect(parts[1], 0x31, "attrValues"), 7)
    for required in (OID_CONTENT_TYPE, OID_MESSAGE_DIGEST):
        values = seen.get(required)
        if values is None or len(values) != 1:
            raise _fail("signed attributes need one contentType and one messageDigest")
    if der.read_oid(seen[OID_CONTENT_TYPE][0], "contentType attribute") != econtent_type:
        raise _fail("the contentType attribute differs from eContentType")
    digest = der.expect(seen[OID_MESSAGE_DIGEST][0], 0x04, "messageDigest").content
    signing_time: float | None = None
    if OID_SIGNING_TIME in seen:
        times = seen[OID_SIGNING_TIME]
        if len(times) != 1:
            raise _fail("signingTime must have exactly one value")
        signing_time = der.read_time(times[0])
    return digest, signing_time


def _verify_signature_value(
    signer: x509.Certificate, info: _SignerInfo, signed: bytes, digest_hash: hashes.HashAlgorithm
) -> None:
    try:
        public_key = signer.public_key()
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if info.signature_oid in _ECDSA_SIGNATURES:
                algorithm = _ECDSA_SIGNATURES[info.signature_oid]
            elif info.signature_oid == OID_EC_PUBLIC_KEY:
                algorithm = digest_hash
            else:
                raise _fail(
                    "signature algorithm does not fit an EC key", VerificationFailure.UNSUPPORTED
                )
            public_key.verify(info.signature, signed, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey):
            if info.signature_oid in _RSA_SIGNATURES:
                algorithm = _RSA_SIGNATURES[info.signature_oid]
            elif info.signature_oid == OID_RSA_ENCRYPTION:
                algorithm = digest_hash
            else:
                raise _fail(
                    "signature algorithm does not fit an RSA key", VerificationFailure.UNSUPPORTED
                )
            public_key.verify(info.signature, signed, padding.PKCS1v15(), algorithm)
        else:
            raise _fail("unsupported signer key type", VerificationFailure.UNSUPPORTED)
    except InvalidSignature as exc:
        raise _fail("the signature does not verify", VerificationFailure.BAD_SIGNATURE) from exc
    except X509_ERRORS as exc:
        raise _fail("the signature cannot be checked", VerificationFailure.BAD_SIGNATURE) from exc


def verify_detached_untrusted(
    content: bytes,
    signature: bytes,
    trust_store: SignerTrustStore,
    *,
    now: float,
    max_signature_size: int = DEFAULT_MAX_SIGNATURE_SIZE,
) -> VerifiedSignature:
    """Verify a detached CMS SignedData (DER or BER) over ``content`` (RFC 5652 §5.6).

    Checks the message digest, the signature, and the signer's certificate path to
    ``trust_store`` at ``now``. Total: returns or raises :class:`SignatureError`.
    """
    if len(signature) > max_signature_size:
        raise _fail("the signature is too large", VerificationFailure.TOO_LARGE)
    try:
        return _verify_detached(content, signature, trust_store, now)
    except DerError as exc:
        raise _fail(f"malformed SignedData: {exc}") from exc
    except (IndexError, OverflowError, ValueError) as exc:
        # The DER reader bounds every size it converts; this keeps the function total should a
        # value from a peer still reach a conversion that refuses it (e.g. int-to-text limits).
        raise _fail("malformed SignedData") from exc


def _verify_detached(
    content: bytes, signature: bytes, trust_store: SignerTrustStore, now: float
) -> VerifiedSignature:
    econtent_type, certificate_nodes, info, digest_oids = _parse_signed_data(signature)
    digest_class = _DIGESTS.get(info.digest_oid)
    if digest_class is None:
        raise _fail("unsupported digest algorithm", VerificationFailure.UNSUPPORTED)
    if info.digest_oid not in digest_oids:
        raise _fail("the signer's digest algorithm is not listed in digestAlgorithms")
    digest = _hash(digest_class, content)
    signing_time: float | None = None
    if info.signed_attributes is not None:
        claimed, signing_time = _read_signed_attributes(info.signed_attributes, econtent_type)
        if not hmac.compare_digest(claimed, digest):
            raise _fail(
                "the content does not match the signed digest", VerificationFailure.BAD_SIGNATURE
            )
        signed = b"\x31" + info.signed_attributes.encoded[1:]  # RFC 5652 §5.4
    elif econtent_type == OID_DATA:
        signed = content
    else:
        raise _fail("signed attributes are required for this content type")
    certificates = _load_certificates(certificate_nodes)
    signer = _find_signer(info, certificates)
    _verify_signature_value(signer, info, signed, digest_class)
    others = [c for c in certificates if c is not signer]
    chain = trust_store.verify_path(signer, others, now=now)
    return VerifiedSignature(signer, chain, signing_time, hashlib.sha256(signed).digest())
