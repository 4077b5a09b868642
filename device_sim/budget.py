"""CPU and energy accounting for an emulated device: count primitives, price them on a profile.

Theory of operation. :class:`PrimitiveCounts` holds what a device computed: scalar
multiplications by curve, signatures made and checked by algorithm, AEAD bytes by cipher, SHA-256
bytes and compression blocks, HMAC and HKDF calls, CBOR bytes. :class:`MeteredCrypto` is the
gateway's own EDHOC :class:`~gateway.edhoc.crypto.Crypto` (whose :class:`CryptoCounter` keeps its
curve-blind totals) with every call also attributed to its algorithm here, so an EDHOC initiator
handed a ``MeteredCrypto`` is counted exactly. Record-layer AEAD and CBOR work happen outside
EDHOC; the caller adds them with :meth:`PrimitiveCounts.add_aead` and
:meth:`PrimitiveCounts.add_cbor`.

A :class:`DeviceProfile` turns counts into cycles, milliseconds and millijoules::

    cycles  = sum(count_i * cycles_i)
    cpu_ms  = cycles / clock_hz * 1000
    cpu_mJ  = cpu_ms / 1000 * P_cpu_mW

and :func:`radio_energy` turns link activity into millijoules with a preset's
:class:`~device_sim.radio.RadioPower`::

    radio_mJ = tx_bytes*8/up_bps * P_tx + rx_bytes*8/down_bps * P_rx
               + wakeups * E_wake + idle_s * P_idle + sleep_s * P_sleep

Every per-primitive figure and its source is in docs/device-budget.md ("Device profiles"); the
figures are approximate, and the doc says which are measured elsewhere and which are derived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from device_sim.radio.presets import LinkPreset
from gateway.edhoc.crypto import Crypto, CryptoCounter
from gateway.edhoc.suites import Aead, Curve, Signature, SuiteParameters

__all__ = [
    "PROFILES",
    "DeviceProfile",
    "EnergyBreakdown",
    "MeteredCrypto",
    "PrimitiveCounts",
    "RadioActivity",
    "estimate",
    "hmac_sha256_blocks",
    "radio_energy",
    "sha256_blocks",
]

SHA256_BLOCK = 64  # bytes per SHA-256 compression (FIPS 180-4 §5.2.1)
SHA256_DIGEST = 32


def sha256_blocks(length: int) -> int:
    """Compression-function calls to hash ``length`` bytes: data, 0x80, zeros, 8-byte length."""
    return (length + 9 + SHA256_BLOCK - 1) // SHA256_BLOCK


def hmac_sha256_blocks(length: int) -> int:
    """Compressions of one HMAC-SHA-256 (RFC 2104) with a key of at most 64 bytes.

    Inner hash over ``K^ipad || message`` (64 + length bytes), outer over ``K^opad || inner``
    (96 bytes, 2 blocks).
    """
    return sha256_blocks(SHA256_BLOCK + length) + sha256_blocks(SHA256_BLOCK + SHA256_DIGEST)


@dataclass
class PrimitiveCounts:
    """What a device computed; mutable, so a long-lived device can keep adding to it."""

    p256_scalar_multiplications: int = 0  # ECDH and key generation on P-256
    x25519_scalar_multiplications: int = 0
    ecdsa_p256_signs: int = 0
    ecdsa_p256_verifies: int = 0
    ed25519_signs: int = 0
    ed25519_verifies: int = 0
    aes_ccm_bytes: int = 0  # plaintext bytes through AES-CCM (either direction)
    chacha20_poly1305_bytes: int = 0
    sha256_bytes: int = 0  # bytes given to SHA-256 directly (transcript hashes)
    sha256_blocks: int = 0  # every compression, including those inside HMAC
    hmac_calls: int = 0
    hkdf_calls: int = 0  # HKDF-Extract and HKDF-Expand calls
    cbor_bytes_encoded: int = 0
    cbor_bytes_decoded: int = 0

    def add_aead(self, aead: Aead, plaintext_bytes: int) -> None:
        """Count ``plaintext_bytes`` through ``aead`` (a record sealed or opened)."""
        if aead is Aead.CHACHA20_POLY1305:
            self.chacha20_poly1305_bytes += plaintext_bytes
        else:
            self.aes_ccm_bytes += plaintext_bytes

    def add_cbor(self, *, encoded: int = 0, decoded: int = 0) -> None:
        """Count CBOR bytes the device wrote and read."""
        self.cbor_bytes_encoded += encoded
        self.cbor_bytes_decoded += decoded

    def add_hmac(self, message_length: int) -> None:
        """Count one HMAC-SHA-256 over ``message_length`` bytes."""
        self.hmac_calls += 1
        self.sha256_blocks += hmac_sha256_blocks(message_length)

    def __add__(self, other: PrimitiveCounts) -> PrimitiveCounts:
        return PrimitiveCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


class MeteredCrypto(Crypto):
    """EDHOC's :class:`Crypto` that also attributes every primitive to its algorithm."""

    def __init__(self, counts: PrimitiveCounts | None = None) -> None:
        super().__init__(CryptoCounter())
        self.counts = counts if counts is not None else PrimitiveCounts()

    def _scalar_multiplication(self, curve: Curve) -> None:
        if curve is Curve.P256:
            self.counts.p256_scalar_multiplications += 1
        else:
            self.counts.x25519_scalar_multiplications += 1

    def hash(self, data: bytes) -> bytes:
        """SHA-256, counted in bytes and blocks."""
        self.counts.sha256_bytes += len(data)
        self.counts.sha256_blocks += sha256_blocks(len(data))
        return super().hash(data)

    def hkdf_extract(self, salt: bytes, input_key_material: bytes) -> bytes:
        """HKDF-Extract: one HMAC keyed with the salt."""
        self.counts.hkdf_calls += 1
        self.counts.add_hmac(len(input_key_material))
        return super().hkdf_extract(salt, input_key_material)

    def hkdf_expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        """HKDF-Expand: HMAC(T(i-1) || info || i) for i = 1 .. ceil(length / 32)."""
        self.counts.hkdf_calls += 1
        for block in range(math.ceil(length / SHA256_DIGEST)):
            self.counts.add_hmac((SHA256_DIGEST if block else 0) + len(info) + 1)
        return super().hkdf_expand(prk, info, length)

    def ephemeral_public_key(self, curve: Curve, private_key: bytes) -> bytes:
        """A public key from a private one: one fixed-base scalar multiplication."""
        self._scalar_multiplication(curve)
        return super().ephemeral_public_key(curve, private_key)

    def ecdh(self, curve: Curve, private_key: bytes, public_key: bytes) -> bytes:
        """ECDH: one variable-base scalar multiplication."""
        self._scalar_multiplication(curve)
        return super().ecdh(curve, private_key, public_key)

    def sign(self, algorithm: Signature, private_key: bytes, message: bytes) -> bytes:
        """A signature, counted by algorithm (its internal hashing is in the per-sign figure)."""
        if algorithm is Signature.EDDSA:
            self.counts.ed25519_signs += 1
        else:
            self.counts.ecdsa_p256_signs += 1
        return super().sign(algorithm, private_key, message)

    def verify(
        self, algorithm: Signature, public_key: bytes, message: bytes, signature: bytes
    ) -> None:
        """A signature check, counted by algorithm."""
        if algorithm is Signature.EDDSA:
            self.counts.ed25519_verifies += 1
        else:
            self.counts.ecdsa_p256_verifies += 1
        super().verify(algorithm, public_key, message, signature)

    def encrypt(
        self, suite: SuiteParameters, key: bytes, iv: bytes, aad: bytes, plaintext: bytes
    ) -> bytes:
        """AEAD encryption, counted in plaintext bytes by cipher."""
        self.counts.add_aead(suite.aead, len(plaintext))
        return super().encrypt(suite, key, iv, aad, plaintext)

    def decrypt(
        self, suite: SuiteParameters, key: bytes, iv: bytes, aad: bytes, ciphertext: bytes
    ) -> bytes:
        """AEAD decryption, counted in plaintext bytes by cipher."""
        self.counts.add_aead(suite.aead, max(0, len(ciphertext) - suite.tag_length))
        return super().decrypt(suite, key, iv, aad, ciphertext)


