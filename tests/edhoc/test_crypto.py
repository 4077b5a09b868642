"""Our crypto layer against the pure-Python ``ecdsa`` package: sign with one, verify with the
other; ECDH both ways; plus the counters and the strict CBOR reader."""

from __future__ import annotations

import hashlib

import ecdsa
import pytest
from ecdsa.ellipticcurve import PointJacobi
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.edhoc import AuthenticationFailedError, InvalidPublicKeyError
from gateway.edhoc.cbor import Reader, decode_single_untrusted, encode
from gateway.edhoc.crypto import Crypto, CryptoCounter, public_key_of
from gateway.edhoc.errors import MessageDecodeError
from gateway.edhoc.suites import Curve, Signature
from tests.edhoc.helpers import handshake, make_pair

SCALAR = bytes.fromhex("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac")


def _ecdsa_key(scalar: bytes) -> ecdsa.SigningKey:
    return ecdsa.SigningKey.from_string(scalar, curve=ecdsa.NIST256p, hashfunc=hashlib.sha256)


def test_es256_ours_verified_by_ecdsa_and_back() -> None:
    crypto = Crypto()
    message = b"Sig_structure stand-in"
    signature = crypto.sign(Signature.ES256, SCALAR, message)
    theirs = _ecdsa_key(SCALAR)
    assert theirs.get_verifying_key().verify(signature, message, hashfunc=hashlib.sha256)
    their_signature = theirs.sign(message, hashfunc=hashlib.sha256)
    public = public_key_of(Curve.P256, SCALAR)
    assert public == theirs.get_verifying_key().to_string()
    crypto.verify(Signature.ES256, public, message, their_signature)
    with pytest.raises(AuthenticationFailedError):
        crypto.verify(Signature.ES256, public, message + b"!", their_signature)


def test_p256_ecdh_both_ways_against_ecdsa() -> None:
    crypto = Crypto()
    ours_private, ours_x = crypto.generate_key_pair(Curve.P256)
    theirs = ecdsa.SigningKey.generate(curve=ecdsa.NIST256p)
    their_point = theirs.get_verifying_key().pubkey.point
    their_x = their_point.x().to_bytes(32, "big")
    # Our side: x-coordinate only (RFC 9528 §3.7).
    shared = crypto.ecdh(Curve.P256, ours_private, their_x)
    # Their side: full point arithmetic on our public key, decompressed by ecdsa itself.
    our_point = ecdsa.VerifyingKey.from_string(b"\x02" + ours_x, curve=ecdsa.NIST256p).pubkey.point
    product = PointJacobi.from_affine(our_point) * theirs.privkey.secret_multiplier
    assert shared == product.to_affine().x().to_bytes(32, "big")


def test_x25519_rejects_low_order_and_counts() -> None:
    counter = CryptoCounter()
    crypto = Crypto(counter)
    with pytest.raises(InvalidPublicKeyError):
        crypto.ecdh(Curve.X25519, b"\x01" * 32, b"\x00" * 32)
    assert counter.scalar_multiplications == 1


def test_counter_counts_a_handshake() -> None:
    pair = make_pair()
    counter = CryptoCounter()
    pair.responder._crypto = Crypto(counter)
    handshake(pair)
    # Responder, method 3: Y generation, G_XY, G_RX, G_IY; no signatures.
    assert counter.scalar_multiplications == 4
    assert counter.signatures_made == counter.signatures_checked == 0
    assert counter.aead_bytes > 0
    assert counter.hash_bytes > 0
    assert counter.hmac_calls > 0


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_cbor_reader_is_total(data: bytes) -> None:
    try:
        reader = Reader(data)
        while not reader.at_end():
            reader.read_item()
    except MessageDecodeError:
        pass


@settings(max_examples=100)
@given(
    st.recursive(
        st.one_of(
            st.integers(-(2**64), 2**64 - 1),
            st.binary(max_size=40),
            st.text(max_size=10),
            st.booleans(),
            st.none(),
        ),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.integers(-100, 100), children, max_size=4)
        ),
        max_leaves=10,
    )
)
def test_cbor_round_trip(value: object) -> None:
    encoded = encode(value)
    assert decode_single_untrusted(encoded) == value
    assert encode(decode_single_untrusted(encoded)) == encoded


@pytest.mark.parametrize(
    "data",
    [
        b"\x18\x17",
        b"\x19\x00\xff",
        b"\x5f\x40\xff",
        b"\xc1\x00",
        b"\xf9\x00\x00",
        b"\xa2\x01\x01\x01\x02",
    ],
)
def test_cbor_refuses_non_deterministic_or_unsupported(data: bytes) -> None:
    with pytest.raises(MessageDecodeError):
        decode_single_untrusted(data)
