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
* A stored :class:`ScramCredential` (hash, salt, iteration count, SaltedPassword) replaces the
  password: RFC 5802 §3 derives ClientKey, ServerKey, ClientProof and the expected
  ServerSignature from SaltedPassword alone, so when the server's challenge names the same salt
  and iteration count the client answers with no PBKDF2 at all.  When the server has re-salted
  the account the credential is worthless: without a password beside it the exchange fails with
  :class:`StaleScramCredential` (re-enroll the account); with one, Hi() runs as usual.  After a
  successful exchange :meth:`ScramClient.credential` is what the account's next log-in may store.
* Hi() is the one expensive step (tens of milliseconds at the iteration counts servers use), and a
  server salts an account once, so every log-in and every fresh session after a resumption
  failure would repeat the same derivation.  :class:`SaltedPasswordCache` keeps the result keyed by
  (hash, password, salt, iteration count): a re-login with the same salt costs no PBKDF2.  The
  derivation itself is a :class:`KeyDerivation` value that an adapter may run in a worker thread
  (``ScramClient.begin_server_first`` then ``finish_server_first``); ``receive_server_first`` does
  both inline for callers without an event loop to protect.

String preparation ("SASLprep-lite", RFC 5802 §2.2 Normalize()): usernames and passwords go through
the SASLprep profile (RFC 4013) of stringprep (RFC 3454) as implemented with Python's ``stringprep``
tables (Unicode 3.2): non-ASCII spaces (C.1.2) map to U+0020, "commonly mapped to nothing" (B.1) is
removed, NFKC normalisation (Unicode 3.2 data), then prohibited output (C.1.2, C.2.1-C.9) and
unassigned code points (A.1: prepared as *stored strings*, as RFC 5802 requires) are refused and the
bidirectional rule (RFC 3454 §6) is checked.  Nothing else (no PRECIS OpaqueString, RFC 8265).
Usernames are then escaped (``=`` as ``=3D``, ``,`` as ``=2C``).  PLAIN (RFC 4616) sends the
strings unprepared: RFC 4616 §2 has the *server* prepare them.

:func:`select_mechanism` prefers SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN, and PLAIN only over TLS
(RFC 6120 §13.8: PLAIN exposes the password to anyone who can read the stream); a stored
credential's own SCRAM variant comes first, since no other can use it.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
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

from gateway.xmpp.errors import AuthenticationFailed, LocalXmppError

__all__ = [
    "DEFAULT_MAX_ITERATIONS",
    "DEFAULT_MAX_SERVER_MESSAGE",
    "DEFAULT_MIN_ITERATIONS",
    "DEFAULT_SALTED_PASSWORD_CACHE_SIZE",
    "SALTED_PASSWORDS",
    "SCRAM_HASH_NAMES",
    "SCRAM_MECHANISMS",
    "KeyDerivation",
    "SaltedPasswordCache",
    "ScramClient",
    "ScramCredential",
    "ScramState",
    "StaleScramCredential",
    "decode_sasl_payload_untrusted",
    "encode_sasl_payload",
    "plain_initial_response",
    "saslprep",
    "select_mechanism",
]

# RFC 7677 §3 and §4: the iteration count announced by a server "SHOULD be at least 4096".
DEFAULT_MIN_ITERATIONS: Final = 4096
# A hostile server chooses the iteration count and must not make us burn CPU in PBKDF2: RFC 7677
# §4 asks for at least 4096 and servers use 4096-10000 (Prosody's default is 10000), so 100,000
# (65 ms of PBKDF2-SHA-256 measured on the 2-core CI machine, against 6.5 ms for 10000) admits any
# sane server with a 10x margin while bounding what one log-in can cost; a ceiling of 1,000,000
# would let a server stall the event loop 118 ms (up to 600 ms under load) per log-in.
DEFAULT_MAX_ITERATIONS: Final = 100_000
# Salted passwords kept (one per account and server salt); a few hundred bytes each.
DEFAULT_SALTED_PASSWORD_CACHE_SIZE: Final = 100_000
# server-first / server-final are a nonce, a salt and a signature: a few hundred bytes.
DEFAULT_MAX_SERVER_MESSAGE: Final = 4096

