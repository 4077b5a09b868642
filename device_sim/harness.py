"""An in-process gateway service against a private Prosody: the set-up tests and benchmarks share.

The steps are the ones an operator takes, done in-process so a caller can watch every part:

* :func:`make_gateway_home`: ``impp-gateway init`` for the Prosody's domain, the device listeners
  moved to a free loopback port, the upstream pointed at the Prosody (trusting its CA) and the
  metrics endpoint on any free port (several runs share one host);
* :func:`enroll`: a device registered for an account as ``impp-gateway enroll`` does it: one real
  login to the Prosody, SCRAM's salted password kept (never the password), the device's CCS
  credential in the store; :meth:`EnrolledDevice.provisioning` is the file the device would get;
* :func:`start_gateway` / :func:`serving_gateway`: :class:`~gateway.service.GatewayService` over
  that directory, started in a nursery, with a bounded stop;
* :func:`device_session`: the device's session endpoint trusting only the gateway's credential.

Nothing here sleeps for a fixed time: every wait is on an event, bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from device_sim.domain_server import Account, ProsodyServer
from gateway.cli import main as gateway_cli
from gateway.config import (
    DEFAULT_DEVICE_PORT,
    Configuration,
    load_configuration,
    load_gateway_identity,
)
from gateway.edhoc import CipherSuite, Credential, Curve, IdCred, Initiator, Method
from gateway.enroll.enrollment import gateway_endpoints
from gateway.enroll.login import check_login, upstream_for
from gateway.enroll.provisioning import Provisioning
from gateway.service import GatewayService, ServiceAddresses
from gateway.session import ChannelConfig, DeviceSession, EdhocInitiator, WireCodec
from gateway.store import (
    DeviceRecord,
    GatewayStore,
    SqliteStore,
    UpstreamCredential,
    open_sqlite_store,
)
from gateway.xmpp import Jid

DEFAULT_TIMEOUT = 20.0  # seconds of real time one exchange through Prosody may take


class HarnessError(RuntimeError):
    """A set-up step failed (no free port, ``init`` refused, a login refused)."""


def free_port() -> int:
    """A loopback port free for both UDP and TCP right now (the gateway listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise HarnessError("no loopback port free for both UDP and TCP")


def edit_config(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in ``path`` (refuses when it is not exactly one)."""
    text = path.read_text()
    if text.count(old) != 1:
        raise HarnessError(f"{old!r} occurs {text.count(old)} times in {path}")
    path.write_text(text.replace(old, new))


def make_gateway_home(directory: Path, prosody: ProsodyServer) -> Path:
    """``impp-gateway init`` for the Prosody's domain, listeners on a free port, upstream set.

    Returns the configuration file. ``init``'s report to standard output is swallowed.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        if gateway_cli(["init", str(directory), "--domain", prosody.domain]) != 0:
            raise HarnessError("impp-gateway init failed")
    config = directory / "gateway.toml"
    port = free_port()
    edit_config(config, f'udp = ["127.0.0.1:{DEFAULT_DEVICE_PORT}"]', f'udp = ["127.0.0.1:{port}"]')
    edit_config(config, f'tcp = ["127.0.0.1:{DEFAULT_DEVICE_PORT}"]', f'tcp = ["127.0.0.1:{port}"]')
    edit_config(
        config,
        f'# server = "xmpp.{prosody.domain}:5222"',
        f'server = "{prosody.host}:{prosody.c2s_port}"\ntrust = "{prosody.ca_file}"',
    )
    edit_config(config, 'listen = "127.0.0.1:9464"', 'listen = "127.0.0.1:0"')
    return config


@dataclass
class EnrolledDevice:
    """What an enrolled device holds: its EDHOC credential (with key) and the gateway's."""

    kid: bytes
    credential: Credential
    gateway: Credential
    account: Account

    def provisioning(self, configuration: Configuration) -> Provisioning:
        """The provisioning file ``impp-gateway enroll`` would have written for this device."""
        private_key = self.credential.private_key
        return Provisioning(
            device_kid=self.kid,
            device_credential=self.credential.public().encoded,
            gateway_credential=self.gateway.encoded,
            endpoints=gateway_endpoints(configuration, None),
            account=self.account.jid,
            device_private_key=private_key,
        )


def new_credential(kid: bytes, subject: str) -> Credential:
    """A fresh P-256 CCS credential, private key included, for a device."""
    from cryptography.hazmat.primitives.asymmetric import ec

    scalar = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return Credential.new_ccs(
        curve=Curve.P256, private_key=scalar.to_bytes(32, "big"), kid=kid, subject=subject
    )


async def enroll(
    store: GatewayStore,
    configuration: Configuration,
    account: Account,
    *,
    kid: bytes | None = None,
) -> EnrolledDevice:
    """Register a device for ``account`` in ``store`` as ``impp-gateway enroll`` does.

    One real login to the account's server; SCRAM's salted password is kept, never the
    password. ``kid`` defaults to two random bytes.
    """
    kid = kid if kid is not None else secrets.token_bytes(2)
    credential = new_credential(kid, account.jid)
    now = time.time()
    jid = Jid.parse_untrusted(account.jid)
    login = await check_login(upstream_for(configuration, jid.domain), jid, account.password)
    if login.scram is None:
        raise HarnessError(f"{jid.domain} did not offer SCRAM")
    if not await store.enroll_device(
        DeviceRecord(kid, credential.public().encoded, account.jid, created_at=now)
    ):
        raise HarnessError(f"the store refused kid {kid.hex()}")
    await store.put_credential(
        UpstreamCredential(
            account_jid=account.jid,
            hash_name=login.scram.hash_name,
            salt=login.scram.salt,
            iterations=login.scram.iterations,
            salted_password=login.scram.salted_password,
            password=None,
            updated_at=now,
        )
    )
    gateway = load_gateway_identity(
        configuration.edhoc.key_file, configuration.edhoc.credential_file
    ).public()
    return EnrolledDevice(kid, credential, gateway, account)


def device_session(enrolled: EnrolledDevice, *, stream: bool = False) -> DeviceSession:
    """The device's session endpoint, trusting only the gateway's credential."""
    gateway = enrolled.gateway

    def lookup(id_cred: IdCred) -> Credential | None:
        return gateway if id_cred.matches(gateway) else None

    def initiator() -> EdhocInitiator:
        return EdhocInitiator(
            Initiator(
                method=Method.STATIC_DH_STATIC_DH,
                suites=[CipherSuite.SUITE_2],
                c_i=b"\x37",
                credential=enrolled.credential,
                credential_lookup=lookup,
            )
        )

    return DeviceSession(
        handshake_factory=initiator, codec=WireCodec(), config=ChannelConfig(stream=stream)
    )


@dataclass
class RunningGateway:
    """An in-process service with its store and configuration."""

    service: GatewayService
    store: GatewayStore
    configuration: Configuration
    addresses: ServiceAddresses

    stopped: trio.Event = field(default_factory=trio.Event)

    async def stop(self, within: float = DEFAULT_TIMEOUT) -> None:
        """Ask the service to stop, and wait until it has (at most ``within`` seconds)."""
        self.service.request_stop()
        with trio.fail_after(within):
            await self.stopped.wait()

    @property
    def udp_port(self) -> int:
        """The UDP listener's port."""
        return int(self.addresses.udp[0][1])


async def start_gateway(
    nursery: trio.Nursery,
    store: GatewayStore,
    configuration: Configuration,
    *,
    registry_refresh: float = 0.5,
) -> RunningGateway:
    """Start the service in ``nursery``; returns once its listeners are open.

    ``registry_refresh``: seconds between re-reads of the device registry.
    """
    service = GatewayService(configuration, store, registry_refresh=registry_refresh)
    stopped = trio.Event()

    async def serve(*, task_status: trio.TaskStatus[ServiceAddresses]) -> None:
        try:
            await service.serve(task_status=task_status)
        finally:
            stopped.set()

    addresses: ServiceAddresses = await nursery.start(serve)
    return RunningGateway(service, store, configuration, addresses, stopped)


async def upstream_ready(
    gateway: RunningGateway, kid: bytes, within: float = DEFAULT_TIMEOUT
) -> None:
    """Wait until the device's upstream session is established (at most ``within`` seconds)."""
    binding = gateway.service.bindings()[kid]
    with trio.fail_after(within):
        await binding.upstream_up.wait()


@contextlib.asynccontextmanager
async def open_gateway_store(
    config_path: Path,
) -> AsyncIterator[tuple[SqliteStore, Configuration]]:
    """The gateway's store (opened as ``run`` opens it) and its configuration."""
    configuration = load_configuration(config_path, check_ports=False)
    async with open_sqlite_store(
        configuration.store.database, max_device_queue=configuration.limits.queue_length
    ) as store:
        yield store, configuration


@contextlib.asynccontextmanager
async def serving_gateway(
    nursery: trio.Nursery,
    store: GatewayStore,
    configuration: Configuration,
    *,
    registry_refresh: float = 0.5,
    stop_timeout: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[RunningGateway]:
    """:func:`start_gateway` for the block; the service is stopped (bounded) when it ends."""
    gateway = await start_gateway(nursery, store, configuration, registry_refresh=registry_refresh)
    try:
        yield gateway
    finally:
        with trio.CancelScope(shield=True):
            await gateway.stop(stop_timeout)


__all__ = [
    "DEFAULT_TIMEOUT",
    "EnrolledDevice",
    "HarnessError",
    "RunningGateway",
    "device_session",
    "edit_config",
    "enroll",
    "free_port",
    "make_gateway_home",
    "new_credential",
    "open_gateway_store",
    "serving_gateway",
    "start_gateway",
    "upstream_ready",
]
