"""IMPP objects for the gateway: addresses, Message/CPIM, PIDF, XMPP <-> CPIM/PIDF mappings.

Sans-IO: every function takes and returns values; nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from gateway.impp.address import ImppAddress, cpim_to_jid, jid_to_cpim
from gateway.impp.cpim import (
    CPIM_HEADERS_NS,
    DEFAULT_MAX_CPIM_HEADERS,
    DEFAULT_MAX_CPIM_LINE,
    DEFAULT_MAX_CPIM_SIZE,
    CpimAddress,
    CpimHeader,
    CpimMessage,
    Subject,
    escape_header_text,
    format_rfc3339,
    parse_cpim_untrusted,
    parse_rfc3339,
    unescape_header_text,
)
from gateway.impp.errors import AddressError, CpimError, ImppError, MappingError, PidfError
from gateway.impp.mapping_message import cpim_to_messages, message_to_cpim
from gateway.impp.mapping_presence import (
    cpim_to_presences,
    pidf_to_presences,
    presence_to_cpim,
    presence_to_pidf,
    resource_to_tuple_id,
    tuple_id_to_resource,
)
from gateway.impp.pidf import (
    DEFAULT_MAX_PIDF_SIZE,
    PIDF_CONTENT_TYPE,
    PIDF_IM_NS,
    PIDF_NS,
    Basic,
    Contact,
    Note,
    PidfDocument,
    PidfTuple,
    Tuple,
    parse_pidf_untrusted,
)

__all__ = [
    "CPIM_HEADERS_NS",
    "DEFAULT_MAX_CPIM_HEADERS",
    "DEFAULT_MAX_CPIM_LINE",
    "DEFAULT_MAX_CPIM_SIZE",
    "DEFAULT_MAX_PIDF_SIZE",
    "PIDF_CONTENT_TYPE",
    "PIDF_IM_NS",
    "PIDF_NS",
    "AddressError",
    "Basic",
    "Contact",
    "CpimAddress",
    "CpimError",
    "CpimHeader",
    "CpimMessage",
    "ImppAddress",
    "ImppError",
    "MappingError",
    "Note",
    "PidfDocument",
    "PidfError",
    "PidfTuple",
    "Subject",
    "Tuple",
    "cpim_to_jid",
    "cpim_to_messages",
    "cpim_to_presences",
    "escape_header_text",
    "format_rfc3339",
    "jid_to_cpim",
    "message_to_cpim",
    "parse_cpim_untrusted",
    "parse_pidf_untrusted",
    "parse_rfc3339",
    "pidf_to_presences",
    "presence_to_cpim",
    "presence_to_pidf",
    "resource_to_tuple_id",
    "tuple_id_to_resource",
    "unescape_header_text",
]

# Signing on behalf of devices (RFC 3923): CA, S/MIME, <e2e/> -- the signing engineer's block.
from gateway.impp.ca import (
    CaError,
    CertificateAuthority,
    DeviceCredential,
    certificate_addresses,
    read_credential,
    write_credential,
)
from gateway.impp.cms import (
    FailureReason,
    SignatureError,
    TrustStore,
    VerifiedSignature,
    sign_detached,
    verify_detached_untrusted,
)
from gateway.impp.e2e import (
    E2E_NAMESPACE,
    E2eVerifier,
    VerificationResult,
    VerificationStatus,
    VerifierStatistics,
    build_e2e_element,
    find_e2e_untrusted,
)
from gateway.impp.keyfiles import KeyFileError, read_protected_file, write_protected_file
from gateway.impp.signing import OnBehalfSigner, verify_inbound
from gateway.impp.smime import (
    SignedEntity,
    VerifiedEntity,
    parse_multipart_signed_untrusted,
    sign_multipart,
    verify_multipart_signed_untrusted,
)

__all__ += [
    "E2E_NAMESPACE",
    "CaError",
    "CertificateAuthority",
    "DeviceCredential",
    "E2eVerifier",
    "FailureReason",
    "KeyFileError",
    "OnBehalfSigner",
    "SignatureError",
    "SignedEntity",
    "TrustStore",
    "VerificationResult",
    "VerificationStatus",
    "VerifiedEntity",
    "VerifiedSignature",
    "VerifierStatistics",
    "build_e2e_element",
    "certificate_addresses",
    "find_e2e_untrusted",
    "parse_multipart_signed_untrusted",
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
