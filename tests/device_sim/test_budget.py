"""CPU and energy accounting: hand counts of EDHOC handshakes and the profile arithmetic."""

from __future__ import annotations

import pytest

from device_sim.budget import (
    PROFILES,
    MeteredCrypto,
    PrimitiveCounts,
    RadioActivity,
    estimate,
    hmac_sha256_blocks,
    radio_energy,
    sha256_blocks,
)
from device_sim.radio import preset
from gateway.edhoc import CipherSuite, Initiator, Method, Responder
from gateway.edhoc.suites import Aead
from tests.edhoc.helpers import credentials_for, lookup_from


def _device_side_of_a_handshake(method: Method, suite: CipherSuite) -> MeteredCrypto:
    crypto = MeteredCrypto()
    device = credentials_for("device", b"\x2b")
    gateway = credentials_for("gateway", b"\x0a")
    initiator = Initiator(
        method=method,
        suites=[suite],
        c_i=b"\x37",
        credential=device,
        credential_lookup=lookup_from(*gateway),
        crypto=crypto,
    )
    responder = Responder(
        suites=[suite], c_r=b"\x27", credential=gateway, credential_lookup=lookup_from(*device)
    )
    responder.receive_message_1(initiator.message_1())
    initiator.receive_message_2(responder.message_2())
    responder.receive_message_3(initiator.message_3())
    return crypto


def test_static_dh_handshake_matches_a_hand_count() -> None:
    """Method 3, suite 2, initiator (RFC 9528 §5.2-§5.4, §4.1).

    Scalar multiplications: X and G_X, G_XY, G_RX (static R), G_IY (static I) = 4.
    AEAD: PLAINTEXT_3 = ID_CRED_I (kid 0x2b, one byte) + MAC_3 as bstr (1 + 8) = 10 bytes.
    HKDF: Extract for PRK_2e, PRK_3e2m, PRK_4e3m (3); Expand for KEYSTREAM_2 (11 bytes, one
    block), SALT_3e2m, MAC_2, SALT_4e3m, MAC_3, K_3, IV_3, PRK_out and PRK_exporter (§4.2.1),
    each at most 32 bytes, so one HMAC each (9): 12 calls, 12 HMACs.
    """
    crypto = _device_side_of_a_handshake(Method.STATIC_DH_STATIC_DH, CipherSuite.SUITE_2)
    counts = crypto.counts
    assert counts.p256_scalar_multiplications == 4
    assert counts.x25519_scalar_multiplications == 0
    assert (counts.ecdsa_p256_signs, counts.ecdsa_p256_verifies) == (0, 0)
    assert counts.aes_ccm_bytes == 10
    assert counts.hmac_calls == 12
    assert counts.hkdf_calls == 12
    # The curve-blind CryptoCounter of the gateway's Crypto agrees.
    assert crypto.counter.scalar_multiplications == 4
    assert crypto.counter.aead_bytes == counts.aes_ccm_bytes
    assert crypto.counter.hash_bytes == counts.sha256_bytes
    assert crypto.counter.hmac_calls == counts.hmac_calls


def test_signature_handshake_matches_a_hand_count() -> None:
    """Method 0, suite 2: X, G_XY; verify Signature_2, make Signature_3; PLAINTEXT_3 67 bytes."""
    crypto = _device_side_of_a_handshake(Method.SIGNATURE_SIGNATURE, CipherSuite.SUITE_2)
    counts = crypto.counts
    assert counts.p256_scalar_multiplications == 2
    assert (counts.ecdsa_p256_signs, counts.ecdsa_p256_verifies) == (1, 1)
    assert counts.aes_ccm_bytes == 1 + 2 + 64  # kid, bstr header, r || s


def test_suite_0_counts_x25519_and_eddsa() -> None:
    crypto = _device_side_of_a_handshake(Method.SIGNATURE_SIGNATURE, CipherSuite.SUITE_0)
    counts = crypto.counts
    assert counts.x25519_scalar_multiplications == 2
    assert counts.p256_scalar_multiplications == 0
    assert (counts.ed25519_signs, counts.ed25519_verifies) == (1, 1)
    assert counts.aes_ccm_bytes == 67


