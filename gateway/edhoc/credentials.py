"""Authentication credentials and their identifiers (RFC 9528 §3.5; RFC 8392; RFC 9360; RFC 9052).

A credential is CRED_x exactly as it enters the transcript: for a CWT Claims Set (CCS) the encoded
claims map, whose 'cnf' claim (8) holds a COSE_Key (1); for an X.509 certificate the CBOR byte
string of its DER encoding (§3.5.2). ID_CRED_x names it: ``{4: kid}`` for a CCS by reference,
``{14: CCS}`` ('kccs') for a CCS by value, ``{34: [alg, hash]}`` ('x5t') for a certificate by
reference and ``{33: DER}`` ('x5chain', one certificate) by value.

The credential lookup callback receives the parsed :class:`IdCred` and returns the trusted
:class:`Credential` (or several, when a kid is shared) or ``None`` (unknown or revoked): trust
is the application's decision, a credential sent by value is never trusted just because it
arrived.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519

from gateway.edhoc import cbor
from gateway.edhoc.cbor import CborValue, is_int
from gateway.edhoc.crypto import public_key_of
from gateway.edhoc.errors import LocalEdhocError, MessageDecodeError
from gateway.edhoc.suites import Curve

# COSE header parameters (RFC 9052 §3.1, RFC 9360 §2, RFC 9528 §10.6).
KID = 4
X5CHAIN = 33
X5T = 34
KCCS = 14
# COSE algorithms for x5t hashes (RFC 9053 §2.2.1 and the COSE registry).
SHA256_64 = -15
SHA256 = -16
# CWT claims (RFC 8392 §3.1; RFC 8747 §3.1) and COSE_Key parameters (RFC 9052 §7.1, RFC 9053 §7).
CLAIM_SUB = 2
CLAIM_CNF = 8
CNF_COSE_KEY = 1
KEY_KTY, KEY_KID, KEY_CRV, KEY_X, KEY_Y = 1, 2, -1, -2, -3
KTY_OKP, KTY_EC2 = 1, 2
_CRV = {1: Curve.P256, 4: Curve.X25519, 6: Curve.ED25519}
_CRV_VALUE = {curve: value for value, curve in _CRV.items()}


class CredentialType(Enum):
    """What kind of credential CRED_x is."""

    CCS = "ccs"
    X509 = "x509"


class CredentialTransfer(Enum):
    """Whether ID_CRED_x refers to the credential or carries it (RFC 9528 §3.5.3)."""

    BY_REFERENCE = "by-reference"
    BY_VALUE = "by-value"


@dataclass(frozen=True)
class Credential:
    """CRED_x with its public key; ``private_key`` is set only for our own credential."""

    type: CredentialType
    encoded: bytes  # CRED_x as it enters the transcript (CBOR item)
    curve: Curve
    public_key: bytes  # 32 bytes (X25519/Ed25519) or x || y (P-256)
    kid: bytes | None = None
    subject: str | None = None
    private_key: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_ccs(cls, encoded: bytes, *, private_key: bytes | None = None) -> Credential:
        """Our own (or a registered) CCS credential; raises :class:`LocalEdhocError`."""
        try:
            credential = parse_ccs_untrusted(encoded)
        except MessageDecodeError as exc:
            raise LocalEdhocError(f"invalid CCS: {exc}") from exc
        return credential.with_private_key(private_key) if private_key else credential

    @classmethod
    def from_x509(cls, der: bytes, *, private_key: bytes | None = None) -> Credential:
        """An X.509 credential from its DER encoding; raises :class:`LocalEdhocError`."""
        try:
            credential = parse_x509_untrusted(der)
        except MessageDecodeError as exc:
            raise LocalEdhocError(f"invalid certificate: {exc}") from exc
        return credential.with_private_key(private_key) if private_key else credential

    @classmethod
    def new_ccs(
        cls, *, curve: Curve, private_key: bytes, kid: bytes, subject: str = ""
    ) -> Credential:
        """Build a CCS with a COSE_Key in 'cnf' for ``private_key`` (enrollment, tests)."""
        public_key = public_key_of(curve, private_key)
        cose_key: dict[int, object] = {KEY_KTY: KTY_OKP if curve is not Curve.P256 else KTY_EC2}
        cose_key[KEY_KID] = kid
        cose_key[KEY_CRV] = _CRV_VALUE[curve]
        cose_key[KEY_X] = public_key[:32]
        if curve is Curve.P256:
            cose_key[KEY_Y] = public_key[32:]
        encoded = cbor.encode({CLAIM_SUB: subject, CLAIM_CNF: {CNF_COSE_KEY: cose_key}})
        return cls.from_ccs(encoded, private_key=private_key)

    def with_private_key(self, private_key: bytes) -> Credential:
        """This credential holding its private key; the key must match the public key."""
        try:
            derived = public_key_of(self.curve, private_key)
        except (ValueError, TypeError, LocalEdhocError) as exc:
            raise LocalEdhocError("private key does not suit the credential") from exc
        if derived != self.public_key:
            raise LocalEdhocError("private key does not match the credential's public key")
        return replace(self, private_key=private_key)

    def public(self) -> Credential:
        """The same credential without the private key (itself when it holds none: it is frozen)."""
        return self if self.private_key is None else replace(self, private_key=None)

    @property
    def der(self) -> bytes:
        """The certificate's DER bytes (X.509 credentials only)."""
        if self.type is not CredentialType.X509:
            raise LocalEdhocError("not an X.509 credential")
        der = cbor.decode_single_untrusted(self.encoded)
        if not isinstance(der, bytes):
            raise LocalEdhocError("an X.509 credential must hold the certificate as a bstr")
        return der

    def id_cred(self, transfer: CredentialTransfer) -> bytes:
        """ID_CRED_x as a COSE header map (RFC 9528 §3.5.3), encoded."""
        if self.type is CredentialType.CCS:
            if transfer is CredentialTransfer.BY_VALUE:
                return cbor.encode({KCCS: None})[:-1] + self.encoded
            if self.kid is None:
                raise LocalEdhocError("a CCS sent by reference needs a kid")
            return cbor.encode({KID: self.kid})
        if transfer is CredentialTransfer.BY_VALUE:
            return cbor.encode({X5CHAIN: self.der})
        return cbor.encode({X5T: [SHA256_64, hashlib.sha256(self.der).digest()[:8]]})