@dataclass(frozen=True)
class DeviceProfile:
    """A processor: clock, power while computing, and cycles per primitive.

    Per-operation figures are cycles per call; ``*_per_byte`` are cycles per byte;
    ``sha256_per_block`` is cycles per compression.
    """

    name: str
    clock_hz: float
    active_mw: float
    p256_scalar_multiplication: float
    x25519_scalar_multiplication: float
    ecdsa_p256_sign: float
    ecdsa_p256_verify: float
    ed25519_sign: float
    ed25519_verify: float
    aes_ccm_per_byte: float
    chacha20_poly1305_per_byte: float
    sha256_per_block: float
    cbor_encode_per_byte: float
    cbor_decode_per_byte: float

    def cycles(self, counts: PrimitiveCounts) -> float:
        """Cycles the counted work takes on this processor."""
        return (
            counts.p256_scalar_multiplications * self.p256_scalar_multiplication
            + counts.x25519_scalar_multiplications * self.x25519_scalar_multiplication
            + counts.ecdsa_p256_signs * self.ecdsa_p256_sign
            + counts.ecdsa_p256_verifies * self.ecdsa_p256_verify
            + counts.ed25519_signs * self.ed25519_sign
            + counts.ed25519_verifies * self.ed25519_verify
            + counts.aes_ccm_bytes * self.aes_ccm_per_byte
            + counts.chacha20_poly1305_bytes * self.chacha20_poly1305_per_byte
            + counts.sha256_blocks * self.sha256_per_block
            + counts.cbor_bytes_encoded * self.cbor_encode_per_byte
            + counts.cbor_bytes_decoded * self.cbor_decode_per_byte
        )

    def milliseconds(self, counts: PrimitiveCounts) -> float:
        """CPU time of the counted work."""
        return self.cycles(counts) / self.clock_hz * 1000.0

    def millijoules(self, counts: PrimitiveCounts) -> float:
        """CPU energy of the counted work (mW times seconds)."""
        return self.milliseconds(counts) / 1000.0 * self.active_mw


