"""Attacks of issue 10 (points 2-6), reproduced in the sans-IO cores with the numbers scaled down.

Each test drives a real gateway and device (real EDHOC, real wire codec) by hand, delivers what
they send, and plays the attacker by injecting datagrams from any source address.
"""

from __future__ import annotations

from collections.abc import Hashable

from gateway import wire
from gateway.session import (
    DeviceSession,
    DeviceSessionState,
    GatewayConfig,
    GatewaySessions,
    HandshakeKind,
    SessionClosed,
    TicketKeyRing,
)
from gateway.session.packets import REJECT_BODY_LENGTH
from gateway.session.resets import ConnectionIds, ResetTokens
from gateway.session.tickets import OpenedTicket, TicketRejectedError
from tests.session.helpers import DEVICE_ADDRESS, initiator_factory, make_device, make_gateway

ATTACKER = ("192.0.2.66", 4444)


def pump(
    gateway: GatewaySessions, device: DeviceSession, now: float, address: Hashable
) -> list[bytes]:
    """Exchange datagrams until both sides are quiet; returns what reached the device."""
    to_device: list[bytes] = []
    for _ in range(50):
        moved = False
        for datagram in device.datagrams_to_send(now):
            gateway.receive_datagram(datagram, address, now)
            moved = True
        for datagram, destination in gateway.datagrams_to_send(now):
            if destination == address:
                to_device.append(datagram)
                device.receive_datagram(datagram, now)
                moved = True
        if not moved:
            break
    return to_device


def established(config: GatewayConfig | None = None) -> tuple[GatewaySessions, DeviceSession]:
    gateway = make_gateway(config=config)
    device = make_device()
    device.connect(0.0)
    pump(gateway, device, 0.0, DEVICE_ADDRESS)
    device.send_operation(wire.Ping(id=1))
    pump(gateway, device, 0.1, DEVICE_ADDRESS)
    assert device.state is DeviceSessionState.ESTABLISHED
    return gateway, device


def forged_record(connection_id: bytes) -> bytes:
    return b"\x80" + connection_id + b"\x00" + bytes(9)  # 13 bytes: header, cid, psn, "tag"


def test_spoofed_reject_does_not_end_a_session() -> None:
    """Point 2: `80 <random cid> ...` from the device's address: a REJECT the device ignores."""
    gateway, device = established()
    (live,) = gateway.sessions()
    free = bytes([live[0] ^ 0xFF, live[1]])
    gateway.receive_datagram(forged_record(free), DEVICE_ADDRESS, 1.0)
    rejects = [d for d, a in gateway.datagrams_to_send(1.0) if d[0] >> 4 == HandshakeKind.REJECT]
    assert len(rejects) == 1
    assert len(rejects[0]) == 1 + REJECT_BODY_LENGTH
    device.receive_datagram(rejects[0], 1.0)
    assert device.state is DeviceSessionState.ESTABLISHED
    assert device.datagrams_to_send(1.0) == []  # no RESUME went out
    assert device.dropped["unexpected"] == 1


def test_genuine_reject_after_a_gateway_restart_resumes() -> None:
    """The REJECT of a gateway that lost the session (same ring, new process) is acted on."""
    ring = TicketKeyRing()
    gateway = make_gateway(ring)
    device = make_device()
    device.connect(0.0)
    pump(gateway, device, 0.0, DEVICE_ADDRESS)
    restarted = make_gateway(TicketKeyRing.from_bytes(ring.to_bytes(), now=1.0), seed=7)
    device.send_operation(wire.Ping(id=2))
    pump(restarted, device, 2.0, DEVICE_ADDRESS)
    assert device.state is DeviceSessionState.ESTABLISHED
    assert restarted.statistics().resumptions == 1


def test_resumption_ends_the_old_session() -> None:
    """Point 2 / issue 11: the old connection id stops accepting records once a resume succeeds."""
    gateway, device = established()
    (old,) = gateway.sessions()
    old_channel = device.channel
    assert old_channel is not None
    old_channel.send_operation(wire.Ping(id=9))
    stale = old_channel.datagrams_to_send(1.0)
    device.resume(1.0)
    pump(gateway, device, 1.0, DEVICE_ADDRESS)
    assert device.state is DeviceSessionState.ESTABLISHED
    assert old not in gateway.sessions()
    assert len(gateway.sessions()) == 1
    gateway.events()
    for datagram in stale:
        gateway.receive_datagram(datagram, DEVICE_ADDRESS, 1.5)
    assert not [e for _, e in gateway.events() if type(e).__name__ == "OperationReceived"]
    assert gateway.statistics().replaced == 1


