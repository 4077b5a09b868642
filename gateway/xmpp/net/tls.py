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
import os
import ssl
from pathlib import Path

__all__ = ["SharedClientContext", "TrustStore", "create_client_context"]


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


class SharedClientContext:
    """One :class:`ssl.SSLContext` of a trust store for every connection, rebuilt when its CA
    file changes.

    Building a context parses the whole CA bundle (the system store: hundreds of certificates),
    which each connection used to pay in CPU and memory; a context is safe to share between
    connections. The CA file is looked at (``stat``: inode, size, modification time) at every
    :meth:`get`, so a replaced bundle still applies from the next connection on, as before.
    """

    def __init__(self, trust: TrustStore) -> None:
        self.trust = trust
        self._context: ssl.SSLContext | None = None
        self._signature: tuple[int, int, int] | None = None
        self.builds = 0  # contexts built so far (for tests and metrics)

    def _file_signature(self) -> tuple[int, int, int] | None:
        if self.trust.ca_file is None:
            return None
        try:
            status = os.stat(self.trust.ca_file)
        except OSError:
            return None  # building the context reports the missing file
        return (status.st_ino, status.st_size, status.st_mtime_ns)

    def get(self) -> ssl.SSLContext:
        """The shared context, built anew if there is none yet or the CA file changed."""
        signature = self._file_signature()
        if (
            self._context is None
            or signature != self._signature
            or (signature is None and self.trust.ca_file is not None)
        ):
            self._context = create_client_context(self.trust)
            self._signature = signature
            self.builds += 1
        return self._context
