"""The worked example of docs/device-budget.md, recomputed: one EDHOC handshake and one message.

The real device session and gateway core (sans-IO) run over the NB-IoT preset (lossless, so the
example counts no retransmissions) in exact virtual time. The device's EDHOC runs on a
:class:`MeteredCrypto`; record sealing is counted by wrapping the record layer's ``seal``, and the
session-key derivation outside EDHOC (6 HKDF-Expand calls, gateway/session/record.py) is added by
hand. The figures asserted here are the ones the doc quotes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from device_sim.budget import PROFILES, MeteredCrypto, PrimitiveCounts, RadioActivity, estimate
from device_sim.radio import DuplexLink, preset
from gateway import wire
from gateway.edhoc import CipherSuite, Initiator, Method
from gateway.edhoc.suites import Aead
from gateway.session import (
    DeviceSession,
    DeviceSessionEstablished,
    EdhocInitiator,
    GatewaySessions,
    OperationReceived,
    TicketKeyRing,
    WireCodec,
)
from gateway.session import record as record_layer
from tests.session.helpers import (
    DEVICE_CREDENTIAL,
    GATEWAY_CREDENTIAL,
    _lookup,
    responder_factory,
)

GATEWAY = ("192.0.2.1", 5683)
# In the map form (21 bytes), the form the figures of docs/device-budget.md were computed for.
MESSAGE = wire.SendMessage(id=1, to=7, content=wire.TextContent("meet at noon"), compact=False)


@dataclass
class Example:
    """What the device did in the example."""

    counts: PrimitiveCounts
    sent: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    finished_at: float = 0.0


def _run(monkeypatch: pytest.MonkeyPatch) -> Example:
    sealed: list[int] = []
    original_seal = record_layer.DirectionKey.seal

    def counting_seal(self: Any, space: int, sequence: int, aad: bytes, plaintext: bytes) -> bytes:
        sealed.append(len(plaintext))
        return original_seal(self, space, sequence, aad, plaintext)

    monkeypatch.setattr(record_layer.DirectionKey, "seal", counting_seal)
    crypto = MeteredCrypto()

    def initiator() -> EdhocInitiator:
        return EdhocInitiator(
            Initiator(
                method=Method.STATIC_DH_STATIC_DH,
                suites=[CipherSuite.SUITE_2],
                c_i=b"\x37",
                credential=DEVICE_CREDENTIAL,
                credential_lookup=_lookup(GATEWAY_CREDENTIAL),
                crypto=crypto,
            )
        )

    device = DeviceSession(handshake_factory=initiator, codec=WireCodec(), rng=random.Random(1))
    gateway = GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        rng=random.Random(2),
    )
    link = DuplexLink(preset("nb-iot").lossless(), seed=1)
    example = Example(counts=crypto.counts)
    device_address: dict[int, Any] = {}
    now = 0.0
    device.connect(now)
    sent_message = False
    received_at: float | None = None
    while now < 120.0:
        for datagram in device.datagrams_to_send(now):
            example.sent.append(len(datagram))
            link.send_up(datagram, now)
        for datagram, address in gateway.datagrams_to_send(now):
            generation = next(g for g, a in device_address.items() if a == address)
            example.received.append(len(datagram))
            link.send_down(datagram, generation, now)
        for event in device.events():
            if isinstance(event, DeviceSessionEstablished) and not sent_message:
                device.send_operation(MESSAGE)
                sent_message = True
        for _, event in gateway.events():
            if isinstance(event, OperationReceived):
                received_at = now
        deadlines: list[float] = [
            d
            for d in (link.next_deadline(), device.next_deadline(), gateway.next_deadline())
            if d is not None
        ]
        if not deadlines:
            break
        now = max(now, min(deadlines))
        for up in link.uplink_due(now):
            address = ("198.51.100.7", link.nat.port(up.generation))
            device_address[up.generation] = address
            gateway.receive_datagram(up.datagram, address, up.at)
        for down in link.downlink_due(now):
            device.receive_datagram(down.datagram, down.at)
        _fire(device.next_deadline, device.handle_timeout, now)
        _fire(gateway.next_deadline, gateway.handle_timeout, now)
    assert received_at is not None
    example.finished_at = received_at
    # The device sealed its own records and opened the gateway's: all the record AEAD it did.
    example.counts.add_aead(Aead.AES_CCM_16_64_128, sum(sealed))
    for _ in range(6):  # g2d, d2g, then key and iv per direction: short inputs, one HMAC each
        example.counts.add_hmac(8)
    example.counts.add_cbor(encoded=len(wire.encode(MESSAGE)))
    return example


def _fire(
    deadline: Callable[[], float | None], handle: Callable[[float], None], now: float
) -> None:
    due = deadline()
    if due is not None and due <= now:
        handle(now)


def test_one_handshake_and_one_message_on_cortex_m4_over_nb_iot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = _run(monkeypatch)
    link = preset("nb-iot")
    activity = RadioActivity.of_datagrams(link, example.sent, example.received, wakeups=1)
    budget = estimate(PROFILES["cortex-m4-64mhz"], example.counts, link, activity)
    counts = example.counts
    # Handshake (4 scalar multiplications) and the message's record, as docs/device-budget.md.
    assert counts.p256_scalar_multiplications == 4
    assert counts.aes_ccm_bytes == 93
    assert counts.sha256_blocks == 89
    assert counts.cbor_bytes_encoded == 21
    assert example.sent == [39, 22, 34]
    assert example.received == [50, 70, 12]
    assert (activity.tx_bytes, activity.rx_bytes) == (179, 216)
    cycles = 4 * 1_000_000 + 93 * 67.6 + 89 * 3_000 + 21 * 30
    assert PROFILES["cortex-m4-64mhz"].cycles(counts) == pytest.approx(cycles)
    assert budget.cpu_ms == pytest.approx(66.78, abs=0.005)
    assert budget.cpu_mj == pytest.approx(0.741, abs=0.0005)
    assert budget.tx_mj == pytest.approx(67.11, abs=0.005)
    assert budget.rx_mj == pytest.approx(14.36, abs=0.005)
    assert budget.wake_mj == 200.0
    assert budget.total_mj == pytest.approx(282.2, abs=0.05)
    # The gateway had the message within the NB-IoT round trips (virtual seconds).
    assert 3 * link.round_trip < example.finished_at < 4 * link.round_trip
