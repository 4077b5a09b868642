"""Random and crafted datagrams against the sans-IO cores: nothing raises, nothing amplifies.

Drives ``GatewaySessions`` and ``DeviceSession`` directly (real EDHOC, wire codec), which is where
every receive path of both sides lives; the adapters add only the containment that
tests/transport/test_survival.py covers. A single established pair is shared by all examples
(state accumulates, as it does under a real flood); each example uses fresh attacker addresses, so
the 3x bound is checked per address from that address's first datagram.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Hashable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import wire
from gateway.session import (
    DeviceSession,
    DeviceSessionState,
    GatewayConfig,
    GatewaySessions,
    HandshakeKind,
)
from tests.session.helpers import DEVICE_ADDRESS, make_device, make_gateway

_addresses = itertools.count()
EXAMPLES = int(os.environ.get("ATTACK_FUZZ_EXAMPLES", "300"))


def pump(gateway: GatewaySessions, device: DeviceSession, now: float) -> None:
    for _ in range(50):
        moved = False
        for datagram in device.datagrams_to_send(now):
            gateway.receive_datagram(datagram, DEVICE_ADDRESS, now)
            moved = True
        for datagram, destination in gateway.datagrams_to_send(now):
            if destination == DEVICE_ADDRESS:
                device.receive_datagram(datagram, now)
                moved = True
        if not moved:
            return


def _pair() -> tuple[GatewaySessions, DeviceSession]:
    gateway, device = make_gateway(), make_device()
    device.connect(0.0)
    pump(gateway, device, 0.0)
    device.send_operation(wire.Ping(id=1))
    pump(gateway, device, 0.1)
    assert device.state is DeviceSessionState.ESTABLISHED
    return gateway, device


GATEWAY, DEVICE = _pair()
HALF_OPEN = make_device(seed=9)
HALF_OPEN.connect(0.2)
for _datagram in HALF_OPEN.datagrams_to_send(0.2):
    GATEWAY.receive_datagram(_datagram, ("198.51.100.99", 1), 0.2)
GATEWAY.datagrams_to_send(0.2)


def interesting_ids() -> list[bytes]:
    live = list(GATEWAY.sessions())
    half_open = [cid for cid in GATEWAY._sessions if cid not in live]
    return live + half_open + [b"\x00\x00", b"\xff\xff"]


headers = st.sampled_from(
    [0x10, 0x12, 0x20, 0x22, 0x30, 0x40, 0x52, 0x60, 0x70, 0x00, 0x80, 0xA0, 0xC0, 0xFF]
)
datagrams = st.builds(
    lambda header, cid, body: bytes([header]) + cid + body,
    headers,
    st.one_of(st.sampled_from(interesting_ids()), st.binary(max_size=2)),
    st.binary(max_size=80),
) | st.binary(max_size=120)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(datagrams, min_size=1, max_size=8), st.integers(1, 3))
def test_gateway_receive_never_raises_and_never_amplifies(
    packets: list[bytes], spread: int
) -> None:
    """Per unvalidated address: bytes out <= 3x bytes in, whatever was sent, over 10 s."""
    base = next(_addresses)
    sources: list[Hashable] = [
        (f"203.0.113.{base % 250}", 1024 + base * 4 + i) for i in range(spread)
    ]
    received: dict[Hashable, int] = {}
    sent: dict[Hashable, int] = {}
    now = 10.0 + base * 0.01
    for index, packet in enumerate(packets):
        source = sources[index % spread]
        received[source] = received.get(source, 0) + len(packet)
        GATEWAY.receive_datagram(packet, source, now)
        GATEWAY.handle_timeout(now)
        for datagram, destination in GATEWAY.datagrams_to_send(now):
            sent[destination] = sent.get(destination, 0) + len(datagram)
    for source in sources:
        assert sent.get(source, 0) <= 3 * received.get(source, 0)
        if received.get(source, 0) < 13:
            # below the shortest genuine record, only an INITIAL can draw an answer (RETRY
            # or message_2 need a message_1 that cannot fit): nothing comes back at all
            assert sent.get(source, 0) == 0
    pump(GATEWAY, DEVICE, now)
    assert DEVICE.state is DeviceSessionState.ESTABLISHED


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(datagrams, min_size=1, max_size=8))
def test_device_receive_never_raises_and_never_leaves_its_session(packets: list[bytes]) -> None:
    """Unauthenticated datagrams (spoofed from the gateway's address) end nothing."""
    own = DEVICE.connection_id
    for packet in packets:
        DEVICE.receive_datagram(packet, 20.0)
    assert DEVICE.state is DeviceSessionState.ESTABLISHED
    assert DEVICE.connection_id == own
    assert all(d[0] >> 4 != HandshakeKind.RESUME for d in DEVICE.datagrams_to_send(20.0))


@given(st.binary(min_size=16, max_size=16))
def test_a_forged_reject_2_does_not_make_a_resuming_device_give_up_its_ticket(
    proof: bytes,
) -> None:
    """REJECT(2) needs HMAC(resumption secret, ...): a guessed proof is dropped."""
    _gateway, device = _pair()
    device.resume(1.0)
    device.datagrams_to_send(1.0)
    device.receive_datagram(b"\x60\x02" + proof, 1.0)
    assert device.state is DeviceSessionState.RESUMING
    assert device.ticket is not None


def test_short_records_get_nothing_and_a_13_byte_one_at_most_18() -> None:
    """Every length from 1 to 13 bytes of an unknown-id record, each from a fresh address."""
    gateway = make_gateway()
    for length in range(1, 14):
        source = ("203.0.113.250", 60000 + length)
        gateway.receive_datagram((b"\x80\x12\x34" + bytes(12))[:length], source, 1.0)
        out = [d for d, a in gateway.datagrams_to_send(1.0) if a == source]
        if length < 13:
            assert out == []
        else:
            assert [len(d) for d in out] == [18]


def test_every_reply_type_stays_within_3x_of_what_drew_it() -> None:
    """message_2, RETRY, RESUMED, REJECT(1), REJECT(2): each from a fresh, unvalidated address."""
    gateway, device = _pair()
    ticket = device.ticket
    assert ticket is not None
    ratios: dict[str, float] = {}

    def exchange(name: str, packet: bytes, source: Hashable, now: float) -> list[bytes]:
        gateway.receive_datagram(packet, source, now)
        out = [d for d, a in gateway.datagrams_to_send(now) if a == source]
        ratios[name] = sum(map(len, out)) / len(packet)
        return out

    newcomer = make_device(seed=11)
    newcomer.connect(1.0)
    (initial,) = newcomer.datagrams_to_send(1.0)
    assert exchange("message_2", initial, ("203.0.113.251", 1), 1.0)
    loaded = make_gateway(config=GatewayConfig(retry_threshold=0))
    loaded.receive_datagram(initial, ("203.0.113.251", 2), 1.0)
    (retry,) = [d for d, _ in loaded.datagrams_to_send(1.0)]
    ratios["retry"] = len(retry) / len(initial)
    device.resume(2.0)
    (resume,) = device.datagrams_to_send(2.0)
    assert exchange("resumed", resume, ("203.0.113.251", 3), 2.0)
    exchange("reject_1", b"\x80\x12\x34" + bytes(10), ("203.0.113.251", 4), 2.0)
    gateway.datagrams_to_send(2.0)
    again = make_device(seed=12)
    again.ticket = ticket
    again.resume(3.0, ticket)  # the same ticket, spent by the first RESUME
    (spent,) = again.datagrams_to_send(3.0)
    assert exchange("reject_2", spent, ("203.0.113.251", 5), 3.0)
    assert all(ratio <= 3 for ratio in ratios.values()), ratios
    assert set(ratios) == {"message_2", "retry", "resumed", "reject_1", "reject_2"}
