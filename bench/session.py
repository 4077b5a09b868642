"""Session layer figures: record overhead, resumption bytes, retransmissions under loss,
records sealed+opened per second (against raw AEAD calls measured in the same run), and the
memory an idle session keeps in the gateway (against the issue's 4 KiB goal)."""

from __future__ import annotations

import gc
import heapq
import itertools
import random
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from bench._device_pair import device_credential, gateway_credential, make_gateway
from bench._framework import Goal, Report, Table
from gateway import wire
from gateway.edhoc import Credential, Curve, IdCred, Initiator, Method, Responder
from gateway.jid import Jid
from gateway.relay import DeviceRelay
from gateway.relay.inputs import DeviceLinkUp
from gateway.session import (
    DeviceSession,
    DeviceSessionEstablished,
    EdhocInitiator,
    EdhocResponder,
    GatewaySessions,
    HandshakeKind,
    OperationReceived,
    TicketKeyRing,
    WireCodec,
)
from gateway.session.record import (
    RELIABLE_SPACE,
    AeadAlgorithm,
    RecordProtection,
    SessionSecrets,
    make_nonce,
)
from gateway.xmpp import events as ev

DESCRIPTION = "session layer: record overhead, resumption bytes, loss recovery, record throughput"

DEVICE_KEY = bytes.fromhex("fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b")
GATEWAY_KEY = bytes.fromhex("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac")
GATEWAY_ADDRESS = ("2001:db8::1", 5683)
DEVICE_ADDRESS = ("198.51.100.7", 40000)


def _credentials() -> tuple[Credential, Credential]:
    device = Credential.new_ccs(curve=Curve.P256, private_key=DEVICE_KEY, kid=b"\x2b")
    gateway = Credential.new_ccs(curve=Curve.P256, private_key=GATEWAY_KEY, kid=b"\x0a")
    return device, gateway


def _lookup(credential: Credential) -> Callable[[IdCred], Credential | None]:
    public = credential.public()
    return lambda id_cred: public if id_cred.matches(public) else None


def _pair(seed: int) -> tuple[GatewaySessions, DeviceSession]:
    device_cred, gateway_cred = _credentials()
    gateway = GatewaySessions(
        handshake_factory=lambda cid: EdhocResponder(
            Responder(
                suites=[2], c_r=cid, credential=gateway_cred, credential_lookup=_lookup(device_cred)
            )
        ),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        rng=random.Random(seed),
        random_bytes=random.Random(seed + 1).randbytes,
    )
    device = DeviceSession(
        handshake_factory=lambda: EdhocInitiator(
            Initiator(
                method=Method.STATIC_DH_STATIC_DH,
                suites=[2],
                c_i=b"\x37",
                credential=device_cred,
                credential_lookup=_lookup(gateway_cred),
            )
        ),
        codec=WireCodec(),
        rng=random.Random(seed + 2),
        random_bytes=random.Random(seed + 3).randbytes,
    )
    return gateway, device


@dataclass
class LinkStats:
    """Bytes and datagrams each way."""

    device_bytes: int = 0
    gateway_bytes: int = 0


class Simulation:
    """A discrete-event run of one gateway and one device over a seeded lossy link (no trio)."""

    def __init__(self, *, loss: float, seed: int, delay: float = 0.2, jitter: float = 0.1) -> None:
        self.gateway, self.device = _pair(seed)
        self.rng = random.Random(seed)
        self.loss, self.delay, self.jitter = loss, delay, jitter
        self.now = 0.0
        self.queue: list[tuple[float, int, str, bytes]] = []
        self.counter = itertools.count()
        self.link = LinkStats()
        self.handshake_bytes: dict[str, int] = {}  # handshake-class packets by kind name
        self.gateway_received: list[object] = []
        self.device_received: list[object] = []

    def _send(self, to: str, data: bytes) -> None:
        if not data[0] & 0x80:
            key = f"to_{to}:{HandshakeKind(data[0] >> 4).name}"
            self.handshake_bytes[key] = self.handshake_bytes.get(key, 0) + len(data)
        if to == "gateway":
            self.link.device_bytes += len(data)
        else:
            self.link.gateway_bytes += len(data)
        if self.rng.random() < self.loss:
            return
        at = self.now + self.delay + self.rng.uniform(0, self.jitter)
        heapq.heappush(self.queue, (at, next(self.counter), to, data))

    def flush(self) -> None:
        """Move every pending output onto the link and collect events."""
        for data in self.device.datagrams_to_send(self.now):
            self._send("gateway", data)
        for data, _address in self.gateway.datagrams_to_send(self.now):
            self._send("device", data)
        for event in self.device.events():
            if isinstance(event, OperationReceived):
                self.device_received.append(event.message)
        for _cid, event in self.gateway.events():
            if isinstance(event, OperationReceived):
                self.gateway_received.append(event.message)

    def run_until(self, done: Callable[[], bool], limit: float) -> None:
        """Advance virtual time until ``done()`` or ``limit``."""
        self.flush()
        while not done() and self.now < limit:
            deadlines = [
                d for d in (self.device.next_deadline(), self.gateway.next_deadline()) if d
            ]
            candidates = ([self.queue[0][0]] if self.queue else []) + deadlines
            next_time = min(candidates, default=None)
            if next_time is None:
                break
            self.now = max(self.now, next_time)
            while self.queue and self.queue[0][0] <= self.now:
                _at, _n, to, data = heapq.heappop(self.queue)
                if to == "gateway":
                    self.gateway.receive_datagram(data, DEVICE_ADDRESS, self.now)
                else:
                    self.device.receive_datagram(data, self.now)
            self.device.handle_timeout(self.now)
            self.gateway.handle_timeout(self.now)
            self.flush()

    def connect(self) -> bytes:
        """Full handshake; returns the gateway connection id."""
        established: list[bytes] = []

        def done() -> bool:
            for cid, event in self.gateway.events():
                if isinstance(event, DeviceSessionEstablished):
                    established.append(cid)
            return bool(self.gateway.sessions()) and self.device.ticket is not None

        self.device.connect(self.now)
        self.run_until(done, self.now + 600)
        return next(iter(self.gateway.sessions()))