def test_a_second_full_handshake_ends_the_first_session() -> None:
    """A device whose resumption fell back to a handshake (or that lost its ticket) holds one
    session, not two: the first one's connection id accepts no more records."""
    gateway, first = established()
    (old,) = gateway.sessions()
    old_channel = first.channel
    assert old_channel is not None
    old_channel.send_operation(wire.Ping(id=9))
    stale = old_channel.datagrams_to_send(1.0)
    second = make_device()
    second.connect(1.0)
    pump(gateway, second, 1.0, DEVICE_ADDRESS)
    assert second.state is DeviceSessionState.ESTABLISHED
    assert old not in gateway.sessions()
    assert len(gateway.sessions()) == 1
    of_old = [e for cid, e in gateway.events() if cid == old]
    assert of_old[-1] == SessionClosed("replaced by a newer session")
    for datagram in stale:
        gateway.receive_datagram(datagram, DEVICE_ADDRESS, 1.5)
    assert not [e for _, e in gateway.events() if type(e).__name__ == "OperationReceived"]
    assert gateway.statistics().replaced == 1


def _opened(identity: bytes, serial: int, expiry: int = 10_000) -> OpenedTicket:
    return OpenedTicket(0, serial, expiry, 2, identity, bytes(16))


def test_spent_ticket_memory_cannot_be_filled_by_one_identity() -> None:
    """Point 2: one identity spending many tickets leaves room for a bystander's ticket."""
    ring = TicketKeyRing(max_used=8)
    for serial in range(20):
        ring.mark_used(_opened(b"\x2b", serial, 1000 + serial), 1.0)
    assert len(ring.used) <= ring.max_used_per_identity
    ring.mark_used(_opened(b"\x99", 100), 1.0)  # a bystander: accepted
    try:
        ring.mark_used(_opened(b"\x2b", 3, 1003), 1.0)  # forgotten, but below the floor
    except TicketRejectedError:
        pass
    else:
        raise AssertionError("a forgotten spent serial was accepted again")


def test_spoofed_initial_gets_no_answer_and_stray_packets_do_not_restart() -> None:
    """Point 3: `10 00 00` draws nothing; garbage before message_2 leaves the attempt alive."""
    gateway = make_gateway()
    device = make_device()
    device.connect(0.0)
    (initial,) = device.datagrams_to_send(0.0)
    gateway.receive_datagram(b"\x10\x00\x00", DEVICE_ADDRESS, 0.0)
    assert gateway.datagrams_to_send(0.0) == []
    gateway.receive_datagram(initial, DEVICE_ADDRESS, 0.0)
    ((message_2, _),) = gateway.datagrams_to_send(0.0)
    for stray in (b"\x20\xf6", b"\x20" + bytes(40), message_2[:-1] + bytes([message_2[-1] ^ 1])):
        device.receive_datagram(stray, 0.1)
        assert device.state is DeviceSessionState.HANDSHAKING
        assert device.datagrams_to_send(0.1) == []  # no fresh INITIAL
    device.receive_datagram(message_2, 0.2)
    assert device.state is DeviceSessionState.CONFIRMING


def _half_open() -> tuple[GatewaySessions, DeviceSession, bytes]:
    """A gateway holding a half-open handshake with a device, and the message_2 it answered."""
    gateway = make_gateway()
    device = make_device()
    device.connect(0.0)
    (initial,) = device.datagrams_to_send(0.0)
    gateway.receive_datagram(initial, DEVICE_ADDRESS, 0.0)
    ((message_2, _),) = gateway.datagrams_to_send(0.0)
    return gateway, device, message_2


def test_garbage_for_a_half_open_handshake_is_dropped() -> None:
    """Point 4: a HANDSHAKE packet with a half-open id from anywhere does not end it."""
    gateway, device, message_2 = _half_open()
    device.receive_datagram(message_2, 0.1)
    (message_3,) = device.datagrams_to_send(0.1)
    garbage = message_3[:3] + bytes(len(message_3) - 3)
    gateway.receive_datagram(garbage, ATTACKER, 0.2)
    assert gateway.datagrams_to_send(0.2) == []  # no REJECT either
    assert gateway.statistics().handshakes_in_progress == 1
    gateway.receive_datagram(message_3, DEVICE_ADDRESS, 0.3)
    assert len(gateway.sessions()) == 1


