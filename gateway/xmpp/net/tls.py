"""The TLS policy of upstream connections (RFC 6120 §5, §13.7; RFC 6125 via ssl's hostname check).

One :class:`ssl.SSLContext` per trust store: certificate verification is always on, the name
checked is the XMPP *domain* of the account (RFC 6120 §13.7.2.1: the SRV target is not the
reference identity), TLS 1.2 is the floor (RFC 7525 §3.1.1), compression is off (CRIME).  The trust
store is the system's by default or a PEM bundle from the configuration (tests use the private
Prosody's self-signed certificate).  There is no "don't verify" switch: plaintext, allowed only on
loopback, is the one explicit exception and lives in the client's policy, not here.
"""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

__all__ = ["TrustStore", "create_client_context"]


@dataclasses.dataclass(frozen=True)
class TrustStore:
    """Which certificate authorities an upstream server certificate must chain to."""

    ca_file: Path | None = None  # a PEM bundle; None: the system's default store
    use_system_store: bool = True  # also trust the system store when ca_file is given


def create_client_context(trust: TrustStore) -> ssl.SSLContext:
    """An SSLContext that verifies the server against ``trust`` and the XMPP domain name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED on
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    if trust.ca_file is None or trust.use_system_store:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if trust.ca_file is not None:
        context.load_verify_locations(cafile=str(trust.ca_file))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
