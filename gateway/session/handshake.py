"""The seam between the session layer and the authenticated key exchange (EDHOC, RFC 9528).

The session layer carries handshake messages and takes keys from the exporter; it does not look
inside the messages. :class:`ResponderHandshake` / :class:`InitiatorHandshake` name what it needs,
and :class:`EdhocResponder` / :class:`EdhocInitiator` implement them over ``gateway.edhoc``.

Flow (RFC 9528 §5, the CoAP-less transport of Appendix A.2 in spirit): INITIAL carries message_1;
HANDSHAKE packets carry message_2 (with C_R as the gateway's connection id), message_3 (prefixed,
on the wire, by that connection id) and EDHOC error messages. The gateway's first protected record
(the ticket) confirms to the device that message_3 arrived, so message_4 is not needed.
Record keys: EDHOC_Exporter(label 32768, context "", 32) (record.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from gateway.session.errors import DropReason, RemoteProtocolError
from gateway.session.record import EXPORTER_LABEL, MASTER_SECRET_LENGTH, SUITE_AEAD, AeadAlgorithm

IDENTITY_LENGTH = 6  # bytes of a peer identity (fits a resumption ticket)


class HandshakeFailedError(RemoteProtocolError):
    """The key exchange rejected a message; ``reply`` is the error message to send, if any."""

    reason = DropReason.HANDSHAKE_FAILED

    def __init__(self, message: str, *, reply: bytes | None = None) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class HandshakeStep:
    """What one handshake message produced: a reply to send, and whether keys are ready."""

    reply: bytes | None
    complete: bool
    restart: bool = False  # initiator: ``reply`` is a new message_1 (e.g. cipher suite retry)


class ResponderHandshake(Protocol):
    """The gateway's side of the key exchange."""

    def receive(self, message: bytes) -> HandshakeStep:
        """Process message_1 or message_3; raises :class:`HandshakeFailedError`."""
        ...

    def master_secret(self) -> bytes:
        """The session master secret (after completion)."""
        ...

    @property
    def aead(self) -> AeadAlgorithm:
        """The records' AEAD (the negotiated suite's)."""
        ...

    @property
    def suite(self) -> int:
        """The negotiated cipher suite."""
        ...

    @property
    def peer_identity(self) -> bytes:
        """A short, stable name for the authenticated peer (at most 6 bytes)."""
        ...


class InitiatorHandshake(Protocol):
    """The device's side of the key exchange."""

    def start(self) -> bytes:
        """message_1."""
        ...

    def receive(self, message: bytes) -> HandshakeStep:
        """Process message_2 (or an error); raises :class:`HandshakeFailedError`."""
        ...

    def master_secret(self) -> bytes:
        """The session master secret (after completion)."""
        ...

    @property
    def aead(self) -> AeadAlgorithm:
        """The records' AEAD."""
        ...

    @property
    def peer_connection_id(self) -> bytes | None:
        """The gateway's connection id as the handshake authenticated it (EDHOC C_R)."""
        ...


def identity_of(credential: object) -> bytes:
    """The peer identity the session layer reports for an EDHOC credential.

    The credential's kid when it has one of at most 6 bytes, else the first 6 bytes of SHA-256 of
    the encoded credential; the device registry indexes credentials the same way.
    """
    kid = getattr(credential, "kid", None)
    if isinstance(kid, bytes) and 0 < len(kid) <= IDENTITY_LENGTH:
        return kid
    encoded = getattr(credential, "encoded", b"")
    return hashlib.sha256(encoded if isinstance(encoded, bytes) else b"").digest()[:IDENTITY_LENGTH]


class EdhocResponder:
    """:class:`ResponderHandshake` over ``gateway.edhoc.Responder``."""

    def __init__(self, responder: object) -> None:
        from gateway import edhoc

        if not isinstance(responder, edhoc.Responder):
            raise TypeError("expected a gateway.edhoc.Responder")
        self._edhoc = edhoc
        self._responder = responder
        self._received_message_1 = False

    def receive(self, message: bytes) -> HandshakeStep:
        """message_1 -> message_2; message_3 -> complete."""
        try:
            if not self._received_message_1:
                self._responder.receive_message_1(message)
                self._received_message_1 = True
                return HandshakeStep(self._responder.message_2(), complete=False)
            events = self._responder.receive_message_3(message)
        except self._edhoc.EdhocError as exc:
            raise HandshakeFailedError(str(exc), reply=exc.error_message) from exc
        complete = any(isinstance(e, self._edhoc.HandshakeCompleted) for e in events)
        return HandshakeStep(None, complete=complete)

    def master_secret(self) -> bytes:
        """EDHOC_Exporter(32768, h'', 32)."""
        return self._responder.exporter(EXPORTER_LABEL, b"", MASTER_SECRET_LENGTH)

    @property
    def aead(self) -> AeadAlgorithm:
        """The suite's AEAD."""
        return SUITE_AEAD[self.suite]

    @property
    def suite(self) -> int:
        """The negotiated suite."""
        return int(self._responder.suite) if self._responder.suite is not None else -1

    @property
    def peer_identity(self) -> bytes:
        """:func:`identity_of` the device's credential."""
        return identity_of(self._responder.peer_credential)


class EdhocInitiator:
    """:class:`InitiatorHandshake` over ``gateway.edhoc.Initiator``."""

    def __init__(self, initiator: object) -> None:
        from gateway import edhoc

        if not isinstance(initiator, edhoc.Initiator):
            raise TypeError("expected a gateway.edhoc.Initiator")
        self._edhoc = edhoc
        self._initiator = initiator

    def start(self) -> bytes:
        """message_1."""
        return self._initiator.message_1()

    def receive(self, message: bytes) -> HandshakeStep:
        """message_2 -> message_3 (complete); a suite rejection -> a new message_1."""
        try:
            self._initiator.receive_message_2(message)
            return HandshakeStep(self._initiator.message_3(), complete=True)
        except self._edhoc.CipherSuiteRejectedError as exc:
            try:
                self._initiator = self._initiator.retry(exc)
            except self._edhoc.EdhocError as retry_exc:
                raise HandshakeFailedError(str(retry_exc)) from retry_exc
            return HandshakeStep(self._initiator.message_1(), complete=False, restart=True)
        except self._edhoc.EdhocError as exc:
            raise HandshakeFailedError(str(exc), reply=exc.error_message) from exc

    def master_secret(self) -> bytes:
        """EDHOC_Exporter(32768, h'', 32)."""
        return self._initiator.exporter(EXPORTER_LABEL, b"", MASTER_SECRET_LENGTH)

    @property
    def peer_connection_id(self) -> bytes | None:
        """C_R from message_2 (authenticated by EDHOC, unlike the packet header)."""
        c_r: bytes | None = self._initiator.c_r
        return c_r

    @property
    def aead(self) -> AeadAlgorithm:
        """The suite's AEAD."""
        suite = self._initiator.suite
        return SUITE_AEAD[int(suite) if suite is not None else 2]
