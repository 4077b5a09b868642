"""SASL for the XMPP client: SCRAM-SHA-256 / SCRAM-SHA-1 with server verification, and PLAIN.

Theory of operation.  RFC 6120 §6 carries SASL exchanges in base64 inside ``<auth/>``,
``<challenge/>``, ``<response/>`` and ``<success/>``; this module produces and checks the *raw*
mechanism messages (the caller base64-encodes and decodes them, RFC 6120 §6.4.2).

SCRAM (RFC 5802 §3, §5; SHA-256 per RFC 7677) is a sans-IO state machine, :class:`ScramClient`::

    INITIAL --client_first()--> FIRST_SENT --receive_server_first()--> FINAL_SENT
            --verify_server_final()--> SUCCEEDED            (any peer fault: FAILED, terminal)

* The GS2 header is ``n,,`` (RFC 5802 §7): we do not support channel binding and say so honestly
  rather than ``y,,`` (which claims the server offered no -PLUS mechanism); the ``-PLUS`` variants
  are never selected.  ``c=biws`` in the final message is base64 of that header.
* The server nonce must start with our nonce and add to it (RFC 5802 §5.1 "r"); a mandatory
  extension (``m=``) is refused; the salt must be valid, non-empty base64; the iteration count must
  lie in ``[min_iterations, max_iterations]``: RFC 7677 §3 says it SHOULD be at least 4096 (a weaker
  server-stored verifier is refused), and the ceiling stops a hostile server from making us burn
  CPU in PBKDF2.
* The server proves it knows the salted password with ``v=ServerSignature``; we compare it in
  constant time (``hmac.compare_digest``).  A bad or missing signature, or ``e=``, raises
  :class:`AuthenticationFailed`: authentication has *not* succeeded even if the server then says
  ``<success/>``.
* Keys are derived with ``cryptography`` (PBKDF2-HMAC = SCRAM's Hi(), HMAC, hashes).  The password
  is dropped as soon as the salted password is computed; no secret appears in reprs, logs or
  exception texts.

String preparation ("SASLprep-lite", RFC 5802 §2.2 Normalize()): usernames and passwords go through
the SASLprep profile (RFC 4013) of stringprep (RFC 3454) as implemented with Python's ``stringprep``
tables (Unicode 3.2): non-ASCII spaces (C.1.2) map to U+0020, "commonly mapped to nothing" (B.1) is
removed, NFKC normalisation (Unicode 3.2 data), then prohibited output (C.1.2, C.2.1-C.9) and
unassigned code points (A.1: prepared as *stored strings*, as RFC 5802 requires) are refused and the
bidirectional rule (RFC 3454 §6) is checked.  Nothing else (no PRECIS OpaqueString, RFC 8265).
Usernames are then escaped (``=`` as ``=3D``, ``,`` as ``=2C``).  PLAIN (RFC 4616) sends the
strings unprepared: RFC 4616 §2 has the *server* prepare them.

:func:`select_mechanism` prefers SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN, and PLAIN only over TLS
(RFC 6120 §13.8: PLAIN exposes the password to anyone who can read the stream).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import re
import secrets
import stringprep
import unicodedata
from collections.abc import Callable, Iterable
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from gateway.xmpp.errors import AuthenticationFailed, LocalProtocolError

__all__ = [
    "DEFAULT_MAX_ITERATIONS",
    "DEFAULT_MAX_SERVER_MESSAGE",
    "DEFAULT_MIN_ITERATIONS",
    "SCRAM_MECHANISMS",
    "ScramClient",
    "ScramState",
    "decode_sasl_payload_untrusted",
    "encode_sasl_payload",
    "plain_initial_response",
    "saslprep",
    "select_mechanism",
]

# RFC 7677 §3 and §4: the iteration count announced by a server "SHOULD be at least 4096".
DEFAULT_MIN_ITERATIONS: Final = 4096
# A hostile server must not make us spend seconds in PBKDF2; 1e6 SHA-256 rounds is about 0.5 s.
DEFAULT_MAX_ITERATIONS: Final = 1_000_000
# server-first / server-final are a nonce, a salt and a signature: a few hundred bytes.
DEFAULT_MAX_SERVER_MESSAGE: Final = 4096

# The hashes of the mechanisms we implement, in order of preference (RFC 7677 §1 over RFC 5802).
SCRAM_MECHANISMS: Final = {
    "SCRAM-SHA-256": hashes.SHA256,
    "SCRAM-SHA-1": hashes.SHA1,
}
_PREFERENCE: Final = ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")

# RFC 5802 §7: gs2-header for "client does not support channel binding", no authzid.
_GS2_NO_CHANNEL_BINDING: Final = "n,"
# RFC 5802 §7 "printable": %x21-2B / %x2D-7E (printable ASCII except ',').
_PRINTABLE: Final = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_ITERATIONS: Final = re.compile(r"[1-9][0-9]{0,9}")
# RFC 4648 §4 base64 with exactly the padding it needs (RFC 5802 §7 "base64").
_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_CLIENT_NONCE_BYTES: Final = 24  # 192 bits of randomness


class ScramState(enum.Enum):
    """Where a :class:`ScramClient` is in the exchange (RFC 5802 §3)."""

    INITIAL = enum.auto()
    FIRST_SENT = enum.auto()
    FINAL_SENT = enum.auto()
    SUCCEEDED = enum.auto()
    FAILED = enum.auto()


class ScramClient:
    """The client side of one SCRAM-SHA-256 or SCRAM-SHA-1 exchange (RFC 5802, RFC 7677).

    ``client_nonce`` is for tests (RFC example vectors); by default 24 random bytes, base64.
    ``authzid`` is an optional authorization identity (RFC 5802 §7 gs2-header ``a=``).
    """

    def __init__(
        self,
        mechanism: str,
        username: str,
        password: str,
        *,
        client_nonce: str | None = None,
        authzid: str | None = None,
        min_iterations: int = DEFAULT_MIN_ITERATIONS,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        max_server_message: int = DEFAULT_MAX_SERVER_MESSAGE,
    ) -> None:
        algorithm = SCRAM_MECHANISMS.get(mechanism)
        if algorithm is None:
            raise LocalProtocolError(f"unsupported SCRAM mechanism {mechanism!r}")
        if not 1 <= min_iterations <= max_iterations:
            raise LocalProtocolError("need 1 <= min_iterations <= max_iterations")
        if client_nonce is None:
            client_nonce = base64.b64encode(secrets.token_bytes(_CLIENT_NONCE_BYTES)).decode()
        elif _PRINTABLE.fullmatch(client_nonce) is None:
            raise LocalProtocolError("a SCRAM nonce is printable ASCII without ','")
        self.mechanism = mechanism
        self.min_iterations = min_iterations
        self.max_iterations = max_iterations
        self.max_server_message = max_server_message
        self._algorithm: Callable[[], hashes.HashAlgorithm] = algorithm
        self._client_nonce = client_nonce
        self._username = _escape_saslname(saslprep(username))
        self._password: str | None = saslprep(password)
        if authzid is None:
            self._gs2_header = _GS2_NO_CHANNEL_BINDING + ","
        else:
            self._gs2_header = f"{_GS2_NO_CHANNEL_BINDING}a={_escape_saslname(saslprep(authzid))},"
        self._client_first_bare = f"n={self._username},r={client_nonce}"
        self._expected_server_signature: bytes | None = None
        self.state = ScramState.INITIAL

    def __repr__(self) -> str:
        return f"<ScramClient {self.mechanism} {self.state.name}>"

    def client_first(self) -> bytes:
        """The client-first-message (RFC 5802 §5.1), sent as the initial response of ``<auth/>``."""
        self._expect(ScramState.INITIAL)
        self.state = ScramState.FIRST_SENT
        return (self._gs2_header + self._client_first_bare).encode()

    def receive_server_first(self, data: bytes) -> bytes:
        """Check the server-first-message and return the client-final-message (RFC 5802 §5.1).

        Total: raises :class:`AuthenticationFailed` for any bad server input.
        """
        self._expect(ScramState.FIRST_SENT)
        try:
            server_first = self._decode(data)
            nonce, salt, iterations = self._parse_server_first(server_first)
            assert self._password is not None
            salted_password = PBKDF2HMAC(
                algorithm=self._algorithm(), length=self._digest_size(), salt=salt,
                iterations=iterations,
            ).derive(self._password.encode())  # fmt: skip
        except AuthenticationFailed:
            self._fail()
            raise
        self._password = None  # no longer needed; do not keep it in memory
        channel_binding = base64.b64encode(self._gs2_header.encode()).decode()
        final_without_proof = f"c={channel_binding},r={nonce}"
        auth_message = ",".join((self._client_first_bare, server_first, final_without_proof))
        client_key = self._hmac(salted_password, b"Client Key")
        stored_key = self._hash(client_key)
        client_signature = self._hmac(stored_key, auth_message.encode())
        client_proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
        server_key = self._hmac(salted_password, b"Server Key")
        self._expected_server_signature = self._hmac(server_key, auth_message.encode())
        self.state = ScramState.FINAL_SENT
        proof = base64.b64encode(client_proof).decode()
        return f"{final_without_proof},p={proof}".encode()

    def verify_server_final(self, data: bytes) -> None:
        """Check the server-final-message (RFC 5802 §5.1 "v"), from ``<success/>``'s data.

        Raises :class:`AuthenticationFailed` unless the server proved it knows our password.
        """
        self._expect(ScramState.FINAL_SENT)
        try:
            self._check_server_final(self._decode(data))
        except AuthenticationFailed:
            self._fail()
            raise
        self._expected_server_signature = None
        self.state = ScramState.SUCCEEDED

    # -- internals ----------------------------------------------------------------------------

    def _check_server_final(self, server_final: str) -> None:
        attribute, _, value = server_final.partition(",")[0].partition("=")
        if attribute == "e":
            raise AuthenticationFailed(f"server reported SCRAM error {value[:64]!r}")
        if attribute != "v":
            raise AuthenticationFailed("server-final-message without a verifier")
        signature = _b64decode(value, "server signature")
        assert self._expected_server_signature is not None
        if not hmac.compare_digest(signature, self._expected_server_signature):
            raise AuthenticationFailed("server signature does not match: not our server")

    def _expect(self, state: ScramState) -> None:
        if self.state is not state:
            raise LocalProtocolError(f"SCRAM step out of order (state {self.state.name})")

    def _fail(self) -> None:
        self.state = ScramState.FAILED
        self._password = None
        self._expected_server_signature = None

    def _decode(self, data: bytes) -> str:
        if not isinstance(data, bytes | bytearray):
            raise AuthenticationFailed("SCRAM message is not bytes")
        if len(data) > self.max_server_message:
            raise AuthenticationFailed("SCRAM message from the server is too long")
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("SCRAM message is not UTF-8") from exc

    def _parse_server_first(self, message: str) -> tuple[str, bytes, int]:
        """(combined nonce, salt, iteration count) from server-first-message, checked."""
        attributes = message.split(",")
        if len(attributes) < 3:
            raise AuthenticationFailed("server-first-message is too short")
        if attributes[0].startswith("m="):
            raise AuthenticationFailed("server requires an unsupported SCRAM extension")
        nonce_field, salt_field, iterations_field = attributes[:3]
        if not nonce_field.startswith("r="):
            raise AuthenticationFailed("server-first-message does not start with a nonce")
        nonce = nonce_field[2:]
        if _PRINTABLE.fullmatch(nonce) is None:
            raise AuthenticationFailed("server nonce is not printable")
        if not nonce.startswith(self._client_nonce) or len(nonce) == len(self._client_nonce):
            raise AuthenticationFailed("server nonce does not extend the client nonce")
        if not salt_field.startswith("s="):
            raise AuthenticationFailed("server-first-message has no salt")
        salt = _b64decode(salt_field[2:], "salt")
        if not salt:
            raise AuthenticationFailed("server sent an empty salt")
        if not iterations_field.startswith("i=") or not _ITERATIONS.fullmatch(iterations_field[2:]):
            raise AuthenticationFailed("server-first-message has no valid iteration count")
        iterations = int(iterations_field[2:])
        if iterations < self.min_iterations:
            raise AuthenticationFailed(
                f"iteration count {iterations} is below the floor {self.min_iterations}"
            )
        if iterations > self.max_iterations:
            raise AuthenticationFailed(
                f"iteration count {iterations} is above the ceiling {self.max_iterations}"
            )
        return nonce, salt, iterations

    def _digest_size(self) -> int:
        return self._algorithm().digest_size

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        mac = crypto_hmac.HMAC(key, self._algorithm())
        mac.update(message)
        return mac.finalize()

    def _hash(self, data: bytes) -> bytes:
        digest = hashes.Hash(self._algorithm())
        digest.update(data)
        return digest.finalize()


def plain_initial_response(username: str, password: str, *, authzid: str | None = None) -> bytes:
    """The PLAIN message ``[authzid] NUL authcid NUL passwd`` (RFC 4616 §2), UTF-8, unencoded.

    Send it only over TLS (see :func:`select_mechanism`).
    """
    fields = ("" if authzid is None else authzid, username, password)
    for field in fields:
        if not isinstance(field, str) or "\x00" in field:
            raise LocalProtocolError("PLAIN fields are strings without NUL")
    if not username or not password:
        raise LocalProtocolError("PLAIN needs a non-empty username and password")
    return "\x00".join(fields).encode("utf-8")


def encode_sasl_payload(data: bytes) -> str:
    """Character data for ``<auth/>`` or ``<response/>``: base64, and ``=`` for a zero-length
    payload (RFC 6120 §6.4.2).  (No payload at all is an empty element, not this.)"""
    return base64.b64encode(data).decode("ascii") if data else "="


def decode_sasl_payload_untrusted(
    text: str | None, *, max_size: int = 2 * DEFAULT_MAX_SERVER_MESSAGE
) -> bytes | None:
    """The payload of a received ``<challenge/>`` or ``<success/>`` (RFC 6120 §6.4.3, §6.4.6).

    ``None`` for an empty element (no data), ``b""`` for ``=`` (zero-length data).  Raises
    :class:`AuthenticationFailed` for text longer than ``max_size`` or that is not base64.
    """
    if text is None:
        return None
    stripped = text.strip(" \t\r\n")
    if not stripped:
        return None
    if len(stripped) > max_size:
        raise AuthenticationFailed("SASL data from the server is too long")
    if stripped == "=":
        return b""
    return _b64decode(stripped, "SASL data")


def select_mechanism(offered: Iterable[str], *, tls_active: bool) -> str:
    """The mechanism to use among the server's ``<mechanisms/>`` (RFC 6120 §6.4.1).

    SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN, PLAIN only when ``tls_active``.  -PLUS variants are not
    chosen (no channel binding).  Raises :class:`AuthenticationFailed` if nothing is acceptable.
    """
    names = {name.strip().upper() for name in offered if isinstance(name, str)}
    for mechanism in _PREFERENCE:
        if mechanism in names and (mechanism != "PLAIN" or tls_active):
            return mechanism
    if "PLAIN" in names:
        raise AuthenticationFailed("the server offers only PLAIN, and the stream is not encrypted")
    raise AuthenticationFailed("the server offers no SASL mechanism we support")


def saslprep(text: str) -> str:
    """SASLprep (RFC 4013) for a stored string; raises :class:`LocalProtocolError` if refused.

    The error message never contains the string (it may be a password).
    """
    if not isinstance(text, str):
        raise LocalProtocolError("credentials must be str")
    # RFC 4013 §2.1 mapping: non-ASCII spaces to SPACE, "mapped to nothing" removed.
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in text
        if not stringprep.in_table_b1(char)
    )
    # RFC 4013 §2.2: NFKC, with the Unicode version stringprep's tables use.
    normalized = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not normalized:
        raise LocalProtocolError("credential is empty after SASLprep")
    for char in normalized:
        if _prohibited(char):
            raise LocalProtocolError(f"SASLprep prohibits character U+{ord(char):04X}")
    # RFC 3454 §6 bidirectional rule.
    right_to_left = [stringprep.in_table_d1(char) for char in normalized]
    if any(right_to_left):
        if any(stringprep.in_table_d2(char) for char in normalized):
            raise LocalProtocolError("SASLprep: mixed left-to-right and right-to-left text")
        if not (right_to_left[0] and right_to_left[-1]):
            raise LocalProtocolError("SASLprep: right-to-left text must start and end so")
    return normalized


_PROHIBITED_TABLES: Final = (
    stringprep.in_table_a1,  # unassigned (stored strings)
    stringprep.in_table_c12,  # non-ASCII space
    stringprep.in_table_c21_c22,  # control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-character code points
    stringprep.in_table_c5,  # surrogates
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties / deprecated
    stringprep.in_table_c9,  # tagging characters
)


def _prohibited(char: str) -> bool:
    return any(table(char) for table in _PROHIBITED_TABLES)


def _escape_saslname(name: str) -> str:
    """RFC 5802 §5.1 "n": ',' and '=' are escaped as '=2C' and '=3D'."""
    return name.replace("=", "=3D").replace(",", "=2C")


def _b64decode(value: str, what: str) -> bytes:
    if _BASE64.fullmatch(value) is None:
        raise AuthenticationFailed(f"{what} is not valid base64")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise AuthenticationFailed(f"{what} is not valid base64") from exc
