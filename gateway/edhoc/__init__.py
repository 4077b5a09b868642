"""EDHOC (RFC 9528): sans-IO Initiator and Responder for device authentication.

Methods 0-3, cipher suites 0, 2, 3 and 4, CCS credentials by kid or by value, X.509 by x5t,
EAD items, optional message_4, EDHOC_Exporter and EDHOC_KeyUpdate. See docs/edhoc.md.

What a user of the two roles needs is exported here: the roles, credentials, suites, events,
errors and limits. The error tree keeps the Local/Remote shape every protocol package shares
and names the package in both halves (``LocalEdhocError`` / ``RemoteEdhocError``), so it can be
imported beside the session's, the wire's and the XMPP client's without a collision. The crypto
layer (``gateway.edhoc.crypto``), the message codecs and the key schedule stay in their modules.
"""

from __future__ import annotations

from gateway.edhoc._endpoint import DEFAULT_MAX_MESSAGE_SIZE
from gateway.edhoc.credentials import (
    Credential,
    CredentialLookup,
    CredentialTransfer,
    CredentialType,
    IdCred,
)
from gateway.edhoc.errors import (
    AuthenticationFailedError,
    CipherSuiteMismatchError,
    CipherSuiteRejectedError,
    EdhocError,
    EdhocErrorCode,
    InvalidPublicKeyError,
    LocalEdhocError,
    MessageDecodeError,
    PeerReportedError,
    RemoteEdhocError,
    UnexpectedMessageError,
    UnknownCredentialError,
    UnsupportedCriticalEadError,
    UnsupportedMethodError,
)
from gateway.edhoc.events import (
    EdhocEvent,
    HandshakeCompleted,
    Message1Received,
    Message2Received,
    Message3Received,
    Message4Received,
)
from gateway.edhoc.initiator import Initiator
from gateway.edhoc.messages import DEFAULT_MAX_EAD_ITEMS, EadItem
from gateway.edhoc.responder import Responder
from gateway.edhoc.state import State
from gateway.edhoc.suites import CipherSuite, Curve, Method

__all__ = [
    "DEFAULT_MAX_EAD_ITEMS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "AuthenticationFailedError",
    "CipherSuite",
    "CipherSuiteMismatchError",
    "CipherSuiteRejectedError",
    "Credential",
    "CredentialLookup",
    "CredentialTransfer",
    "CredentialType",
    "Curve",
    "EadItem",
    "EdhocError",
    "EdhocErrorCode",
    "EdhocEvent",
    "HandshakeCompleted",
    "IdCred",
    "Initiator",
    "InvalidPublicKeyError",
    "LocalEdhocError",
    "Message1Received",
    "Message2Received",
    "Message3Received",
    "Message4Received",
    "MessageDecodeError",
    "Method",
    "PeerReportedError",
    "RemoteEdhocError",
    "Responder",
    "State",
    "UnexpectedMessageError",
    "UnknownCredentialError",
    "UnsupportedCriticalEadError",
    "UnsupportedMethodError",
]