_M4_X25519 = 907_240  # Fujii & Aranha, LATINCRYPT 2017
_M0_X25519 = 3_589_850  # Düll et al., Des. Codes Cryptogr. 77, 2015 (Cortex-M0), checked
_M0_P256 = 10_730_000  # approximate: Wenger et al., INDOCRYPT 2013 (Cortex-M0+)
_M4_AES_CTR_PER_BYTE = 33.8  # Schwabe & Stoffelen, SAC 2016, AES-128-CTR on Cortex-M4

_CORTEX_M0_PLUS = DeviceProfile(
    name="cortex-m0plus-48mhz",
    clock_hz=48e6,
    active_mw=3.5 * 3.3,  # approximate: SAM D21 class, ~3.5 mA active at 48 MHz, 3.3 V
    p256_scalar_multiplication=_M0_P256,
    x25519_scalar_multiplication=_M0_X25519,
    ecdsa_p256_sign=_M0_P256 * 1.05,  # derived: one scalar mult + an inversion
    ecdsa_p256_verify=_M0_P256 * 1.3,  # derived: a double scalar mult (Shamir's trick)
    ed25519_sign=_M0_X25519 * 0.6,  # derived: fixed-base with a small table
    ed25519_verify=_M0_X25519 * 1.4,  # derived: a double scalar mult
    aes_ccm_per_byte=2 * 2.5 * _M4_AES_CTR_PER_BYTE,  # derived: 2.5x the M4, two AES passes
    chacha20_poly1305_per_byte=40.0,  # chosen, approximate
    sha256_per_block=4_500,  # chosen, approximate
    cbor_encode_per_byte=45.0,  # chosen, approximate
    cbor_decode_per_byte=60.0,  # chosen, approximate
)

_CORTEX_M4 = DeviceProfile(
    name="cortex-m4-64mhz",
    clock_hz=64e6,
    active_mw=3.7 * 3.0,  # approximate: nRF52832, 58 uA/MHz from flash at 64 MHz, DC/DC, 3 V
    p256_scalar_multiplication=1_000_000,  # approximate: P256-Cortex-M4 (Lenngren)
    x25519_scalar_multiplication=_M4_X25519,
    ecdsa_p256_sign=442_754,  # p256-cm4 README (P256-Cortex-M4 port), STM32WLE5
    ecdsa_p256_verify=1_225_746,  # p256-cm4 README, STM32WLE5
    ed25519_sign=_M4_X25519 * 0.6,  # derived, as for the M0+
    ed25519_verify=_M4_X25519 * 1.4,  # derived, as for the M0+
    aes_ccm_per_byte=2 * _M4_AES_CTR_PER_BYTE,  # derived: CTR plus CBC-MAC, two AES passes
    chacha20_poly1305_per_byte=15.0,  # chosen, approximate
    sha256_per_block=3_000,  # chosen, approximate
    cbor_encode_per_byte=30.0,  # chosen, approximate
    cbor_decode_per_byte=40.0,  # chosen, approximate
)

_CORTEX_M4_CRYPTOCELL = DeviceProfile(
    name="cortex-m4-64mhz-cryptocell",
    clock_hz=64e6,
    active_mw=5.0 * 3.0,  # approximate: nRF52840 CPU 3.3 mA plus ~1.7 mA for CryptoCell-310
    p256_scalar_multiplication=480_000,  # approximate: CC310 PKA, ~7.5 ms at 64 MHz
    x25519_scalar_multiplication=480_000,  # approximate, as P-256 on the same PKA
    ecdsa_p256_sign=520_000,  # approximate
    ecdsa_p256_verify=1_000_000,  # approximate
    ed25519_sign=600_000,  # approximate
    ed25519_verify=1_100_000,  # approximate
    aes_ccm_per_byte=2.0,  # approximate: hardware AES, DMA-fed
    chacha20_poly1305_per_byte=3.0,  # approximate: CC310 ChaCha and Poly1305 engines
    sha256_per_block=300,  # approximate: CC310 hash engine
    cbor_encode_per_byte=30.0,  # the CPU, as without the accelerator
    cbor_decode_per_byte=40.0,
)