# The hashes of the mechanisms we implement, in order of preference (RFC 7677 §1 over RFC 5802).
SCRAM_MECHANISMS: Final = {
    "SCRAM-SHA-256": hashes.SHA256,
    "SCRAM-SHA-1": hashes.SHA1,
}
# The hash names a ScramCredential carries (and the store keeps), by mechanism.
SCRAM_HASH_NAMES: Final = {"SCRAM-SHA-256": "SHA-256", "SCRAM-SHA-1": "SHA-1"}
_MECHANISM_OF_HASH: Final = {name: mechanism for mechanism, name in SCRAM_HASH_NAMES.items()}
_PREFERENCE: Final = ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")

# RFC 5802 §7: gs2-header for "client does not support channel binding", no authzid.
_GS2_NO_CHANNEL_BINDING: Final = "n,"
# RFC 5802 §7 "printable": %x21-2B / %x2D-7E (printable ASCII except ',').
_PRINTABLE: Final = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_ITERATIONS: Final = re.compile(r"[1-9][0-9]{0,9}")
# RFC 4648 §4 base64 with exactly the padding it needs (RFC 5802 §7 "base64").
_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_CLIENT_NONCE_BYTES: Final = 24  # 192 bits of randomness


class StaleScramCredential(AuthenticationFailed):
    """The stored SCRAM credential no longer fits the server: it re-salted the account.

    The server's challenge named another salt, iteration count or hash than the stored
    SaltedPassword was derived with, and no password was configured to derive a new one; the
    fix is to enroll the account again.  ``condition`` is None: the server refused nothing.
    """

    def __init__(self, text: str | None = None) -> None:
        super().__init__(
            text
            or "stored SCRAM credential no longer matches the server's salt/iterations: "
            "re-enroll the device's account"
        )


@dataclasses.dataclass(frozen=True, eq=False)
class ScramCredential:
    """What a SCRAM log-in needs instead of the password (RFC 5802 §3): SaltedPassword.

    ``hash_name`` is ``"SHA-256"`` (SCRAM-SHA-256, RFC 7677) or ``"SHA-1"`` (SCRAM-SHA-1);
    ``salted_password`` is Hi(Normalize(password), salt, iterations).  It is as good as the
    password *to this server while it keeps this salt*, so it is a secret: it is kept out of the
    repr and compared in constant time.
    """

    hash_name: str
    salt: bytes
    iterations: int
    salted_password: bytes = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        mechanism = _MECHANISM_OF_HASH.get(self.hash_name)
        if mechanism is None:
            raise LocalXmppError(f"unknown SCRAM hash {self.hash_name!r}")
        if not isinstance(self.salt, bytes) or not self.salt:
            raise LocalXmppError("a SCRAM credential needs a non-empty salt")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int):
            raise LocalXmppError("a SCRAM iteration count is an int")
        if self.iterations < 1:
            raise LocalXmppError("a SCRAM iteration count is positive")
        digest_size = SCRAM_MECHANISMS[mechanism]().digest_size
        if not isinstance(self.salted_password, bytes) or len(self.salted_password) != digest_size:
            raise LocalXmppError(f"a {self.hash_name} SaltedPassword is {digest_size} bytes")

    @property
    def mechanism(self) -> str:
        """The SASL mechanism this credential answers: ``SCRAM-SHA-256`` or ``SCRAM-SHA-1``."""
        return _MECHANISM_OF_HASH[self.hash_name]

    def fits(self, mechanism: str, salt: bytes, iterations: int) -> bool:
        """Whether a server-first-message's parameters are the ones this key was derived with."""
        return (
            mechanism == self.mechanism
            and iterations == self.iterations
            and hmac.compare_digest(salt, self.salt)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScramCredential):
            return NotImplemented
        return (
            self.hash_name == other.hash_name
            and self.iterations == other.iterations
            and hmac.compare_digest(self.salt, other.salt)
            and hmac.compare_digest(self.salted_password, other.salted_password)
        )

    def __hash__(self) -> int:
        return hash((self.hash_name, self.salt, self.iterations))