def loss_run(loss: float, operations: int, seed: int) -> dict[str, float]:
    """Operations each way over a link with ``loss``; retransmissions per delivered operation."""
    sim = Simulation(loss=loss, seed=seed)
    cid = sim.connect()
    base_gw = sim.gateway.statistics().retransmissions
    base_dev = sim.device.channel.statistics().retransmissions if sim.device.channel else 0
    for i in range(operations):
        sim.device.send_operation(wire.Ping(id=i))
        sim.gateway.send_operation(cid, wire.Ping(id=i))
        sim.run_until(lambda: False, sim.now + 0.05)
    sim.run_until(
        lambda: len(sim.gateway_received) >= operations and len(sim.device_received) >= operations,
        sim.now + 36000,
    )
    assert sim.device.channel is not None
    retransmissions = (
        sim.gateway.statistics().retransmissions
        - base_gw
        + sim.device.channel.statistics().retransmissions
        - base_dev
    )
    delivered = len(sim.gateway_received) + len(sim.device_received)
    in_order = sim.gateway_received == [wire.Ping(id=i) for i in range(operations)]
    return {
        "loss": loss,
        "operations_delivered": delivered,
        "retransmissions": retransmissions,
        "retransmissions_per_operation": retransmissions / max(1, delivered),
        "exactly_once_in_order": float(in_order and len(sim.device_received) == operations),
        "virtual_seconds": sim.now,
    }


def overhead() -> list[dict[str, object]]:
    """Record overhead per AEAD, each direction (message of 5 bytes)."""
    rows: list[dict[str, object]] = []
    message = wire.Ping(id=7)
    size = len(wire.encode(message))
    from gateway.session.channel import SecureChannel

    for algorithm in (
        AeadAlgorithm.AES_CCM_16_64_128,
        AeadAlgorithm.AES_CCM_16_128_128,
        AeadAlgorithm.CHACHA20_POLY1305,
    ):
        secrets_ = SessionSecrets.from_master(bytes(32), algorithm, is_gateway=False)
        device = SecureChannel(
            RecordProtection(secrets_), codec=WireCodec(), peer_connection_id=b"\x00\x01"
        )
        device.send_operation(message)
        (record,) = device.datagrams_to_send(0.0)
        gateway_secrets = SessionSecrets.from_master(bytes(32), algorithm, is_gateway=True)
        gateway = SecureChannel(
            RecordProtection(gateway_secrets), codec=WireCodec(), peer_connection_id=b""
        )
        gateway.send_operation(message)
        (down,) = gateway.datagrams_to_send(0.0)
        rows.append(
            {
                "aead": algorithm.name,
                "device_to_gateway": len(record) - size,
                "gateway_to_device": len(down) - size,
            }
        )
    return rows


