"""The real device client against the real gateway session core, in lock step, for counting.

:class:`CountedPair` joins one :class:`~device_sim.client.DeviceClient` to a
:class:`~gateway.session.GatewaySessions` over a lossless, zero-latency link driven by hand: every
datagram the client sends is handed to the gateway core at once and every answer back, with the
time advanced only to the cores' own deadlines (delayed acknowledgements). What the device
computes is counted by the emulator's :class:`~device_sim.client.runner.DeviceBudget` (exact
EDHOC counts from a :class:`~device_sim.budget.MeteredCrypto`, AEAD and CBOR bytes per record);
what crosses the radio is every datagram's size. A "flight" is one burst the device sends and
then waits on: the device's round trips, which decide how long its radio stays on.

The gateway's application side (what the relay does with a device's operations) is played by
:class:`GatewayApplication`: a DeliveryReport for each SendMessage, presence held while the device
sleeps and announced by a MissedSummary after its Wake, the way docs/protocol.md §6.13-§6.14 say.
No XMPP server is behind it: the device's costs do not depend on one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from device_sim.client import DeviceClient
from device_sim.client.events import ClientEvent, Slept
from device_sim.client.runner import DeviceBudget, handshake_counts
from gateway import wire
from gateway.edhoc import CipherSuite, Credential, Curve, IdCred, Responder
from gateway.edhoc.suites import Aead
from gateway.enroll.provisioning import GatewayEndpoint, Provisioning, Transport
from gateway.session import (
    EdhocResponder,
    GatewayConfig,
    GatewaySessions,
    OperationReceived,
    TicketKeyRing,
    WireCodec,
)
from gateway.session.record import AEAD_PARAMETERS, SUITE_AEAD, AeadAlgorithm

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # SEC 2 §2.4.2
GATEWAY_ADDRESS = ("192.0.2.1", 5683)
DEVICE_ADDRESS = ("198.51.100.7", 40000)
SETTLE_SECONDS = 5.0  # how far time may run to the cores' deadlines after an exchange (acks)


def device_credential(index: int, rng: random.Random) -> Credential:
    """A P-256 CCS credential for device ``index`` (kid: the index, big-endian, at least 1 byte)."""
    while True:
        key = rng.randbytes(32)
        if 0 < int.from_bytes(key, "big") < _P256_ORDER:
            break
    kid = index.to_bytes(max(1, (index.bit_length() + 7) // 8), "big")
    return Credential.new_ccs(curve=Curve.P256, private_key=key, kid=kid, subject=f"device-{index}")


def gateway_credential(rng: random.Random) -> Credential:
    """The gateway's P-256 CCS credential."""
    key = device_credential(0, rng).private_key
    assert key is not None
    return Credential.new_ccs(curve=Curve.P256, private_key=key, kid=b"\x0a", subject="gateway")


def provisioning_for(device: Credential, gateway: Credential) -> Provisioning:
    """What ``impp-gateway enroll`` would write for ``device``."""
    assert device.private_key is not None
    return Provisioning(
        device_kid=device.kid or b"",
        device_credential=device.public().encoded,
        gateway_credential=gateway.public().encoded,
        endpoints=(GatewayEndpoint(Transport.UDP, GATEWAY_ADDRESS[0], GATEWAY_ADDRESS[1]),),
        account=f"{device.subject}@example.com",
        device_private_key=device.private_key,
    )


def responder_factory(
    gateway: Credential, devices: dict[bytes, Credential]
) -> Callable[[bytes], EdhocResponder]:
    """Gateway-side EDHOC (suite 2) that knows ``devices`` by kid; C_R is the connection id."""

    def lookup(id_cred: IdCred) -> list[Credential]:
        return [c for c in devices.values() if id_cred.matches(c)]

    def make(connection_id: bytes) -> EdhocResponder:
        return EdhocResponder(
            Responder(
                suites=[CipherSuite.SUITE_2],
                c_r=connection_id,
                credential=gateway,
                credential_lookup=lookup,
            )
        )

    return make


def make_gateway(
    gateway: Credential, devices: dict[bytes, Credential], seed: int = 1
) -> GatewaySessions:
    """A gateway session core with real EDHOC and the real wire codec."""
    return GatewaySessions(
        handshake_factory=responder_factory(gateway, devices),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        config=GatewayConfig(),
        rng=random.Random(seed),
        random_bytes=random.Random(seed + 100).randbytes,
    )


def device_budget(provisioning: Provisioning) -> DeviceBudget:
    """The emulator's accounting for one device of ``provisioning`` (suite 2: AES-CCM-16-64)."""
    algorithm = SUITE_AEAD[provisioning.suite]
    aead = (
        Aead.CHACHA20_POLY1305
        if algorithm is AeadAlgorithm.CHACHA20_POLY1305
        else Aead.AES_CCM_16_64_128
    )
    return DeviceBudget(
        aead=aead,
        tag_length=AEAD_PARAMETERS[algorithm].tag_length,
        handshake=handshake_counts(provisioning),
    )