@dataclass(frozen=True)
class IdCred:
    """A received ID_CRED_x: what the lookup callback gets to find the trusted credential."""

    encoded: bytes  # the header map as it enters context_2 / context_3
    kid: bytes | None = None
    x5t: tuple[int, bytes] | None = None  # (hash algorithm, hash value)
    credential: Credential | None = None  # sent by value ('kccs' or a one-certificate 'x5chain')

    @property
    def by_value(self) -> bool:
        """True when the peer sent its credential by value."""
        return self.credential is not None

    def matches(self, candidate: Credential) -> bool:
        """True when ``candidate`` is the credential this identifier names."""
        if self.credential is not None:
            return self.credential.encoded == candidate.encoded
        if self.x5t is not None:
            if candidate.type is not CredentialType.X509:
                return False
            digest = hashlib.sha256(candidate.der).digest()
            algorithm, value = self.x5t
            return value == (digest[:8] if algorithm == SHA256_64 else digest)
        return candidate.kid is not None and candidate.kid == self.kid


CredentialLookup = Callable[[IdCred], Credential | Sequence[Credential] | None]


def _require_bytes(value: CborValue, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise MessageDecodeError(f"{what} must be a byte string")
    return value


def parse_cose_key_untrusted(key: CborValue) -> tuple[Curve, bytes, bytes | None]:
    """(curve, public key, kid) from a COSE_Key map; P-256 keys need x and y."""
    if not isinstance(key, dict):
        raise MessageDecodeError("COSE_Key must be a map")
    kty, crv = key.get(KEY_KTY), key.get(KEY_CRV)
    if not is_int(kty) or not is_int(crv) or crv not in _CRV:
        raise MessageDecodeError("COSE_Key with an unsupported kty or crv")
    curve = _CRV[crv]
    if (kty == KTY_EC2) != (curve is Curve.P256) or kty not in (KTY_OKP, KTY_EC2):
        raise MessageDecodeError("COSE_Key kty does not match its curve")
    x = _require_bytes(key.get(KEY_X), "COSE_Key x")
    if len(x) != 32:
        raise MessageDecodeError("COSE_Key x must be 32 bytes")
    public_key = x
    if curve is Curve.P256:
        y = _require_bytes(key.get(KEY_Y), "COSE_Key y")
        if len(y) != 32:
            raise MessageDecodeError("COSE_Key y must be 32 bytes")
        public_key = x + y
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + public_key)
        except ValueError as exc:
            raise MessageDecodeError("COSE_Key is not a P-256 point") from exc
    kid = key.get(KEY_KID)
    if kid is not None and not isinstance(kid, bytes):
        raise MessageDecodeError("COSE_Key kid must be a byte string")
    return curve, public_key, kid


