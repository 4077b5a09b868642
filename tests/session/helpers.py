"""Shared helpers for the session tests: EDHOC parties, trio node loops and a pair builder."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar

import trio
import trio.lowlevel

from gateway import wire
from gateway.edhoc import CipherSuite, Credential, Curve, IdCred, Initiator, Method, Responder
from gateway.session import (
    ChannelConfig,
    DeviceSession,
    EdhocInitiator,
    EdhocResponder,
    GatewayConfig,
    GatewaySessions,
    TicketKeyRing,
    WireCodec,
)
from gateway.session.events import Event
from tests.session.fakenet import FakeNetwork

# Fixed private keys (P-256 scalars), as in tests/edhoc/helpers.py; ephemeral keys stay random.
DEVICE_KEY = bytes.fromhex("fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b")
GATEWAY_KEY = bytes.fromhex("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac")
DEVICE_KID = b"\x2b"
GATEWAY_ADDRESS = ("2001:db8::1", 5683)
DEVICE_ADDRESS = ("198.51.100.7", 40000)

EventT = TypeVar("EventT", bound=Event)


def _credential(private_key: bytes, kid: bytes, name: str) -> Credential:
    return Credential.new_ccs(curve=Curve.P256, private_key=private_key, kid=kid, subject=name)


DEVICE_CREDENTIAL = _credential(DEVICE_KEY, DEVICE_KID, "device")
GATEWAY_CREDENTIAL = _credential(GATEWAY_KEY, b"\x0a", "gateway")
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_DEVICES: dict[int, Credential] = {0: DEVICE_CREDENTIAL}  # every identity a test made, by index


def device_credential(identity: int = 0) -> Credential:
    """The credential of enrolled device number ``identity`` (0: :data:`DEVICE_CREDENTIAL`).

    Fixed keys, so runs repeat; the gateway of :func:`make_gateway` knows every one. A device
    holds one session at a time, so tests of several devices give each its own identity."""
    credential = _DEVICES.get(identity)
    if credential is None:
        digest = hashlib.sha256(b"test device %d" % identity).digest()
        scalar = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
        kid = identity.to_bytes(2, "big")
        credential = _credential(scalar.to_bytes(32, "big"), kid, f"device {identity}")
        _DEVICES[identity] = credential
    return credential


def _lookup_devices(id_cred: IdCred) -> Credential | None:
    for credential in list(_DEVICES.values()):
        public = credential.public()
        if id_cred.matches(public):
            return public
    return None


def _lookup(credential: Credential) -> Callable[[IdCred], Credential | None]:
    public = credential.public()

    def lookup(id_cred: IdCred) -> Credential | None:
        return public if id_cred.matches(public) else None

    return lookup


def responder_factory(
    suite: CipherSuite = CipherSuite.SUITE_2,
) -> Callable[[bytes], EdhocResponder]:
    """Gateway-side EDHOC, C_R = the connection id."""

    def make(connection_id: bytes) -> EdhocResponder:
        return EdhocResponder(
            Responder(
                suites=[suite],
                c_r=connection_id,
                credential=GATEWAY_CREDENTIAL,
                credential_lookup=_lookup_devices,
            )
        )

    return make


def initiator_factory(
    suite: CipherSuite = CipherSuite.SUITE_2, identity: int = 0
) -> Callable[[], EdhocInitiator]:
    """Device-side EDHOC, as device number ``identity`` (:func:`device_credential`)."""
    credential = device_credential(identity)

    def make() -> EdhocInitiator:
        return EdhocInitiator(
            Initiator(
                method=Method.STATIC_DH_STATIC_DH,
                suites=[suite],
                c_i=b"\x37",
                credential=credential,
                credential_lookup=_lookup(GATEWAY_CREDENTIAL),
            )
        )

    return make


def make_gateway(
    ring: TicketKeyRing | None = None, config: GatewayConfig | None = None, seed: int = 1
) -> GatewaySessions:
    """A gateway demultiplexer with real EDHOC and the real wire codec."""
    return GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=ring if ring is not None else TicketKeyRing(),
        config=config,
        rng=random.Random(seed),
        random_bytes=random.Random(seed + 100).randbytes,
    )


def make_device(
    config: ChannelConfig | None = None, seed: int = 2, identity: int = 0
) -> DeviceSession:
    """A device session with real EDHOC and the real wire codec, as device ``identity``."""
    return DeviceSession(
        handshake_factory=initiator_factory(identity=identity),
        codec=WireCodec(),
        config=config,
        rng=random.Random(seed),
        random_bytes=random.Random(seed + 100).randbytes,
    )


async def until(
    predicate: Callable[[], object], *, step: float = 0.1, limit: float = 3600.0
) -> None:
    """Wait (in virtual time) until ``predicate()`` is true; fail after ``limit`` seconds."""
    with trio.fail_after(limit):
        while not predicate():  # noqa: ASYNC110 - polling the autojump clock is deterministic
            await trio.sleep(step)


@dataclass
class Recorder:
    """Events seen by one node."""

    events: list[Event] = field(default_factory=list)
    by_session: list[tuple[bytes, Event]] = field(default_factory=list)
    stamped: list[tuple[float, Event]] = field(default_factory=list)

    def of_type(self, kind: type[EventT]) -> list[EventT]:
        """Events of one type, typed as that type."""
        return [e for e in self.events if isinstance(e, kind)]

    def pings(self) -> list[int]:
        """Ids of the Ping operations received, in arrival order."""
        from gateway.session.events import OperationReceived

        return [
            e.message.id
            for e in self.events
            if isinstance(e, OperationReceived) and isinstance(e.message, wire.Ping)
        ]

    def incoming_ids(self) -> list[int]:
        """Ids of the IncomingMessage operations received, in arrival order; nothing else came."""
        from gateway.session.events import OperationReceived

        messages = [e.message for e in self.events if isinstance(e, OperationReceived)]
        assert all(isinstance(m, wire.IncomingMessage) for m in messages), messages
        return [m.id for m in messages if isinstance(m, wire.IncomingMessage)]


async def run_gateway(
    gateway: GatewaySessions,
    net: FakeNetwork,
    address: Hashable,
    recorder: Recorder,
    on_event: Callable[[bytes, Event], None] | None = None,
    on_receive: Callable[[bytes, Hashable], None] | None = None,
    on_send: Callable[[bytes, Hashable], None] | None = None,
) -> None:
    """The gateway node: feed datagrams and timers to the core, send what it returns."""
    inbox = net.bind(address, capacity=4096)
    while True:
        deadline = gateway.next_deadline()
        with trio.move_on_at(deadline if deadline is not None else math.inf):
            data, source = await inbox.receive()
            if source is not None:  # None: a wake-up from net.notify (something to send)
                if on_receive is not None:
                    on_receive(data, source)
                gateway.receive_datagram(data, source, trio.current_time())
        now = trio.current_time()
        gateway.handle_timeout(now)
        for connection_id, event in gateway.events():
            recorder.events.append(event)
            recorder.by_session.append((connection_id, event))
            if on_event is not None:
                on_event(connection_id, event)
        for datagram, destination in gateway.datagrams_to_send(now):
            if on_send is not None:
                on_send(datagram, destination)
            net.send(address, destination, datagram)


@dataclass
class DeviceNode:
    """A device attached to the fake network; ``address`` changes on rebind."""

    device: DeviceSession
    net: FakeNetwork
    address: Hashable
    gateway_address: Hashable
    recorder: Recorder = field(default_factory=Recorder)

    def rebind(self, new_address: Hashable) -> None:
        """NAT rebinding: same device, new source address."""
        self.net.rebind(self.address, new_address)
        self.address = new_address

    def poke(self) -> None:
        """Tell the loop there is something to send."""
        self.net.notify(self.address)

    async def run(self) -> None:
        """The device loop."""
        inbox = self.net.bind(self.address, capacity=4096)
        while True:
            self.flush()
            deadline = self.device.next_deadline()
            with trio.move_on_at(deadline if deadline is not None else math.inf):
                data, source = await inbox.receive()
                if source is not None:
                    self.device.receive_datagram(data, trio.current_time())
            self.device.handle_timeout(trio.current_time())

    def flush(self) -> None:
        """Send everything due and collect events."""
        now = trio.current_time()
        for datagram in self.device.datagrams_to_send(now):
            self.net.send(self.address, self.gateway_address, datagram)
        for event in self.device.events():
            self.recorder.events.append(event)
            self.recorder.stamped.append((now, event))


async def start_gateway_and_device(
    nursery: trio.Nursery,
    net: FakeNetwork,
    gateway: GatewaySessions,
    recorder: Recorder,
    *,
    on_receive: Callable[[bytes, Hashable], None] | None = None,
    on_send: Callable[[bytes, Hashable], None] | None = None,
) -> DeviceNode:
    """Run ``gateway`` at GATEWAY_ADDRESS and a fresh device node at DEVICE_ADDRESS on ``net``."""
    nursery.start_soon(
        run_gateway, gateway, net, GATEWAY_ADDRESS, recorder, None, on_receive, on_send
    )
    node = DeviceNode(make_device(), net, DEVICE_ADDRESS, GATEWAY_ADDRESS)
    nursery.start_soon(node.run)
    await trio.lowlevel.checkpoint()
    return node
