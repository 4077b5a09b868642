"""Issue 10 point 2 end to end: spoofed short records from a device's own address.

Real code reached: UdpEndpoint, CoreDriver, GatewaySessions, run_device_over_udp, DeviceDriver,
DeviceSession, real EDHOC; only the network is fake (tests/attacks/fakeudp.py), so that the
attacker can put the device's address on its datagrams.
"""

from __future__ import annotations

import random

import trio

from gateway import wire
from gateway.session import DeviceSessionState, GatewayConfig
from gateway.session.events import DeviceSessionResumed, OperationAcknowledged
from tests.attacks.fakeudp import FakeUdpNetwork
from tests.attacks.harness import gateway_core, start_device, start_gateway
from tests.session.helpers import until


def record(connection_id: bytes, size: int, rng: random.Random) -> bytes:
    """A protected-record header byte, the id, then random bytes up to ``size``."""
    return b"\x80" + connection_id + rng.randbytes(size - 1 - len(connection_id))


async def test_spoofed_records_from_the_devices_address_end_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """5- and 13-byte records, random and the device's own cid, spoofed at 2/s for 60 s."""
    net = FakeUdpNetwork()
    net.install()
    rng = random.Random(7)
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, net, gateway_core())
        device = await start_device(nursery, net, gateway, "198.51.100.7")
        bystander = await start_device(nursery, net, gateway, "198.51.100.8", seed=3)
        await until(lambda: device.driver.session.state is DeviceSessionState.ESTABLISHED)
        await until(lambda: bystander.driver.session.ticket is not None)
        await until(lambda: device.driver.session.ticket is not None)
        own = device.driver.session.connection_id
        pings = 0
        for tick in range(120):
            for size in (5, 13):
                cid = own if tick % 2 else rng.randbytes(2)
                net.inject(device.address, gateway.address, record(cid, size, rng))
            if tick % 10 == 0:
                pings += 1
                device.driver.send_operation(wire.Ping(id=pings))
            await trio.sleep(0.5)
        await trio.sleep(10)
        assert device.driver.session.state is DeviceSessionState.ESTABLISHED
        assert device.driver.session.connection_id == own
        assert len(device.of_type(OperationAcknowledged)) == pings
        assert gateway.endpoint.statistics().core.dropped["unknown_connection"] >= 60
        assert len(gateway.endpoint.driver.core.sessions()) == 2
        bystander.driver.resume()
        await until(lambda: bystander.of_type(DeviceSessionResumed), limit=10)
        assert gateway.endpoint.statistics().dropped.get("internal_error", 0) == 0
        nursery.cancel_scope.cancel()


async def test_spoofed_records_do_not_stop_the_device_resuming(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """13-byte records with random cids spoofed from the device's host (3/s) while it resumes.

    Each draws a REJECT to the device's host; REJECTs and RESUMEs share one per-host bucket
    (2/s, burst 10), so the spoofer must not be able to spend the device's RESUME budget.
    """
    net = FakeUdpNetwork()
    net.install()
    rng = random.Random(8)
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, net, gateway_core(GatewayConfig()))
        device = await start_device(nursery, net, gateway, "198.51.100.7")
        await until(lambda: device.driver.session.ticket is not None)
        spoofed_from = ("198.51.100.7", 1)  # same host, another port: a NAT neighbour or spoofer

        async def flood() -> None:
            while True:
                net.inject(spoofed_from, gateway.address, record(rng.randbytes(2), 13, rng))
                await trio.sleep(1 / 3)

        nursery.start_soon(flood)
        await trio.sleep(10)
        device.driver.resume()
        await until(lambda: device.of_type(DeviceSessionResumed), limit=60)
        assert device.driver.session.state is DeviceSessionState.ESTABLISHED
        nursery.cancel_scope.cancel()


async def test_a_record_flood_spoofed_from_the_devices_address_does_not_starve_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """New: 13-byte records with random ids from the device's own address, 4,000 at once and
    then 2,500/s for 4 s (32.5 KB/s), while the device sends a Ping every 250 ms. Records
    before authentication are limited per host (2000/s, burst 4000), a bucket the spoofer
    shares with the device; Pings must keep being acknowledged during the flood."""
    net = FakeUdpNetwork()
    net.install()
    rng = random.Random(9)
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, net, gateway_core())
        device = await start_device(nursery, net, gateway, "198.51.100.7")
        await until(lambda: device.driver.session.ticket is not None)
        for _ in range(4000):  # the bucket's burst first, then 2,500/s against its 2,000/s
            net.inject(device.address, gateway.address, record(rng.randbytes(2), 13, rng))
        pings = 0
        for step in range(10000):
            net.inject(device.address, gateway.address, record(rng.randbytes(2), 13, rng))
            if step % 625 == 0:
                pings += 1
                device.driver.send_operation(wire.Ping(id=pings))
            await trio.sleep(0.0004)
        acknowledged_during_flood = len(device.of_type(OperationAcknowledged))
        assert acknowledged_during_flood >= pings - 2, (acknowledged_during_flood, pings)
        nursery.cancel_scope.cancel()