def parse_ccs_untrusted(encoded: bytes) -> Credential:
    """A CCS credential (RFC 8392 claims map with a 'cnf' COSE_Key, RFC 9528 §3.5.3.1)."""
    claims = cbor.decode_single_untrusted(encoded)
    if not isinstance(claims, dict):
        raise MessageDecodeError("CCS must be a map")
    cnf = claims.get(CLAIM_CNF)
    if not isinstance(cnf, dict) or CNF_COSE_KEY not in cnf:
        raise MessageDecodeError("CCS without a cnf COSE_Key")
    curve, public_key, kid = parse_cose_key_untrusted(cnf[CNF_COSE_KEY])
    subject = claims.get(CLAIM_SUB)
    if subject is not None and not isinstance(subject, str):
        raise MessageDecodeError("CCS sub claim must be text")
    return Credential(CredentialType.CCS, encoded, curve, public_key, kid=kid, subject=subject)


def parse_x509_untrusted(der: bytes) -> Credential:
    """An X.509 credential; its public key (Ed25519, X25519 or P-256) is read with cryptography.

    Raises only :class:`MessageDecodeError`. cryptography's certificate loader is a parser of
    hostile bytes whose exception set is not part of its API: besides ``ValueError`` it raises
    ``x509.InvalidVersion`` (an ``Exception``, for a version field other than v1 or v3), and
    reading the subject raises ``TypeError`` for a mistyped attribute. So every ``Exception``
    from its calls is the peer's fault here, and nothing else runs inside those ``try`` blocks.
    """
    try:
        certificate = x509.load_der_x509_certificate(der)
        key = certificate.public_key()
    except UnsupportedAlgorithm as exc:  # e.g. an unknown key algorithm or curve OID
        raise MessageDecodeError("certificate key algorithm not supported") from exc
    except Exception as exc:  # ValueError, x509.InvalidVersion, ...: see the docstring
        raise MessageDecodeError("not a usable DER X.509 certificate") from exc
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    if isinstance(key, ed25519.Ed25519PublicKey):
        curve, public_key = Curve.ED25519, key.public_bytes(*raw)
    elif isinstance(key, x25519.X25519PublicKey):
        curve, public_key = Curve.X25519, key.public_bytes(*raw)
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        numbers = key.public_numbers()
        curve = Curve.P256
        public_key = numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    else:
        raise MessageDecodeError("certificate key is not Ed25519, X25519 or P-256")
    try:
        subject = certificate.subject.rfc4514_string()
    except Exception:  # ValueError, TypeError: an unreadable name is only a missing label
        subject = None
    return Credential(
        CredentialType.X509, cbor.encode_bstr(der), curve, public_key, subject=subject
    )


def parse_id_cred_untrusted(item: cbor.Item) -> IdCred:
    """ID_CRED_x from PLAINTEXT_2/3: a header map, or the compact kid form (§3.5.3.2)."""
    value = item.value
    if isinstance(value, bytes) or is_int(value):
        if isinstance(value, bytes) and len(value) == 1 and _is_one_byte_int(value[0]):
            raise MessageDecodeError("kid that is a one-byte integer must be sent as the integer")
        kid = item.raw if is_int(value) else value
        assert isinstance(kid, bytes)
        return IdCred(cbor.encode({KID: kid}), kid=kid)
    if not isinstance(value, dict):
        raise MessageDecodeError("ID_CRED must be a map, a byte string or a one-byte integer")
    if list(value) == [KID]:
        raise MessageDecodeError("ID_CRED {4: kid} must use the compact encoding")
    if KID in value:
        raise MessageDecodeError("ID_CRED with kid and other parameters is not supported")
    if X5T in value:
        x5t = value[X5T]
        if (
            not isinstance(x5t, list)
            or len(x5t) != 2
            or x5t[0] not in (SHA256_64, SHA256)
            or not is_int(x5t[0])
            or not isinstance(x5t[1], bytes)
            or len(x5t[1]) != (8 if x5t[0] == SHA256_64 else 32)
        ):
            raise MessageDecodeError("unsupported x5t")
        return IdCred(item.raw, x5t=(x5t[0], x5t[1]))
    if KCCS in value:
        ccs = value[KCCS]
        if not isinstance(ccs, dict):
            raise MessageDecodeError("kccs must be a CCS map")
        # The CCS bytes as sent: the map follows the one-byte map head and the one-byte label.
        if len(value) != 1:
            raise MessageDecodeError("kccs must be alone in ID_CRED")
        return IdCred(item.raw, credential=parse_ccs_untrusted(item.raw[2:]))
    if X5CHAIN in value:
        der = value[X5CHAIN]
        if not isinstance(der, bytes) or len(value) != 1:
            raise MessageDecodeError("x5chain must hold one certificate, alone in ID_CRED")
        return IdCred(item.raw, credential=parse_x509_untrusted(der))
    raise MessageDecodeError("ID_CRED with no supported header parameter")


def _is_one_byte_int(byte: int) -> bool:
    return byte <= 0x17 or 0x20 <= byte <= 0x37
