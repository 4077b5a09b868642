"""The P-256 key objects a :class:`Crypto` keeps (gateway/edhoc/crypto.py, "One handshake uses
each P-256 key several times"): the answers are those of a fresh computation, a full public key
is never vouched for by its x-coordinate alone, what is kept stays bounded and goes when the
handshake is over, and trust is still decided by the credential lookup on every handshake, so a
revoked or re-keyed credential is never served from what an earlier handshake built.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.edhoc import (
    AuthenticationFailedError,
    CipherSuite,
    Credential,
    Curve,
    IdCred,
    Initiator,
    InvalidPublicKeyError,
    Method,
    Responder,
    UnknownCredentialError,
)
from gateway.edhoc.crypto import KEY_OBJECTS_KEPT, Crypto
from gateway.edhoc.suites import Signature
from tests.edhoc.helpers import credential

_OTHER_DEVICE_KEY = bytes.fromhex(
    "0ae799775cb151bfc2548735f44acf1d9429cf9a95ddcd2a139e3a28d863a081"
)


def _scalar(index: int) -> bytes:
    return (0x1000 + index).to_bytes(32, "big")


def _public_xy(scalar: bytes) -> bytes:
    numbers = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    public = numbers.public_key().public_numbers()
    return public.x.to_bytes(32, "big") + public.y.to_bytes(32, "big")


def _off_curve(xy: bytes) -> bytes:
    """x || y with y changed so the point is not on P-256."""
    return xy[:63] + bytes([xy[63] ^ 1])


def test_kept_objects_answer_as_fresh_ones_and_stay_bounded() -> None:
    kept = Crypto()
    peer = _public_xy(_scalar(999))
    for index in range(3 * KEY_OBJECTS_KEPT):
        for _ in range(2):  # the second time from what was kept
            assert kept.ecdh(Curve.P256, _scalar(index), peer[:32]) == Crypto().ecdh(
                Curve.P256, _scalar(index), peer[:32]
            )
        assert kept.ecdh(Curve.P256, _scalar(index), peer) == Crypto().ecdh(
            Curve.P256, _scalar(index), peer
        )
        assert len(kept._private_keys) <= KEY_OBJECTS_KEPT
        assert len(kept._public_keys) <= KEY_OBJECTS_KEPT


def test_a_full_key_with_a_bad_y_is_refused_after_its_x_was_kept() -> None:
    crypto = Crypto()
    good = _public_xy(_scalar(1))
    crypto.validate_public_key(Curve.P256, good[:32])  # x alone: a valid point, now kept
    crypto.ecdh(Curve.P256, _scalar(2), good[:32])
    with pytest.raises(InvalidPublicKeyError):
        crypto.validate_public_key(Curve.P256, _off_curve(good))
    with pytest.raises(InvalidPublicKeyError):
        crypto.ecdh(Curve.P256, _scalar(2), _off_curve(good))


def test_es256_with_an_off_curve_key_fails_as_authentication() -> None:
    crypto = Crypto()
    good = _public_xy(_scalar(3))
    signature = crypto.sign(Signature.ES256, _scalar(3), b"message")
    crypto.verify(Signature.ES256, good, b"message", signature)
    with pytest.raises(AuthenticationFailedError):
        crypto.verify(Signature.ES256, _off_curve(good), b"message", signature)


def _registry_lookup(
    registry: dict[bytes, Credential],
) -> Callable[[IdCred], Credential | None]:
    def lookup(id_cred: IdCred) -> Credential | None:
        return registry.get(id_cred.kid) if id_cred.kid is not None else None

    return lookup


def _handshake(device: Credential, responder: Responder, gateway: Credential) -> None:
    initiator = Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_2],
        c_i=b"\x37",
        credential=device,
        credential_lookup=lambda id_cred: gateway.public() if id_cred.matches(gateway) else None,
    )
    responder.receive_message_1(initiator.message_1())
    initiator.receive_message_2(responder.message_2())
    responder.receive_message_3(initiator.message_3())


def test_revoked_and_rekeyed_credentials_are_not_served_from_kept_objects() -> None:
    """One Crypto shared by every handshake (the most a cache could remember) and a registry
    that changes between them: each handshake sees the registry as it is."""
    shared = Crypto()
    gateway = credential("gateway", Curve.P256, b"\x0a")
    device = credential("device", Curve.P256, b"\x2b")
    registry = {b"\x2b": device.public()}

    def responder() -> Responder:
        return Responder(
            suites=[CipherSuite.SUITE_2],
            c_r=b"\x27",
            credential=gateway,
            credential_lookup=_registry_lookup(registry),
            crypto=shared,
        )

    first = responder()
    _handshake(device, first, gateway)
    assert first.peer_credential == device.public()

    del registry[b"\x2b"]  # revoked
    with pytest.raises(UnknownCredentialError):
        _handshake(device, responder(), gateway)

    rekeyed = Credential.new_ccs(
        curve=Curve.P256, private_key=_OTHER_DEVICE_KEY, kid=b"\x2b", subject="device"
    )
    registry[b"\x2b"] = rekeyed.public()  # the same kid enrolled again with a new key
    with pytest.raises(AuthenticationFailedError):
        _handshake(device, responder(), gateway)  # the old key no longer authenticates
    last = responder()
    _handshake(rekeyed, last, gateway)
    assert last.peer_credential == rekeyed.public()


def test_a_completed_handshake_keeps_no_key_objects() -> None:
    """The ephemeral scalar's object goes with the scalar itself once message_3 is in."""
    crypto = Crypto()
    gateway = credential("gateway", Curve.P256, b"\x0a")
    device = credential("device", Curve.P256, b"\x2b")
    responder = Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=b"\x27",
        credential=gateway,
        credential_lookup=_registry_lookup({b"\x2b": device.public()}),
        crypto=crypto,
    )
    _handshake(device, responder, gateway)
    assert crypto._private_keys == {}
    assert crypto._public_keys == {}
