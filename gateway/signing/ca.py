"""The gateway's own certificate authority for signing on behalf of devices (RFC 3923 §6).

Theory of operation. The gateway holds one P-256 CA key. At enrollment it gives each device identity
a P-256 key and an S/MIME end-entity certificate (RFC 8551 §4.4) whose subjectAltName names the
identity the way RFC 3923 §6.3 asks: an ``im:`` and a ``pres:`` URI (uniformResourceIdentifier, one
GeneralName each) and the XMPP address as an ``id-on-xmppAddr`` otherName (OID 1.3.6.1.5.5.7.8.5, a
UTF8String, RFC 6120 §13.7.1.4). The subject DN carries the bare JID for people reading it, but
receivers match names only from the subjectAltName.

Certificates are renewed by issuing a new one for the same (or a fresh) key. The CA key is rotated
by creating a new CA key and certificate under the same subject name (the issuer is told apart by
its key identifier): certificates issued before the rotation keep verifying because the previous CA
certificates stay in the trust bundle until they expire (:meth:`CertificateAuthority.trust_bundle`);
renewals are issued under the new key. Nothing here reads the clock: every operation takes ``now``
(seconds since the epoch).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.impp.address import ImppAddress
from gateway.impp.errors import AddressError
from gateway.signing.cms import X509_ERRORS, SignerTrustStore
from gateway.signing.errors import SigningError
from gateway.signing.keyfiles import read_protected_file, write_protected_file
from gateway.signing.keywrap import KeyEncryptionKey, is_sealed_key

__all__ = [
    "DEFAULT_CA_VALIDITY",
    "DEFAULT_DEVICE_CERT_VALIDITY",
    "ID_ON_XMPPADDR",
    "CaError",
    "CertificateAuthority",
    "DeviceCredential",
    "PassphraseError",
    "certificate_addresses",
    "read_credential",
    "self_signed_ca_certificate",
    "write_credential",
]

ID_ON_XMPPADDR = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.5")  # RFC 6120 §13.7.1.4

DEFAULT_CA_VALIDITY = datetime.timedelta(days=10 * 365)  # rotated well before, by the operator
DEFAULT_DEVICE_CERT_VALIDITY = datetime.timedelta(days=365)  # renewed yearly
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(minutes=5)  # notBefore is backdated by this much
DEFAULT_CA_NAME = "trio gateway S/MIME CA"

CA_KEY_FILE = "ca-key.pem"
CA_CERT_FILE = "ca-cert.pem"
CA_PREVIOUS_FILE = "ca-previous.pem"  # earlier CA certificates, still trusted until they expire


class CaError(SigningError):
    """The CA was misused or its files are unusable (local, never a peer's fault)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, remote=False)


class PassphraseError(CaError):
    """A key file needs a passphrase that was not given, or the one given does not open it."""


def _utc(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, datetime.UTC)


def _der_utf8_string(text: str) -> bytes:
    """DER of an ASN.1 UTF8String (tag 12), the value type of id-on-xmppAddr."""
    body = text.encode("utf-8")
    length = len(body)
    if length < 0x80:
        return bytes([0x0C, length]) + body
    length_bytes = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(length_bytes)]) + length_bytes + body


def _bare(address: ImppAddress) -> ImppAddress:
    return ImppAddress(address.local, address.domain)


@dataclass(frozen=True)
class DeviceCredential:
    """A device identity's signing key and S/MIME certificate, plus the CA certificate above it."""

    address: ImppAddress
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def expires(self) -> float:
        """When the certificate stops being valid (seconds since the epoch): renew before."""
        return self.certificate.not_valid_after_utc.timestamp()

    def needs_renewal(self, now: float, *, margin: datetime.timedelta) -> bool:
        """True when the certificate expires within ``margin`` of ``now``."""
        return self.expires() - margin.total_seconds() <= now