@dataclass
class GatewayApplication:
    """The relay's answers to one device: reports, held presence, the MissedSummary on Wake."""

    gateway: GatewaySessions
    connection_id: bytes = b""
    asleep: bool = False
    held: list[wire.Message] = field(default_factory=list)

    def on_operation(self, connection_id: bytes, message: wire.Message) -> None:
        """An operation from the device."""
        self.connection_id = connection_id
        if isinstance(message, wire.SendMessage):
            if message.want_report:
                self.gateway.send_operation(
                    connection_id, wire.DeliveryReport(message.id, wire.DeliveryStatus.DELIVERED)
                )
        elif isinstance(message, wire.Sleep):
            self.asleep = True
        elif isinstance(message, wire.Wake):
            self.asleep = False
            presence = sum(isinstance(m, wire.PresenceNotification) for m in self.held)
            messages = sum(isinstance(m, wire.IncomingMessage) for m in self.held)
            self.gateway.send_operation(
                connection_id,
                wire.MissedSummary(messages=messages, presence_notifications=presence),
            )
            held, self.held = self.held, []
            for item in held:
                self.gateway.send_operation(connection_id, item)

    def deliver(self, message: wire.Message) -> None:
        """Something for the device from the XMPP side: sent now, or held while it sleeps."""
        if self.asleep or not self.connection_id:
            self.held.append(message)
        else:
            self.gateway.send_operation(self.connection_id, message)


@dataclass
class LinkTally:
    """Datagram sizes each way, flights (the device's round trips) and client events."""

    sent: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    flights: int = 0
    events: list[ClientEvent] = field(default_factory=list)

    def snapshot(self) -> tuple[int, int, int, int, int]:
        """(datagrams sent, bytes sent, datagrams received, bytes received, flights)."""
        return (
            len(self.sent),
            sum(self.sent),
            len(self.received),
            sum(self.received),
            self.flights,
        )


class CountedPair:
    """One device client and one gateway core, driven in lock step with the device counted."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.gateway_identity = gateway_credential(rng)
        self.device_identity = device_credential(1, rng)
        devices = {self.device_identity.kid or b"": self.device_identity.public()}
        self.gateway = make_gateway(self.gateway_identity, devices, seed)
        self.application = GatewayApplication(self.gateway)
        self.provisioning = provisioning_for(self.device_identity, self.gateway_identity)
        self.client = DeviceClient(rng=random.Random(seed + 1), random_bytes=rng.randbytes)
        self.budget = device_budget(self.provisioning)
        self.tally = LinkTally()
        self.now = 0.0

    def _connection_id_length(self) -> int:
        session = self.client.session
        return len(session.connection_id) if session is not None else 0

    def _client_events(self) -> None:
        for event in self.client.events():
            self.budget.on_event(event)
            self.tally.events.append(event)

    def _exchange(self) -> bool:
        """Move everything due now both ways; True if anything moved."""
        moved = False
        outgoing = self.client.datagrams_to_send(self.now)
        self._client_events()
        if outgoing:
            self.tally.flights += 1
        for datagram in outgoing:
            moved = True
            self.tally.sent.append(len(datagram))
            self.budget.on_datagram(
                datagram, sent=True, connection_id_length=self._connection_id_length()
            )
            self.gateway.receive_datagram(datagram, DEVICE_ADDRESS, self.now)
        self.gateway.handle_timeout(self.now)
        for connection_id, event in self.gateway.events():
            if isinstance(event, OperationReceived):
                self.application.on_operation(connection_id, event.message)
        for datagram, _destination in self.gateway.datagrams_to_send(self.now):
            moved = True
            self.tally.received.append(len(datagram))
            self.budget.on_datagram(
                datagram, sent=False, connection_id_length=self._connection_id_length()
            )
            self.client.receive_datagram(datagram, self.now)
        self._client_events()
        return moved

    def settle(self, horizon: float = SETTLE_SECONDS) -> None:
        """Exchange until quiet, running the cores' timers due within ``horizon`` seconds."""
        limit = self.now + horizon
        for _ in range(10_000):
            if self._exchange():
                continue
            deadlines = [
                d
                for d in (self.client.next_deadline(), self.gateway.next_deadline())
                if d is not None and d <= limit
            ]
            if not deadlines:
                return
            self.now = max(self.now, min(deadlines))
            self.client.handle_timeout(self.now)
            self.gateway.handle_timeout(self.now)
        raise RuntimeError("the pair did not settle: a retransmission loop?")

    def connect(self) -> None:
        """The full handshake (EDHOC, then the session)."""
        self.client.start(self.provisioning, self.now)
        self.settle()

    def sleep_until_radio_off(self, duration: int) -> None:
        """Send Sleep and run until the client turned its radio off."""
        self.client.sleep(duration, self.now)
        self.settle()
        if not any(isinstance(e, Slept) for e in self.tally.events[-8:]):
            raise RuntimeError("the client did not turn its radio off after Sleep")

    def wake(self) -> None:
        """Resume and send Wake; the held backlog comes after the MissedSummary."""
        self.client.wake(self.now)
        self.settle()
