"""Both directions of one device's link and the NAT in front of it, as one sans-IO object.

Uplink datagrams (device to gateway) cross the radio first and the NAT second, so the NAT sees
them when they arrive: :meth:`DuplexLink.uplink_due` returns each with the NAT generation it
leaves from. Downlink datagrams meet the NAT first: one for a mapping that no longer exists is
dropped there and never uses the radio. Seeds of the two directions are derived from one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_sim.radio.link import Delivery, LinkStatistics, RadioLink, SendOutcome
from device_sim.radio.nat import NatBinding, NatStatistics
from device_sim.radio.presets import LinkPreset

__all__ = ["DuplexLink", "DuplexStatistics", "UplinkDelivery"]


@dataclass(frozen=True)
class UplinkDelivery:
    """A device datagram that reaches the gateway at ``at`` from NAT mapping ``generation``."""

    at: float
    datagram: bytes
    generation: int


@dataclass(frozen=True)
class DuplexStatistics:
    """Counters of both directions and the NAT, a snapshot."""

    uplink: LinkStatistics
    downlink: LinkStatistics
    nat: NatStatistics


class DuplexLink:
    """One device's link: uplink and downlink :class:`RadioLink` with a :class:`NatBinding`."""

    def __init__(self, preset: LinkPreset, *, seed: int = 0) -> None:
        self.preset = preset
        self.uplink = RadioLink(preset.uplink, seed=f"{seed}:uplink")
        self.downlink = RadioLink(preset.downlink, seed=f"{seed}:downlink")
        self.nat = NatBinding(preset.nat)

    def send_up(self, datagram: bytes, now: float) -> SendOutcome:
        """The device sends ``datagram`` at ``now``."""
        return self.uplink.send(datagram, now)

    def send_down(self, datagram: bytes, generation: int, now: float) -> SendOutcome | None:
        """The gateway's ``datagram`` reaches NAT mapping ``generation`` at ``now``.

        None when the NAT drops it (the mapping expired or moved); otherwise the radio's outcome.
        """
        if not self.nat.inbound(generation, now):
            return None
        return self.downlink.send(datagram, now)

    def uplink_due(self, now: float) -> list[UplinkDelivery]:
        """Device datagrams that leave the NAT toward the gateway by ``now``."""
        return [
            UplinkDelivery(at=d.at, datagram=d.datagram, generation=self.nat.outbound(d.at))
            for d in self.uplink.deliveries_due(now)
        ]

    def downlink_due(self, now: float) -> list[Delivery]:
        """Gateway datagrams that reach the device by ``now``."""
        return self.downlink.deliveries_due(now)

    def next_deadline(self) -> float | None:
        """The earliest delivery due in either direction."""
        deadlines = [
            d for d in (self.uplink.next_deadline(), self.downlink.next_deadline()) if d is not None
        ]
        return min(deadlines) if deadlines else None

    def statistics(self) -> DuplexStatistics:
        """A snapshot of every counter."""
        return DuplexStatistics(
            uplink=self.uplink.statistics(),
            downlink=self.downlink.statistics(),
            nat=self.nat.statistics(),
        )
