"""A test login for one account with the credential the gateway stored at enrollment.

The store holds either the account's password (servers that offer only PLAIN) or, usually, the
SCRAM SaltedPassword with its salt and iteration count (gateway.store ``UpstreamCredential``).
Both go through the enrollment's own login (:func:`gateway.enroll.login.check_login`); a
SaltedPassword reaches the XMPP client as ``ClientConfig.scram_credential``
(:class:`~gateway.xmpp.sasl.ScramCredential`): SCRAM (RFC 5802 §3) needs only SaltedPassword to
answer the server and to check the server's proof, so when the server still uses the stored salt
and iteration count the login succeeds without the password, and when it has changed them the
client stops before answering (:class:`~gateway.xmpp.sasl.StaleScramCredential`) and the fix is
to enroll again. The database is opened read-only.
"""

from __future__ import annotations

import sqlite3

from gateway.config import Configuration
from gateway.enroll.login import LoginError, LoginProblem, check_login, upstream_for
from gateway.jid import Jid, JidError
from gateway.xmpp.errors import LocalXmppError
from gateway.xmpp.sasl import ScramCredential

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
    credential: ScramCredential | None = None
    if password is None:
        try:
            credential = ScramCredential(hash_name, salt, iterations, salted)
        except LocalXmppError as exc:
            raise StoredLoginError(
                f"the stored SCRAM credential of {jid} is unusable ({exc})", _login_fix(jid)
            ) from exc
    try:
        result = await check_login(
            upstream, jid, password, credential=credential, time_limit=time_limit
        )
    except LoginError as exc:
        raise StoredLoginError(str(exc), _fix_for(exc.problem, jid)) from exc
    return result.mechanism


def _fix_for(problem: LoginProblem, jid: Jid) -> str:
    if problem in (LoginProblem.BAD_CREDENTIALS, LoginProblem.STALE_CREDENTIAL):
        return _login_fix(jid)
    if problem in (LoginProblem.TLS, LoginProblem.NO_ENCRYPTION, LoginProblem.UNREACHABLE):
        return "see the resolve and tls checks above"
    return "see the message above"


def _login_fix(jid: Jid) -> str:
    return (
        f"if the password of {jid} changed, enroll again with "
        f"'impp-gateway enroll --jid {jid} --password-file FILE'"
    )
