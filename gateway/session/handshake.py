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

import copy
import hashlib
from dataclasses import dataclass
from typing import Protocol

from gateway import edhoc
from gateway.session.errors import DropReason, RemoteSessionError
from gateway.session.record import EXPORTER_LABEL, MASTER_SECRET_LENGTH, SUITE_AEAD, AeadAlgorithm

IDENTITY_LENGTH = 6  # bytes of a peer identity (fits a resumption ticket)


class HandshakeFailedError(RemoteSessionError):
    """The key exchange rejected a message; ``reply`` is the error message to send, if any.

    ``alive`` is True when the message was dropped and the handshake can still complete with the
    genuine message: anyone who saw the connection id can send garbage in its place, so garbage
    must not end a handshake (docs/security.md). ``authentic`` is True when the message passed
    the cheap check (message_3 decrypted under K_3, which only the initiator can make) and the
    expensive checks after it ran; only such messages spend the handshake-work budget.
    """

    reason = DropReason.HANDSHAKE_FAILED

    def __init__(
        self,
        message: str,
        *,
        reply: bytes | None = None,
        alive: bool = False,
        authentic: bool = False,
    ) -> None:
        super().__init__(message)
        self.reply = reply
        self.alive = alive
        self.authentic = authentic


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


_AEAD_FAILURES = ("AEAD tag does not verify", "ciphertext shorter than the tag")
_AFTER_AEAD_3 = (
    edhoc.UnknownCredentialError,
    edhoc.InvalidPublicKeyError,
    edhoc.UnsupportedCriticalEadError,
)


def _passed_aead_3(exc: edhoc.EdhocError) -> bool:
    """True if message_3 failed after its AEAD opened (credential, ECDH or signature checks).

    Failures before that point are cheap: size, CBOR framing, an error message in its place, or
    the AEAD tag itself (edhoc/crypto.py's two AEAD messages; a signature or MAC_3 failure is
    the same exception class with another message).
    """
    if isinstance(exc, _AFTER_AEAD_3):
        return True
    if isinstance(exc, edhoc.AuthenticationFailedError):
        return not any(m in str(exc) for m in _AEAD_FAILURES)
    return False


def identity_of(credential: edhoc.Credential | None) -> bytes:
    """The peer identity the session layer reports for an EDHOC credential.

    The credential's kid when it has one of at most 6 bytes, else the first 6 bytes of SHA-256 of
    the encoded credential; the device registry indexes credentials the same way. ``None`` (no
    credential yet) names nobody: SHA-256 of the empty string.
    """
    if credential is None:
        return hashlib.sha256(b"").digest()[:IDENTITY_LENGTH]
    kid = credential.kid
    if kid is not None and 0 < len(kid) <= IDENTITY_LENGTH:
        return kid
    return hashlib.sha256(credential.encoded).digest()[:IDENTITY_LENGTH]


class EdhocResponder:
    """:class:`ResponderHandshake` over ``gateway.edhoc.Responder``."""

    def __init__(self, responder: edhoc.Responder) -> None:
        self._responder = responder
        self._received_message_1 = False

    def receive(self, message: bytes) -> HandshakeStep:
        """message_1 -> message_2; message_3 -> complete.

        A message_1 that fails is answered only when the answer helps a genuine device: the
        cipher-suite error (RFC 9528 §6.3) it needs to choose again. Anything else malformed gets
        no answer, so a forged INITIAL draws nothing a device could take for its own message_2.
        A message_3 that fails is dropped and the handshake stays as it was (``alive``): the
        responder is an EDHOC endpoint that forgets its keys on any failure, so the attempt runs
        on a shallow copy and the untouched original is kept.
        """
        if not self._received_message_1:
            try:
                self._responder.receive_message_1(message)
                self._received_message_1 = True
                return HandshakeStep(self._responder.message_2(), complete=False)
            except edhoc.CipherSuiteMismatchError as exc:
                raise HandshakeFailedError(str(exc), reply=exc.error_message) from exc
            except edhoc.EdhocError as exc:
                raise HandshakeFailedError(str(exc)) from exc
        attempt = copy.copy(self._responder)
        try:
            events = attempt.receive_message_3(message)
        except edhoc.EdhocError as exc:
            raise HandshakeFailedError(str(exc), alive=True, authentic=_passed_aead_3(exc)) from exc
        self._responder = attempt
        complete = any(isinstance(e, edhoc.HandshakeCompleted) for e in events)
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

    def __init__(self, initiator: edhoc.Initiator) -> None:
        self._initiator = initiator

    def start(self) -> bytes:
        """message_1."""
        return self._initiator.message_1()

    def receive(self, message: bytes) -> HandshakeStep:
        """message_2 -> message_3 (complete); a suite rejection -> a new message_1.

        Anything that does not verify as message_2 (a forged or corrupt message_2, an EDHOC error,
        which is unauthenticated) leaves the attempt as it was (``alive``), so the genuine
        message_2 still completes it: the attempt runs on a shallow copy of the initiator, which
        forgets its keys on failure. Only a cipher-suite rejection starts a new attempt, as RFC
        9528 §6.3 requires; its suites are in the transcript of the next attempt, so a forged one
        cannot downgrade, only delay.
        """
        attempt = copy.copy(self._initiator)
        try:
            attempt.receive_message_2(message)
            step = HandshakeStep(attempt.message_3(), complete=True)
        except edhoc.CipherSuiteRejectedError as exc:
            try:
                self._initiator = self._initiator.retry(exc)
            except edhoc.EdhocError as retry_exc:
                raise HandshakeFailedError(str(retry_exc), alive=True) from retry_exc
            return HandshakeStep(self._initiator.message_1(), complete=False, restart=True)
        except edhoc.EdhocError as exc:
            raise HandshakeFailedError(str(exc), alive=True) from exc
        self._initiator = attempt
        return step

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
