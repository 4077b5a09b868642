"""XMPP upstream (RFC 6120/6121): sans-IO stream parser, serializer, SASL and client, plus the trio
connection manager that keeps one session per device account up toward its domain server.

Layers: :mod:`.parser` / :mod:`.serializer` (XML stream), :mod:`.sasl`, :mod:`.errors`,
:mod:`.client` (the sans-IO state machine, with :mod:`.stream_management`, :mod:`.stanzas`,
:mod:`.jid`, :mod:`.events`), then the I/O edge: :mod:`.resolver` (SRV), :mod:`.tls`,
:mod:`.connection` (one socket) and :mod:`.manager` (many sessions, reconnection).
"""

from __future__ import annotations

from gateway.xmpp import events
from gateway.xmpp.client import (
    ClientConfig,
    ClientInput,
    ClientState,
    ClientStatistics,
    ConnectionLostError,
    EncryptionRequiredError,
    XmppClient,
)
from gateway.xmpp.connection import (
    CountingStream,
    TlsHandshakeError,
    UpstreamConnection,
    UpstreamUnreachableError,
    connect_tcp,
)
from gateway.xmpp.errors import (
    AuthenticationFailed,
    LocalProtocolError,
    PeerStreamError,
    RemoteProtocolError,
    SaslCondition,
    StanzaError,
    StanzaErrorCondition,
    StanzaErrorType,
    StreamCondition,
    StreamError,
    XmppError,
)
from gateway.xmpp.jid import Jid, JidError
from gateway.xmpp.manager import (
    UpstreamManager,
    UpstreamSession,
    UpstreamSettings,
    backoff_delay,
    open_upstream_manager,
)
from gateway.xmpp.parser import (
    DEFAULT_MAX_STANZA_SIZE,
    StanzaReceived,
    StreamClosed,
    StreamOpened,
    XmlStreamParser,
)
from gateway.xmpp.resolver import ServerAddress, ServerResolver, SrvRecord, order_srv_records
from gateway.xmpp.sasl import ScramClient, plain_initial_response, select_mechanism
from gateway.xmpp.serializer import STREAM_CLOSE, serialize, stream_header
from gateway.xmpp.stanzas import (
    Message,
    MessageType,
    Presence,
    PresenceShow,
    RosterItem,
    RosterSubscription,
    StanzaParseError,
    SubscriptionKind,
)
from gateway.xmpp.stream_management import ResumptionToken
from gateway.xmpp.tls import TrustStore, create_client_context

__all__ = [
    "DEFAULT_MAX_STANZA_SIZE",
    "STREAM_CLOSE",
    "AuthenticationFailed",
    "ClientConfig",
    "ClientInput",
    "ClientState",
    "ClientStatistics",
    "ConnectionLostError",
    "CountingStream",
    "EncryptionRequiredError",
    "Jid",
    "JidError",
    "LocalProtocolError",
    "Message",
    "MessageType",
    "PeerStreamError",
    "Presence",
    "PresenceShow",
    "RemoteProtocolError",
    "ResumptionToken",
    "RosterItem",
    "RosterSubscription",
    "SaslCondition",
    "ScramClient",
    "ServerAddress",
    "ServerResolver",
    "SrvRecord",
    "StanzaError",
    "StanzaErrorCondition",
    "StanzaErrorType",
    "StanzaParseError",
    "StanzaReceived",
    "StreamClosed",
    "StreamCondition",
    "StreamError",
    "StreamOpened",
    "SubscriptionKind",
    "TlsHandshakeError",
    "TrustStore",
    "UpstreamConnection",
    "UpstreamManager",
    "UpstreamSession",
    "UpstreamSettings",
    "UpstreamUnreachableError",
    "XmlStreamParser",
    "XmppClient",
    "XmppError",
    "backoff_delay",
    "connect_tcp",
    "create_client_context",
    "events",
    "open_upstream_manager",
    "order_srv_records",
    "plain_initial_response",
    "select_mechanism",
    "serialize",
    "stream_header",
]
