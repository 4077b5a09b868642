"""A carrier NAT's mapping for one device as a sans-IO model: rebinding and idle timeouts.

Theory of operation (RFC 4787 §4.3, REQ-5/REQ-6). The NAT keeps one mapping from the device's
address to an external port. Outbound traffic creates the mapping and refreshes its idle timer;
inbound traffic refreshes it only where ``inbound_refreshes`` is set (RFC 4787 leaves this to the
NAT; carrier NATs commonly refresh on outbound only). Once the mapping has been idle for
``binding_timeout`` seconds it is gone: inbound datagrams for it are dropped, and the device's next
outbound datagram creates a new mapping on a new port. Independently, the carrier may move the
mapping to a new port (load balancing, a CGNAT failover): at each time in ``rebind_at`` the old
mapping is torn down, and after ``rebind_after_idle`` seconds of device silence the next outbound
datagram leaves from a new port while the old one keeps accepting inbound until then.

Mappings are numbered by generation (0, 1, 2, ...); the external port is ``first_port +
generation``. The trio relay opens one real socket per generation, so the gateway sees a real
change of source port.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NatBinding", "NatParameters", "NatStatistics"]


@dataclass(frozen=True)
class NatParameters:
    """How the NAT in front of a device behaves; None disables a behaviour."""

    binding_timeout: float | None = None  # seconds of idleness after which the mapping expires
    rebind_at: tuple[float, ...] = ()  # times at which the carrier moves the mapping
    rebind_after_idle: float | None = None  # device silence after which it gets a new port
    inbound_refreshes: bool = False  # RFC 4787 REQ-6 permits either; outbound-only is common
    first_port: int = 40000

    def __post_init__(self) -> None:
        for value in (self.binding_timeout, self.rebind_after_idle):
            if value is not None and value <= 0:
                raise ValueError("NAT timeouts must be positive")
        if list(self.rebind_at) != sorted(self.rebind_at):
            raise ValueError("rebind_at must be in increasing order")


@dataclass(frozen=True)
class NatStatistics:
    """Counters of one NAT mapping, a snapshot."""

    generation: int
    mappings_created: int
    inbound_accepted: int
    inbound_dropped: int


class NatBinding:
    """The mapping of one device: ask it which generation an outbound datagram leaves from."""

    def __init__(self, parameters: NatParameters) -> None:
        self.parameters = parameters
        self._generation = -1  # no mapping yet
        self._created_at = 0.0
        self._last_outbound = 0.0
        self._last_refresh = 0.0
        self._created = 0
        self._accepted = 0
        self._dropped = 0

    @property
    def generation(self) -> int:
        """The current mapping's generation, -1 before the first outbound datagram."""
        return self._generation

    def port(self, generation: int) -> int:
        """The external port of mapping ``generation``."""
        return self.parameters.first_port + generation

    def is_live(self, now: float) -> bool:
        """Whether the current mapping still exists at ``now``."""
        if self._generation < 0:
            return False
        params = self.parameters
        if (
            params.binding_timeout is not None
            and now - self._last_refresh >= params.binding_timeout
        ):
            return False
        return not any(self._created_at < t <= now for t in params.rebind_at)

    def outbound(self, now: float) -> int:
        """Note a datagram from the device at ``now``; returns the generation it leaves from."""
        params = self.parameters
        idle_rebind = (
            params.rebind_after_idle is not None
            and self._generation >= 0
            and now - self._last_outbound >= params.rebind_after_idle
        )
        if not self.is_live(now) or idle_rebind:
            self._generation += 1
            self._created += 1
            self._created_at = now
        self._last_outbound = now
        self._last_refresh = now
        return self._generation

    def inbound(self, generation: int, now: float) -> bool:
        """Whether a datagram for mapping ``generation`` arriving at ``now`` reaches the device."""
        if generation != self._generation or not self.is_live(now):
            self._dropped += 1
            return False
        if self.parameters.inbound_refreshes:
            self._last_refresh = now
        self._accepted += 1
        return True

    def statistics(self) -> NatStatistics:
        """A snapshot of the counters."""
        return NatStatistics(
            generation=self._generation,
            mappings_created=self._created,
            inbound_accepted=self._accepted,
            inbound_dropped=self._dropped,
        )
