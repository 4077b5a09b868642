"""Signing on behalf of devices: cost per message on the gateway, and what it adds on the wire.

Measured in one run on one machine, with ratios against baselines from the same run:

* building the plain stanza (CPIM object built, ``<message/>`` with ``<body/>`` serialized) is the
  baseline for the cost of signing (same work plus CMS SignedData, multipart/signed, ``<e2e/>``)
  and of verification (``E2eVerifier.verify_stanza``: parse, digest, ECDSA, certificate path,
  names, timestamp window, replay memory);
* a bare P-256 ECDSA sign/verify shows how much of that is the elliptic-curve arithmetic;
* sizes compare the signed stanza with the plain one (with and without the CA certificate in the
  SignedData).
"""

from __future__ import annotations

import datetime
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bench._framework import Report, Table
from gateway.impp.address import ImppAddress
from gateway.impp.cpim import CpimAddress, CpimMessage
from gateway.signature_status import SignatureStatus
from gateway.signing.ca import CertificateAuthority, DeviceCredential
from gateway.signing.e2e import E2eVerifier, build_e2e_element
from gateway.signing.on_behalf import BODY_TAG, OnBehalfSigner
from gateway.signing.smime import sign_multipart

DESCRIPTION = "RFC 3923 signing on behalf: sign/verify cost per message, signed vs plain size"

NOW = 1_700_000_000.0
SENDER = ImppAddress.parse("juliet@example.com")
RECIPIENT = ImppAddress.parse("romeo@example.net")
TEXT = "Wherefore art thou, Romeo? Meet me by the orchard wall at nine."


def _message(index: int) -> CpimMessage:
    moment = datetime.datetime.fromtimestamp(NOW + index * 0.001, datetime.UTC)
    return CpimMessage.build(
        sender=CpimAddress.of(SENDER),
        recipients=[CpimAddress.of(RECIPIENT)],
        date_time=moment,
        body=TEXT.encode(),
    )


def _stanza(children: tuple[ET.Element, ...]) -> bytes:
    stanza = ET.Element(
        "{jabber:client}message",
        {"from": "juliet@example.com/phone", "to": "romeo@example.net", "type": "chat"},
    )
    stanza.extend(children)
    return ET.tostring(stanza)


def _plain_stanza(index: int) -> bytes:
    message = _message(index)
    message.to_bytes()  # the gateway builds the CPIM object either way
    body = ET.Element(BODY_TAG)
    body.text = message.body.decode()
    return _stanza((body,))


def _rate(operation: Callable[[int], object], count: int) -> float:
    """Operations per second over ``count`` calls with indices 1..count, after a warm-up call with
    index 0 (so each index is used once: verification must not see a replay)."""
    operation(0)
    started = time.perf_counter()
    for index in range(1, count + 1):
        operation(index)
    elapsed = time.perf_counter() - started
    return count / elapsed if elapsed > 0 else float("inf")


def _signed_stanzas(credential: DeviceCredential, count: int) -> list[ET.Element]:
    signer = OnBehalfSigner()
    return [
        ET.fromstring(_stanza(signer.sign_message(credential, _message(i), now=NOW)))  # noqa: S314
        for i in range(count)
    ]


def run(quick: bool) -> Report:
    """Measure and report; ``quick`` uses few iterations (seconds in total)."""
    count = 40 if quick else 2000
    ca = CertificateAuthority.create(now=NOW - 86_400)
    credential = ca.enroll(SENDER, now=NOW - 86_400)
    signer = OnBehalfSigner()

    baseline = _rate(_plain_stanza, count)
    signing = _rate(lambda i: _stanza(signer.sign_message(credential, _message(i), now=NOW)), count)

    stanzas = _signed_stanzas(credential, count + 1)
    verifier = E2eVerifier(ca.trust_store(), timestamp_window=3600.0)
    outcomes: list[SignatureStatus] = []

    def verify(index: int) -> None:
        outcomes.append(verifier.verify_stanza(stanzas[index], now=NOW).status)

    verification = _rate(verify, count)
    if any(status is not SignatureStatus.VERIFIED for status in outcomes):
        raise RuntimeError(f"verification failed in the benchmark: {verifier.statistics()}")

    key = ec.generate_private_key(ec.SECP256R1())
    signature = key.sign(b"x" * 32, ec.ECDSA(hashes.SHA256()))
    ecdsa_sign = _rate(lambda _: key.sign(b"x" * 32, ec.ECDSA(hashes.SHA256())), count)
    ecdsa_verify = _rate(
        lambda _: key.public_key().verify(signature, b"x" * 32, ec.ECDSA(hashes.SHA256())), count
    )

    plain = _plain_stanza(0)
    signed = _stanza(OnBehalfSigner().sign_message(credential, _message(0), now=NOW))
    with_chain_entity = sign_multipart(
        _message(0).to_bytes(),
        private_key=credential.private_key,
        certificate=credential.certificate,
        chain=credential.chain,
        now=NOW,
    )
    body = ET.Element(BODY_TAG)
    body.text = TEXT
    with_chain = _stanza((body, build_e2e_element(with_chain_entity)))

    results = {
        "iterations": count,
        "plain_stanza_per_second": baseline,
        "sign_per_second": signing,
        "verify_per_second": verification,
        "sign_cost_vs_plain": baseline / signing,
        "verify_cost_vs_plain": baseline / verification,
        "ecdsa_p256_sign_per_second": ecdsa_sign,
        "ecdsa_p256_verify_per_second": ecdsa_verify,
        "plain_stanza_bytes": len(plain),
        "signed_stanza_bytes": len(signed),
        "signed_with_ca_certificate_bytes": len(with_chain),
        "signed_vs_plain_size": len(signed) / len(plain),
    }
    cost = Table(
        "Cost per message on the gateway (one core)",
        ["operation", "per second", "microseconds each", "cost vs plain stanza"],
        [
            ["build plain stanza (baseline)", baseline, 1e6 / baseline, 1.0],
            ["sign on behalf + stanza", signing, 1e6 / signing, baseline / signing],
            ["verify inbound <e2e/>", verification, 1e6 / verification, baseline / verification],
            ["bare ECDSA P-256 sign", ecdsa_sign, 1e6 / ecdsa_sign, baseline / ecdsa_sign],
            ["bare ECDSA P-256 verify", ecdsa_verify, 1e6 / ecdsa_verify, baseline / ecdsa_verify],
        ],
    )
    size = Table(
        "Stanza size",
        ["stanza", "bytes", "vs plain"],
        [
            ["plain <message/> with <body/>", len(plain), 1.0],
            [
                "signed: <body/> + <e2e/> (signer certificate)",
                len(signed),
                len(signed) / len(plain),
            ],
            [
                "signed, CA certificate included too",
                len(with_chain),
                len(with_chain) / len(plain),
            ],
        ],
    )
    notes = [
        f"{len(TEXT)}-character text body; CA certificate not included by default "
        "(recipients must hold it as a trust anchor anyway).",
        "verifying is two ECDSA verifications (the CMS signature, and the CA's signature on "
        "the signer's certificate) plus parsing, digest and the RFC 3923 checks.",
    ]
    return Report(results=results, tables=[cost, size], notes=notes)
