"""Named link presets: the figures of GPRS, EDGE, NB-IoT, LTE-M, LoRa-class and good LTE links.

Every figure is cited, or marked as a chosen typical value, in docs/device-budget.md ("Link
presets"); the tests check that each preset reproduces its table row. A preset is a
:class:`LinkPreset`: both directions, the NAT in front of the device, and the radio's power figures
that the energy model (``device_sim.budget``) reads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from device_sim.radio.link import DirectionParameters, GilbertElliott, LossModel, NoLoss
from device_sim.radio.nat import NatParameters

__all__ = ["PRESETS", "LinkPreset", "RadioPower", "preset"]


@dataclass(frozen=True)
class RadioPower:
    """A radio module's supply voltage and currents (mA) while sending, receiving, idle, asleep.

    ``wake_energy_mj`` is the energy of one wake-up (attach, RRC connection setup or promotion)
    beyond the time it spends in the states above.
    """

    voltage: float
    tx_ma: float
    rx_ma: float
    idle_ma: float
    sleep_ma: float
    wake_energy_mj: float

    def milliwatts(self, current_ma: float) -> float:
        """Power of a state drawing ``current_ma``."""
        return self.voltage * current_ma


@dataclass(frozen=True)
class LinkPreset:
    """A named link: uplink (device to gateway), downlink, the NAT, the radio's power."""

    name: str
    uplink: DirectionParameters
    downlink: DirectionParameters
    nat: NatParameters
    power: RadioPower

    @property
    def round_trip(self) -> float:
        """The base round-trip time, without serialization or jitter."""
        return self.uplink.latency + self.downlink.latency

    def with_loss(self, loss: LossModel) -> LinkPreset:
        """The same link with ``loss`` in both directions (each direction keeps its own state)."""
        return replace(
            self, uplink=replace(self.uplink, loss=loss), downlink=replace(self.downlink, loss=loss)
        )

    def lossless(self) -> LinkPreset:
        """The same link without loss, duplication or explicit reordering."""

        def clean(direction: DirectionParameters) -> DirectionParameters:
            return replace(
                direction, loss=NoLoss(), duplicate_probability=0.0, reorder_probability=0.0
            )

        return replace(self, uplink=clean(self.uplink), downlink=clean(self.downlink))


def _cellular(
    *,
    up_bps: float,
    down_bps: float,
    rtt: float,
    jitter: float,
    loss: LossModel,
    mtu: int,
    buffer_bytes: int,
    duplicate: float = 0.0,
) -> tuple[DirectionParameters, DirectionParameters]:
    """Both directions of a cellular bearer: half the RTT each way, in-order delivery (RLC AM)."""

    def direction(bandwidth_bps: float) -> DirectionParameters:
        return DirectionParameters(
            bandwidth_bps=bandwidth_bps,
            latency=rtt / 2,
            jitter=jitter,
            loss=loss,
            mtu=mtu,
            buffer_bytes=buffer_bytes,
            duplicate_probability=duplicate,
            preserve_order=True,
        )

    return direction(up_bps), direction(down_bps)


def _gprs() -> LinkPreset:
    up, down = _cellular(
        up_bps=26_800,  # CS-2, 2 uplink timeslots (multislot class 10, 3+2 or 4+1)
        down_bps=53_600,  # CS-2, 4 downlink timeslots
        rtt=0.7,
        jitter=0.2,
        loss=GilbertElliott(good_to_bad=0.01, bad_to_good=0.3),  # ~3.2 % in bursts of ~3.3
        mtu=1358,  # 3GPP TS 23.060 Annex C recommendation (IPv4 over GTP)
        buffer_bytes=16 * 1024,
        duplicate=0.002,
    )
    return LinkPreset(
        name="gprs",
        uplink=up,
        downlink=down,
        nat=NatParameters(binding_timeout=60.0),
        power=RadioPower(
            voltage=3.8, tx_ma=250.0, rx_ma=60.0, idle_ma=1.0, sleep_ma=0.08, wake_energy_mj=300.0
        ),
    )


def _edge() -> LinkPreset:
    up, down = _cellular(
        up_bps=100_000,
        down_bps=200_000,
        rtt=0.4,
        jitter=0.1,
        loss=GilbertElliott(good_to_bad=0.005, bad_to_good=0.3),
        mtu=1358,
        buffer_bytes=32 * 1024,
        duplicate=0.001,
    )
    return LinkPreset(
        name="edge",
        uplink=up,
        downlink=down,
        nat=NatParameters(binding_timeout=60.0),
        power=RadioPower(
            voltage=3.8, tx_ma=250.0, rx_ma=60.0, idle_ma=1.0, sleep_ma=0.08, wake_energy_mj=300.0
        ),
    )


