"""The gateway service against real peers: a private Prosody, slixmpp people, a loopback device.

The set-up itself is :mod:`device_sim.harness` (shared with the benchmarks): ``gateway_home`` is
a directory made by ``impp-gateway init`` for the Prosody's domain, its listeners on a free
loopback port and its upstream pointed at the Prosody (trusting its CA); :func:`enroll` registers
a device through a real login and returns what the device itself holds. :class:`Device` is the
device side: the project's :class:`~gateway.session.DeviceSession` over real loopback UDP, with
helpers that wait for what it receives within a bounded time (never a fixed sleep).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from device_sim.harness import (
    EnrolledDevice,
    RunningGateway,
    device_session,
    enroll,
    free_port,
    make_gateway_home,
    open_gateway_store,
    start_gateway,
    upstream_ready,
)
from gateway import wire
from gateway.config import Configuration
from gateway.service.binding import DeviceBinding
from gateway.session import DeviceSessionEstablished, Event, OperationReceived, SessionClosed
from gateway.store import GatewayStore
from gateway.transport import DeviceDriver, run_device_over_udp
from tests.support.person import XmppPerson
from tests.support.prosody import Account, ProsodyServer

WAIT = 20.0  # seconds of real time any one exchange through Prosody may take
T = TypeVar("T")

__all__ = [
    "WAIT",
    "Device",
    "EnrolledDevice",
    "RunningGateway",
    "Scene",
    "connect_device",
    "device_session",
    "enroll",
    "free_port",
    "make_gateway_home",
    "serving_device",
    "start_gateway",
    "upstream_ready",
    "watched_by",
]


@pytest.fixture
def gateway_home(
    tmp_path: Path, running_prosody: ProsodyServer, capsys: pytest.CaptureFixture[str]
) -> Path:
    """The configuration file of a fresh gateway directory (see the module docstring)."""
    config = make_gateway_home(tmp_path / "gw", running_prosody)
    capsys.readouterr()
    return config


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


async def watched_by(person: XmppPerson, device: Device, device_jid: str) -> None:
    """``person`` subscribes to the device's presence, the device approves, and the person
    sees the device available (its current presence follows the approval, RFC 6121 §3.1.5)."""
    await person.subscribe(device_jid)
    request = await device.next_operation(wire.SubscriptionRequest)
    device.send(wire.SubscriptionCommand(wire.SubscriptionAction.APPROVE, request.sender))
    with trio.fail_after(WAIT):
        while (await person.next_presence(sender=device_jid)).type == "unavailable":
            pass


async def connect_device(nursery: trio.Nursery, enrolled: EnrolledDevice, port: int) -> Device:
    """Start the device over UDP to ``port`` and complete its handshake."""
    device = Device(DeviceDriver(device_session(enrolled)))
    nursery.start_soon(run_device_over_udp, device.driver, ("127.0.0.1", port))
    device.driver.connect()
    await device.next_event(DeviceSessionEstablished)
    return device


@pytest.fixture
async def open_store(gateway_home: Path) -> AsyncIterator[tuple[GatewayStore, Configuration]]:
    """The gateway's store (opened as ``run`` opens it) and its configuration."""
    async with open_gateway_store(gateway_home) as opened:
        yield opened


@dataclass
class Scene:
    """A running gateway and one enrolled device, connected over UDP, its upstream session up."""

    nursery: trio.Nursery
    gateway: RunningGateway
    account: Account
    enrolled: EnrolledDevice
    device: Device

    @property
    def binding(self) -> DeviceBinding:
        """The device's binding in the service (its relay, counters and upstream)."""
        return self.gateway.service.bindings()[self.enrolled.kid]


@contextlib.asynccontextmanager
async def serving_device(
    opened: tuple[GatewayStore, Configuration], prosody: ProsodyServer
) -> AsyncIterator[Scene]:
    """A new Prosody account enrolled as a device, the service started, its upstream session
    up and the device connected; on a normal exit the service is stopped (bounded), and
    whatever happens every task started for the scene is cancelled."""
    store, configuration = opened
    account = prosody.create_user()
    enrolled = await enroll(store, configuration, account)
    async with trio.open_nursery() as nursery:
        try:
            gateway = await start_gateway(nursery, store, configuration)
            await upstream_ready(gateway, enrolled.kid)
            device = await connect_device(nursery, enrolled, gateway.udp_port)
            yield Scene(nursery, gateway, account, enrolled, device)
            await gateway.stop()
        finally:
            nursery.cancel_scope.cancel()
