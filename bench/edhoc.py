"""EDHOC responder throughput, the gateway's CPU per handshake, device compute, message sizes.

Throughput: full handshakes are driven with our Initiator; only the Responder's three calls
(receive_message_1, message_2, receive_message_3) are timed, in CPU seconds of this process, so the
figure is handshakes per second per core. The baseline is suite 2 with method 3 in the same run.
The gateway's figure: the whole session core (:class:`~gateway.session.GatewaySessions` with real
EDHOC, suite 2, method 3, and the real wire codec) handling devices' handshakes (INITIAL to the
acknowledged NewTicket) and resumptions (RESUME to the acknowledged fresh ticket), only its calls
timed, set against the bare Responder above and against the P-256 work a handshake cannot avoid
(one key generation, three ECDHs, one point decompression) measured in the same run.
Device-side compute is counted by the crypto layer's CryptoCounter on the Initiator (the device),
not assumed. Message sizes are measured per method and credential identification and set next to
RFC 9528 Figure 1 (quoted as the reference column).
"""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Callable
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from bench._device_pair import device_credential, gateway_credential
from bench._framework import Report, Table
from device_sim.client.core import INITIATOR_CONNECTION_ID
from gateway.edhoc import (
    CipherSuite,
    Credential,
    CredentialTransfer,
    Curve,
    IdCred,
    Initiator,
    Method,
    Responder,
)
from gateway.edhoc.crypto import Crypto, CryptoCounter
from gateway.session import (
    DeviceSession,
    DeviceSessionEstablished,
    DeviceSessionResumed,
    EdhocInitiator,
    EdhocResponder,
    GatewayConfig,
    GatewaySessions,
    TicketKeyRing,
    TicketReceived,
    WireCodec,
)

DESCRIPTION = (
    "EDHOC responder handshakes/s per core (suites 0, 2, 4), gateway CPU per handshake and "
    "resumption, device compute, sizes"
)

_DEVICE_KEY = bytes.fromhex("fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b")
_GATEWAY_KEY = bytes.fromhex("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac")

# RFC 9528 §1.2, Figure 1 (reference values quoted from the RFC, not measured here).
RFC_FIGURE_1 = {
    ("static DH", "kid"): (37, 45, 19),
    ("static DH", "x5t"): (37, 58, 33),
    ("signature", "kid"): (37, 102, 77),
    ("signature", "x5t"): (37, 115, 90),
}


def _ccs_set(private_key: bytes, kid: bytes) -> list[Credential]:
    return [
        Credential.new_ccs(curve=curve, private_key=private_key, kid=kid, subject="")
        for curve in (Curve.ED25519, Curve.X25519, Curve.P256)
    ]


