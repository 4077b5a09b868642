"""The device runner: a DeviceClient over the fake network, a radio link, and real loopback UDP."""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
import trio.testing

from device_sim.client import (
    ClientEvent,
    Connected,
    DeliveryReported,
    DeviceClient,
    MessageArrived,
    Slept,
    Woke,
)
from device_sim.client.runner import IPV4_UDP_HEADER, DeviceRunner, UdpSockets
from device_sim.radio import Bernoulli, DuplexLink, preset
from gateway import wire
from gateway.enroll.provisioning import (
    GatewayEndpoint,
    Provisioning,
    Transport,
    read_provisioning_file,
    write_provisioning_file,
)
from gateway.session import GatewaySessions, OperationReceived, TicketKeyRing, WireCodec
from gateway.session.events import DeviceSessionEstablished, Event
from gateway.transport import UdpEndpoint
from tests.device_sim.swarm.fakes import FakeSockets
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import (
    DEVICE_CREDENTIAL,
    DEVICE_KEY,
    DEVICE_KID,
    GATEWAY_ADDRESS,
    GATEWAY_CREDENTIAL,
    Recorder,
    make_gateway,
    responder_factory,
    run_gateway,
)

GREETING = wire.IncomingMessage(
    id=1, sender=4, content=wire.TextContent("hello device"), timestamp=0
)


def provision(tmp_path: Path, host: str = "192.0.2.1", port: int = 5683) -> Provisioning:
    """A provisioning file as enroll writes it, read back."""
    path = tmp_path / "device.prov"
    write_provisioning_file(
        path,
        Provisioning(
            device_kid=DEVICE_KID,
            device_credential=DEVICE_CREDENTIAL.public().encoded,
            gateway_credential=GATEWAY_CREDENTIAL.public().encoded,
            endpoints=(GatewayEndpoint(Transport.UDP, host, port),),
            account="sensor@example.com",
            device_private_key=DEVICE_KEY,
        ),
    )
    return read_provisioning_file(path)


@dataclass
class Reporter:
    """The gateway's application: reports every SendMessage, greets each new session once."""

    gateway: GatewaySessions
    send_ids: list[int] = field(default_factory=list)
    greeted: bool = False

    def on_event(self, connection_id: bytes, event: Event) -> None:
        if isinstance(event, DeviceSessionEstablished) and not self.greeted:
            self.greeted = True
            self.gateway.send_operation(connection_id, GREETING)
        if isinstance(event, OperationReceived) and isinstance(event.message, wire.SendMessage):
            self.send_ids.append(event.message.id)
            report = wire.DeliveryReport(event.message.id, wire.DeliveryStatus.DELIVERED)
            self.gateway.send_operation(connection_id, report)


def client(seed: int = 7) -> DeviceClient:
    return DeviceClient(rng=random.Random(seed), random_bytes=random.Random(seed + 1).randbytes)


async def collect_until(
    runner: DeviceRunner, done: type[ClientEvent], count: int = 1
) -> list[ClientEvent]:
    """Events from the runner's stream until ``count`` of type ``done`` were seen."""
    seen: list[ClientEvent] = []
    async for event in runner.events():
        seen.append(event)
        if sum(isinstance(e, done) for e in seen) >= count:
            return seen
    return seen


async def test_runner_over_the_fake_network_reports_and_counts(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    sent_by: dict[Hashable, int] = {}
    bytes_by: dict[Hashable, int] = {}

    def observe(source: Hashable, destination: Hashable, data: bytes) -> None:
        sent_by[source] = sent_by.get(source, 0) + 1
        bytes_by[source] = bytes_by.get(source, 0) + len(data)

    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=3, link=LinkModel(delay=0.1), observer=observe)
        gateway = make_gateway()
        app = Reporter(gateway)
        nursery.start_soon(run_gateway, gateway, net, GATEWAY_ADDRESS, Recorder(), app.on_event)
        sockets = FakeSockets(net, GATEWAY_ADDRESS)
        runner = DeviceRunner(client(), provision(tmp_path), sockets)
        await nursery.start(runner.run)
        with trio.fail_after(60):
            await runner.connected()
            assert runner.send_text(4, "hi") == 1
            events = await collect_until(runner, DeliveryReported)
        assert Connected(resumed=False) in events
        arrived = [e for e in events if isinstance(e, MessageArrived)]
        assert [(e.message_id, e.sender, e.text) for e in arrived] == [(1, 4, "hello device")]
        assert events[-1] == DeliveryReported(1, wire.DeliveryStatus.DELIVERED, None)
        assert app.send_ids == [1]
        device = sockets.opened[0].address
        assert runner.uplink.datagrams_sent == sent_by[device]
        assert runner.uplink.bytes_sent == bytes_by[device]
        assert runner.downlink.datagrams_received == sent_by[GATEWAY_ADDRESS]
        assert runner.downlink.bytes_received == bytes_by[GATEWAY_ADDRESS]
        assert runner.uplink.link_bytes_sent == (
            runner.uplink.bytes_sent + IPV4_UDP_HEADER * runner.uplink.datagrams_sent
        )
        budget = runner.budget
        assert budget is not None
        assert (budget.handshakes, budget.resumptions) == (1, 0)
        # Method 3: four P-256 scalar multiplications (tests/device_sim/test_budget.py).
        assert budget.counts.p256_scalar_multiplications == 4
        assert budget.counts.aes_ccm_bytes > budget.handshake.aes_ccm_bytes
        nursery.cancel_scope.cancel()