def test_handshake_packets_are_rate_limited_per_host() -> None:
    """Point 4: a sweep of HANDSHAKE packets from one host is cut off after the burst."""
    gateway, _device, message_2 = _half_open()
    header = message_2[:3]
    for port in range(60):
        gateway.receive_datagram(header + bytes(20), ("192.0.2.66", port), 0.5)
    stats = gateway.statistics()
    assert stats.dropped["rate_limited"] == 60 - int(GatewayConfig().handshake_packet_burst)
    assert stats.handshakes_in_progress == 1


def test_live_and_free_ids_look_alike_and_forgeries_end_nothing() -> None:
    """Point 5: same answer for live and free ids; 2,000 forgeries neither end nor starve."""
    gateway, device = established()
    (live,) = gateway.sessions()
    free = bytes([live[0] ^ 0x55, live[1]])
    answers = {}
    for cid in (live, free):
        gateway.receive_datagram(forged_record(cid), ATTACKER, 1.0)
        (answer,) = [d for d, a in gateway.datagrams_to_send(1.0) if a == ATTACKER]
        answers[cid] = answer
    assert {len(a) for a in answers.values()} == {1 + REJECT_BODY_LENGTH}
    assert {a[:2] for a in answers.values()} == {b"\x60\x01"}
    for i in range(2000):  # from 2,000 spoofed hosts at one instant: more than 1,024
        gateway.receive_datagram(forged_record(live), (f"10.{i >> 8}.{i & 255}.1", 9), 2.0)
    gateway.datagrams_to_send(2.0)
    assert live in gateway.sessions()
    device.send_operation(wire.Ping(id=5))
    gateway.events()
    pump(gateway, device, 2.0, DEVICE_ADDRESS)
    received = [e for _, e in gateway.events() if type(e).__name__ == "OperationReceived"]
    assert len(received) == 1  # the session budget was not spent by the forgeries


def test_one_host_cannot_hold_the_handshake_table() -> None:
    """Point 6: 40 source ports of one host, echoing retry tokens, hold at most their share."""
    config = GatewayConfig(max_handshakes=16, retry_threshold=8, address_burst=1000.0)
    gateway = make_gateway(config=config)
    initiator = initiator_factory()
    for port in range(40):
        address = ("203.0.113.9", 10_000 + port)
        initial = b"\x10\x00" + initiator().start()
        gateway.receive_datagram(initial, address, 1.0)
        for answer, _ in gateway.datagrams_to_send(1.0):
            if answer[0] >> 4 == HandshakeKind.RETRY:
                token = answer[1:]
                gateway.receive_datagram(
                    b"\x10" + bytes([len(token)]) + token + initial[2:], address, 1.0
                )
                gateway.datagrams_to_send(1.0)
    held = gateway.statistics().handshakes_in_progress
    assert held <= config.max_handshakes_per_host
    newcomer = make_device()
    newcomer.connect(1.0)
    pump(gateway, newcomer, 1.0, ("198.51.100.200", 5000))
    assert (
        newcomer.state is DeviceSessionState.CONFIRMING
        or newcomer.state is DeviceSessionState.ESTABLISHED
    )


def test_a_newcomer_evicts_the_biggest_holder_when_the_table_is_full() -> None:
    """Point 6: with the table full of one host's handshakes, another host still gets in."""
    config = GatewayConfig(
        max_handshakes=8, max_handshakes_per_host=8, retry_per_host=8, address_burst=1000.0
    )
    gateway = make_gateway(config=config)
    initiator = initiator_factory()
    for port in range(8):
        gateway.receive_datagram(
            b"\x10\x00" + initiator().start(), ("203.0.113.9", 10_000 + port), 1.0
        )
    gateway.datagrams_to_send(1.0)
    assert gateway.statistics().handshakes_in_progress == 8
    newcomer = make_device()
    newcomer.connect(1.0)
    pump(gateway, newcomer, 1.0, ("198.51.100.200", 5000))
    assert newcomer.state is DeviceSessionState.ESTABLISHED
    assert gateway.statistics().handshakes_evicted == 1


def _neighbour(address: Hashable) -> Hashable:
    """Another port of ``address``'s host: a NAT neighbour, or a spoofer of that host."""
    assert isinstance(address, tuple)
    return (address[0], address[1] + 1)