def _p256_certificate(private_key: bytes, name: str) -> Credential:
    """A self-signed P-256 certificate (usable for ES256 and static DH with suite 2)."""
    key = ec.derive_private_key(int.from_bytes(private_key, "big"), ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return Credential.from_x509(certificate.public_bytes(Encoding.DER), private_key=private_key)


def _lookup(*credentials: Credential) -> Callable[[IdCred], list[Credential]]:
    public = [c.public() for c in credentials]
    return lambda id_cred: [c for c in public if id_cred.matches(c)]


def _parties(
    method: Method,
    suite: CipherSuite,
    device: list[Credential],
    gateway: list[Credential],
    transfer: CredentialTransfer,
    device_counter: CryptoCounter | None = None,
) -> tuple[Initiator, Responder]:
    initiator = Initiator(
        method=method,
        suites=[suite],
        c_i=b"\x37",
        credential=device,
        credential_lookup=_lookup(*gateway),
        credential_transfer=transfer,
        crypto=Crypto(device_counter),
    )
    responder = Responder(
        suites=[suite],
        c_r=b"\x27",
        credential=gateway,
        credential_lookup=_lookup(*device),
        credential_transfer=transfer,
    )
    return initiator, responder


def _handshake(initiator: Initiator, responder: Responder) -> tuple[list[bytes], float]:
    """Run one handshake; return the messages and the Responder's CPU seconds."""
    m1 = initiator.message_1()
    start = time.process_time()
    responder.receive_message_1(m1)
    m2 = responder.message_2()
    spent = time.process_time() - start
    initiator.receive_message_2(m2)
    m3 = initiator.message_3()
    start = time.process_time()
    responder.receive_message_3(m3)
    spent += time.process_time() - start
    if initiator.exporter(0, b"", 16) != responder.exporter(0, b"", 16):
        raise RuntimeError("exporter outputs differ")
    return [m1, m2, m3], spent


_T = TypeVar("_T")


class _GatewayDriver:
    """One gateway session core and devices driven in lock step; the core's CPU is summed."""

    def __init__(self, devices: int) -> None:
        rng = random.Random(11)
        self.identity = gateway_credential(rng)
        self.devices = [device_credential(index, rng) for index in range(1, devices + 1)]
        by_kid = {d.kid: d.public() for d in self.devices}  # the registry's index (service.py)

        def lookup(id_cred: IdCred) -> Credential | None:
            return by_kid.get(id_cred.kid) if id_cred.kid is not None else None

        def responder(connection_id: bytes) -> EdhocResponder:
            return EdhocResponder(
                Responder(
                    suites=[CipherSuite.SUITE_2],
                    c_r=connection_id,
                    credential=self.identity,
                    credential_lookup=lookup,
                )
            )

        self.core = GatewaySessions(
            handshake_factory=responder,
            codec=WireCodec(),
            ticket_keys=TicketKeyRing(),
            config=GatewayConfig(),
            rng=random.Random(12),
            random_bytes=random.Random(13).randbytes,
        )
        self.spent = 0.0
        self.now = 0.0

    def _timed(self, call: Callable[..., _T], *arguments: object) -> _T:
        start = time.process_time()
        result = call(*arguments)
        self.spent += time.process_time() - start
        return result

    def _until(self, session: DeviceSession, address: tuple[str, int], *done: type) -> None:
        """Exchange datagrams (and run both sides' due timers) until ``session`` has reported an
        event of each type in ``done``."""
        core = self.core
        waiting = set(done)
        for _ in range(1000):
            for event in session.events():
                waiting.discard(type(event))
            if not waiting:
                return
            moved = False
            for datagram in session.datagrams_to_send(self.now):
                moved = True
                self._timed(core.receive_datagram, datagram, address, self.now)
            self._timed(core.events)
            for datagram, _destination in self._timed(core.datagrams_to_send, self.now):
                moved = True
                session.receive_datagram(datagram, self.now)
            if not moved:
                due = [d for d in (session.next_deadline(), core.next_deadline()) if d is not None]
                self.now = max(self.now, min(due, default=self.now + 0.05))
                session.handle_timeout(self.now)
                self._timed(core.handle_timeout, self.now)
        raise RuntimeError(f"no {sorted(t.__name__ for t in waiting)}: the exchange stalled")

    def _settle(self, session: DeviceSession, address: tuple[str, int]) -> None:
        """Let the device's acknowledgement go (its delay passes) and the core take it."""
        self.now += 0.2
        session.handle_timeout(self.now)
        for datagram in session.datagrams_to_send(self.now):
            self._timed(self.core.receive_datagram, datagram, address, self.now)
        self._timed(self.core.datagrams_to_send, self.now)

    def run(self) -> tuple[float, float]:
        """CPU seconds of the core per handshake and per resumption, over every device."""
        sessions = []
        gateway = self.identity.public()
        for index, credential in enumerate(self.devices):
            address = (f"10.1.{index // 250}.{index % 250 + 1}", 40000)

            def make(credential: Credential = credential) -> EdhocInitiator:
                return EdhocInitiator(
                    Initiator(
                        method=Method.STATIC_DH_STATIC_DH,
                        suites=[CipherSuite.SUITE_2],
                        c_i=INITIATOR_CONNECTION_ID,
                        credential=credential,
                        credential_lookup=_lookup(gateway),
                    )
                )

            session = DeviceSession(handshake_factory=make, codec=WireCodec())
            session.connect(self.now)
            self._until(session, address, DeviceSessionEstablished, TicketReceived)
            self._settle(session, address)
            sessions.append((session, address))
            self.now += 1.0  # the per-host budgets refill (each device has its own address)
        handshake = self.spent / len(sessions)
        self.spent = 0.0
        for session, address in sessions:
            session.resume(self.now)
            self._until(session, address, DeviceSessionResumed, TicketReceived)
            self._settle(session, address)
            self.now += 1.0
        return handshake, self.spent / len(sessions)


def _p256_floor(rounds: int) -> float:
    """CPU seconds of the P-256 work one method-3 responder handshake cannot avoid."""
    peer = ec.generate_private_key(ec.SECP256R1())
    compressed = peer.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    static = ec.generate_private_key(ec.SECP256R1())
    device_static = ec.generate_private_key(ec.SECP256R1()).public_key()
    start = time.process_time()
    for _ in range(rounds):
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        g_x = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), compressed)
        ephemeral.exchange(ec.ECDH(), g_x)  # G_XY
        static.exchange(ec.ECDH(), g_x)  # G_RX
        ephemeral.exchange(ec.ECDH(), device_static)  # G_IY
    return (time.process_time() - start) / rounds


def _gateway_rows(rounds: int, bare_seconds: float) -> tuple[list[list[object]], dict[str, float]]:
    """The gateway's CPU per handshake and resumption against the bare responder and the floor."""
    handshake, resumption = _GatewayDriver(rounds).run()
    floor = _p256_floor(rounds * 5)
    figures = {
        "bare_responder_ms": bare_seconds * 1000,
        "p256_floor_ms": floor * 1000,
        "gateway_handshake_ms": handshake * 1000,
        "gateway_resumption_ms": resumption * 1000,
    }
    rows: list[list[object]] = [
        ["EDHOC Responder alone (suite 2, method 3): baseline", bare_seconds * 1000, 1.0],
        [
            "P-256 work it cannot avoid (keygen, 3 ECDH, 1 decompression)",
            floor * 1000,
            floor / bare_seconds,
        ],
        [
            "gateway core: handshake, INITIAL to acknowledged NewTicket",
            handshake * 1000,
            handshake / bare_seconds,
        ],
        [
            "gateway core: resumption, RESUME to acknowledged ticket",
            resumption * 1000,
            resumption / bare_seconds,
        ],
    ]
    return rows, figures


