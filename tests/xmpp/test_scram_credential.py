"""Logging in from a stored SCRAM credential (SaltedPassword, salt, iterations), not a password.

The sans-IO vector is the SCRAM-SHA-256 example of RFC 7677 §3 (user "user", password "pencil",
client nonce "rOprNGfwEbeRWgbNEkqO", salt "W22ZaJ0SNY7soEsUEjb6gQ==", i=4096): from the
SaltedPassword alone the client must send the RFC's client-final-message byte for byte
(``p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=``) and accept its ServerSignature
(``v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=``) without running PBKDF2.  The last tests log
in to the private Prosody from a credential the first login produced.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

import gateway.xmpp.sasl as sasl
from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, XmppClient
from gateway.xmpp.errors import AuthenticationFailed, LocalXmppError
from gateway.xmpp.jid import Jid
from gateway.xmpp.sasl import (
    ScramClient,
    ScramCredential,
    ScramState,
    StaleScramCredential,
    select_mechanism,
)
from tests.support.prosody import ProsodyServer
from tests.xmpp.replay import ACCOUNT, CLIENT_NONCE, SERVER_HEADER
from tests.xmpp.upstream import EventLog, config_for, manager_for

# RFC 7677 §3, the folded lines joined.
RFC7677_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC7677_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC7677_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC7677_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
RFC7677_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC7677_ITERATIONS = 4096
# SaltedPassword := Hi("pencil", salt, 4096), computed by the standard library, not by our code.
RFC7677_SALTED_PASSWORD = hashlib.pbkdf2_hmac("sha256", b"pencil", RFC7677_SALT, RFC7677_ITERATIONS)
STORED = ScramCredential("SHA-256", RFC7677_SALT, RFC7677_ITERATIONS, RFC7677_SALTED_PASSWORD)
RESALTED = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=QSXCR+Q6sek8bf92,i=4096"
MORE_ITERATIONS = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=8192"
)
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"


@pytest.fixture
def pbkdf2_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every PBKDF2 the SASL module runs (its PBKDF2HMAC) and any hashlib.pbkdf2_hmac."""
    calls: list[int] = []
    real_kdf = PBKDF2HMAC
    real_hashlib = hashlib.pbkdf2_hmac

    def counting_kdf(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real_kdf(*args, **kwargs)  # type: ignore[arg-type]

    def counting_hashlib(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        return real_hashlib(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sasl, "PBKDF2HMAC", counting_kdf)
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counting_hashlib)
    return calls


def test_rfc7677_login_from_the_stored_salted_password_runs_no_pbkdf2(
    pbkdf2_calls: list[int],
) -> None:
    client = ScramClient(
        "SCRAM-SHA-256", "user", None, credential=STORED, client_nonce=CLIENT_NONCE, cache=None
    )
    assert client.client_first() == RFC7677_CLIENT_FIRST
    assert client.begin_server_first(RFC7677_SERVER_FIRST) is None  # nothing to derive
    assert client.finish_server_first(None) == RFC7677_CLIENT_FINAL  # byte-identical
    client.verify_server_final(RFC7677_SERVER_FINAL)
    assert client.state is ScramState.SUCCEEDED
    assert pbkdf2_calls == []
    assert client.credential() == STORED


def test_the_counter_sees_the_password_path(pbkdf2_calls: list[int]) -> None:
    """The same exchange from the password runs PBKDF2 once: the counter above can fail."""
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", client_nonce=CLIENT_NONCE, cache=None)
    client.client_first()
    assert client.receive_server_first(RFC7677_SERVER_FIRST) == RFC7677_CLIENT_FINAL
    client.verify_server_final(RFC7677_SERVER_FINAL)
    assert pbkdf2_calls == [1]
    assert client.credential() == STORED  # what enrollment stores


@pytest.mark.parametrize("server_first", [RESALTED, MORE_ITERATIONS], ids=["salt", "iterations"])
def test_a_resalted_account_fails_with_a_specific_error(
    server_first: bytes, pbkdf2_calls: list[int]
) -> None:
    client = ScramClient(
        "SCRAM-SHA-256", "user", None, credential=STORED, client_nonce=CLIENT_NONCE, cache=None
    )
    client.client_first()
    with pytest.raises(StaleScramCredential, match="re-enroll the device's account") as caught:
        client.begin_server_first(server_first)
    assert isinstance(caught.value, AuthenticationFailed)
    assert caught.value.condition is None  # the server refused nothing; our key is stale
    assert client.state is ScramState.FAILED
    assert client.credential() is None
    assert pbkdf2_calls == []
    assert RFC7677_SALTED_PASSWORD.hex() not in str(caught.value)


def test_a_resalted_account_falls_back_to_the_password(pbkdf2_calls: list[int]) -> None:
    """With a password beside the credential, a new salt means one PBKDF2, as without it."""
    stale = dataclasses.replace(STORED, salt=b"another salt")
    client = ScramClient(
        "SCRAM-SHA-256", "user", "pencil", credential=stale, client_nonce=CLIENT_NONCE, cache=None
    )
    client.client_first()
    assert client.receive_server_first(RFC7677_SERVER_FIRST) == RFC7677_CLIENT_FINAL
    client.verify_server_final(RFC7677_SERVER_FINAL)
    assert pbkdf2_calls == [1]
    assert client.credential() == STORED  # the server's current salt: what to store now


def test_a_wrong_stored_key_fails_the_server_signature() -> None:
    wrong = dataclasses.replace(STORED, salted_password=bytes(32))
    client = ScramClient(
        "SCRAM-SHA-256", "user", None, credential=wrong, client_nonce=CLIENT_NONCE, cache=None
    )
    client.client_first()
    assert client.receive_server_first(RFC7677_SERVER_FIRST) != RFC7677_CLIENT_FINAL
    with pytest.raises(AuthenticationFailed):
        client.verify_server_final(RFC7677_SERVER_FINAL)
    assert client.credential() is None


def test_the_credential_hides_its_key_and_checks_itself() -> None:
    assert RFC7677_SALTED_PASSWORD.hex() not in repr(STORED)
    assert repr(RFC7677_SALTED_PASSWORD) not in repr(STORED)
    assert STORED.mechanism == "SCRAM-SHA-256"
    assert ScramCredential("SHA-1", b"s", 4096, bytes(20)).mechanism == "SCRAM-SHA-1"
    assert dataclasses.replace(STORED, salted_password=bytes(32)) != STORED
    assert hash(STORED) == hash(dataclasses.replace(STORED, salted_password=bytes(32)))
    refused: tuple[Callable[[], object], ...] = (
        lambda: ScramCredential("MD5", b"s", 4096, bytes(16)),
        lambda: ScramCredential("SHA-256", b"", 4096, bytes(32)),
        lambda: ScramCredential("SHA-256", b"s", 0, bytes(32)),
        lambda: ScramCredential("SHA-256", b"s", True, bytes(32)),
        lambda: ScramCredential("SHA-256", b"s", 4096, bytes(20)),  # a SHA-1 sized key
    )
    for bad in refused:
        with pytest.raises(LocalXmppError):
            bad()
    with pytest.raises(LocalXmppError):
        ScramClient("SCRAM-SHA-1", "user", None, credential=STORED)  # hash and mechanism differ
    with pytest.raises(LocalXmppError):
        ScramClient("SCRAM-SHA-256", "user", None)
    with pytest.raises(LocalXmppError):
        ClientConfig(jid=ACCOUNT)  # neither a password nor a credential


SHA1_CREDENTIAL = ScramCredential("SHA-1", b"salt", 4096, bytes(20))
BOTH = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]


