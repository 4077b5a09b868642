"""Real trio adapters (``UdpEndpoint``, ``run_device_over_udp``) on the spoofable fake network."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import trio

from gateway.session import GatewayConfig, GatewaySessions, TicketKeyRing, WireCodec
from gateway.session.events import Event
from gateway.transport import DeviceDriver, DeviceSessionEvent, UdpEndpoint, run_device_over_udp
from tests.attacks.fakeudp import Address, FakeUdpNetwork
from tests.session.helpers import make_device, responder_factory, until

GATEWAY_HOST = "127.0.0.1"
GATEWAY_PORT = 5683
ATTACKER = ("192.0.2.66", 4444)


def gateway_core(
    config: GatewayConfig | None = None, ring: TicketKeyRing | None = None, seed: int = 1
) -> GatewaySessions:
    """A gateway core with real EDHOC and the wire codec, seeded."""
    return GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=ring if ring is not None else TicketKeyRing(),
        config=config,
        rng=random.Random(seed),
        random_bytes=random.Random(seed + 100).randbytes,
    )


@dataclass
class GatewayNode:
    """A running UdpEndpoint and the events it delivered."""

    endpoint: UdpEndpoint
    address: Address
    events: list[DeviceSessionEvent] = field(default_factory=list)


@dataclass
class DeviceNode:
    """A running device driver and the events it delivered."""

    driver: DeviceDriver
    address: Address
    events: list[Event] = field(default_factory=list)

    def of_type(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


async def start_gateway(
    nursery: trio.Nursery, net: FakeUdpNetwork, core: GatewaySessions
) -> GatewayNode:
    """Serve ``core`` on a real UdpEndpoint bound on the fake network."""
    endpoint = UdpEndpoint(core, host=GATEWAY_HOST, port=GATEWAY_PORT)
    address = await nursery.start(endpoint.serve)
    node = GatewayNode(endpoint, (str(address[0]), int(address[1])))

    async def drain() -> None:
        async for event in endpoint.events:
            node.events.append(event)

    nursery.start_soon(drain)
    return node


async def start_device(
    nursery: trio.Nursery,
    net: FakeUdpNetwork,
    gateway: GatewayNode,
    host: str,
    *,
    seed: int = 2,
    connect: bool = True,
) -> DeviceNode:
    """Run a device (real EDHOC) over ``run_device_over_udp`` from ``host``; connect it.

    Devices of different seeds are different devices, each with its own identity (a device
    holds one session at a time, so two with one key would replace each other)."""
    net.next_host = host
    driver = DeviceDriver(make_device(seed=seed, identity=seed - 2))
    before = set(net.bound_on(host))
    nursery.start_soon(run_device_over_udp, driver, gateway.address)
    await until(lambda: set(net.bound_on(host)) - before, step=0.001, limit=1)
    (address,) = set(net.bound_on(host)) - before
    node = DeviceNode(driver, address)

    async def drain() -> None:
        async for event in driver.events:
            node.events.append(event)

    nursery.start_soon(drain)
    if connect:
        driver.connect()
    return node