def resumption_bytes(seed: int) -> dict[str, float]:
    """Bytes and round trips of a full handshake and of a resumption, on a loss-free link.

    Round trips are counted until the device holds an open, confirmed channel.
    """
    delay = 0.2
    sim = Simulation(loss=0.0, seed=seed, delay=delay, jitter=0.0)
    start = sim.now
    sim.connect()
    handshake_time = sim.now - start
    full = dict(sim.handshake_bytes)
    sim.handshake_bytes = {}
    start = sim.now
    sim.device.resume(sim.now)
    sim.run_until(lambda: sim.device.state.value == "established", sim.now + 60)
    resume_time = sim.now - start
    resumed = dict(sim.handshake_bytes)
    return {
        "handshake_device_bytes": full.get("to_gateway:INITIAL", 0)
        + full.get("to_gateway:HANDSHAKE", 0),
        "handshake_gateway_bytes": full.get("to_device:HANDSHAKE", 0),
        "handshake_round_trips": handshake_time / (2 * delay),
        "resume_device_bytes": resumed.get("to_gateway:RESUME", 0),
        "resumed_gateway_bytes": resumed.get("to_device:RESUMED", 0),
        "resume_round_trips": resume_time / (2 * delay),
    }


def throughput(quick: bool) -> dict[str, float]:
    """Records sealed and opened per second on one core, and raw AES-CCM calls as the baseline."""
    payload = bytes(100)
    secrets_ = SessionSecrets.from_master(
        bytes(32), AeadAlgorithm.AES_CCM_16_64_128, is_gateway=True
    )
    sender = RecordProtection(secrets_, key_update_after=2**40)
    receiver = RecordProtection(
        SessionSecrets(secrets_.algorithm, secrets_.receive_secret, secrets_.send_secret),
        key_update_after=2**40,
    )
    header = b"\x80\x00\x01\x00"
    count = 2000 if quick else 50000
    started = time.perf_counter()
    for sequence in range(count):
        ciphertext = sender.seal(RELIABLE_SPACE, sequence, header, payload)
        receiver.open(0, RELIABLE_SPACE, sequence, header, ciphertext)
    session_rate = count / (time.perf_counter() - started)
    raw = AESCCM(bytes(16), tag_length=8)
    iv = bytes(13)
    started = time.perf_counter()
    for sequence in range(count):
        nonce = make_nonce(iv, RELIABLE_SPACE, sequence)
        raw.decrypt(nonce, raw.encrypt(nonce, payload, header), header)
    raw_rate = count / (time.perf_counter() - started)
    return {
        "records_sealed_and_opened_per_second": session_rate,
        "raw_aes_ccm_pairs_per_second": raw_rate,
        "ratio_to_raw": session_rate / raw_rate,
    }


IDLE_GOAL_BYTES = 4096  # issue 15: idle device-layer state at most 4 KiB per session
IDLE_PEER = Jid.parse_untrusted("friend@example.com")


def _traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def idle_state(count: int) -> dict[str, float]:
    """Python heap the gateway keeps per idle session: its session core, and one relay.

    ``count`` devices (distinct credentials, distinct host addresses) each complete the full
    handshake over a loss-free in-memory link; time then runs past every acknowledgement delay,
    so every session is established, holds its ticket and has nothing in flight. The device
    objects are then dropped, and what tracemalloc still counts above the figure taken before
    the first handshake is the gateway's: per session, its record of the session, the channel
    (keys, windows, counters), and its share of the per-address and per-host tables. A relay per
    device (upstream session up, the device's link up, one contact alias) is measured the same
    way. Memory outside Python's allocator (OpenSSL's key schedules) is not counted here.
    """
    rng = random.Random(11)
    gateway_identity = gateway_credential(rng)
    identities = [device_credential(index + 1, rng) for index in range(count)]
    gateway = make_gateway(gateway_identity, {d.kid or b"": d.public() for d in identities}, 11)
    trusted = gateway_identity.public()

    def lookup(id_cred: IdCred) -> Credential | None:
        return trusted if id_cred.matches(trusted) else None

    def device(index: int, identity: Credential) -> DeviceSession:
        return DeviceSession(
            handshake_factory=lambda: EdhocInitiator(
                Initiator(
                    method=Method.STATIC_DH_STATIC_DH,
                    suites=[2],
                    c_i=bytes([index % 24]),
                    credential=identity,
                    credential_lookup=lookup,
                )
            ),
            codec=WireCodec(),
            rng=random.Random(index),
            random_bytes=random.Random(1000 + index).randbytes,
        )

    devices = {
        (f"198.51.{i // 250}.{i % 250 + 1}", 40000): device(i, d) for i, d in enumerate(identities)
    }
    tracemalloc.start()
    try:
        before = _traced_bytes()
        now = 0.0
        for session in devices.values():
            session.connect(now)
        quiet_since = None
        while quiet_since is None or now < quiet_since + 1.0:
            moved = False
            for address, session in devices.items():
                for datagram in session.datagrams_to_send(now):
                    moved = True
                    gateway.receive_datagram(datagram, address, now)
            for datagram, destination in gateway.datagrams_to_send(now):
                moved = True
                devices[cast(tuple[str, int], destination)].receive_datagram(datagram, now)
            gateway.events()
            for session in devices.values():
                session.events()
            if moved:
                quiet_since = None
                continue
            if quiet_since is None:
                quiet_since = now
            now += 0.1
            for session in devices.values():
                session.handle_timeout(now)
            gateway.handle_timeout(now)
        established = len(gateway.sessions())
        if established != count or any(s.ticket is None for s in devices.values()):
            raise RuntimeError(f"only {established} of {count} sessions were established")
        devices.clear()
        core = (_traced_bytes() - before) / count
        before = _traced_bytes()
        relays = []
        for index in range(count):
            account = Jid.parse_untrusted(f"device-{index}@example.com")
            relay = DeviceRelay(account, aliases={IDLE_PEER: 1}, upstream_ready=True)
            relay.upstream_event(ev.SessionEstablished(account, True, True), now)
            relay.device_operation(DeviceLinkUp(), now)
            relays.append(relay)
        relay_bytes = (_traced_bytes() - before) / count
    finally:
        tracemalloc.stop()
    del gateway, relays
    return {
        "sessions": count,
        "session_core_bytes": core,
        "relay_bytes": relay_bytes,
        "both_bytes": core + relay_bytes,
        "goal_bytes": IDLE_GOAL_BYTES,
    }


