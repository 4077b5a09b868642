"""The software P-256 of device_sim.soft_p256 interoperates with the gateway's cryptography."""

from __future__ import annotations

import random
import time

import pytest

from device_sim.soft_p256 import MeteredSoftP256Crypto, SoftP256Crypto, scalar_multiplication
from gateway import wire
from gateway.edhoc import CipherSuite, Initiator, Method, Responder
from gateway.edhoc.crypto import Crypto, public_key_of
from gateway.edhoc.errors import AuthenticationFailedError, InvalidPublicKeyError
from gateway.edhoc.suites import Curve, Signature
from gateway.session import (
    DeviceSession,
    DeviceSessionEstablished,
    EdhocInitiator,
    GatewaySessions,
    OperationReceived,
    TicketKeyRing,
    WireCodec,
)
from tests.edhoc.helpers import credentials_for, lookup_from
from tests.session.helpers import (
    DEVICE_CREDENTIAL,
    GATEWAY_CREDENTIAL,
    _lookup,
    responder_factory,
)

GATEWAY_ADDRESS = ("198.51.100.7", 40000)
MESSAGE = wire.SendMessage(id=1, to=7, content=wire.TextContent("soft curve"))


def test_device_on_soft_p256_handshakes_with_the_gateway_core() -> None:
    """Method 3, suite 2: the device's ECDH in ``ecdsa``, the gateway's in cryptography."""
    crypto = MeteredSoftP256Crypto()

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
    now = 0.0
    device.connect(now)
    established = False
    received: list[wire.Message] = []
    for _ in range(20):
        for datagram in device.datagrams_to_send(now):
            gateway.receive_datagram(datagram, GATEWAY_ADDRESS, now)
        for datagram, _address in gateway.datagrams_to_send(now):
            device.receive_datagram(datagram, now)
        for event in device.events():
            if isinstance(event, DeviceSessionEstablished) and not established:
                established = True
                device.send_operation(MESSAGE)
        for _, gateway_event in gateway.events():
            if isinstance(gateway_event, OperationReceived):
                received.append(gateway_event.message)
        if received:
            break
        now += 0.1
    assert established
    assert received == [MESSAGE]
    # The same accounting as MeteredCrypto: ephemeral key, G_XY, G_RX, G_IY.
    assert crypto.counts.p256_scalar_multiplications == 4
    assert crypto.counter.scalar_multiplications == 4
    assert crypto.counts.aes_ccm_bytes == 10


def test_signature_handshake_with_soft_p256_on_the_initiator() -> None:
    """Method 0, suite 2: Signature_2 made by cryptography verifies in ``ecdsa``, and back."""
    crypto = MeteredSoftP256Crypto()
    device = credentials_for("device", b"\x2b")
    gateway = credentials_for("gateway", b"\x0a")
    initiator = Initiator(
        method=Method.SIGNATURE_SIGNATURE,
        suites=[CipherSuite.SUITE_2],
        c_i=b"\x37",
        credential=device,
        credential_lookup=lookup_from(*gateway),
        crypto=crypto,
    )
    responder = Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=b"\x27",
        credential=gateway,
        credential_lookup=lookup_from(*device),
    )
    responder.receive_message_1(initiator.message_1())
    initiator.receive_message_2(responder.message_2())
    responder.receive_message_3(initiator.message_3())
    assert initiator.exporter(0, b"", 16) == responder.exporter(0, b"", 16)
    assert (crypto.counts.ecdsa_p256_signs, crypto.counts.ecdsa_p256_verifies) == (1, 1)
    assert crypto.counts.p256_scalar_multiplications == 2


def _key_pairs() -> tuple[bytes, bytes, bytes, bytes]:
    soft, hard = SoftP256Crypto(), Crypto()
    a, _ = soft.generate_key_pair(Curve.P256)
    b, _ = hard.generate_key_pair(Curve.P256)
    return a, public_key_of(Curve.P256, a), b, public_key_of(Curve.P256, b)


def test_results_interoperate_both_ways() -> None:
    soft, hard = SoftP256Crypto(), Crypto()
    a, a_xy, b, b_xy = _key_pairs()
    assert soft.ephemeral_public_key(Curve.P256, a) == a_xy[:32]
    assert soft.ecdh(Curve.P256, a, b_xy[:32]) == hard.ecdh(Curve.P256, b, a_xy[:32])
    message = b"transcript hash and context"
    hard.verify(Signature.ES256, a_xy, message, soft.sign(Signature.ES256, a, message))
    soft.verify(Signature.ES256, b_xy, message, hard.sign(Signature.ES256, b, message))
    forged = bytearray(hard.sign(Signature.ES256, b, message))
    forged[5] ^= 1
    with pytest.raises(AuthenticationFailedError):
        soft.verify(Signature.ES256, b_xy, message, bytes(forged))
    with pytest.raises(AuthenticationFailedError):
        soft.verify(Signature.ES256, b_xy, message + b"!", hard.sign(Signature.ES256, b, message))


def test_points_off_the_curve_are_refused() -> None:
    soft = SoftP256Crypto()
    a, a_xy, _, _ = _key_pairs()
    not_x = (2**256 - 1).to_bytes(32, "big")  # above p: no point has it
    with pytest.raises(InvalidPublicKeyError):
        soft.ecdh(Curve.P256, a, not_x)
    with pytest.raises(InvalidPublicKeyError):
        soft.validate_public_key(Curve.P256, a_xy[:32] + bytes(32))
    with pytest.raises(InvalidPublicKeyError):
        soft.ecdh(Curve.P256, a, b"\x01" * 31)
    with pytest.raises(AuthenticationFailedError):
        soft.verify(Signature.ES256, a_xy[:32] + bytes(32), b"m", bytes(64))


def test_software_scalar_multiplication_cost_is_reported() -> None:
    """Bench-style: software over OpenSSL time per P-256 ECDH, printed, not asserted."""
    soft, hard = SoftP256Crypto(), Crypto()
    a, _, b, b_xy = _key_pairs()
    rounds = 5
    start = time.perf_counter()
    for _ in range(rounds):
        scalar_multiplication(a, b_xy[:32])
    soft_s = (time.perf_counter() - start) / rounds
    start = time.perf_counter()
    for _ in range(rounds * 20):
        hard.ecdh(Curve.P256, b, b_xy[:32])
    hard_s = (time.perf_counter() - start) / (rounds * 20)
    print(
        f"\nP-256 ECDH: ecdsa {soft_s * 1e3:.2f} ms, cryptography {hard_s * 1e3:.3f} ms,"
        f" ratio {soft_s / hard_s:.0f}x"
    )
    assert soft.counter.scalar_multiplications == 0
