"""EDHOC (RFC 9528): sans-IO Initiator and Responder for device authentication.

Methods 0-3, cipher suites 0, 2, 3 and 4, CCS credentials by kid or by value, X.509 by x5t,
EAD items, optional message_4, EDHOC_Exporter and EDHOC_KeyUpdate. See docs/edhoc.md.
"""

from __future__ import annotations

from gateway.edhoc._endpoint import DEFAULT_MAX_MESSAGE_SIZE, Injection
from gateway.edhoc.credentials import (
    Credential,
    CredentialLookup,
    CredentialTransfer,
    CredentialType,
    IdCred,
)
from gateway.edhoc.crypto import Crypto, CryptoCounter
from gateway.edhoc.errors import (
    AuthenticationFailedError,
    CipherSuiteMismatchError,
    CipherSuiteRejectedError,
    EdhocError,
    ErrorCode,
    InvalidPublicKeyError,
    LocalProtocolError,
    MessageDecodeError,
    PeerReportedError,
    RemoteProtocolError,
    UnexpectedMessageError,
    UnknownCredentialError,
    UnsupportedCriticalEadError,
    UnsupportedMethodError,
)
from gateway.edhoc.events import (
    Event,
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
    "Crypto",
    "CryptoCounter",
    "Curve",
    "EadItem",
    "EdhocError",
    "ErrorCode",
    "Event",
    "HandshakeCompleted",
    "IdCred",
    "Initiator",
    "Injection",
    "InvalidPublicKeyError",
    "LocalProtocolError",
    "Message1Received",
    "Message2Received",
    "Message3Received",
    "Message4Received",
    "MessageDecodeError",
    "Method",
    "PeerReportedError",
    "RemoteProtocolError",
    "Responder",
    "State",
    "UnexpectedMessageError",
    "UnknownCredentialError",
    "UnsupportedCriticalEadError",
    "UnsupportedMethodError",
]
