"""Issue 10 point 5 end to end: probing connection ids, and forged records with a known id.

Real code reached: UdpEndpoint, CoreDriver, GatewaySessions, run_device_over_udp, DeviceDriver,
DeviceSession, real EDHOC; the fake network (tests/attacks/fakeudp.py) lets the prober use one
source host per probe, as an attacker with many addresses (an IPv6 /48, a botnet) would, so the
per-host REJECT limit does not hide the answers. Scaled down: 1-byte connection ids (256, probed
whole) instead of 65,536.
"""

from __future__ import annotations

import random

import trio

from gateway import wire
from gateway.session import DeviceSessionState, GatewayConfig
from gateway.session.events import OperationAcknowledged
from tests.attacks.fakeudp import Address, FakeUdpNetwork
from tests.attacks.harness import DeviceNode, GatewayNode, gateway_core, start_device, start_gateway
from tests.session.helpers import until

LIVE = 10


def prober(index: int) -> Address:
    """A distinct source host per probe."""
    return (f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}", 7000)


async def sweep(net: FakeUdpNetwork, gateway: GatewayNode, first: int) -> dict[int, list[bytes]]:
    """Send a 12-byte record (the shortest answered with 1-byte ids) to every id; the replies."""
    start = len(net.log)
    for cid in range(256):
        net.inject(prober(first + cid), gateway.address, bytes([0x80, cid]) + bytes(10))
    await trio.sleep(0.01)
    replies: dict[int, list[bytes]] = {cid: [] for cid in range(256)}
    for source, destination, data in net.log[start:]:
        if source == gateway.address and destination[0].startswith("10."):
            index = int.from_bytes(bytes(int(x) for x in destination[0].split(".")[1:]), "big")
            replies[index - first].append(data)
    return replies


async def established_devices(
    nursery: trio.Nursery, net: FakeUdpNetwork, gateway: GatewayNode, count: int
) -> list[DeviceNode]:
    devices = [
        await start_device(nursery, net, gateway, f"198.51.100.{10 + i}", seed=10 + i)
        for i in range(count)
    ]
    await until(lambda: all(d.driver.session.ticket is not None for d in devices))
    return devices


async def test_live_and_free_ids_are_indistinguishable_to_a_prober(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One probe per id, twice: reply count, size, type byte and repeat behaviour agree."""
    net = FakeUdpNetwork()
    net.install()
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, net, gateway_core(GatewayConfig(cid_length=1)))
        devices = await established_devices(nursery, net, gateway, LIVE)
        live = {d.driver.session.connection_id[0] for d in devices}
        first = await sweep(net, gateway, 0)
        second = await sweep(net, gateway, 1000)

        def shape(cid: int) -> tuple[object, ...]:
            a, b = first[cid], second[cid]
            return (len(a), tuple(len(x) for x in a), tuple(x[:2] for x in a), a == b)

        live_shapes = {shape(cid) for cid in live}
        free_shapes = {shape(cid) for cid in range(256) if cid not in live}
        assert live_shapes == free_shapes == {(1, (18,), (b"\x60\x01",), True)}
        assert all(d.driver.session.state is DeviceSessionState.ESTABLISHED for d in devices)
        nursery.cancel_scope.cancel()


async def test_what_two_sweeps_reveal_gives_no_power_over_sessions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Probe, let sessions end, probe again. An id whose answer changed between the sweeps was
    live at the first one: that residual is accepted (docs/security.md, "What two sweeps tell"),
    because the answer for a closed id must be the token its device holds, so that a device
    whose session the gateway dropped resumes at once. What must not follow from it: with every
    answer of both sweeps in hand, the prober cannot end a session, old or new."""
    net = FakeUdpNetwork()
    net.install()
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, net, gateway_core(GatewayConfig(cid_length=1)))
        await established_devices(nursery, net, gateway, LIVE)
        first = await sweep(net, gateway, 0)
        for connection_id in list(gateway.endpoint.driver.core.sessions()):
            gateway.endpoint.driver.core.close_session(connection_id, trio.current_time())
        second = await sweep(net, gateway, 1000)
        harvested = {reply for replies in (first, second) for r in replies.values() for reply in r}
        newcomers = [
            await start_device(nursery, net, gateway, f"203.0.113.{10 + i}", seed=50 + i)
            for i in range(LIVE)
        ]
        await until(lambda: all(d.driver.session.ticket is not None for d in newcomers))
        before = {d.address: d.driver.session.connection_id for d in newcomers}
        for device in newcomers:
            for reply in harvested:
                net.inject(gateway.address, device.address, reply)
        await trio.sleep(1.0)
        assert all(d.driver.session.state is DeviceSessionState.ESTABLISHED for d in newcomers)
        assert {d.address: d.driver.session.connection_id for d in newcomers} == before
        nursery.cancel_scope.cancel()


async def test_tokens_seen_for_free_ids_cannot_reset_later_sessions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """New: sweep every free id (collecting their reset tokens), then a device connects. With
    every id revealed, the gateway must still not hand the device a token the prober holds:
    a REJECT(1) spoofed from the gateway's address with it must not end the session."""
    net = FakeUdpNetwork()
    net.install()
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, net, gateway_core(GatewayConfig(cid_length=1)))
        replies = await sweep(net, gateway, 0)
        device = await start_device(nursery, net, gateway, "198.51.100.7")
        await until(lambda: device.driver.session.ticket is not None)
        own = device.driver.session.connection_id
        (reject,) = replies[own[0]]
        net.inject(gateway.address, device.address, reject)
        await trio.sleep(1.0)
        assert device.driver.session.state is DeviceSessionState.ESTABLISHED
        assert device.driver.session.connection_id == own, "the device was forced to resume"
        nursery.cancel_scope.cancel()


async def test_forged_records_with_a_known_id_neither_end_nor_starve_a_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """1,024 forged 13-byte records in 4 s, then 400/s for 10 s, from an attacker's address,
    with the live id, while the device sends a Ping every 250 ms: every Ping is acknowledged."""
    net = FakeUdpNetwork()
    net.install()
    rng = random.Random(5)
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, net, gateway_core())
        (device,) = await established_devices(nursery, net, gateway, 1)
        own = device.driver.session.connection_id
        attacker = ("192.0.2.66", 4444)
        for _ in range(1024):
            net.inject(attacker, gateway.address, b"\x80" + own + rng.randbytes(10))
            await trio.sleep(4 / 1024)
        pings = 0
        for step in range(4000):
            net.inject(attacker, gateway.address, b"\x80" + own + rng.randbytes(10))
            if step % 100 == 0:
                pings += 1
                device.driver.send_operation(wire.Ping(id=pings))
            await trio.sleep(1 / 400)
        await trio.sleep(10)
        assert device.driver.session.state is DeviceSessionState.ESTABLISHED
        assert device.driver.session.connection_id == own
        assert len(device.of_type(OperationAcknowledged)) == pings
        nursery.cancel_scope.cancel()