@pytest.mark.parametrize(
    ("offered", "credential", "have_password", "expected"),
    [
        (BOTH, SHA1_CREDENTIAL, False, "SCRAM-SHA-1"),  # only its own variant can use the key
        (BOTH, SHA1_CREDENTIAL, True, "SCRAM-SHA-1"),  # and it costs no PBKDF2
        (BOTH, STORED, False, "SCRAM-SHA-256"),
        (["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"], SHA1_CREDENTIAL, False, "SCRAM-SHA-1"),
        (["SCRAM-SHA-1", "PLAIN"], STORED, True, "SCRAM-SHA-1"),  # gone: the password's choice
        (BOTH, None, True, "SCRAM-SHA-256"),
    ],
)
def test_mechanism_selection_follows_the_credential(
    offered: list[str], credential: ScramCredential | None, have_password: bool, expected: str
) -> None:
    chosen = select_mechanism(
        offered, tls_active=True, credential=credential, have_password=have_password
    )
    assert chosen == expected


def test_a_credential_alone_never_falls_to_another_mechanism() -> None:
    with pytest.raises(StaleScramCredential, match="no longer offers SCRAM-SHA-256"):
        select_mechanism(["SCRAM-SHA-1", "PLAIN"], tls_active=True, credential=STORED,
                         have_password=False)  # fmt: skip
    with pytest.raises(StaleScramCredential):
        select_mechanism(["SCRAM-SHA-256-PLUS"], tls_active=True, credential=STORED,
                         have_password=False)  # fmt: skip


# -- through the client facade ----------------------------------------------------------------

FEATURES_SASL = (
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-256</mechanism>"
    "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
)


def _client(**overrides: object) -> XmppClient:
    settings: dict[str, object] = {"jid": ACCOUNT, "allow_plaintext": True}
    settings.update(overrides)
    client = XmppClient(ClientConfig(**settings), client_nonce=CLIENT_NONCE)  # type: ignore[arg-type]
    client.start(0.0, peer_is_loopback=True)
    client.data_to_send()
    return client


