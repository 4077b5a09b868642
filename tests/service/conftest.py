"""The gateway service against real peers: a private Prosody, slixmpp people, a loopback device.

``gateway_home`` is a directory made by ``impp-gateway init`` for the Prosody's domain, its
listeners on a free loopback port and its upstream pointed at the Prosody (trusting its CA).
:func:`enroll` writes a device straight into the store with the store's API (the ``enroll``
command does not exist yet) and returns what the device itself holds. :class:`Device` is the
device side: the project's :class:`~gateway.session.DeviceSession` over real loopback UDP, with
helpers that wait for what it receives within a bounded time (never a fixed sleep).
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from gateway import wire
from gateway.cli import main
from gateway.config import (
    DEFAULT_DEVICE_PORT,
    Configuration,
    load_configuration,
    load_gateway_identity,
)
from gateway.edhoc import CipherSuite, Credential, Curve, IdCred, Initiator, Method
from gateway.enroll.login import check_login, upstream_for
from gateway.service import GatewayService, ServiceAddresses
from gateway.session import (
    ChannelConfig,
    DeviceSession,
    DeviceSessionEstablished,
    EdhocInitiator,
    Event,
    OperationReceived,
    SessionClosed,
    WireCodec,
)
from gateway.store import DeviceRecord, GatewayStore, UpstreamCredential, open_sqlite_store
from gateway.transport import DeviceDriver, run_device_over_udp
from gateway.xmpp import Jid
from tests.support.prosody import Account, ProsodyServer

WAIT = 20.0  # seconds of real time any one exchange through Prosody may take
T = TypeVar("T")


def free_port() -> int:
    """A loopback port free for both UDP and TCP right now."""
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
    raise AssertionError("no loopback port free for both UDP and TCP")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))


def make_gateway_home(directory: Path, prosody: ProsodyServer) -> Path:
    """``impp-gateway init`` for the Prosody's domain, listeners on a free port, upstream set."""
    assert main(["init", str(directory), "--domain", prosody.domain]) == 0
    config = directory / "gateway.toml"
    port = free_port()
    _edit(config, f'udp = ["127.0.0.1:{DEFAULT_DEVICE_PORT}"]', f'udp = ["127.0.0.1:{port}"]')
    _edit(config, f'tcp = ["127.0.0.1:{DEFAULT_DEVICE_PORT}"]', f'tcp = ["127.0.0.1:{port}"]')
    _edit(
        config,
        f'# server = "xmpp.{prosody.domain}:5222"',
        f'server = "{prosody.host}:{prosody.c2s_port}"\ntrust = "{prosody.ca_file}"',
    )
    # Any free port for the metrics endpoint: tests run side by side on one host.
    _edit(config, 'listen = "127.0.0.1:9464"', 'listen = "127.0.0.1:0"')
    return config


@pytest.fixture
def gateway_home(
    tmp_path: Path, running_prosody: ProsodyServer, capsys: pytest.CaptureFixture[str]
) -> Path:
    """The configuration file of a fresh gateway directory (see the module docstring)."""
    config = make_gateway_home(tmp_path / "gw", running_prosody)
    capsys.readouterr()
    return config


@dataclass
class EnrolledDevice:
    """What an enrolled device holds: its EDHOC credential (with key) and the gateway's."""

    kid: bytes
    credential: Credential
    gateway: Credential
    account: Account


def _new_credential(kid: bytes, subject: str) -> Credential:
    from cryptography.hazmat.primitives.asymmetric import ec

    scalar = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return Credential.new_ccs(
        curve=Curve.P256, private_key=scalar.to_bytes(32, "big"), kid=kid, subject=subject
    )


async def enroll(
    store: GatewayStore, configuration: Configuration, account: Account
) -> EnrolledDevice:
    """Register a device for ``account`` in the store, as ``impp-gateway enroll`` will."""
    kid = secrets.token_bytes(2)
    credential = _new_credential(kid, account.jid)
    now = time.time()
    # As `impp-gateway enroll` does: log in once, keep SCRAM's secret, never the password.
    login = await check_login(
        upstream_for(configuration, Jid.parse_untrusted(account.jid).domain),
        Jid.parse_untrusted(account.jid),
        account.password,
    )
    assert login.scram is not None, "the test server offers SCRAM"
    assert await store.enroll_device(
        DeviceRecord(kid, credential.public().encoded, account.jid, created_at=now)
    )
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