def run(quick: bool) -> Report:
    """Measure everything; ``quick`` uses fewer operations."""
    operations = 50 if quick else 1000
    overhead_rows = overhead()
    resumption = resumption_bytes(seed=7)
    losses = [loss_run(loss, operations, seed=42) for loss in (0.0, 0.1, 0.3)]
    speed = throughput(quick)
    idle = idle_state(20 if quick else 200)
    tables = [
        Table(
            "Record overhead (bytes beyond the wire message)",
            ["AEAD", "device->gateway", "gateway->device"],
            [[r["aead"], r["device_to_gateway"], r["gateway_to_device"]] for r in overhead_rows],
        ),
        Table(
            "Session set-up (loss-free link; round trips until the device's channel is open)",
            ["", "device->gateway", "gateway->device", "round trips"],
            [
                [
                    "full EDHOC handshake",
                    resumption["handshake_device_bytes"],
                    resumption["handshake_gateway_bytes"],
                    resumption["handshake_round_trips"],
                ],
                [
                    "resumption",
                    resumption["resume_device_bytes"],
                    resumption["resumed_gateway_bytes"],
                    resumption["resume_round_trips"],
                ],
            ],
        ),
        Table(
            f"Loss recovery: {operations} operations each way, seeded fake link (0.2 s + jitter)",
            ["loss", "delivered", "retransmissions", "per operation", "exactly once, in order"],
            [
                [
                    r["loss"],
                    int(r["operations_delivered"]),
                    int(r["retransmissions"]),
                    r["retransmissions_per_operation"],
                    "yes" if r["exactly_once_in_order"] else "NO",
                ]
                for r in losses
            ],
        ),
        Table(
            "Record protection speed (one core, 100-byte payload, AES-CCM-16-64-128)",
            ["records sealed+opened/s", "raw AES-CCM pairs/s", "ratio"],
            [
                [
                    speed["records_sealed_and_opened_per_second"],
                    speed["raw_aes_ccm_pairs_per_second"],
                    speed["ratio_to_raw"],
                ]
            ],
        ),
        Table(
            f"Idle state kept by the gateway per session ({idle['sessions']:.0f} idle sessions, "
            "Python heap by tracemalloc; the goal: 4 KiB)",
            ["", "bytes per session", "share of the 4 KiB goal"],
            [
                [name, idle[key], idle[key] / IDLE_GOAL_BYTES]
                for name, key in (
                    ("session core (record, channel, address tables)", "session_core_bytes"),
                    ("relay (DeviceRelay, one contact)", "relay_bytes"),
                    ("both", "both_bytes"),
                )
            ],
        ),
    ]
    return Report(
        results={
            "record_overhead": overhead_rows,
            "resumption": resumption,
            "loss": losses,
            "throughput": speed,
            "idle_state": idle,
        },
        tables=tables,
        goals=[
            Goal(
                "idle device-layer state at most 4 KiB per session (issue 15)",
                f"{idle['both_bytes']:.0f} B per idle session (session core "
                f"{idle['session_core_bytes']:.0f} B + relay {idle['relay_bytes']:.0f} B)",
                idle["both_bytes"] <= IDLE_GOAL_BYTES,
            )
        ],
        notes=[
            "retransmissions count records resent by both ends after a timeout",
            "the link model is seeded; virtual time, no sockets",
            "idle state: tracemalloc counts Python's heap only; OpenSSL's AEAD key schedules "
            "and the allocator's slack are outside it (gateway-capacity measures resident "
            "memory)",
        ],
    )
