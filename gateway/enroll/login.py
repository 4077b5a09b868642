"""Check an account's credentials by logging in once, and keep what SCRAM proved.

Enrollment stores nothing before the account's own server has accepted the password. The login
runs the project's XMPP client (``gateway.xmpp``) through its trio connection adapter, with the
upstream settings the configuration gives the account's domain (server override, trust store,
plaintext on loopback). When the server authenticates us with SCRAM (RFC 5802, RFC 7677), the
exchange's salt, iteration count and the derived SaltedPassword are what the gateway keeps: they
let it answer later challenges without the password, and the server proved (``v=``) that they fit
the account. The client hands them over itself (``XmppClient.scram_credential()``, a
:class:`~gateway.xmpp.sasl.ScramCredential`), whether it derived the key or found it in its
cache. A server that offers only PLAIN leaves nothing to keep but the password itself.

Failures are classified (:class:`LoginProblem`) so the command can say what to fix.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import trio

from gateway.config import Configuration, UpstreamDomain
from gateway.jid import Jid
from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, EncryptionRequiredError, XmppClient
from gateway.xmpp.errors import AuthenticationFailed, XmppError
from gateway.xmpp.net.connection import (
    TlsHandshakeError,
    UpstreamConnection,
    UpstreamUnreachableError,
    connect_tcp,
    is_loopback,
)
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver
from gateway.xmpp.net.tls import TrustStore, create_client_context
from gateway.xmpp.sasl import ScramCredential, StaleScramCredential

__all__ = [
    "DEFAULT_LOGIN_TIMEOUT",
    "LoginError",
    "LoginProblem",
    "LoginResult",
    "ScramSecret",
    "check_login",
    "upstream_for",
]

# Connect, STARTTLS, SASL and bind over a loaded link: the client's own negotiation timeout is
# 30 s; one more connect attempt per SRV target fits in a minute.
DEFAULT_LOGIN_TIMEOUT: Final = 60.0


class LoginProblem(enum.Enum):
    """Why a login failed, each with its own fix."""

    BAD_CREDENTIALS = "bad-credentials"
    UNREACHABLE = "unreachable"
    TLS = "tls"
    NO_ENCRYPTION = "no-encryption"
    TIMEOUT = "timeout"
    PROTOCOL = "protocol"
    NOT_CONFIGURED = "not-configured"
    STALE_CREDENTIAL = "stale-credential"


class LoginError(Exception):
    """The login failed: ``problem`` says which way, the message says why and how to fix it."""

    def __init__(self, problem: LoginProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


# What a successful SCRAM exchange leaves: SaltedPassword and the parameters it came from.
ScramSecret = ScramCredential


@dataclass(frozen=True)
class LoginResult:
    """A login that succeeded: the mechanism and, for SCRAM, what to keep instead of a password."""

    mechanism: str
    server: ServerAddress
    scram: ScramSecret | None


def upstream_for(configuration: Configuration, domain: str) -> UpstreamDomain:
    """The configured settings of ``domain``; raises :class:`LoginError` if it has none."""
    for candidate in configuration.upstream.domains:
        if candidate.domain == domain.lower():
            return candidate
    configured = ", ".join(d.domain for d in configuration.upstream.domains) or "none"
    raise LoginError(
        LoginProblem.NOT_CONFIGURED,
        f"the gateway serves no domain {domain!r} (configured: {configured}); add a table "
        f'[upstream.domains."{domain}"] to {configuration.source} (with server = "HOST:PORT" '
        "if the domain has no SRV record), then enroll again",
    )


def _where(upstream: UpstreamDomain) -> str:
    if upstream.server_host is None:
        return f"{upstream.domain} (SRV, then {upstream.domain}:5222)"
    return f"{upstream.server_host}:{upstream.server_port}"


def _table(upstream: UpstreamDomain) -> str:
    return f'[upstream.domains."{upstream.domain}"]'


async def check_login(
    upstream: UpstreamDomain,
    jid: Jid,
    password: str | None,
    *,
    credential: ScramCredential | None = None,
    time_limit: float = DEFAULT_LOGIN_TIMEOUT,
    resolver: ServerResolver | None = None,
) -> LoginResult:
    """Log in to ``jid``'s server as ``upstream`` says, bind, close; raise :class:`LoginError`.

    The login uses ``password``, or the stored SCRAM ``credential`` (enrollment's result, which
    answers the server without the password while its salt and iteration count hold). For SCRAM
    the result carries what the exchange proved (``XmppClient.scram_credential()``).
    """
    if resolver is None:
        static: dict[str, Sequence[ServerAddress]] = {}
        if upstream.server_host is not None and upstream.server_port is not None:
            static[upstream.domain] = [ServerAddress(upstream.server_host, upstream.server_port)]
        resolver = ServerResolver(static_hosts=static)
    trust = TrustStore(
        ca_file=upstream.trust.ca_file, use_system_store=upstream.trust.ca_file is None
    )
    try:
        context = create_client_context(trust)
    except (OSError, ValueError) as exc:
        raise LoginError(
            LoginProblem.TLS,
            f"cannot load the trust store {upstream.trust}: {exc}; fix trust in {_table(upstream)}",
        ) from exc
    config = ClientConfig(
        jid=jid,
        password=password,
        scram_credential=credential,
        allow_plaintext=upstream.allow_plaintext,
        stream_management=False,
        max_stanza_size=upstream.max_stanza_size,
    )
    client = XmppClient(config, defer_key_derivation=True)  # PBKDF2 runs in a worker thread
    mechanisms: list[str] = []

    async def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.Authenticated):
            mechanisms.append(event.mechanism)
        elif isinstance(event, ev.SessionEstablished):
            client.close()

    with trio.move_on_after(time_limit) as scope:
        try:
            stream, address = await connect_tcp(jid.domain, resolver)
        except UpstreamUnreachableError as exc:
            raise LoginError(
                LoginProblem.UNREACHABLE,
                f"cannot reach the XMPP server of {jid.domain} at {_where(upstream)}: {exc}; "
                f'check that the server runs and that server = "HOST:PORT" in '
                f"{_table(upstream)} names its client port",
            ) from exc
        connection = UpstreamConnection(
            client,
            stream,
            ssl_context=context,
            server_hostname=jid.domain,
            on_event=on_event,
            peer_is_loopback=is_loopback(address.host),
        )
        ended = await connection.run()
    if scope.cancelled_caught:
        raise LoginError(
            LoginProblem.TIMEOUT,
            f"the XMPP server of {jid.domain} at {_where(upstream)} did not complete a login "
            f"within {time_limit:.0f} s; check that it is an XMPP server's client port",
        )
    if not mechanisms:
        raise _failure(ended.error, upstream, jid)
    return LoginResult(mechanisms[0], address, client.scram_credential())


def _failure(error: XmppError | None, upstream: UpstreamDomain, jid: Jid) -> LoginError:
    """The login ended before SASL succeeded: say why and what to do."""
    if isinstance(error, StaleScramCredential):
        return LoginError(
            LoginProblem.STALE_CREDENTIAL,
            f"the server of {jid.domain} has re-salted {jid}: {error}; enroll it again with "
            f"'impp-gateway enroll --jid {jid} --password-file FILE'",
        )
    if isinstance(error, AuthenticationFailed) and error.condition is None:
        # Our side refused: the server's SCRAM proof (v=) was missing or wrong, or it broke the
        # exchange; it never said the password was wrong.
        return LoginError(
            LoginProblem.PROTOCOL,
            f"the server at {_where(upstream)} failed SCRAM's proof that it knows the account "
            f"({error}): it may not be {jid.domain}'s server; check server = in {_table(upstream)}",
        )
    if isinstance(error, AuthenticationFailed):
        condition = f" ({error.condition})"
        return LoginError(
            LoginProblem.BAD_CREDENTIALS,
            f"the server of {jid.domain} refused the password for {jid}{condition}: check the "
            "password (a trailing newline in a password file is ignored), or create the "
            "account with --register where the server allows in-band registration",
        )
    if isinstance(error, TlsHandshakeError):
        return LoginError(
            LoginProblem.TLS,
            f"TLS with {_where(upstream)} failed: {error}; the server's certificate must name "
            f'{jid.domain} and chain to trust = "{upstream.trust}" in {_table(upstream)} '
            '(a PEM file holding its CA, or "system")',
        )
    if isinstance(error, EncryptionRequiredError):
        return LoginError(
            LoginProblem.NO_ENCRYPTION,
            f"{_where(upstream)} offers no TLS (STARTTLS); enable TLS on the server, or, for a "
            f"server on loopback only, set allow_plaintext = true in {_table(upstream)}",
        )
    reason = str(error) if error is not None else "the server closed the stream"
    return LoginError(
        LoginProblem.PROTOCOL,
        f"the login to {jid} at {_where(upstream)} failed before authentication: {reason}",
    )
