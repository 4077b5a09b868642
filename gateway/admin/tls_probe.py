"""Reach an XMPP server's client port, ask for STARTTLS (RFC 6120 §5.4) and hand back the
TLS handshake's outcome and the server's certificate, for ``impp-gateway doctor``.

The probe speaks just enough XMPP to get to TLS: the stream header, the features (read until
``</stream:features>``), ``<starttls/>`` and ``<proceed/>``. It reads at most
:data:`MAX_PROBE_BYTES` before TLS, and searches those bytes rather than parsing them: it
decides nothing but "did the server offer and accept STARTTLS", and any other answer is a
failed check. The certificate is described with ``cryptography``; name matching follows RFC 6125
§6.4 for DNS names (one left-most wildcard label), which is what :mod:`ssl` enforces in the real
connection (gateway.xmpp.tls).
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from typing import Final

import trio
from cryptography import x509

__all__ = [
    "MAX_PROBE_BYTES",
    "CertificateSummary",
    "ProbeError",
    "describe_certificate",
    "name_matches",
    "starttls_handshake",
]

MAX_PROBE_BYTES: Final = 64 * 1024  # a server's stream header and features are well under this
_TLS_NAMESPACE: Final = b"urn:ietf:params:xml:ns:xmpp-tls"


class ProbeError(Exception):
    """The server did not get as far as a TLS handshake; the message says where it stopped."""


@dataclass(frozen=True)
class CertificateSummary:
    """What an operator needs to see of the server's certificate."""

    subject: str
    issuer: str
    not_after: datetime.datetime
    dns_names: tuple[str, ...]


def describe_certificate(der: bytes) -> CertificateSummary:
    """Subject, issuer, expiry and DNS names of a DER certificate (ValueError if unreadable)."""
    certificate = x509.load_der_x509_certificate(der)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertificateSummary(
        certificate.subject.rfc4514_string(),
        certificate.issuer.rfc4514_string(),
        certificate.not_valid_after_utc,
        names,
    )


def name_matches(domain: str, dns_names: tuple[str, ...]) -> bool:
    """True when one of ``dns_names`` names ``domain`` (RFC 6125 §6.4.3 wildcards)."""
    wanted = domain.casefold().rstrip(".")
    for name in dns_names:
        candidate = name.casefold().rstrip(".")
        if candidate == wanted:
            return True
        if (
            candidate.startswith("*.")
            and "." in wanted
            and wanted.split(".", 1)[1] == candidate[2:]
        ):
            return True
    return False


async def _read_until(stream: trio.SocketStream, buffer: bytearray, *markers: bytes) -> bytes:
    while not any(marker in buffer for marker in markers):
        if len(buffer) > MAX_PROBE_BYTES:
            raise ProbeError(f"the server sent more than {MAX_PROBE_BYTES} bytes before TLS")
        data = await stream.receive_some(4096)
        if not data:
            raise ProbeError("the server closed the connection before TLS")
        buffer += data
    return bytes(buffer)


async def starttls_handshake(
    stream: trio.SocketStream, domain: str, context: ssl.SSLContext
) -> bytes:
    """STARTTLS on ``stream`` for ``domain``, handshake with ``context``; return the server's
    DER certificate. Raises :class:`ProbeError` before TLS, ``trio.BrokenResourceError`` (its
    ``__cause__`` the :class:`ssl.SSLError`) when the handshake fails."""
    await stream.send_all(
        b"<?xml version='1.0'?><stream:stream to='"
        + domain.encode("ascii")
        + b"' version='1.0' xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    buffer = bytearray()
    features = await _read_until(stream, buffer, b"</stream:features>", b"<stream:error")
    if b"<stream:error" in features:
        raise ProbeError(f"the server refused a stream for {domain} (stream error)")
    if _TLS_NAMESPACE not in features:
        raise ProbeError("the server offers no STARTTLS")
    await stream.send_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    answer = bytearray()
    reply = await _read_until(stream, answer, b"<proceed", b"<failure")
    if b"<proceed" not in reply:
        raise ProbeError("the server refused STARTTLS")
    await _read_until(stream, answer, b"/>", b"</proceed>")
    tls = trio.SSLStream(stream, context, server_hostname=domain)
    await tls.do_handshake()
    der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ProbeError("the server presented no certificate")
    return bytes(der)