def _sasl(local: str, payload: bytes) -> bytes:
    element = ET.Element(f"{{{SASL_NS}}}{local}")
    element.text = base64.b64encode(payload).decode()
    return ET.tostring(element)


def _sent_payload(client: XmppClient) -> tuple[str, bytes]:
    element = ET.fromstring(client.data_to_send())
    return element.get("mechanism", ""), base64.b64decode(element.text or "")


def test_the_client_logs_in_from_its_configured_credential(pbkdf2_calls: list[int]) -> None:
    client = _client(scram_credential=STORED)
    assert client.receive_data_untrusted((SERVER_HEADER + FEATURES_SASL).encode(), 1.0) == []
    assert _sent_payload(client) == ("SCRAM-SHA-256", RFC7677_CLIENT_FIRST)
    assert client.receive_data_untrusted(_sasl("challenge", RFC7677_SERVER_FIRST), 1.0) == []
    assert _sent_payload(client)[1] == RFC7677_CLIENT_FINAL
    assert client.scram_credential() is None  # the server has not proved anything yet
    events = client.receive_data_untrusted(_sasl("success", RFC7677_SERVER_FINAL), 1.0)
    assert events == [ev.Authenticated("SCRAM-SHA-256")]
    assert client.scram_credential() == STORED
    assert pbkdf2_calls == []
    assert RFC7677_SALTED_PASSWORD.hex() not in repr(client.config)


def test_the_client_ends_a_stale_login_before_answering() -> None:
    client = _client(scram_credential=dataclasses.replace(STORED, iterations=10_000))
    client.receive_data_untrusted((SERVER_HEADER + FEATURES_SASL).encode(), 1.0)
    client.data_to_send()
    [ended] = client.receive_data_untrusted(_sasl("challenge", RFC7677_SERVER_FIRST), 1.0)
    assert isinstance(ended, ev.StreamEnded)
    assert isinstance(ended.error, StaleScramCredential)
    assert b"response" not in client.data_to_send()  # no proof from a stale key
    assert client.scram_credential() is None


def test_plain_gives_no_scram_credential() -> None:
    client = _client(password="pencil")
    features = (
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
        "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
    )
    client.tls_active = True  # PLAIN only over TLS; the transport is not what is tested here
    client.receive_data_untrusted((SERVER_HEADER + features).encode(), 1.0)
    assert _sent_payload(client)[0] == "PLAIN"
    assert client.receive_data_untrusted(_sasl("success", b""), 1.0) == [ev.Authenticated("PLAIN")]
    assert client.scram_credential() is None


# -- against the private Prosody --------------------------------------------------------------


async def _login(prosody: ProsodyServer, config: ClientConfig) -> tuple[XmppClient, EventLog]:
    async with manager_for(prosody) as manager:
        session = await manager.open_session(config)
        log = EventLog(session.events)
        await log.wait_for(ev.SessionEstablished)
        return session.client, log


@pytest.mark.prosody
async def test_prosody_login_from_a_stored_credential(
    running_prosody: ProsodyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = running_prosody.create_user()
    first, _ = await _login(running_prosody, config_for(account))
    credential = first.scram_credential()
    assert credential is not None
    assert credential.salted_password == hashlib.pbkdf2_hmac(
        credential.hash_name.replace("-", "").lower(),
        account.password.encode(),
        credential.salt,
        credential.iterations,
    )
    derivations: list[int] = []
    real_kdf = PBKDF2HMAC

    def counting_kdf(*args: object, **kwargs: object) -> object:
        derivations.append(1)
        return real_kdf(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sasl, "PBKDF2HMAC", counting_kdf)
    sasl.SALTED_PASSWORDS.clear()  # the password is not configured, but be sure nothing is reused
    stored_only = ClientConfig(jid=Jid.parse_untrusted(account.jid), scram_credential=credential)
    second, log = await _login(running_prosody, stored_only)
    authenticated = log.of(ev.Authenticated)
    assert authenticated == [ev.Authenticated(credential.mechanism)]
    assert second.scram_credential() == credential
    assert derivations == []


@pytest.mark.prosody
async def test_prosody_refuses_nothing_but_a_stale_credential_ends_the_session(
    running_prosody: ProsodyServer,
) -> None:
    account = running_prosody.create_user()
    first, _ = await _login(running_prosody, config_for(account))
    credential = first.scram_credential()
    assert credential is not None
    stale = dataclasses.replace(credential, salt=credential.salt + b"x")
    async with manager_for(running_prosody) as manager:
        session = await manager.open_session(
            ClientConfig(jid=Jid.parse_untrusted(account.jid), scram_credential=stale)
        )
        log = EventLog(session.events)
        closed = await log.wait_for(ev.ConnectionClosed)
        assert isinstance(closed, ev.ConnectionClosed)
        assert isinstance(closed.error, StaleScramCredential)
        assert closed.reconnect_delay is None  # reconnecting cannot fix it: re-enroll
        assert log.of(ev.Authenticated) == []