def test_spoofed_failures_do_not_spend_the_resume_budget() -> None:
    """Records with free ids from the device's host draw REJECTs from their own budget; the
    device's RESUME (ticket and binder verify) is still answered."""
    gateway, device = established()
    for i in range(40):
        gateway.receive_datagram(forged_record(bytes([i, 0x99])), _neighbour(DEVICE_ADDRESS), 1.0)
    sent = gateway.datagrams_to_send(1.0)
    assert len(sent) == int(GatewayConfig().reject_burst)  # the REJECT burst, then silence
    device.resume(1.0)
    pump(gateway, device, 1.0, DEVICE_ADDRESS)
    assert gateway.statistics().resumptions == 1
    assert device.state is DeviceSessionState.ESTABLISHED


def test_garbage_from_the_handshakes_own_address_does_not_starve_message_3() -> None:
    """HANDSHAKE garbage with the half-open id from the device's own address, above the work
    burst: dropped without spending it, so message_3 still completes the handshake."""
    gateway, device, message_2 = _half_open()
    device.receive_datagram(message_2, 0.1)
    (message_3,) = device.datagrams_to_send(0.1)
    for _ in range(3 * int(GatewayConfig().handshake_packet_burst)):
        gateway.receive_datagram(message_2[:3] + bytes(19), DEVICE_ADDRESS, 0.2)
    assert gateway.statistics().dropped["handshake_failed"] == 60
    gateway.receive_datagram(message_3, DEVICE_ADDRESS, 0.2)
    assert len(gateway.sessions()) == 1


def test_a_failure_flood_from_the_devices_address_does_not_starve_its_records() -> None:
    """Unknown-id records from the device's own address spend the host's pre-auth budget; the
    session's own validated path is still served, and the flood gets no more REJECTs."""
    gateway, device = established()
    burst = int(GatewayConfig().host_record_burst)
    for i in range(burst + 500):
        gateway.receive_datagram(forged_record(bytes([0xEE, i & 255])), DEVICE_ADDRESS, 1.0)
    gateway.datagrams_to_send(1.0)
    assert gateway.statistics().dropped["rate_limited"] == 500
    device.send_operation(wire.Ping(id=7))
    gateway.events()
    pump(gateway, device, 1.0, DEVICE_ADDRESS)
    received = [e for _, e in gateway.events() if type(e).__name__ == "OperationReceived"]
    assert len(received) == 1


def test_an_initial_over_the_host_budget_gets_a_retry_and_its_token_admits_it() -> None:
    """Spoofed INITIALs spend the host's INITIAL budget; the device gets a RETRY and, echoing its
    token, is admitted under its validated address's own budget."""
    gateway = make_gateway()
    initiator = initiator_factory()
    for port in range(int(GatewayConfig().address_burst)):
        spoofed = b"\x10\x00" + initiator().start()
        gateway.receive_datagram(spoofed, ("198.51.100.7", 20_000 + port), 0.0)
    gateway.datagrams_to_send(0.0)
    device = make_device()
    device.connect(0.0)
    pump(gateway, device, 0.0, DEVICE_ADDRESS)
    assert gateway.statistics().retries_sent >= 1
    assert device.state is DeviceSessionState.ESTABLISHED


def test_connection_ids_never_reuse_a_revealed_token() -> None:
    """With 1-byte ids, every free id's token swept: new sessions still get unknown tokens, and
    an id counts as revealed only when its REJECT was sent."""
    ids = ConnectionIds(1, bytes)
    resets = ResetTokens(bytes(32))
    revealed = set()
    for value in range(256):
        ids.reveal(bytes([value]))
        revealed.add(resets.token(bytes([value])))
    assert ids.unrevealed_free == 0
    issued = [ids.allocate() for _ in range(256)]
    assert sorted(issued) == [bytes([v]) for v in range(256)]
    for cid in issued:
        assert resets.token(cid, ids.epoch(cid)) not in revealed
    gateway = make_gateway(config=GatewayConfig(cid_length=1, reject_burst=1.0))
    for value in range(4):
        gateway.receive_datagram(bytes([0x80, value]) + bytes(10), ATTACKER, 0.0)
    assert len(gateway.datagrams_to_send(0.0)) == 1
    assert [gateway.connection_ids.revealed(bytes([v])) for v in range(4)] == [
        True,
        False,
        False,
        False,
    ]