async def test_runner_through_a_lossy_radio_link_confirms_every_message_once(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    lossy = preset("gprs").with_loss(Bernoulli(0.2))
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=4, link=LinkModel(delay=0.0))
        gateway = make_gateway()
        app = Reporter(gateway)
        nursery.start_soon(run_gateway, gateway, net, GATEWAY_ADDRESS, Recorder(), app.on_event)
        link = DuplexLink(lossy, seed=11)
        runner = DeviceRunner(
            client(), provision(tmp_path), FakeSockets(net, GATEWAY_ADDRESS), link=link
        )
        await nursery.start(runner.run)
        with trio.fail_after(600):
            await runner.connected()
            ids = [runner.send_text(4, f"reading {n}") for n in range(5)]
            events = await collect_until(runner, DeliveryReported, count=5)
        reported = [e.message_id for e in events if isinstance(e, DeliveryReported)]
        assert sorted(reported) == ids
        assert sorted(set(app.send_ids)) == ids
        stats = link.statistics()
        assert stats.uplink.lost > 0 or stats.downlink.lost > 0
        assert runner.uplink.datagrams_sent == stats.uplink.sent
        assert runner.downlink.datagrams_received == stats.downlink.delivered
        assert runner.uplink.header_bytes == lossy.uplink.overhead_bytes
        nursery.cancel_scope.cancel()


async def test_runner_sleeps_and_resumes_on_wake(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=5, link=LinkModel(delay=0.1))
        gateway = make_gateway()
        app = Reporter(gateway)
        nursery.start_soon(run_gateway, gateway, net, GATEWAY_ADDRESS, Recorder(), app.on_event)
        runner = DeviceRunner(client(), provision(tmp_path), FakeSockets(net, GATEWAY_ADDRESS))
        await nursery.start(runner.run)
        with trio.fail_after(600):
            await runner.connected()
            slept_at = trio.current_time()
            runner.sleep(30)
            events = await collect_until(runner, Connected, count=2)
        slept = [e for e in events if isinstance(e, Slept)]
        assert len(slept) == 1
        assert slept[0].wake_at == pytest.approx(slept_at + 30)
        assert Woke(with_ticket=True) in events
        assert events[-1] == Connected(resumed=True)
        assert runner.budget is not None
        assert (runner.budget.handshakes, runner.budget.resumptions, runner.budget.wakeups) == (
            1,
            1,
            1,
        )
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_runner_over_real_udp_against_the_gateway_endpoint(host: str, tmp_path: Path) -> None:
    core = GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        rng=random.Random(3),
    )
    endpoint = UdpEndpoint(core, host=host, port=0)
    received: list[int] = []

    async def application() -> None:
        async for item in endpoint.events:
            if isinstance(item.event, DeviceSessionEstablished):
                endpoint.send_operation(item.connection_id, GREETING)
            if isinstance(item.event, OperationReceived):
                message = item.event.message
                if isinstance(message, wire.SendMessage):
                    received.append(message.id)
                    report = wire.DeliveryReport(message.id, wire.DeliveryStatus.DELIVERED)
                    endpoint.send_operation(item.connection_id, report)

    async with trio.open_nursery() as nursery:
        address = await nursery.start(endpoint.serve)
        nursery.start_soon(application)
        sockets = UdpSockets((host, address[1]))
        runner = DeviceRunner(client(), provision(tmp_path, host, address[1]), sockets)
        await nursery.start(runner.run)
        with trio.fail_after(30):
            await runner.connected()
            ids = [runner.send_text(4, f"n{n}") for n in range(3)]
            events = await collect_until(runner, DeliveryReported, count=3)
        assert received == ids
        assert [e.message_id for e in events if isinstance(e, MessageArrived)] == [1]
        assert runner.uplink.header_bytes == (48 if ":" in host else 28)
        assert runner.uplink.datagrams_sent > 0
        assert runner.downlink.datagrams_received > 0
        runner.close()
        await endpoint.aclose()
        nursery.cancel_scope.cancel()