def test_sha256_block_arithmetic() -> None:
    # FIPS 180-4 §5.1.1: message, 0x80, zeros, 64-bit length in whole 64-byte blocks.
    assert [sha256_blocks(n) for n in (0, 55, 56, 119, 120)] == [1, 1, 2, 2, 3]
    # HMAC: inner over 64 + n bytes, outer over 96 bytes (2 blocks).
    assert [hmac_sha256_blocks(n) for n in (0, 55, 56)] == [4, 4, 5]


def test_counts_add_up() -> None:
    counts = PrimitiveCounts(p256_scalar_multiplications=1)
    counts.add_aead(Aead.CHACHA20_POLY1305, 10)
    counts.add_aead(Aead.AES_CCM_16_64_128, 20)
    counts.add_cbor(encoded=5, decoded=7)
    counts.add_hmac(10)
    total = counts + PrimitiveCounts(p256_scalar_multiplications=2, sha256_blocks=1)
    assert total == PrimitiveCounts(
        p256_scalar_multiplications=3,
        chacha20_poly1305_bytes=10,
        aes_ccm_bytes=20,
        cbor_bytes_encoded=5,
        cbor_bytes_decoded=7,
        hmac_calls=1,
        sha256_blocks=5,
    )


# Two P-256 scalar multiplications, one ECDSA signature, 100 AES-CCM bytes, 10 SHA-256 blocks,
# 50 CBOR bytes each way. Cycles by hand from the table in docs/device-budget.md.
KNOWN = PrimitiveCounts(
    p256_scalar_multiplications=2,
    ecdsa_p256_signs=1,
    aes_ccm_bytes=100,
    sha256_blocks=10,
    cbor_bytes_encoded=50,
    cbor_bytes_decoded=50,
)

HAND_COUNTS = {
    # 2*10.73e6 + 1.05*10.73e6 + 100*169 + 10*4500 + 50*45 + 50*60
    "cortex-m0plus-48mhz": (32_793_650, 48e6, 11.55),
    # 2*1e6 + 442,754 + 100*67.6 + 10*3000 + 50*30 + 50*40
    "cortex-m4-64mhz": (2_483_014, 64e6, 11.1),
    # 2*480e3 + 520e3 + 100*2 + 10*300 + 50*30 + 50*40
    "cortex-m4-64mhz-cryptocell": (1_486_700, 64e6, 15.0),
    # the M0+ cycles at 60 MHz and 100 mW
    "handheld-60mhz": (32_793_650, 60e6, 100.0),
}


@pytest.mark.parametrize("name", sorted(HAND_COUNTS))
def test_profile_arithmetic_for_a_known_count_vector(name: str) -> None:
    cycles, clock, milliwatts = HAND_COUNTS[name]
    profile = PROFILES[name]
    assert profile.cycles(KNOWN) == pytest.approx(cycles, rel=1e-12)
    assert profile.milliseconds(KNOWN) == pytest.approx(cycles / clock * 1000, rel=1e-12)
    assert profile.millijoules(KNOWN) == pytest.approx(cycles / clock * milliwatts, rel=1e-12)


def test_radio_energy_on_nb_iot() -> None:
    link = preset("nb-iot")
    activity = RadioActivity.of_datagrams(
        link, [72], [72], wakeups=1, idle_seconds=10.0, sleep_seconds=3600.0
    )
    assert (activity.tx_bytes, activity.rx_bytes) == (100, 100)  # 28 bytes of IPv4 + UDP each
    energy = radio_energy(link, activity)
    assert energy.tx_mj == pytest.approx(800 / 16_900 * 3.6 * 220)
    assert energy.rx_mj == pytest.approx(800 / 26_000 * 3.6 * 60)
    assert energy.wake_mj == 200.0
    assert energy.idle_mj == pytest.approx(10 * 3.6 * 6)
    assert energy.sleep_mj == pytest.approx(3600 * 3.6 * 0.005)
    assert energy.cpu_mj == 0.0
    total = estimate(PROFILES["cortex-m4-64mhz"], KNOWN, link, activity)
    assert total.cpu_ms == pytest.approx(2_483_014 / 64e3)
    assert total.total_mj == pytest.approx(total.cpu_mj + energy.radio_mj)