def certificate_addresses(certificate: x509.Certificate) -> tuple[ImppAddress, ...]:
    """The bare IMPP/XMPP addresses a certificate names in its subjectAltName (RFC 3923 §6.3).

    Reads ``id-on-xmppAddr`` otherNames and ``im:``/``pres:`` URIs; ignores the subject DN, as
    RFC 3923 §6.3 says, and skips entries that are not valid addresses.
    """
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except X509_ERRORS:
        return ()
    texts: list[str] = []
    for name in extension.value:
        if isinstance(name, x509.OtherName) and name.type_id == ID_ON_XMPPADDR:
            text = _decode_der_utf8_string(name.value)
            if text is not None:
                texts.append(text)
        elif isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith(
            ("im:", "pres:")
        ):
            texts.append(name.value)
    found: list[ImppAddress] = []
    for text in texts:
        try:
            address = _bare(ImppAddress.parse(text))
        except AddressError:
            continue
        if address not in found:
            found.append(address)
    return tuple(found)


def _decode_der_utf8_string(value: bytes) -> str | None:
    """Decode one DER UTF8String; ``None`` if it is anything else (never raises)."""
    if len(value) < 2 or value[0] != 0x0C:
        return None
    first = value[1]
    if first < 0x80:
        length, start = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            return None
        length, start = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if start + length != len(value):
        return None
    try:
        return value[start:].decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class CertificateAuthority:
    """The gateway's P-256 CA: the current key and certificate plus earlier CA certificates.

    Immutable: :meth:`rotate` and :meth:`prune` return a new authority; :meth:`save` persists it.
    """

    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate
    previous_certificates: tuple[x509.Certificate, ...] = ()

    @classmethod
    def create(
        cls,
        *,
        now: float,
        name: str = DEFAULT_CA_NAME,
        validity: datetime.timedelta = DEFAULT_CA_VALIDITY,
    ) -> CertificateAuthority:
        """A new CA with a fresh P-256 key and a self-signed certificate valid from ``now``."""
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(key, _self_signed_ca(key, name, now, validity))

    @property
    def name(self) -> str:
        """The CA's common name."""
        attributes = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attributes[0].value) if attributes else self.certificate.subject.rfc4514_string()

    def trust_bundle(self) -> tuple[x509.Certificate, ...]:
        """The CA certificates a verifier must trust: the current one first, then earlier ones."""
        return (self.certificate, *self.previous_certificates)

    def trust_store(self) -> SignerTrustStore:
        """A :class:`~gateway.signing.cms.SignerTrustStore` of :meth:`trust_bundle`."""
        return SignerTrustStore(self.trust_bundle())

    def rotate(
        self, *, now: float, validity: datetime.timedelta = DEFAULT_CA_VALIDITY
    ) -> CertificateAuthority:
        """A new CA key and certificate under the same name; the old certificate stays trusted.

        Certificates issued under the old key keep verifying (through :meth:`trust_bundle`) until
        they or the old CA certificate expire; renew devices to move them to the new key.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _self_signed_ca(key, self.name, now, validity)
        return CertificateAuthority(
            key, certificate, (self.certificate, *self.previous_certificates)
        )

    def prune(self, *, now: float) -> CertificateAuthority:
        """Drop earlier CA certificates expired at ``now`` (nothing they signed is valid now)."""
        moment = _utc(now)
        kept = tuple(c for c in self.previous_certificates if c.not_valid_after_utc > moment)
        return CertificateAuthority(self.private_key, self.certificate, kept)

    def issue(
        self,
        address: ImppAddress,
        public_key: ec.EllipticCurvePublicKey,
        *,
        now: float,
        validity: datetime.timedelta = DEFAULT_DEVICE_CERT_VALIDITY,
    ) -> x509.Certificate:
        """An S/MIME signing certificate for ``address`` (its bare JID) and ``public_key``.

        The subjectAltName holds ``im:`` and ``pres:`` URIs and the id-on-xmppAddr otherName
        (RFC 3923 §6.3, RFC 6120 §13.7.1.4). The certificate never outlives the CA certificate.
        """
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise CaError("device keys must be P-256 (secp256r1) public keys")
        if not address.local:
            raise CaError("a device identity needs a local part (user@domain)")
        bare = _bare(address)
        start = _utc(now) - CLOCK_SKEW_ALLOWANCE
        end = min(_utc(now) + validity, self.certificate.not_valid_after_utc)
        if end <= _utc(now):
            raise CaError("the CA certificate has expired; rotate the CA before issuing")
        ca_key_id = x509.SubjectKeyIdentifier.from_public_key(self.private_key.public_key())
        names: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(bare.im_uri),
            x509.UniformResourceIdentifier(bare.pres_uri),
            x509.OtherName(ID_ON_XMPPADDR, _der_utf8_string(bare.jid)),
        ]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, bare.jid)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            )
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
                critical=False,
            )
        )
        return builder.sign(self.private_key, hashes.SHA256())

    def enroll(
        self,
        address: ImppAddress,
        *,
        now: float,
        validity: datetime.timedelta = DEFAULT_DEVICE_CERT_VALIDITY,
    ) -> DeviceCredential:
        """A fresh P-256 key and certificate for a device identity (its enrollment)."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self.issue(address, key.public_key(), now=now, validity=validity)
        return DeviceCredential(_bare(address), key, certificate, (self.certificate,))

    def renew(
        self,
        credential: DeviceCredential,
        *,
        now: float,
        new_key: bool = False,
        validity: datetime.timedelta = DEFAULT_DEVICE_CERT_VALIDITY,
    ) -> DeviceCredential:
        """A new certificate for the same identity, under the current CA key.

        Keeps the device's signing key unless ``new_key`` (then a fresh P-256 key is made).
        """
        key = ec.generate_private_key(ec.SECP256R1()) if new_key else credential.private_key
        certificate = self.issue(credential.address, key.public_key(), now=now, validity=validity)
        return DeviceCredential(credential.address, key, certificate, (self.certificate,))

    def save(self, directory: str | os.PathLike[str], *, passphrase: bytes | None = None) -> None:
        """Write the CA key and certificates into ``directory``, each file mode 0600."""
        folder = Path(directory)
        write_protected_file(folder / CA_KEY_FILE, _private_key_pem(self.private_key, passphrase))
        write_protected_file(
            folder / CA_CERT_FILE, self.certificate.public_bytes(serialization.Encoding.PEM)
        )
        write_protected_file(
            folder / CA_PREVIOUS_FILE,
            b"".join(
                c.public_bytes(serialization.Encoding.PEM) for c in self.previous_certificates
            ),
        )

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], *, passphrase: bytes | None = None
    ) -> CertificateAuthority:
        """Read a CA written by :meth:`save`; checks the key matches the certificate."""
        folder = Path(directory)
        key = _load_private_key(read_protected_file(folder / CA_KEY_FILE), passphrase)
        certificate = _load_single_certificate(read_protected_file(folder / CA_CERT_FILE))
        previous_path = folder / CA_PREVIOUS_FILE
        previous: tuple[x509.Certificate, ...] = ()
        if previous_path.exists():
            previous = _load_certificates(read_protected_file(previous_path))
        _check_key_matches(key, certificate)
        return cls(key, certificate, previous)


