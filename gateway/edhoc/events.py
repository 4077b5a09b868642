"""What an EDHOC endpoint tells its caller, as frozen dataclasses named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.edhoc.credentials import Credential
from gateway.edhoc.messages import EadItem
from gateway.edhoc.suites import CipherSuite, Method


@dataclass(frozen=True)
class Message1Received:
    """The Responder accepted message_1: the method, suite, C_I and EAD_1 it carried."""

    method: Method
    suite: CipherSuite
    c_i: bytes
    ead: tuple[EadItem, ...]


@dataclass(frozen=True)
class Message2Received:
    """The Initiator verified message_2: the Responder is authenticated by ``peer_credential``."""

    c_r: bytes
    peer_credential: Credential
    ead: tuple[EadItem, ...]


@dataclass(frozen=True)
class Message3Received:
    """The Responder verified message_3: the Initiator is authenticated by ``peer_credential``."""

    peer_credential: Credential
    ead: tuple[EadItem, ...]


@dataclass(frozen=True)
class HandshakeCompleted:
    """Both sides are authenticated; the exporter may be used."""

    method: Method
    suite: CipherSuite
    c_i: bytes
    c_r: bytes
    peer_credential: Credential


@dataclass(frozen=True)
class Message4Received:
    """The Initiator verified message_4: key confirmation from the Responder."""

    ead: tuple[EadItem, ...]


EdhocEvent = (
    Message1Received | Message2Received | Message3Received | HandshakeCompleted | Message4Received
)