def run(quick: bool) -> Report:
    """Measure throughput, device compute and message sizes."""
    device = _ccs_set(_DEVICE_KEY, b"\x2b")
    gateway = _ccs_set(_GATEWAY_KEY, b"\x0a")
    rounds = 20 if quick else 400
    methods = [Method.SIGNATURE_SIGNATURE, Method.STATIC_DH_STATIC_DH]
    suites = [CipherSuite.SUITE_0, CipherSuite.SUITE_2, CipherSuite.SUITE_4]

    rates: dict[str, float] = {}
    for suite in suites:
        for method in methods:
            total = 0.0
            for _ in range(rounds):
                initiator, responder = _parties(
                    method, suite, device, gateway, CredentialTransfer.BY_REFERENCE
                )
                total += _handshake(initiator, responder)[1]
            rates[f"suite{int(suite)}_method{int(method)}"] = rounds / total
    baseline = rates["suite2_method3"]
    gateway_rows, gateway_figures = _gateway_rows(20 if quick else 200, 1 / baseline)
    throughput_rows = [
        [
            int(suite),
            int(method),
            rates[f"suite{int(suite)}_method{int(method)}"],
            rates[f"suite{int(suite)}_method{int(method)}"] / baseline,
        ]
        for suite in suites
        for method in methods
    ]

    compute: dict[str, dict[str, int]] = {}
    compute_rows = []
    for suite in suites:
        for method in Method:
            counter = CryptoCounter()
            initiator, responder = _parties(
                method, suite, device, gateway, CredentialTransfer.BY_REFERENCE, counter
            )
            _handshake(initiator, responder)
            compute[f"suite{int(suite)}_method{int(method)}"] = dict(vars(counter))
            compute_rows.append(
                [
                    int(suite),
                    int(method),
                    counter.scalar_multiplications,
                    counter.signatures_made,
                    counter.signatures_checked,
                    counter.aead_bytes,
                    counter.hash_bytes,
                    counter.hmac_calls,
                    counter.hmac_bytes,
                ]
            )

    device_x509 = [_p256_certificate(_DEVICE_KEY, "device")]
    gateway_x509 = [_p256_certificate(_GATEWAY_KEY, "gateway")]
    sizes: dict[str, list[int]] = {}
    size_rows = []
    for kind, method in (("static DH", Method.STATIC_DH_STATIC_DH), ("signature", Method(0))):
        for label, transfer, creds in (
            ("kid", CredentialTransfer.BY_REFERENCE, (device, gateway)),
            ("x5t", CredentialTransfer.BY_REFERENCE, (device_x509, gateway_x509)),
            ("kccs by value", CredentialTransfer.BY_VALUE, (device, gateway)),
        ):
            initiator, responder = _parties(
                method, CipherSuite.SUITE_2, creds[0], creds[1], transfer
            )
            lengths = [len(m) for m in _handshake(initiator, responder)[0]]
            sizes[f"{kind}/{label}"] = lengths
            reference = RFC_FIGURE_1.get((kind, label))
            size_rows.append(
                [
                    kind,
                    label,
                    *lengths,
                    sum(lengths),
                    sum(reference) if reference else "-",
                ]
            )

    return Report(
        results={
            "responder_handshakes_per_second_per_core": rates,
            "baseline": "suite2_method3",
            "device_compute_per_handshake": compute,
            "message_sizes_suite2": sizes,
            "rfc9528_figure1_reference": {f"{k[0]}/{k[1]}": v for k, v in RFC_FIGURE_1.items()},
            "rounds": rounds,
            "gateway_cpu_per_device_ms": gateway_figures,
        },
        tables=[
            Table(
                "Responder handshakes per second per core (CPU time, credentials by kid)",
                ["suite", "method", "handshakes/s", "vs suite 2 method 3"],
                throughput_rows,
            ),
            Table(
                "Gateway CPU per device (process CPU, ms; UDP transport and relay not included)",
                ["what", "ms", "vs bare Responder"],
                gateway_rows,
            ),
            Table(
                "Device (Initiator) compute per handshake, counted by the crypto layer",
                [
                    "suite",
                    "method",
                    "scalar mults",
                    "signs",
                    "verifies",
                    "AEAD bytes",
                    "hash bytes",
                    "HMAC calls",
                    "HMAC bytes",
                ],
                compute_rows,
            ),
            Table(
                "Message sizes in bytes, suite 2 (RFC 9528 Figure 1 total quoted as reference)",
                [
                    "auth",
                    "credential",
                    "message_1",
                    "message_2",
                    "message_3",
                    "total",
                    "RFC Fig. 1",
                ],
                size_rows,
            ),
        ],
        notes=[
            "times are CPU seconds of the Responder's three calls only; the Initiator is excluded",
            "x5t rows use self-signed P-256 certificates; only ID_CRED's hash travels",
        ],
    )