class SaltedPasswordCache:
    """SCRAM SaltedPassword values by (hash, password, salt, iterations), bounded, oldest evicted.

    The key holds the password as the :class:`~gateway.xmpp.client.ClientConfig` already does; the
    value is what the password is worth to that server, so the cache lives in memory only.
    """

    def __init__(self, max_entries: int = DEFAULT_SALTED_PASSWORD_CACHE_SIZE) -> None:
        self.max_entries = max_entries
        self._entries: collections.OrderedDict[tuple[str, str, bytes, int], bytes] = (
            collections.OrderedDict()
        )
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"<SaltedPasswordCache {len(self._entries)} entries>"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, str, bytes, int]) -> bytes | None:
        """The cached value, or None (counted as a hit or a miss)."""
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: tuple[str, str, bytes, int], value: bytes) -> None:
        """Remember ``value``; evict the least recently used entry past ``max_entries``."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (and the counters)."""
        self._entries.clear()
        self.hits = self.misses = 0


# The process-wide cache that ScramClient uses unless it is given another.
SALTED_PASSWORDS: Final = SaltedPasswordCache()


class KeyDerivation:
    """One pending SCRAM Hi() computation; :meth:`derive` is pure and safe to run in a thread."""

    def __init__(
        self, algorithm: Callable[[], hashes.HashAlgorithm], password: str, salt: bytes,
        iterations: int,
    ) -> None:  # fmt: skip
        self._algorithm = algorithm
        self._password = password
        self.salt = salt
        self.iterations = iterations

    def __repr__(self) -> str:
        return f"<KeyDerivation {self._algorithm.__name__} i={self.iterations}>"

    def derive(self) -> bytes:
        """SaltedPassword := Hi(Normalize(password), salt, i) (RFC 5802 §3)."""
        algorithm = self._algorithm()
        return PBKDF2HMAC(
            algorithm=algorithm, length=algorithm.digest_size, salt=self.salt,
            iterations=self.iterations,
        ).derive(self._password.encode())  # fmt: skip


class ScramState(enum.Enum):
    """Where a :class:`ScramClient` is in the exchange (RFC 5802 §3)."""

    INITIAL = enum.auto()
    FIRST_SENT = enum.auto()
    FINAL_SENT = enum.auto()
    SUCCEEDED = enum.auto()
    FAILED = enum.auto()


