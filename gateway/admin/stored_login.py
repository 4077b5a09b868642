"""A test login for one account with the credential the gateway stored at enrollment.

The store holds either the account's password (servers that offer only PLAIN) or, usually, the
SCRAM SaltedPassword with its salt and iteration count (gateway.store ``UpstreamCredential``).
A password goes through the enrollment's own login (:func:`gateway.enroll.login.check_login`).
A SaltedPassword goes to the XMPP client as ``ClientConfig.scram_credential``
(:class:`~gateway.xmpp.sasl.ScramCredential`): SCRAM (RFC 5802 §3) needs only SaltedPassword to
answer the server and to check the server's proof, so when the server still uses the stored salt
and iteration count the login succeeds without the password, and when it has changed them the
client stops before answering (:class:`~gateway.xmpp.sasl.StaleScramCredential`) and the fix is
to enroll again. The database is opened read-only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import trio

from gateway.config import Configuration, UpstreamDomain
from gateway.enroll.login import LoginError, check_login, upstream_for
from gateway.jid import Jid, JidError
from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, XmppClient
from gateway.xmpp.errors import AuthenticationFailed, LocalXmppError
from gateway.xmpp.net.connection import (
    UpstreamConnection,
    UpstreamUnreachableError,
    connect_tcp,
    is_loopback,
)
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver
from gateway.xmpp.net.tls import TrustStore, create_client_context
from gateway.xmpp.sasl import ScramCredential, StaleScramCredential

__all__ = ["StoredLoginError", "login_with_stored_credential"]


class StoredLoginError(Exception):
    """The test login failed: ``message`` says why, ``fix`` what to do."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def _read_credential(
    configuration: Configuration, account: str
) -> tuple[str, bytes, int, bytes, str | None] | None:
    database = configuration.store.database
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            row = connection.execute(
                "SELECT hash_name, salt, iterations, salted_password, password "
                "FROM upstream_credentials WHERE account_jid = ?",
                (account,),
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise StoredLoginError(
            f"cannot read the credentials in {database}: {exc}",
            "run the store schema check's fix first",
        ) from exc
    if row is None:
        return None
    hash_name, salt, iterations, salted, password = row
    return str(hash_name), bytes(salt), int(iterations), bytes(salted), password


async def login_with_stored_credential(
    configuration: Configuration, account: str, *, time_limit: float
) -> str:
    """Log in as ``account`` with its stored credential, bind, close; return the mechanism."""
    try:
        jid = Jid.parse_untrusted(account).bare
    except JidError as exc:
        raise StoredLoginError(
            f"{account!r} is not an account address", "give --login user@domain"
        ) from exc
    try:
        upstream = upstream_for(configuration, jid.domain)
    except LoginError as exc:
        raise StoredLoginError(str(exc), f"add the domain to {configuration.source}") from exc
    stored = _read_credential(configuration, str(jid))
    if stored is None:
        raise StoredLoginError(
            f"the gateway stores no credential for {jid}",
            f"enroll a device for it: impp-gateway enroll --jid {jid} --password-file FILE",
        )
    hash_name, salt, iterations, salted, password = stored
    if password is not None:
        try:
            result = await check_login(upstream, jid, password, time_limit=time_limit)
        except LoginError as exc:
            raise StoredLoginError(str(exc), _login_fix(jid)) from exc
        return result.mechanism
    try:
        credential = ScramCredential(hash_name, salt, iterations, salted)
    except LocalXmppError as exc:
        raise StoredLoginError(
            f"the stored SCRAM credential of {jid} is unusable ({exc})", _login_fix(jid)
        ) from exc
    return await _salted_login(upstream, jid, credential, time_limit)


def _login_fix(jid: Jid) -> str:
    return (
        f"if the password of {jid} changed, enroll again with "
        f"'impp-gateway enroll --jid {jid} --password-file FILE'"
    )


async def _salted_login(
    upstream: UpstreamDomain, jid: Jid, credential: ScramCredential, limit: float
) -> str:
    static: dict[str, Sequence[ServerAddress]] = {}
    if upstream.server_host is not None and upstream.server_port is not None:
        static[upstream.domain] = [ServerAddress(upstream.server_host, upstream.server_port)]
    trust = TrustStore(
        ca_file=upstream.trust.ca_file, use_system_store=upstream.trust.ca_file is None
    )
    try:
        context = create_client_context(trust)
    except (OSError, ValueError) as exc:
        raise StoredLoginError(
            f"cannot load the trust store {upstream.trust}: {exc}",
            f'fix trust = in [upstream.domains."{upstream.domain}"]',
        ) from exc
    config = ClientConfig(
        jid=jid,
        scram_credential=credential,
        allow_plaintext=upstream.allow_plaintext,
        stream_management=False,
        max_stanza_size=upstream.max_stanza_size,
    )
    client = XmppClient(config, defer_key_derivation=True)
    mechanisms: list[str] = []

    async def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.Authenticated):
            mechanisms.append(event.mechanism)
        elif isinstance(event, ev.SessionEstablished):
            client.close()

    with trio.move_on_after(limit) as scope:
        try:
            stream, address = await connect_tcp(jid.domain, ServerResolver(static_hosts=static))
        except UpstreamUnreachableError as exc:
            raise StoredLoginError(
                f"cannot reach the XMPP server of {jid.domain}: {exc}",
                "see the resolve and tls checks above",
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
        raise StoredLoginError(
            f"the server of {jid.domain} did not complete a login within {limit:.0f} s",
            "check that server = names an XMPP server's client port",
        )
    if mechanisms:
        return mechanisms[0]
    error = ended.error
    if isinstance(error, StaleScramCredential):
        raise StoredLoginError(
            f"the server of {jid.domain} has re-salted {jid}: {error}",
            f"enroll it again: impp-gateway enroll --jid {jid} --password-file FILE",
        )
    if isinstance(error, AuthenticationFailed) or error is None:
        raise StoredLoginError(
            f"the server of {jid.domain} did not accept the stored SCRAM credential of {jid} "
            f"({error or 'its salt or iteration count changed'})",
            _login_fix(jid),
        )
    raise StoredLoginError(
        f"the login to {jid} failed before authentication: {error}",
        "see the tls check above",
    )
