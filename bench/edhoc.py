"""EDHOC responder throughput, device-side compute per handshake, and message sizes.

Throughput: full handshakes are driven with our Initiator; only the Responder's three calls
(receive_message_1, message_2, receive_message_3) are timed, in CPU seconds of this process, so the
figure is handshakes per second per core. The baseline is suite 2 with method 3 in the same run.
Device-side compute is counted by the crypto layer's CryptoCounter on the Initiator (the device),
not assumed. Message sizes are measured per method and credential identification and set next to
RFC 9528 Figure 1 (quoted as the reference column).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench._framework import Report, Table
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

DESCRIPTION = "EDHOC responder handshakes/s per core (suites 0, 2, 4), device compute, sizes"

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
    from cryptography.hazmat.primitives.serialization import Encoding

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
        },
        tables=[
            Table(
                "Responder handshakes per second per core (CPU time, credentials by kid)",
                ["suite", "method", "handshakes/s", "vs suite 2 method 3"],
                throughput_rows,
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
