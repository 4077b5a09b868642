"""Signing on behalf of devices (RFC 3923): the gateway's CA, CMS/S-MIME, ``<e2e/>`` checks.

:class:`CertificateAuthority` issues each device identity a P-256 key and S/MIME certificate;
:class:`OnBehalfSigner` signs a device's Message/CPIM or PIDF object (:mod:`gateway.impp`) into
``<body/>`` + ``<e2e/>``; :class:`E2eVerifier` checks inbound ``<e2e/>`` signatures and answers with
one :class:`SignatureStatus`. Cores are sans-IO (time is ``now``); the CA's ``save``/``load``,
the credential files and :mod:`gateway.signing.keyfiles` touch files, always with mode 0600;
device keys at rest are sealed under the CA's :class:`KeyEncryptionKey`.

``__all__`` holds what a user of the package needs; the DER reader (:mod:`gateway.signing.der`),
the multipart parser and the other internals stay importable from their modules.
"""

from __future__ import annotations

from gateway.signature_status import SignatureStatus
from gateway.signing.ca import (
    CaError,
    CertificateAuthority,
    DeviceCredential,
    certificate_addresses,
    read_credential,
    write_credential,
)
from gateway.signing.cms import (
    SignatureError,
    SignerTrustStore,
    VerificationFailure,
    VerifiedSignature,
    sign_detached,
    verify_detached_untrusted,
)
from gateway.signing.e2e import (
    E2E_NAMESPACE,
    E2eVerifier,
    VerificationResult,
    VerifierStatistics,
)
from gateway.signing.errors import SigningError
from gateway.signing.keyfiles import KeyFileError, read_protected_file, write_protected_file
from gateway.signing.keywrap import KeyEncryptionKey, KeyWrapError
from gateway.signing.on_behalf import OnBehalfSigner, verify_inbound
from gateway.signing.smime import (
    VerifiedEntity,
    sign_multipart,
    verify_multipart_signed_untrusted,
)

__all__ = [
    "E2E_NAMESPACE",
    "CaError",
    "CertificateAuthority",
    "DeviceCredential",
    "E2eVerifier",
    "KeyEncryptionKey",
    "KeyFileError",
    "KeyWrapError",
    "OnBehalfSigner",
    "SignatureError",
    "SignatureStatus",
    "SignerTrustStore",
    "SigningError",
    "VerificationFailure",
    "VerificationResult",
    "VerifiedEntity",
    "VerifiedSignature",
    "VerifierStatistics",
    "certificate_addresses",
    "read_credential",
    "read_protected_file",
    "sign_detached",
    "sign_multipart",
    "verify_detached_untrusted",
    "verify_inbound",
    "verify_multipart_signed_untrusted",
    "write_credential",
    "write_protected_file",
]