_HANDHELD_60 = DeviceProfile(
    name="handheld-60mhz",
    clock_hz=60e6,
    active_mw=100.0,  # chosen, approximate: CPU and memory of a late-1990s handheld
    p256_scalar_multiplication=_M0_P256,  # chosen: ARM7TDMI-class, taken as the M0+ figures
    x25519_scalar_multiplication=_M0_X25519,
    ecdsa_p256_sign=_M0_P256 * 1.05,
    ecdsa_p256_verify=_M0_P256 * 1.3,
    ed25519_sign=_M0_X25519 * 0.6,
    ed25519_verify=_M0_X25519 * 1.4,
    aes_ccm_per_byte=2 * 2.5 * _M4_AES_CTR_PER_BYTE,
    chacha20_poly1305_per_byte=40.0,
    sha256_per_block=4_500,
    cbor_encode_per_byte=45.0,
    cbor_decode_per_byte=60.0,
)

PROFILES: dict[str, DeviceProfile] = {
    p.name: p for p in (_CORTEX_M0_PLUS, _CORTEX_M4, _CORTEX_M4_CRYPTOCELL, _HANDHELD_60)
}


@dataclass(frozen=True)
class RadioActivity:
    """What a device's radio did: on-air bytes each way, wake-ups, seconds idle and asleep."""

    tx_bytes: int = 0
    rx_bytes: int = 0
    wakeups: int = 0
    idle_seconds: float = 0.0
    sleep_seconds: float = 0.0

    @classmethod
    def of_datagrams(
        cls,
        preset: LinkPreset,
        sent: list[int],
        received: list[int],
        *,
        wakeups: int = 0,
        idle_seconds: float = 0.0,
        sleep_seconds: float = 0.0,
    ) -> RadioActivity:
        """Activity for datagrams of the given payload sizes, with the preset's header bytes."""
        return cls(
            tx_bytes=sum(size + preset.uplink.overhead_bytes for size in sent),
            rx_bytes=sum(size + preset.downlink.overhead_bytes for size in received),
            wakeups=wakeups,
            idle_seconds=idle_seconds,
            sleep_seconds=sleep_seconds,
        )


@dataclass(frozen=True)
class EnergyBreakdown:
    """Milliseconds and millijoules of one device's work, by part."""

    cpu_ms: float
    cpu_mj: float
    tx_mj: float
    rx_mj: float
    wake_mj: float
    idle_mj: float
    sleep_mj: float

    @property
    def radio_mj(self) -> float:
        """Everything but the CPU."""
        return self.tx_mj + self.rx_mj + self.wake_mj + self.idle_mj + self.sleep_mj

    @property
    def total_mj(self) -> float:
        """CPU and radio together."""
        return self.cpu_mj + self.radio_mj


def radio_energy(preset: LinkPreset, activity: RadioActivity) -> EnergyBreakdown:
    """Radio energy of ``activity`` on ``preset`` (the CPU fields are zero)."""
    power = preset.power
    tx_seconds = activity.tx_bytes * 8 / preset.uplink.bandwidth_bps
    rx_seconds = activity.rx_bytes * 8 / preset.downlink.bandwidth_bps
    return EnergyBreakdown(
        cpu_ms=0.0,
        cpu_mj=0.0,
        tx_mj=tx_seconds * power.milliwatts(power.tx_ma),
        rx_mj=rx_seconds * power.milliwatts(power.rx_ma),
        wake_mj=activity.wakeups * power.wake_energy_mj,
        idle_mj=activity.idle_seconds * power.milliwatts(power.idle_ma),
        sleep_mj=activity.sleep_seconds * power.milliwatts(power.sleep_ma),
    )


def estimate(
    profile: DeviceProfile, counts: PrimitiveCounts, preset: LinkPreset, activity: RadioActivity
) -> EnergyBreakdown:
    """CPU time and energy of ``counts`` on ``profile`` plus the radio energy of ``activity``."""
    radio = radio_energy(preset, activity)
    return EnergyBreakdown(
        cpu_ms=profile.milliseconds(counts),
        cpu_mj=profile.millijoules(counts),
        tx_mj=radio.tx_mj,
        rx_mj=radio.rx_mj,
        wake_mj=radio.wake_mj,
        idle_mj=radio.idle_mj,
        sleep_mj=radio.sleep_mj,
    )
