"""Authentication methods and cipher suites (RFC 9528 §3.2, §3.6, §10.2).

A cipher suite fixes the EDHOC AEAD, hash, MAC length, ECDH curve and signature algorithm. This
implementation supports suites 0 and 4 (X25519, EdDSA) and 2 and 3 (P-256, ES256; mandatory to
implement for constrained devices, §8).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class Method(IntEnum):
    """RFC 9528 §3.2, Figure 4: how the Initiator and the Responder each authenticate."""

    SIGNATURE_SIGNATURE = 0  # Initiator signature key, Responder signature key
    SIGNATURE_STATIC_DH = 1  # Initiator signature key, Responder static DH key
    STATIC_DH_SIGNATURE = 2  # Initiator static DH key, Responder signature key
    STATIC_DH_STATIC_DH = 3  # both static DH keys

    @property
    def initiator_signs(self) -> bool:
        """True when the Initiator authenticates with a signature."""
        return self in (Method.SIGNATURE_SIGNATURE, Method.SIGNATURE_STATIC_DH)

    @property
    def responder_signs(self) -> bool:
        """True when the Responder authenticates with a signature."""
        return self in (Method.SIGNATURE_SIGNATURE, Method.STATIC_DH_SIGNATURE)


class Curve(Enum):
    """Key types an authentication credential or an ephemeral key can hold."""

    X25519 = "X25519"  # COSE crv 4 (OKP): ECDH
    ED25519 = "Ed25519"  # COSE crv 6 (OKP): EdDSA
    P256 = "P-256"  # COSE crv 1 (EC2): ECDH and ES256 alike


class Aead(IntEnum):
    """COSE algorithm identifiers of the EDHOC AEADs used by the supported suites."""

    AES_CCM_16_64_128 = 10
    AES_CCM_16_128_128 = 30
    CHACHA20_POLY1305 = 24


class Signature(IntEnum):
    """COSE algorithm identifiers of the signature algorithms."""

    EDDSA = -8
    ES256 = -7


@dataclass(frozen=True)
class SuiteParameters:
    """Everything a cipher suite decides (RFC 9528 §3.6)."""

    aead: Aead
    hash_length: int  # SHA-256 for every supported suite
    mac_length: int  # EDHOC MAC length (static DH)
    ecdh_curve: Curve
    signature: Signature
    key_length: int
    iv_length: int
    tag_length: int

    @property
    def signature_curve(self) -> Curve:
        """The key type a signature credential must have under this suite."""
        return Curve.ED25519 if self.signature is Signature.EDDSA else Curve.P256

    def authentication_curve(self, signs: bool) -> Curve:
        """The key type an authentication credential must hold: a signature key for a party
        that signs, a static DH key for one that MACs (RFC 9528 §3.2)."""
        return self.signature_curve if signs else self.ecdh_curve

    @property
    def public_key_length(self) -> int:
        """Length of G_X / G_Y: the x-coordinate (P-256) or the u-coordinate (X25519)."""
        return 32


class CipherSuite(IntEnum):
    """The supported EDHOC cipher suites, by their registry value."""

    SUITE_0 = 0  # AES-CCM-16-64-128, SHA-256, 8, X25519, EdDSA
    SUITE_2 = 2  # AES-CCM-16-64-128, SHA-256, 8, P-256, ES256
    SUITE_3 = 3  # AES-CCM-16-128-128, SHA-256, 16, P-256, ES256
    SUITE_4 = 4  # ChaCha20/Poly1305, SHA-256, 16, X25519, EdDSA

    @property
    def parameters(self) -> SuiteParameters:
        """The algorithms this suite selects."""
        return _PARAMETERS[self]


_PARAMETERS = {
    CipherSuite.SUITE_0: SuiteParameters(
        Aead.AES_CCM_16_64_128, 32, 8, Curve.X25519, Signature.EDDSA, 16, 13, 8
    ),
    CipherSuite.SUITE_2: SuiteParameters(
        Aead.AES_CCM_16_64_128, 32, 8, Curve.P256, Signature.ES256, 16, 13, 8
    ),
    CipherSuite.SUITE_3: SuiteParameters(
        Aead.AES_CCM_16_128_128, 32, 16, Curve.P256, Signature.ES256, 16, 13, 16
    ),
    CipherSuite.SUITE_4: SuiteParameters(
        Aead.CHACHA20_POLY1305, 32, 16, Curve.X25519, Signature.EDDSA, 32, 12, 16
    ),
}

SUPPORTED_SUITES = frozenset(int(suite) for suite in CipherSuite)
