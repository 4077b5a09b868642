"""Issue 10 points 3, 4 and 6 end to end, through the real UdpEndpoint and device driver.

Real code reached: UdpEndpoint, CoreDriver, GatewaySessions, run_device_over_udp, DeviceDriver,
DeviceSession, real EDHOC; the network is fake (tests/attacks/fakeudp.py) so that datagrams can
carry any source address.
"""

from __future__ import annotations

import random

import trio
import trio.lowlevel

from gateway.session import DeviceSessionState, GatewayConfig, HandshakeKind, HandshakePacket
from gateway.session.packets import encode_initial_body, parse_packet_untrusted
from tests.attacks.fakeudp import FakeUdpNetwork
from tests.attacks.harness import ATTACKER, gateway_core, start_device, start_gateway
from tests.session.helpers import initiator_factory, until


async def test_spoofed_initials_and_stray_packets_do_not_stop_a_connecting_device(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Point 3: `10 00 00` from the device's address and stray HANDSHAKEs to it, 5/s each."""
    net = FakeUdpNetwork()
    net.install()
    rng = random.Random(3)
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, net, gateway_core())
        device = await start_device(nursery, net, gateway, "198.51.100.7", connect=False)

        async def attack() -> None:
            while True:
                net.inject(device.address, gateway.address, b"\x10\x00\x00")
                stray = bytes([0x20 | rng.choice((0, 2))]) + rng.randbytes(rng.randrange(1, 60))
                net.inject(gateway.address, device.address, stray)
                await trio.sleep(0.2)

        nursery.start_soon(attack)
        await trio.sleep(1.0)
        start = trio.current_time()
        device.driver.connect()
        await until(lambda: device.driver.session.state is DeviceSessionState.ESTABLISHED, limit=30)
        assert trio.current_time() - start < 1.0  # the first exchange completed: no restart
        to_device = [d for s, t, d in net.log if s == gateway.address and t == device.address]
        assert all(d[0] != 0x20 or len(d) > 3 for d in to_device)  # no EDHOC error came back
        nursery.cancel_scope.cancel()


async def test_handshake_sweep_over_every_cid_kills_no_handshake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Point 4: HANDSHAKE garbage for every id during 20 concurrent handshakes.

    Scaled down: 1-byte connection ids (256, swept whole) instead of 65,536; 50 ms links keep
    the handshakes half-open while the sweep runs."""
    net = FakeUdpNetwork(delay=0.05)
    net.install()
    async with trio.open_nursery() as nursery:
        net.nursery = nursery
        gateway = await start_gateway(nursery, net, gateway_core(GatewayConfig(cid_length=1)))
        devices = [
            await start_device(nursery, net, gateway, f"198.51.100.{10 + i}", seed=10 + i)
            for i in range(20)
        ]
        await until(lambda: gateway.endpoint.statistics().core.handshakes_in_progress == 20)
        for cid in list(range(256)) * 2:  # twice: 40 hits on half-open ids, above the burst
            net.inject(ATTACKER, gateway.address, bytes([0x21, cid]) + bytes(8))
        await trio.lowlevel.checkpoint()
        assert gateway.endpoint.statistics().core.handshakes_in_progress == 20
        await until(
            lambda: all(d.driver.session.state is DeviceSessionState.ESTABLISHED for d in devices),
            limit=60,
        )
        assert gateway.endpoint.statistics().core.dropped["rate_limited"] > 0
        nursery.cancel_scope.cancel()


async def test_spoofed_handshake_garbage_for_a_known_cid_does_not_starve_message_3(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """New: an on-path attacker who saw message_2 (C_R is in its header) sends garbage
    HANDSHAKE packets with that cid from the device's own address, 25 at once then 40/s
    (880 bytes/s). The per-host HANDSHAKE bucket (10/s, burst 20) is the device's host's, so
    the spoofer spends it; the genuine message_3 must still get through."""
    net = FakeUdpNetwork(delay=0.05)
    net.install()
    async with trio.open_nursery() as nursery:
        net.nursery = nursery
        gateway = await start_gateway(nursery, net, gateway_core())
        device = await start_device(nursery, net, gateway, "198.51.100.7", connect=False)
        seen: list[bytes] = []

        async def attack() -> None:
            while not seen:
                for _source, destination, data in net.log:
                    if destination == device.address and data[0] == 0x22:
                        seen.append(data[1:3])
                await trio.sleep(0.001)
            for _ in range(25):  # the burst of the device's host's HANDSHAKE bucket, and more
                net.inject(device.address, gateway.address, b"\x22" + seen[0] + bytes(19))
            while True:
                net.inject(device.address, gateway.address, b"\x22" + seen[0] + bytes(19))
                await trio.sleep(1 / 40)

        nursery.start_soon(attack)
        device.driver.connect()
        await until(lambda: device.driver.session.state is DeviceSessionState.ESTABLISHED, limit=60)
        nursery.cancel_scope.cancel()


async def test_one_host_with_4200_ports_cannot_lock_out_a_newcomer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Point 6: the same message_1 from 4,200 ports of one host, echoing RETRY tokens."""
    net = FakeUdpNetwork()
    net.install()
    message_1 = initiator_factory()().start()
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, net, gateway_core())
        ports = range(10000, 14200)
        for port in ports:
            body = encode_initial_body(b"", message_1)
            net.inject(("192.0.2.66", port), gateway.address, b"\x10" + body)
        await trio.sleep(0.01)
        for source, destination, data in list(net.log):
            if source == gateway.address and data[0] >> 4 == HandshakeKind.RETRY:
                retry = parse_packet_untrusted(data, cid_length=0)
                assert isinstance(retry, HandshakePacket)
                body = encode_initial_body(retry.body, message_1)
                net.inject(destination, gateway.address, b"\x10" + body)
        await trio.sleep(0.01)
        held = gateway.endpoint.statistics().core.handshakes_in_progress
        assert held <= 16
        newcomer = await start_device(nursery, net, gateway, "198.51.100.9")
        start = trio.current_time()
        await until(
            lambda: newcomer.driver.session.state is DeviceSessionState.ESTABLISHED, limit=60
        )
        assert trio.current_time() - start < 1.0
        nursery.cancel_scope.cancel()