def _self_signed_ca(
    key: ec.EllipticCurvePrivateKey, name: str, now: float, validity: datetime.timedelta
) -> x509.Certificate:
    return self_signed_ca_certificate(key, name, now=now, validity=validity)


def self_signed_ca_certificate(
    key: ec.EllipticCurvePrivateKey, name: str, *, now: float, validity: datetime.timedelta
) -> x509.Certificate:
    """A self-signed P-256 CA certificate: ``CN=name``, ``CA:TRUE, pathlen:0``, keyCertSign.

    Valid from five minutes before ``now`` (clock skew) for ``validity``; carries subject and
    authority key identifiers. The one CA builder of the project: the gateway's S/MIME CA and
    the test PKI of the private Prosody (``device_sim/domain_server.py``) both use it.
    """
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_utc(now) - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(_utc(now) + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(key_id, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(key_id), critical=False
        )
    )
    return builder.sign(key, hashes.SHA256())


def _private_key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _load_private_key(data: bytes, passphrase: bytes | None) -> ec.EllipticCurvePrivateKey:
    encrypted = b"ENCRYPTED PRIVATE KEY" in data[:100]
    if encrypted and not passphrase:
        raise PassphraseError("the private key is encrypted, and no passphrase was given")
    if not encrypted and passphrase:
        raise PassphraseError("the private key is not encrypted, but a passphrase was given")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise PassphraseError("the passphrase does not open the private key") from exc
        raise CaError("cannot load the private key (not a PEM key)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CaError("the private key is not a P-256 key")
    return key


def _load_certificates(data: bytes) -> tuple[x509.Certificate, ...]:
    if not data.strip():
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except ValueError as exc:
        raise CaError("cannot load the certificates (not PEM)") from exc


def _load_single_certificate(data: bytes) -> x509.Certificate:
    certificates = _load_certificates(data)
    if not certificates:
        raise CaError("the certificate file holds no certificate")
    return certificates[0]


def _check_key_matches(key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
    if certificate.public_key() != key.public_key():
        raise CaError("the private key does not match the certificate")


def write_credential(
    credential: DeviceCredential,
    key_path: str | os.PathLike[str],
    certificate_path: str | os.PathLike[str],
    *,
    passphrase: bytes | None = None,
    kek: KeyEncryptionKey | None = None,
) -> None:
    """Write a device credential: the key, and the certificate followed by its chain (0600).

    With ``kek`` the key is sealed under the CA's key-encryption key for this identity
    (:mod:`gateway.signing.keywrap`, what ``impp-gateway ca enroll`` does); else with
    ``passphrase`` it is PKCS #8 encrypted; else it is written in the clear (tests, demos).
    """
    if kek is not None:
        key_file = kek.seal_private_key(credential.private_key, credential.address)
    else:
        key_file = _private_key_pem(credential.private_key, passphrase)
    write_protected_file(key_path, key_file)
    write_protected_file(
        certificate_path,
        b"".join(
            c.public_bytes(serialization.Encoding.PEM)
            for c in (credential.certificate, *credential.chain)
        ),
    )


def read_credential(
    key_path: str | os.PathLike[str],
    certificate_path: str | os.PathLike[str],
    *,
    passphrase: bytes | None = None,
    kek: KeyEncryptionKey | None = None,
) -> DeviceCredential:
    """Read a credential written by :func:`write_credential`; its address comes from the cert.

    A sealed key file needs the ``kek`` it was sealed under (and opens only for the identity
    the certificate names); a PKCS #8 one needs its ``passphrase`` if it was encrypted.
    """
    certificates: Sequence[x509.Certificate] = _load_certificates(
        read_protected_file(certificate_path)
    )
    if not certificates:
        raise CaError(f"{certificate_path} holds no certificate")
    addresses = certificate_addresses(certificates[0])
    if not addresses:
        raise CaError(f"{certificate_path} names no IMPP address in its subjectAltName")
    key_file = read_protected_file(key_path)
    if is_sealed_key(key_file):
        if kek is None:
            raise CaError(
                f"{key_path} is sealed under the CA's device key-encryption key "
                "(device-kek.pem in the CA directory); load it and pass it as kek"
            )
        key = kek.open_private_key(key_file, addresses[0], what=str(key_path))
        if not isinstance(key.curve, ec.SECP256R1):
            raise CaError(f"{key_path} does not hold a P-256 key")
    else:
        key = _load_private_key(key_file, passphrase)
    _check_key_matches(key, certificates[0])
    return DeviceCredential(addresses[0], key, certificates[0], tuple(certificates[1:]))