class ScramClient:
    """The client side of one SCRAM-SHA-256 or SCRAM-SHA-1 exchange (RFC 5802, RFC 7677).

    It answers from ``password`` (Hi() on a cache miss), from a stored ``credential`` (no Hi()
    when the server's salt and iteration count are the credential's), or from the credential with
    the password as the fallback when the server re-salted the account; at least one is needed.
    ``client_nonce`` is for tests (RFC example vectors); by default 24 random bytes, base64.
    ``authzid`` is an optional authorization identity (RFC 5802 §7 gs2-header ``a=``).
    """

    def __init__(
        self,
        mechanism: str,
        username: str,
        password: str | None,
        *,
        credential: ScramCredential | None = None,
        client_nonce: str | None = None,
        authzid: str | None = None,
        min_iterations: int = DEFAULT_MIN_ITERATIONS,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        max_server_message: int = DEFAULT_MAX_SERVER_MESSAGE,
        cache: SaltedPasswordCache | None = SALTED_PASSWORDS,
    ) -> None:
        algorithm = SCRAM_MECHANISMS.get(mechanism)
        if algorithm is None:
            raise LocalXmppError(f"unsupported SCRAM mechanism {mechanism!r}")
        if password is None and credential is None:
            raise LocalXmppError("SCRAM needs a password or a stored credential")
        if credential is not None and credential.mechanism != mechanism:
            raise LocalXmppError(f"a {credential.hash_name} credential cannot answer {mechanism}")
        if not 1 <= min_iterations <= max_iterations:
            raise LocalXmppError("need 1 <= min_iterations <= max_iterations")
        if client_nonce is None:
            client_nonce = base64.b64encode(secrets.token_bytes(_CLIENT_NONCE_BYTES)).decode()
        elif _PRINTABLE.fullmatch(client_nonce) is None:
            raise LocalXmppError("a SCRAM nonce is printable ASCII without ','")
        self.mechanism = mechanism
        self.min_iterations = min_iterations
        self.max_iterations = max_iterations
        self.max_server_message = max_server_message
        self._algorithm: Callable[[], hashes.HashAlgorithm] = algorithm
        self._client_nonce = client_nonce
        self._username = _escape_saslname(saslprep(username))
        self._password: str | None = None if password is None else saslprep(password)
        self._credential = credential
        if authzid is None:
            self._gs2_header = _GS2_NO_CHANNEL_BINDING + ","
        else:
            self._gs2_header = f"{_GS2_NO_CHANNEL_BINDING}a={_escape_saslname(saslprep(authzid))},"
        self._client_first_bare = f"n={self._username},r={client_nonce}"
        self._expected_server_signature: bytes | None = None
        self._cache = cache
        # After begin_server_first: (combined nonce, server-first, salt, iterations, cache key or
        # None, SaltedPassword when already known from the credential or the cache).
        self._server_first: (
            tuple[str, str, bytes, int, tuple[str, str, bytes, int] | None, bytes | None] | None
        ) = None
        self._candidate: ScramCredential | None = None
        self._result: ScramCredential | None = None
        self.state = ScramState.INITIAL

    def __repr__(self) -> str:
        return f"<ScramClient {self.mechanism} {self.state.name}>"

    def client_first(self) -> bytes:
        """The client-first-message (RFC 5802 §5.1), sent as the initial response of ``<auth/>``."""
        self._expect(ScramState.INITIAL)
        self.state = ScramState.FIRST_SENT
        return (self._gs2_header + self._client_first_bare).encode()

    def credential(self) -> ScramCredential | None:
        """What this exchange proved, once SUCCEEDED: the key, salt and iterations to store.

        None before the server's signature has been verified.  The server's ``v=`` shows that
        the key fits the account, so a log-in from this credential needs no password.
        """
        return self._result if self.state is ScramState.SUCCEEDED else None

    def receive_server_first(self, data: bytes) -> bytes:
        """Check the server-first-message and return the client-final-message (RFC 5802 §5.1).

        Total: raises :class:`AuthenticationFailed` for any bad server input (its subclass
        :class:`StaleScramCredential` when only a stored credential was given and the server
        re-salted).  Derives the key inline if it must; an event loop uses
        :meth:`begin_server_first`.
        """
        derivation = self.begin_server_first(data)
        return self.finish_server_first(None if derivation is None else derivation.derive())

    def begin_server_first(self, data: bytes) -> KeyDerivation | None:
        """Check the server-first-message; return the Hi() still to compute, or None if known.

        The key is known when the stored credential fits the server's salt and iteration count,
        or the cache holds it.  Then call :meth:`finish_server_first` with the derived key (or
        None when nothing was to derive).
        """
        self._expect(ScramState.FIRST_SENT)
        try:
            server_first = self._decode(data)
            nonce, salt, iterations = self._parse_server_first(server_first)
            if self._credential is not None and self._credential.fits(
                self.mechanism, salt, iterations
            ):
                known: bytes | None = self._credential.salted_password
                self._server_first = (nonce, server_first, salt, iterations, None, known)
                return None
            if self._password is None:
                raise StaleScramCredential()
        except AuthenticationFailed:
            self._fail()
            raise
        key = (self.mechanism, self._password, salt, iterations)
        known = None if self._cache is None else self._cache.get(key)
        self._server_first = (nonce, server_first, salt, iterations, key, known)
        if known is not None:
            return None
        return KeyDerivation(self._algorithm, self._password, salt, iterations)

    def finish_server_first(self, salted_password: bytes | None) -> bytes:
        """The client-final-message, from the key :meth:`begin_server_first` asked for."""
        self._expect(ScramState.FIRST_SENT)
        if self._server_first is None:
            raise LocalXmppError("begin_server_first() has not accepted a server-first")
        nonce, server_first, salt, iterations, key, known = self._server_first
        if salted_password is None:
            if known is None:
                raise LocalXmppError("no derived key given and none known")
            salted_password = known
        elif self._cache is not None and key is not None:
            self._cache.put(key, salted_password)
        self._server_first = None
        self._password = None  # no longer needed; do not keep it in memory
        self._credential = None
        self._candidate = ScramCredential(
            SCRAM_HASH_NAMES[self.mechanism], salt, iterations, salted_password
        )
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
        self._result, self._candidate = self._candidate, None
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
            raise LocalXmppError(f"SCRAM step out of order (state {self.state.name})")

    def _fail(self) -> None:
        self.state = ScramState.FAILED
        self._password = None
        self._credential = None
        self._candidate = None
        self._server_first = None
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
            raise LocalXmppError("PLAIN fields are strings without NUL")
    if not username or not password:
        raise LocalXmppError("PLAIN needs a non-empty username and password")
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


