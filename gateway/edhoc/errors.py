"""The EDHOC error tree: our misuse versus the peer's fault, with the wire error code.

RFC 9528 §6: an EDHOC error message is ``(ERR_CODE: int, ERR_INFO: any)``. Where the RFC says a
failure MUST be answered with an error message, the exception raised carries the encoded message in
``error_message`` so the caller (the session layer) can send it; ``None`` means send nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class EdhocErrorCode(IntEnum):
    """RFC 9528 §6, Figure 10: the EDHOC error codes."""

    SUCCESS = 0  # reserved: never sent (§6.1)
    UNSPECIFIED_ERROR = 1  # ERR_INFO is a tstr diagnostic (§6.2)
    WRONG_SELECTED_CIPHER_SUITE = 2  # ERR_INFO is SUITES_R (§6.3)
    UNKNOWN_CREDENTIAL_REFERENCED = 3  # ERR_INFO is true (§6.4)


class EdhocError(Exception):
    """Base of every EDHOC failure; ``error_message`` is the EDHOC error message to send, if any."""

    def __init__(self, message: str, *, error_message: bytes | None = None) -> None:
        super().__init__(message)
        self.error_message = error_message


class LocalEdhocError(EdhocError):
    """We misused the API: wrong state, bad arguments, a credential without its private key."""


class RemoteEdhocError(EdhocError):
    """The peer sent something wrong; ``code`` is the EDHOC error code that answers it."""

    def __init__(
        self,
        message: str,
        *,
        code: EdhocErrorCode = EdhocErrorCode.UNSPECIFIED_ERROR,
        error_message: bytes | None = None,
    ) -> None:
        super().__init__(message, error_message=error_message)
        self.code = code


class MessageDecodeError(RemoteEdhocError):
    """The bytes are not a well-formed (deterministically encoded) EDHOC message."""


class UnexpectedMessageError(RemoteEdhocError):
    """A message arrived that the state machine does not expect now (e.g. a replay)."""


class UnsupportedMethodError(RemoteEdhocError):
    """message_1 asks for an authentication method this endpoint does not accept."""


class CipherSuiteMismatchError(RemoteEdhocError):
    """message_1 selected a cipher suite the Responder refuses (§6.3); answered with SUITES_R."""

    def __init__(self, message: str, *, suites_r: Sequence[int], error_message: bytes) -> None:
        super().__init__(
            message, code=EdhocErrorCode.WRONG_SELECTED_CIPHER_SUITE, error_message=error_message
        )
        self.suites_r = tuple(suites_r)


class InvalidPublicKeyError(RemoteEdhocError):
    """An ephemeral or static public key is not a valid point (RFC 9528 §9.2)."""


class UnknownCredentialError(RemoteEdhocError):
    """ID_CRED_x names a credential that the lookup does not know, or that it has revoked."""


class AuthenticationFailedError(RemoteEdhocError):
    """A MAC, a signature or an AEAD tag did not verify."""


class UnsupportedCriticalEadError(RemoteEdhocError):
    """A critical EAD item (negative ead_label) this application does not recognise (§3.8)."""


class PeerReportedError(RemoteEdhocError):
    """The peer sent an EDHOC error message; ``err_code`` and ``err_info`` are what it said."""

    def __init__(self, message: str, *, err_code: int, err_info: object) -> None:
        super().__init__(message)
        self.err_code = err_code
        self.err_info = err_info


class CipherSuiteRejectedError(PeerReportedError):
    """The Responder answered message_1 with error code 2; ``suites_r`` is what it supports."""

    def __init__(self, message: str, *, err_info: object, suites_r: Sequence[int]) -> None:
        super().__init__(
            message, err_code=EdhocErrorCode.WRONG_SELECTED_CIPHER_SUITE, err_info=err_info
        )
        self.suites_r = tuple(suites_r)