def _nb_iot() -> LinkPreset:
    up, down = _cellular(
        up_bps=16_900,  # Cat NB1 single-tone uplink peak
        down_bps=26_000,  # Cat NB1 downlink peak
        rtt=1.6,
        jitter=0.4,
        loss=GilbertElliott(good_to_bad=0.01, bad_to_good=0.5),
        mtu=1280,
        buffer_bytes=4 * 1024,
    )
    return LinkPreset(
        name="nb-iot",
        uplink=up,
        downlink=down,
        nat=NatParameters(binding_timeout=300.0),
        power=RadioPower(
            voltage=3.6, tx_ma=220.0, rx_ma=60.0, idle_ma=6.0, sleep_ma=0.005, wake_energy_mj=200.0
        ),
    )


def _lte_m() -> LinkPreset:
    up, down = _cellular(
        up_bps=375_000,  # Cat M1 half-duplex FDD uplink peak
        down_bps=300_000,  # Cat M1 half-duplex FDD downlink peak
        rtt=0.15,
        jitter=0.03,
        loss=GilbertElliott(good_to_bad=0.003, bad_to_good=0.5),
        mtu=1280,
        buffer_bytes=16 * 1024,
    )
    return LinkPreset(
        name="lte-m",
        uplink=up,
        downlink=down,
        nat=NatParameters(binding_timeout=300.0),
        power=RadioPower(
            voltage=3.8, tx_ma=200.0, rx_ma=60.0, idle_ma=1.5, sleep_ma=0.008, wake_energy_mj=100.0
        ),
    )


def _lora() -> LinkPreset:
    # EU868 DR5 (SF7, 125 kHz): 5470 bit/s, FRMPayload up to 222 bytes; 1 % duty cycle (g1).
    # No IP on the air: the LoRaWAN MAC adds 13 bytes (MHDR 1, FHDR 7, FPort 1, MIC 4).
    def direction(latency: float) -> DirectionParameters:
        return DirectionParameters(
            bandwidth_bps=5470.0,
            latency=latency,
            jitter=0.05,
            loss=GilbertElliott(good_to_bad=0.02, bad_to_good=0.4),
            mtu=222,
            buffer_bytes=1024,
            overhead_bytes=13,
            duty_cycle=0.01,
            preserve_order=True,
        )

    return LinkPreset(
        name="lora",
        uplink=direction(0.2),  # network server forwarding (chosen)
        downlink=direction(1.0),  # class A: RX1 opens RECEIVE_DELAY1 = 1 s after the uplink
        nat=NatParameters(),
        power=RadioPower(
            voltage=3.3, tx_ma=29.0, rx_ma=10.8, idle_ma=1.5, sleep_ma=0.0002, wake_energy_mj=0.1
        ),
    )


def _lte() -> LinkPreset:
    up, down = _cellular(
        up_bps=5_640_000,
        down_bps=12_740_000,
        rtt=0.07,
        jitter=0.01,
        loss=GilbertElliott(good_to_bad=0.001, bad_to_good=0.5),
        mtu=1500,
        buffer_bytes=256 * 1024,
    )
    return LinkPreset(
        name="lte",
        uplink=up,
        downlink=down,
        nat=NatParameters(binding_timeout=120.0),
        # Huang et al. 2012 give power, not current: expressed at 3.7 V (1 mA = 3.7 mW).
        power=RadioPower(
            voltage=3.7,
            tx_ma=1288.0 / 3.7 + 438.39 * 5.64 / 3.7,
            rx_ma=1288.0 / 3.7 + 51.97 * 12.74 / 3.7,
            idle_ma=1060.0 / 3.7,
            sleep_ma=11.4 / 3.7,
            wake_energy_mj=1210.7 * 0.26,
        ),
    )


PRESETS: dict[str, LinkPreset] = {
    p.name: p for p in (_gprs(), _edge(), _nb_iot(), _lte_m(), _lora(), _lte())
}


def preset(name: str) -> LinkPreset:
    """The preset called ``name`` (gprs, edge, nb-iot, lte-m, lora, lte)."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown link preset {name!r}; known: {', '.join(PRESETS)}") from None
