"""Provisioning and the people at the other end for ``gateway-capacity`` through Prosody.

Accounts. ``prosodyctl register`` takes about a quarter of a second per account here (it starts
Lua and loads the server's configuration each time), and in-band registration plus the login of
``impp-gateway enroll`` costs two TLS connections per account. Neither is what is measured, so
the accounts are written the way Prosody stores them itself, before it starts: one file per
account in its ``internal_hashed`` store (``DATA/<host>/accounts/<user>.dat``, the host and user
names escaped as Prosody's datamanager escapes them), holding what ``prosodyctl register`` writes:
the SCRAM-SHA-256 salt, iteration count, StoredKey and ServerKey (RFC 5802 §3) of a random
password. Prosody reads them on each login as it reads its own; nothing in its login is skipped.
The server is the tests' own (:class:`CapacityProsody`), its file log at ``info``.

Enrollment. The gateway's store gets what ``impp-gateway enroll`` stores for each device (its
device record with the CCS credential, SCRAM's SaltedPassword with the salt and iteration count
(never the password), and one contact alias: the person it writes to), through the store's own
API; the login check of enrollment is left out (the gateway's own login at start is the real one).
The device's S/MIME signing credential is issued by the service when it binds the device, as for
any device enrolled without one.

People. A few ordinary XMPP client sessions (the project's client under an
:class:`~gateway.xmpp.net.manager.UpstreamManager`, as :mod:`bench.relay` uses) log in to their
own accounts, count every message that arrives and answer its XEP-0184 receipt request, as
slixmpp's receipt plugin does: the receipt is what makes the gateway's DeliveryReport.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from device_sim.domain_server import ProsodyServer
from gateway import edhoc
from gateway.store import DeviceRecord, GatewayStore, UpstreamCredential
from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, XmppClient
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.manager import UpstreamManager, UpstreamSession

SCRAM_ITERATIONS = 4096  # RFC 7677's minimum for SCRAM-SHA-256; a login never repeats PBKDF2
STORE_CONCURRENCY = 64  # store writes submitted at once (the writer commits them in batches)
LOGIN_TIMEOUT = 60.0  # seconds a person's client may take to log in


class CapacityProsody(ProsodyServer):
    """The tests' private Prosody with its file log at ``info``, as a production server logs.

    The tests' configuration logs every stanza at ``debug`` to a file (for reading a failed
    test); under load that is a large part of Prosody's CPU per operation, which a production
    server (Debian's default: ``info``) does not spend. Everything else is the same server.
    """

    def _config(self) -> str:
        text = super()._config()
        if text.count(_DEBUG_FILE_LOG) != 1:
            raise RuntimeError("the Prosody configuration's file log line changed")
        return text.replace(_DEBUG_FILE_LOG, _INFO_FILE_LOG)


_DEBUG_FILE_LOG = '{ levels = { min = "debug" }, to = "file"'
_INFO_FILE_LOG = '{ levels = { min = "info" }, to = "file"'


@dataclass(frozen=True)
class ScramSecret:
    """What SCRAM-SHA-256 derives from one password: the client's and the server's halves."""

    salt: bytes
    iterations: int
    salted_password: bytes = field(repr=False)
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)


def scram_secret(password: str, iterations: int = SCRAM_ITERATIONS) -> ScramSecret:
    """The salt (a UUID, as Prosody makes them), SaltedPassword, StoredKey and ServerKey."""
    salt = str(uuid.uuid4()).encode()
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return ScramSecret(salt, iterations, salted, hashlib.sha256(client_key).digest(), server_key)


def _escape(name: str) -> str:
    """A name as Prosody's datamanager escapes it for a path: every non-word byte as %xx."""
    return re.sub(r"\W", lambda m: "".join(f"%{b:02x}" for b in m.group().encode()), name)


def write_prosody_account(prosody: ProsodyServer, localpart: str, secret: ScramSecret) -> None:
    """One account in Prosody's internal_hashed store, as ``prosodyctl register`` writes it."""
    directory = prosody.data_dir / _escape(prosody.domain) / "accounts"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = (
        "return {\n"
        f'\t["server_key"] = "{secret.server_key.hex()}";\n'
        f'\t["iteration_count"] = {secret.iterations};\n'
        f'\t["salt"] = "{secret.salt.decode()}";\n'
        f'\t["stored_key"] = "{secret.stored_key.hex()}";\n'
        "};\n"
    )
    path = directory / f"{_escape(localpart)}.dat"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


@dataclass(frozen=True)
class ProvisionedDevice:
    """A device's account and the person it writes to."""

    kid: bytes
    credential: edhoc.Credential
    account: str
    secret: ScramSecret
    person: str


def provision_accounts(
    prosody: ProsodyServer,
    devices: Sequence[tuple[bytes, edhoc.Credential]],
    persons: Sequence[str],
) -> list[ProvisionedDevice]:
    """Write an account per device into Prosody's store (before it starts); see the module."""
    provisioned = []
    for number, (kid, credential) in enumerate(devices, start=1):
        localpart = f"dev{number}"
        secret = scram_secret(secrets.token_urlsafe(18))
        write_prosody_account(prosody, localpart, secret)
        provisioned.append(
            ProvisionedDevice(
                kid,
                credential,
                f"{localpart}@{prosody.domain}",
                secret,
                persons[(number - 1) % len(persons)],
            )
        )
    return provisioned


async def enroll_in_store(
    store: GatewayStore, devices: Sequence[ProvisionedDevice]
) -> tuple[float, dict[bytes, int]]:
    """What enrollment stores, for each of ``devices``.

    Returns the seconds it took and each device's alias (by kid) for its person.
    """
    started = time.monotonic()
    limit = trio.Semaphore(STORE_CONCURRENCY)
    aliases: dict[bytes, int] = {}

    async def one(device: ProvisionedDevice) -> None:
        async with limit:
            now = time.time()
            if not await store.enroll_device(
                DeviceRecord(
                    device.kid, device.credential.public().encoded, device.account, created_at=now
                )
            ):
                raise RuntimeError(f"the store refused kid {device.kid.hex()}")
            await store.put_credential(
                UpstreamCredential(
                    account_jid=device.account,
                    hash_name="SHA-256",
                    salt=device.secret.salt,
                    iterations=device.secret.iterations,
                    salted_password=device.secret.salted_password,
                    password=None,
                    updated_at=now,
                )
            )
            aliases[device.kid] = await store.assign_alias(device.kid, device.person)

    async with trio.open_nursery() as nursery:
        for device in devices:
            nursery.start_soon(one, device)
    return time.monotonic() - started, aliases


@dataclass
class Person:
    """A person's XMPP client session: what arrived, receipts answered."""

    jid: str
    session: UpstreamSession
    arrived: int = 0


def _send_receipt(client: XmppClient, *, to: Jid, id: str) -> None:
    client.send_receipt(to, id)


async def _drain(person: Person) -> None:
    async for event in person.session.events:
        if isinstance(event, ev.MessageReceived) and event.message.body is not None:
            person.arrived += 1
            message = event.message
            sender, message_id = message.from_, message.id
            if message.receipt_requested and sender is not None and message_id is not None:
                await person.session.use(functools.partial(_send_receipt, to=sender, id=message_id))


async def open_person(
    nursery: trio.Nursery, manager: UpstreamManager, jid: str, password: str
) -> Person:
    """Log in as ``jid``, be available, and count and receipt what arrives (in ``nursery``)."""
    session = await manager.open_session(
        ClientConfig(jid=Jid.parse_untrusted(jid), password=password)
    )
    with trio.fail_after(LOGIN_TIMEOUT):
        await session.established.wait()
    await session.send_presence()
    person = Person(jid, session)
    nursery.start_soon(_drain, person)
    return person
