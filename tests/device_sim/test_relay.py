"""The trio radio relay over real loopback UDP: what arrives, not when (real sockets, real time).

Waits are on conditions with bounded timeouts; nothing asserts a duration.
"""

from __future__ import annotations

import random
import socket
from dataclasses import replace
from typing import Any

import trio

from device_sim.radio import (
    Bernoulli,
    DuplexLink,
    LinkPreset,
    NatParameters,
    RadioRelay,
    preset,
)
from gateway import wire
from gateway.session import (
    ChannelConfig,
    DeviceSession,
    DeviceSessionEstablished,
    GatewayConfig,
    GatewaySessions,
    OperationReceived,
    TicketKeyRing,
    WireCodec,
)
from gateway.transport import DeviceDriver, UdpEndpoint, run_device_over_udp
from tests.session.helpers import initiator_factory, responder_factory

HOST = "127.0.0.1"


async def _echo_server(
    seen: list[Any], *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
) -> None:
    """Answer every datagram to its source; note the source addresses."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        await sock.bind((HOST, 0))
        task_status.started(sock.getsockname())
        while True:
            data, address = await sock.recvfrom(65_535)
            seen.append(address)
            await sock.sendto(b"echo:" + data, address)


def _fast(nat: NatParameters) -> LinkPreset:
    return replace(preset("lte").lossless(), nat=nat)


async def _poll(predicate: Any) -> None:
    with trio.fail_after(10):
        while not predicate():  # noqa: ASYNC110 - real sockets: poll a condition, bounded
            await trio.sleep(0.01)


async def test_relay_carries_datagrams_both_ways() -> None:
    seen: list[Any] = []
    async with trio.open_nursery() as nursery:
        server = await nursery.start(_echo_server, seen)
        relay = RadioRelay(DuplexLink(_fast(NatParameters()), seed=1), server)
        relay_address = await nursery.start(relay.serve)
        client = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with client:
            await client.connect(relay_address)
            for i in range(20):
                await client.send(b"%d" % i)
                with trio.fail_after(10):
                    assert await client.recv(100) == b"echo:%d" % i
        stats = relay.statistics()
        assert stats.link.uplink.delivered == 20
        assert stats.link.downlink.delivered == 20
        assert len({address[1] for address in seen}) == 1  # one NAT mapping, one port
        assert seen[0][1] != relay_address[1]  # the gateway sees the mapping, not the relay
        nursery.cancel_scope.cancel()


async def test_mtu_and_loss_are_applied() -> None:
    seen: list[Any] = []
    link_preset = replace(
        preset("lte").lossless(),
        uplink=replace(preset("lte").uplink, mtu=100, loss=Bernoulli(0.5)),
        nat=NatParameters(),
    )
    async with trio.open_nursery() as nursery:
        server = await nursery.start(_echo_server, seen)
        relay = RadioRelay(DuplexLink(link_preset, seed=9), server)
        relay_address = await nursery.start(relay.serve)
        client = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with client:
            await client.connect(relay_address)
            await client.send(bytes(101))
            for i in range(40):
                await client.send(b"%d" % i)
            await _poll(lambda: relay.statistics().link.uplink.sent == 41)
            stats = relay.statistics().link.uplink
            assert stats.too_large == 1
            assert 0 < stats.lost < 40
            expected = 40 - stats.lost
            await _poll(lambda: relay.statistics().link.downlink.delivered == expected)
            received = {await client.recv(100) for _ in range(expected)}
        assert len(received) == expected
        assert all(len(address) == 2 for address in seen)
        assert len(seen) == expected
        nursery.cancel_scope.cancel()


async def test_nat_timeout_drops_replies_and_the_next_send_gets_a_new_port() -> None:
    """A mapping that expires at once: every reply finds no mapping, every send a new port."""
    seen: list[Any] = []
    async with trio.open_nursery() as nursery:
        server = await nursery.start(_echo_server, seen)
        relay = RadioRelay(DuplexLink(_fast(NatParameters(binding_timeout=1e-9)), seed=1), server)
        relay_address = await nursery.start(relay.serve)
        client = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with client:
            await client.connect(relay_address)
            for i in range(3):
                await client.send(b"%d" % i)
                await _poll(lambda i=i: relay.statistics().dropped.get("nat_no_mapping") == i + 1)
        assert len({address[1] for address in seen}) == 3
        stats = relay.statistics()
        assert stats.link.nat.mappings_created == 3
        assert stats.link.downlink.sent == 0  # nothing reached the radio toward the device
        nursery.cancel_scope.cancel()


async def test_rebinding_after_idle_changes_the_source_port_but_replies_arrive() -> None:
    seen: list[Any] = []
    async with trio.open_nursery() as nursery:
        server = await nursery.start(_echo_server, seen)
        relay = RadioRelay(DuplexLink(_fast(NatParameters(rebind_after_idle=1e-9)), seed=1), server)
        relay_address = await nursery.start(relay.serve)
        client = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with client:
            await client.connect(relay_address)
            for i in range(3):
                await client.send(b"%d" % i)
                with trio.fail_after(10):
                    assert await client.recv(100) == b"echo:%d" % i
        assert len({address[1] for address in seen}) == 3
        nursery.cancel_scope.cancel()


async def test_real_gateway_and_device_over_a_lossy_relay() -> None:
    """Handshake and pings each way, exactly once, through 20 % seeded loss on both directions.

    With seed 2026 the loss draws lose the 4th uplink and the 2nd downlink datagram, and both
    directions carry more than that (message_1, message_3, pings and acks up; message_2, pings and
    acks down), so recovery from loss is exercised on every run.
    """
    core = GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        config=GatewayConfig(channel=ChannelConfig(stream=False)),
        rng=random.Random(3),
    )
    endpoint = UdpEndpoint(core, host=HOST, port=0)
    device = DeviceDriver(
        DeviceSession(
            handshake_factory=initiator_factory(),
            codec=WireCodec(),
            config=ChannelConfig(stream=False),
            rng=random.Random(4),
        )
    )
    lossy = replace(preset("lte").with_loss(Bernoulli(0.2)), nat=NatParameters())
    async with trio.open_nursery() as nursery:
        gateway_address = await nursery.start(endpoint.serve)
        relay = RadioRelay(DuplexLink(lossy, seed=11), (HOST, gateway_address[1]))
        relay_address = await nursery.start(relay.serve)
        nursery.start_soon(run_device_over_udp, device, (HOST, relay_address[1]))
        device.connect()
        with trio.fail_after(60):
            async for item in endpoint.events:
                if isinstance(item.event, DeviceSessionEstablished):
                    connection_id = item.connection_id
                    break
            pings = 5
            for i in range(pings):
                device.send_operation(wire.Ping(id=i))
                endpoint.send_operation(connection_id, wire.Ping(id=100 + i))
            at_gateway: list[int] = []
            async for item in endpoint.events:
                if isinstance(item.event, OperationReceived):
                    assert isinstance(item.event.message, wire.Ping)
                    at_gateway.append(item.event.message.id)
                    if len(at_gateway) == pings:
                        break
            at_device: list[int] = []
            async for event in device.events:
                if isinstance(event, OperationReceived):
                    assert isinstance(event.message, wire.Ping)
                    at_device.append(event.message.id)
                    if len(at_device) == pings:
                        break
        assert sorted(at_gateway) == list(range(pings))
        assert sorted(at_device) == [100 + i for i in range(pings)]
        stats = relay.statistics().link
        assert stats.uplink.lost >= 1
        assert stats.downlink.lost >= 1
        await endpoint.aclose()
        nursery.cancel_scope.cancel()