@dataclass
class Device:
    """The device side over loopback UDP, and what it received, in order."""

    driver: DeviceDriver
    received: list[wire.Message] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def send(self, message: wire.Message) -> None:
        """Queue an operation to the gateway."""
        self.driver.send_operation(message)

    def take_pending(self) -> None:
        """Record every event already delivered, without waiting for more."""
        while True:
            try:
                event = self.driver.events.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            self.events.append(event)
            if isinstance(event, OperationReceived):
                self.received.append(event.message)

    async def next_event(self, kind: type[T], timeout: float = WAIT) -> T:
        """The next session event of type ``kind`` (others are recorded and skipped)."""
        with trio.fail_after(timeout):
            async for event in self.driver.events:
                self.events.append(event)
                if isinstance(event, OperationReceived):
                    self.received.append(event.message)
                if isinstance(event, kind):
                    return event
                if isinstance(event, SessionClosed) and kind is not SessionClosed:
                    raise AssertionError(f"the device's session closed: {event.reason}")
        raise AssertionError("the device's event channel closed")

    async def next_operation(self, kind: type[T], timeout: float = WAIT) -> T:
        """The next operation of type ``kind`` the device received."""
        with trio.fail_after(timeout):
            while True:
                event = await self.next_event(OperationReceived, timeout)
                if isinstance(event.message, kind):
                    return event.message

    def count(self, kind: type[object]) -> int:
        """How many operations of ``kind`` the device has received so far."""
        return sum(isinstance(m, kind) for m in self.received)


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


async def connect_device(nursery: trio.Nursery, enrolled: EnrolledDevice, port: int) -> Device:
    """Start the device over UDP to ``port`` and complete its handshake."""
    device = Device(DeviceDriver(device_session(enrolled)))
    nursery.start_soon(run_device_over_udp, device.driver, ("127.0.0.1", port))
    device.driver.connect()
    await device.next_event(DeviceSessionEstablished)
    return device


@dataclass
class RunningGateway:
    """An in-process service with its store and configuration."""

    service: GatewayService
    store: GatewayStore
    configuration: Configuration
    addresses: ServiceAddresses

    stopped: trio.Event = field(default_factory=trio.Event)

    async def stop(self) -> None:
        """Ask the service to stop, and wait (bounded) until it has."""
        self.service.request_stop()
        with trio.fail_after(WAIT):
            await self.stopped.wait()

    @property
    def udp_port(self) -> int:
        """The UDP listener's port."""
        return int(self.addresses.udp[0][1])


@pytest.fixture
async def open_store(gateway_home: Path) -> AsyncIterator[tuple[GatewayStore, Configuration]]:
    """The gateway's store (opened as ``run`` opens it) and its configuration."""
    configuration = load_configuration(gateway_home, check_ports=False)
    async with open_sqlite_store(configuration.store.database) as store:
        yield store, configuration


async def start_gateway(
    nursery: trio.Nursery, store: GatewayStore, configuration: Configuration
) -> RunningGateway:
    """Start the service in ``nursery`` (registry re-read every half second)."""
    service = GatewayService(configuration, store, registry_refresh=0.5)
    stopped = trio.Event()

    async def serve(*, task_status: trio.TaskStatus[ServiceAddresses]) -> None:
        try:
            await service.serve(task_status=task_status)
        finally:
            stopped.set()

    addresses: ServiceAddresses = await nursery.start(serve)
    return RunningGateway(service, store, configuration, addresses, stopped)


async def upstream_ready(gateway: RunningGateway, kid: bytes, timeout: float = WAIT) -> None:
    """Wait (bounded) until the device's upstream session is established."""
    binding = gateway.service.bindings()[kid]
    with trio.fail_after(timeout):
        await binding.upstream_up.wait()