def select_mechanism(
    offered: Iterable[str],
    *,
    tls_active: bool,
    credential: ScramCredential | None = None,
    have_password: bool = True,
) -> str:
    """The mechanism to use among the server's ``<mechanisms/>`` (RFC 6120 §6.4.1).

    With a stored ``credential``, its own mechanism (SCRAM-SHA-256 or SCRAM-SHA-1) when offered:
    only that variant can use its SaltedPassword.  Otherwise, with a password (``have_password``),
    SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN, PLAIN only when ``tls_active``.  -PLUS variants are not
    chosen (no channel binding, see the module doc).  Raises :class:`AuthenticationFailed` if
    nothing is acceptable; :class:`StaleScramCredential` if the credential's mechanism is gone
    and there is no password.
    """
    names = {name.strip().upper() for name in offered if isinstance(name, str)}
    if credential is not None:
        if credential.mechanism in names:
            return credential.mechanism
        if not have_password:
            raise StaleScramCredential(
                f"the server no longer offers {credential.mechanism}, which the stored SCRAM "
                "credential needs: re-enroll the device's account"
            )
    elif not have_password:
        raise LocalXmppError("SASL needs a password or a stored SCRAM credential")
    for mechanism in _PREFERENCE:
        if mechanism in names and (mechanism != "PLAIN" or tls_active):
            return mechanism
    if "PLAIN" in names:
        raise AuthenticationFailed("the server offers only PLAIN, and the stream is not encrypted")
    raise AuthenticationFailed("the server offers no SASL mechanism we support")


def saslprep(text: str) -> str:
    """SASLprep (RFC 4013) for a stored string; raises :class:`LocalXmppError` if refused.

    The error message never contains the string (it may be a password).
    """
    if not isinstance(text, str):
        raise LocalXmppError("credentials must be str")
    # RFC 4013 §2.1 mapping: non-ASCII spaces to SPACE, "mapped to nothing" removed.
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in text
        if not stringprep.in_table_b1(char)
    )
    # RFC 4013 §2.2: NFKC, with the Unicode version stringprep's tables use.
    normalized = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not normalized:
        raise LocalXmppError("credential is empty after SASLprep")
    for char in normalized:
        if _prohibited(char):
            raise LocalXmppError(f"SASLprep prohibits character U+{ord(char):04X}")
    # RFC 3454 §6 bidirectional rule.
    right_to_left = [stringprep.in_table_d1(char) for char in normalized]
    if any(right_to_left):
        if any(stringprep.in_table_d2(char) for char in normalized):
            raise LocalXmppError("SASLprep: mixed left-to-right and right-to-left text")
        if not (right_to_left[0] and right_to_left[-1]):
            raise LocalXmppError("SASLprep: right-to-left text must start and end so")
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
