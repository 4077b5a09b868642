"""The I/O edge of the XMPP upstream: server selection, TLS, one connection, many sessions.

:mod:`.resolver` picks the servers of a domain (RFC 6120 §3.2, SRV per RFC 2782), :mod:`.tls`
builds the verifying client context, :mod:`.connection` runs one :class:`~gateway.xmpp.XmppClient`
over one trio socket, and :mod:`.manager` keeps one session per device account up, with
back-off, redirects and stream resumption. Everything protocol-specific stays in the sans-IO core
(:mod:`gateway.xmpp`), which imports nothing from here, so ``import gateway.xmpp`` loads neither
trio nor ssl.
"""

from __future__ import annotations

from gateway.xmpp.net.connection import (
    CountingStream,
    TlsHandshakeError,
    UpstreamConnection,
    UpstreamUnreachableError,
    connect_tcp,
)
from gateway.xmpp.net.manager import (
    Redirect,
    UpstreamManager,
    UpstreamSession,
    UpstreamSettings,
    backoff_delay,
    open_upstream_manager,
    parse_see_other_host_untrusted,
)
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver, SrvRecord, order_srv_records
from gateway.xmpp.net.tls import SharedClientContext, TrustStore, create_client_context

__all__ = [
    "CountingStream",
    "Redirect",
    "ServerAddress",
    "ServerResolver",
    "SharedClientContext",
    "SrvRecord",
    "TlsHandshakeError",
    "TrustStore",
    "UpstreamConnection",
    "UpstreamManager",
    "UpstreamSession",
    "UpstreamSettings",
    "UpstreamUnreachableError",
    "backoff_delay",
    "connect_tcp",
    "create_client_context",
    "open_upstream_manager",
    "order_srv_records",
    "parse_see_other_host_untrusted",
]
