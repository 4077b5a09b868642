"""What the Initiator and the Responder share: configuration, the state machine guard, credential
resolution, EAD checks, error-message handling and the exporter (RFC 9528 §4.2, §6, Appendix H)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TypedDict, TypeVar

from gateway.edhoc import cbor
from gateway.edhoc.credentials import Credential, CredentialLookup, CredentialTransfer, IdCred
from gateway.edhoc.crypto import Crypto
from gateway.edhoc.errors import (
    CipherSuiteRejectedError,
    EdhocError,
    EdhocErrorCode,
    LocalEdhocError,
    MessageDecodeError,
    PeerReportedError,
    RemoteEdhocError,
    UnexpectedMessageError,
    UnknownCredentialError,
    UnsupportedCriticalEadError,
)
from gateway.edhoc.key_schedule import KEY_UPDATE, PRK_EXPORTER, KeySchedule, edhoc_kdf
from gateway.edhoc.messages import (
    DEFAULT_MAX_EAD_ITEMS,
    EadItem,
    check_error_info_untrusted,
    decode_error_shape_untrusted,
    encode_ead,
    is_error_message,
    suites_from_value_untrusted,
    unknown_credential_error,
    unspecified_error,
)
from gateway.edhoc.state import RECEIVE_INPUTS, Input, Role, State, keeps_keys, next_state
from gateway.edhoc.suites import SUPPORTED_SUITES, CipherSuite, Curve, Method, SuiteParameters

# Largest EDHOC message accepted, checked before decoding: RFC 9529's largest is 116 bytes and a
# message_2 carrying a CCS by value is about 130; a one-certificate x5chain fits comfortably.
DEFAULT_MAX_MESSAGE_SIZE = 2048

T = TypeVar("T")


@dataclass
class Injection:
    """Test-only seam: fixes what is normally random or derived, and records intermediates.

    ``ephemeral_private_key`` replaces X or Y, ``suites_i`` replaces the SUITES_I the Initiator
    sends, and ``trace`` (when given) receives every intermediate value by its RFC 9529 name.
    Production code never passes one.
    """

    ephemeral_private_key: bytes | None = field(default=None, repr=False)
    suites_i: Sequence[int] | None = None
    trace: dict[str, bytes] | None = None


class EndpointOptions(TypedDict, total=False):
    """The keyword arguments both roles take beyond their own; the defaults are :class:`Endpoint`'s.

    ``credential_transfer`` says how our credential is sent (by reference or by value),
    ``known_ead_labels`` the EAD labels we understand (an unknown critical one fails the
    handshake), ``crypto`` the crypto provider, ``max_message_size`` and ``max_ead_items`` the
    limits enforced before decoding; ``_injection`` is the test seam.
    """

    credential_transfer: CredentialTransfer
    known_ead_labels: Collection[int]
    crypto: Crypto | None
    max_message_size: int
    max_ead_items: int
    _injection: Injection | None


class Endpoint:
    """Common core of :class:`Initiator` and :class:`Responder`."""

    role: Role

    def __init__(
        self,
        *,
        credential: Credential | Sequence[Credential],
        credential_lookup: CredentialLookup,
        credential_transfer: CredentialTransfer = CredentialTransfer.BY_REFERENCE,
        known_ead_labels: Collection[int] = (),
        crypto: Crypto | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_ead_items: int = DEFAULT_MAX_EAD_ITEMS,
        _injection: Injection | None = None,
    ) -> None:
        own = [credential] if isinstance(credential, Credential) else list(credential)
        if not own or any(c.private_key is None for c in own):
            raise LocalEdhocError("own credential(s) must carry their private key")
        self._own_credentials = own
        self._lookup = credential_lookup
        self._transfer = credential_transfer
        self._known_ead_labels = frozenset(abs(label) for label in known_ead_labels)
        self._crypto = crypto if crypto is not None else Crypto()
        self._max_message_size = max_message_size
        self._max_ead_items = max_ead_items
        self._injection = _injection or Injection()
        self.state = State.START
        self.peer_credential: Credential | None = None
        self.method: Method | None = None
        self.suite: CipherSuite | None = None
        self._prk_out: bytes | None = None
        self._prk_exporter: bytes | None = None

    # -- state machine guard --

    def _step(self, event: Input, action: Callable[[], T]) -> T:
        """Run ``action`` if the table allows ``event`` now; any failure ends in ERROR."""
        target = next_state(self.role, self.state, event)
        if target is None:
            message = f"{event.value} is not allowed in state {self.state.value}"
            if event in RECEIVE_INPUTS:
                if not keeps_keys(self.state):
                    self.state = State.ERROR
                raise UnexpectedMessageError(message)
            self.state = State.ERROR
            raise LocalEdhocError(message)
        try:
            result = action()
        except RemoteEdhocError as exc:
            self.state = State.ERROR
            self._wipe()
            if exc.error_message is None and not isinstance(exc, PeerReportedError):
                exc.error_message = (
                    unknown_credential_error()
                    if exc.code is EdhocErrorCode.UNKNOWN_CREDENTIAL_REFERENCED
                    else unspecified_error(str(exc))
                )
            raise
        except EdhocError:
            self.state = State.ERROR
            self._wipe()
            raise
        self.state = target
        return result

    _SECRETS = ("_x", "_y", "_g_xy", "_prk_3e2m", "_prk_4e3m")

    def _wipe(self) -> None:
        """Forget key material after a failure."""
        self._prk_out = None
        self._prk_exporter = None
        for name in self._SECRETS:
            self.__dict__.pop(name, None)
        self._crypto.forget_keys()

    def _note(self, name: str, value: bytes) -> None:
        if self._injection.trace is not None:
            self._injection.trace[name] = value

    def _check_size(self, data: bytes) -> None:
        if len(data) > self._max_message_size:
            raise MessageDecodeError(f"message longer than {self._max_message_size} bytes")

    def _check_received(self, data: bytes) -> None:
        """Refuse an oversized message_2, _3 or _4, and raise what an error message in its
        place reports (§6)."""
        self._check_size(data)
        if is_error_message(data):
            self._raise_peer_error(data)

    @staticmethod
    def _checked_suites(suites: Sequence[CipherSuite | int]) -> list[int]:
        """The suites as ints, refused unless a non-empty subset of those implemented."""
        checked = [int(s) for s in suites]
        if not checked or any(s not in SUPPORTED_SUITES for s in checked):
            raise LocalEdhocError(f"suites must be a non-empty subset of {SUPPORTED_SUITES}")
        return checked

    # -- shared processing --

    def _raise_peer_error(self, data: bytes) -> None:
        """Turn a received EDHOC error message into :class:`PeerReportedError` (§6)."""
        error = decode_error_shape_untrusted(data)
        try:
            check_error_info_untrusted(error)
        except MessageDecodeError as exc:
            # Still an error message (Figure 9): abort, and answer nothing (§6).
            raise PeerReportedError(
                f"the peer sent a malformed EDHOC error message with code {error.code}",
                err_code=error.code,
                err_info=error.info,
            ) from exc
        if error.code == EdhocErrorCode.WRONG_SELECTED_CIPHER_SUITE:
            raise CipherSuiteRejectedError(
                "the Responder rejected the selected cipher suite",
                err_info=error.info,
                suites_r=suites_from_value_untrusted(error.info),
            )
        raise PeerReportedError(
            f"the peer sent EDHOC error code {error.code}", err_code=error.code, err_info=error.info
        )

    def _check_ead(self, items: Sequence[EadItem]) -> tuple[EadItem, ...]:
        """Drop padding; refuse critical items we do not recognise (RFC 9528 §3.8)."""
        for item in items:
            if item.critical and -item.label not in self._known_ead_labels:
                raise UnsupportedCriticalEadError(f"unsupported critical EAD item {item.label}")
        return tuple(item for item in items if not item.is_padding)

    def _resolve_peer_credential(self, id_cred: IdCred, expected_curve: Curve) -> Credential:
        """Ask the lookup for the credential ``id_cred`` names and check that it fits.

        A kid need not be unique (RFC 9052 §3.1), so the lookup may return several candidates;
        the first that ID_CRED names and whose key suits the method and suite is used.
        """
        found = self._lookup(id_cred)
        candidates = [found] if isinstance(found, Credential) else list(found or ())
        if not candidates:
            if id_cred.by_value:
                raise UnknownCredentialError("credential sent by value is not trusted")
            raise UnknownCredentialError(
                "unknown or revoked credential referenced",
                code=EdhocErrorCode.UNKNOWN_CREDENTIAL_REFERENCED,
            )
        for candidate in candidates:
            if id_cred.matches(candidate) and candidate.curve is expected_curve:
                return candidate.public()
        raise UnknownCredentialError(
            f"no credential named by ID_CRED has the {expected_curve.value} key "
            "the method and suite need"
        )

    def _own_credential_for(self, curve: Curve) -> Credential:
        for credential in self._own_credentials:
            if credential.curve is curve:
                return credential
        raise LocalEdhocError(f"no own credential with a {curve.value} key")

    @property
    def _params(self) -> SuiteParameters:
        """What the selected cipher suite fixes."""
        assert self.suite is not None
        return self.suite.parameters

    @property
    def _schedule(self) -> KeySchedule:
        """The key schedule of the method and suite this handshake runs."""
        assert self.suite is not None
        assert self.method is not None
        return KeySchedule(self._crypto, self.suite, self.method, self._note)

    @staticmethod
    def _encode_ead(ead: Sequence[EadItem]) -> bytes:
        for item in ead:
            if not cbor.is_int(item.label):
                raise LocalEdhocError("ead_label must be an int")
        return encode_ead(ead)

    def _set_prk_out(self, prk_out: bytes) -> None:
        self._prk_out = prk_out
        self._prk_exporter = edhoc_kdf(self._crypto, prk_out, PRK_EXPORTER, b"", 32)
        self._note("PRK_out", prk_out)
        self._note("PRK_exporter", self._prk_exporter)

    # -- application interface (RFC 9528 §4.2.1, Appendix H) --

    def exporter(self, label: int, context: bytes, length: int) -> bytes:
        """EDHOC_Exporter(label, context, length): application keying material."""

        def derive() -> bytes:
            if label < 0 or length < 0:
                raise LocalEdhocError("exporter label and length are unsigned")
            assert self._prk_exporter is not None
            return edhoc_kdf(self._crypto, self._prk_exporter, label, context, length)

        return self._step(Input.EXPORT, derive)

    def key_update(self, context: bytes) -> None:
        """EDHOC_KeyUpdate(context): replace PRK_out and PRK_exporter (Appendix H)."""

        def update() -> None:
            assert self._prk_out is not None
            self._set_prk_out(edhoc_kdf(self._crypto, self._prk_out, KEY_UPDATE, context, 32))

        self._step(Input.KEY_UPDATE, update)
