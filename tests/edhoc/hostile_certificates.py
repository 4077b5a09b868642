"""Certificates whose version field cryptography refuses, sent by the project's own EDHOC parties.

Issue 10 point 1: an x5chain (COSE header 33) whose TBSCertificate says version ``02 01 03`` (or
1, or 4) instead of ``02 01 02`` made cryptography raise ``x509.InvalidVersion``, which escaped the
EDHOC parser and the session cores. These helpers build such a certificate for a fixed key and a
party that sends it by value, so the tests drive the attack with ordinary Initiators/Responders.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from gateway.edhoc import (
    CipherSuite,
    Credential,
    CredentialLookup,
    CredentialTransfer,
    CredentialType,
    Curve,
    IdCred,
    Initiator,
    Method,
    Responder,
    cbor,
)
from gateway.edhoc.crypto import public_key_of
from gateway.session import EdhocInitiator, EdhocResponder

# Version values cryptography does not load: v2 (1), and two that X.509 does not define.
REFUSED_VERSIONS = (1, 3, 4)
_V3_VERSION_FIELD = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2, i.e. X.509 v3
_ISSUER_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # fixed signatures


def p256_certificate(private_key: bytes, name: str) -> bytes:
    """A well-formed v3 certificate (DER) for the P-256 key ``private_key``, signed with Ed25519."""
    key = ec.derive_private_key(int.from_bytes(private_key, "big"), ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")]))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365))
        .sign(_ISSUER_KEY, None)
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def with_version(der: bytes, version: int) -> bytes:
    """``der`` with its TBSCertificate version INTEGER replaced by ``version`` (one byte)."""
    assert der.count(_V3_VERSION_FIELD) == 1
    return der.replace(_V3_VERSION_FIELD, _V3_VERSION_FIELD[:-1] + bytes([version]))


def unchecked_x509_credential(der: bytes, private_key: bytes) -> Credential:
    """A P-256 X.509 credential holding ``der`` as is: the parser is bypassed on purpose, since
    it (rightly) refuses the very certificates an attacker sends."""
    return Credential(
        CredentialType.X509,
        cbor.encode_bstr(der),
        Curve.P256,
        public_key_of(Curve.P256, private_key),
        private_key=private_key,
    )


def _trust_nothing(_id_cred: IdCred) -> None:
    return None


def hostile_initiator(
    der: bytes, private_key: bytes, lookup: CredentialLookup | None = None
) -> Initiator:
    """An Initiator (method 3, suite 2) that sends ``der`` by value as ID_CRED_I."""
    return Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_2],
        c_i=b"\x37",
        credential=unchecked_x509_credential(der, private_key),
        credential_lookup=lookup or _trust_nothing,
        credential_transfer=CredentialTransfer.BY_VALUE,
    )


def hostile_responder(
    der: bytes, private_key: bytes, c_r: bytes, lookup: CredentialLookup | None = None
) -> Responder:
    """A Responder (suite 2) that sends ``der`` by value as ID_CRED_R."""
    return Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=c_r,
        credential=unchecked_x509_credential(der, private_key),
        credential_lookup=lookup or _trust_nothing,
        credential_transfer=CredentialTransfer.BY_VALUE,
    )


def hostile_initiator_factory(
    der: bytes, private_key: bytes, lookup: CredentialLookup
) -> Callable[[], EdhocInitiator]:
    """A session-layer handshake factory for a device that sends ``der`` in message_3."""
    return lambda: EdhocInitiator(hostile_initiator(der, private_key, lookup))


def hostile_responder_factory(
    der: bytes, private_key: bytes, lookup: CredentialLookup
) -> Callable[[bytes], EdhocResponder]:
    """A session-layer handshake factory for a fake gateway that sends ``der`` in message_2."""
    return lambda connection_id: EdhocResponder(
        hostile_responder(der, private_key, connection_id, lookup)
    )
