"""Radio link models for the device emulator: bandwidth, delay, loss, NAT, sleep schedules.

The cores (:class:`RadioLink`, :class:`NatBinding`, :class:`DuplexLink`, the schedules) are
sans-IO and deterministic for a seed; :class:`RadioRelay` is the thin trio adapter that applies a
link between a real device socket and a real gateway. Figures of the presets are cited in
docs/device-budget.md.
"""

from __future__ import annotations

from device_sim.radio.duplex import DuplexLink, DuplexStatistics, UplinkDelivery
from device_sim.radio.link import (
    Bernoulli,
    DatagramTooLargeError,
    Delivery,
    DirectionParameters,
    GilbertElliott,
    LinkStatistics,
    LossModel,
    MtuPolicy,
    NoLoss,
    RadioLink,
    SendOutcome,
)
from device_sim.radio.nat import NatBinding, NatParameters, NatStatistics
from device_sim.radio.presets import PRESETS, LinkPreset, RadioPower, preset
from device_sim.radio.relay import RadioRelay, RelayStatistics
from device_sim.radio.schedule import AlwaysAwake, PeriodicWake, PowerSavingMode

__all__ = [
    "PRESETS",
    "AlwaysAwake",
    "Bernoulli",
    "DatagramTooLargeError",
    "Delivery",
    "DirectionParameters",
    "DuplexLink",
    "DuplexStatistics",
    "GilbertElliott",
    "LinkPreset",
    "LinkStatistics",
    "LossModel",
    "MtuPolicy",
    "NatBinding",
    "NatParameters",
    "NatStatistics",
    "NoLoss",
    "PeriodicWake",
    "PowerSavingMode",
    "RadioLink",
    "RadioPower",
    "RadioRelay",
    "RelayStatistics",
    "SendOutcome",
    "UplinkDelivery",
    "preset",
]
