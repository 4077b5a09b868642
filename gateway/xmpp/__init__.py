"""XMPP upstream (RFC 6120/6121), the sans-IO core: stream parser, serializer, SASL and client.

Layers: :mod:`.parser` / :mod:`.serializer` (XML stream), :mod:`.sasl`, :mod:`.errors`,
:mod:`.client` (the sans-IO client facade over :mod:`.client_state`, :mod:`.negotiation`,
:mod:`.dispatch` and :mod:`.timers`, with :mod:`.stream_management`, :mod:`.stanzas`,
:mod:`.jid`, :mod:`.events`). The I/O edge (server selection, TLS, the trio connection and the
manager that keeps one session per device account up) is the subpackage :mod:`gateway.xmpp.net`;
nothing here imports it, so importing this package loads neither trio nor ssl.
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
    FeaturesMissingError,
    RestorableState,
    XmppClient,
)
from gateway.xmpp.errors import (
    AuthenticationFailed,
    LocalXmppError,
    PeerStreamError,
    RemoteXmppError,
    SaslCondition,
    StanzaError,
    StanzaErrorCondition,
    StanzaErrorType,
    StanzaTooLargeError,
    StreamCondition,
    StreamError,
    XmppError,
)
from gateway.xmpp.events import StanzaDropReason
from gateway.xmpp.jid import Jid, JidError
from gateway.xmpp.parser import (
    DEFAULT_MAX_STANZA_SIZE,
    ParserStatistics,
    StanzaReceived,
    StreamClosed,
    StreamOpened,
    XmlStreamParser,
)
from gateway.xmpp.sasl import (
    SaltedPasswordCache,
    ScramClient,
    ScramCredential,
    StaleScramCredential,
    plain_initial_response,
    select_mechanism,
)
from gateway.xmpp.serializer import STREAM_CLOSE, serialize, stream_header
from gateway.xmpp.stanzas import (
    MessageStanza,
    MessageStanzaType,
    PresenceShow,
    PresenceStanza,
    RosterItem,
    RosterSubscription,
    StanzaParseError,
    SubscriptionKind,
)
from gateway.xmpp.stream_management import ResumptionToken

__all__ = [
    "DEFAULT_MAX_STANZA_SIZE",
    "STREAM_CLOSE",
    "AuthenticationFailed",
    "ClientConfig",
    "ClientInput",
    "ClientState",
    "ClientStatistics",
    "ConnectionLostError",
    "EncryptionRequiredError",
    "FeaturesMissingError",
    "Jid",
    "JidError",
    "LocalXmppError",
    "MessageStanza",
    "MessageStanzaType",
    "ParserStatistics",
    "PeerStreamError",
    "PresenceShow",
    "PresenceStanza",
    "RemoteXmppError",
    "RestorableState",
    "ResumptionToken",
    "RosterItem",
    "RosterSubscription",
    "SaltedPasswordCache",
    "SaslCondition",
    "ScramClient",
    "ScramCredential",
    "StaleScramCredential",
    "StanzaDropReason",
    "StanzaError",
    "StanzaErrorCondition",
    "StanzaErrorType",
    "StanzaParseError",
    "StanzaReceived",
    "StanzaTooLargeError",
    "StreamClosed",
    "StreamCondition",
    "StreamError",
    "StreamOpened",
    "SubscriptionKind",
    "XmlStreamParser",
    "XmppClient",
    "XmppError",
    "events",
    "plain_initial_response",
    "select_mechanism",
    "serialize",
    "stream_header",
]
