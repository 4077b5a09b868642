"""One direction of a radio link as a sans-IO model: datagrams in with a time, deliveries out.

Theory of operation. A datagram handed to :meth:`RadioLink.send` first meets the MTU (too large:
dropped and counted, or reported to the sender as a socket's ``EMSGSIZE`` would be). It then joins
the transmit queue of a serializer that sends ``bandwidth_bps`` bits per second: its transmission
starts when the previous one ends and lasts ``(len + overhead_bytes) * 8 / bandwidth_bps`` seconds.
The queue holds at most ``buffer_bytes`` bytes not yet fully transmitted; a datagram that does not
fit is dropped at the tail, as a modem's FIFO does. Under a ``duty_cycle`` below 1 the transmitter
stays off after each transmission for ``airtime * (1/duty_cycle - 1)`` (ETSI EN 300 220 duty
cycle). After transmission the loss model decides whether the datagram is lost in the air; a
survivor arrives ``latency`` plus a jitter sample later, possibly duplicated, possibly held back
by explicit reordering. Jitter reorders datagrams unless ``preserve_order`` is set, in which case
no datagram overtakes an earlier one (RLC in acknowledged mode delivers in order, so cellular
presets set it).

Every random choice comes from one :class:`random.Random` seeded at construction, drawn in a fixed
order per datagram, so a seed and a sequence of ``send`` calls give the same delivery times on any
machine. Time is an argument; :meth:`next_deadline` says when the next delivery is due.
"""

from __future__ import annotations

import copy
import enum
import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "Bernoulli",
    "DatagramTooLargeError",
    "Delivery",
    "DirectionParameters",
    "GilbertElliott",
    "LinkStatistics",
    "LossModel",
    "MtuPolicy",
    "NoLoss",
    "RadioLink",
    "SendOutcome",
]

IPV4_UDP_OVERHEAD = 28  # bytes: IPv4 header (20) + UDP header (8), RFC 791 / RFC 768


class LossModel(Protocol):
    """Decides, datagram by datagram, whether the air loses it; stateful, seeded by the link."""

    def lost(self, rng: random.Random) -> bool:
        """Whether the next datagram is lost."""
        ...


@dataclass
class NoLoss:
    """A link that loses nothing."""

    def lost(self, rng: random.Random) -> bool:
        """Never."""
        return False


@dataclass
class Bernoulli:
    """Independent loss: every datagram is lost with probability ``probability``."""

    probability: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("loss probability must be in [0, 1]")

    def lost(self, rng: random.Random) -> bool:
        """One Bernoulli trial."""
        return rng.random() < self.probability


@dataclass
class GilbertElliott:
    """Bursty loss: a two-state Markov chain stepped once per datagram (Gilbert 1960, Elliott 1963).

    In the good state a datagram is lost with ``loss_in_good``, in the bad state with
    ``loss_in_bad``. Before each datagram the chain moves good->bad with ``good_to_bad`` and
    bad->good with ``bad_to_good``. The stationary share of bad datagrams is
    ``good_to_bad / (good_to_bad + bad_to_good)`` and a bad spell lasts ``1 / bad_to_good``
    datagrams on average (geometric), which is what :meth:`mean_loss` and the tests use.
    """

    good_to_bad: float
    bad_to_good: float
    loss_in_good: float = 0.0
    loss_in_bad: float = 1.0
    bad: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for value in (self.good_to_bad, self.bad_to_good, self.loss_in_good, self.loss_in_bad):
            if not 0.0 <= value <= 1.0:
                raise ValueError("Gilbert-Elliott probabilities must be in [0, 1]")
        if self.good_to_bad + self.bad_to_good == 0.0:
            raise ValueError("the chain must be able to leave at least one state")

    def mean_loss(self) -> float:
        """The long-run loss rate the parameters imply."""
        share_bad = self.good_to_bad / (self.good_to_bad + self.bad_to_good)
        return share_bad * self.loss_in_bad + (1.0 - share_bad) * self.loss_in_good

    def lost(self, rng: random.Random) -> bool:
        """Step the chain, then one trial in the new state."""
        flip = rng.random()
        if self.bad:
            self.bad = flip >= self.bad_to_good
        else:
            self.bad = flip < self.good_to_bad
        return rng.random() < (self.loss_in_bad if self.bad else self.loss_in_good)


class MtuPolicy(enum.Enum):
    """What happens to a datagram larger than the MTU."""

    DROP = "drop"  # silently, counted: what a path without ICMP feedback does
    REPORT = "report"  # :meth:`RadioLink.send` raises, as ``sendto`` raises EMSGSIZE


class DatagramTooLargeError(ValueError):
    """Raised by :meth:`RadioLink.send` under :attr:`MtuPolicy.REPORT`."""

    def __init__(self, size: int, mtu: int) -> None:
        super().__init__(f"datagram of {size} bytes exceeds the link MTU of {mtu}")
        self.size = size
        self.mtu = mtu


class SendOutcome(enum.Enum):
    """What became of one datagram; a real sender learns only of ``TOO_LARGE`` under REPORT."""

    SCHEDULED = "scheduled"
    LOST = "lost"
    BUFFER_FULL = "buffer_full"
    TOO_LARGE = "too_large"


@dataclass(frozen=True)
class DirectionParameters:
    """The figures of one direction of a link; times in seconds, rates in bit/s, sizes in bytes.

    ``mtu`` bounds the datagram (UDP payload) size; ``overhead_bytes`` are the header bytes the
    radio carries per datagram on top of it (IPv4+UDP by default; a preset with header
    compression sets fewer).
    """

    bandwidth_bps: float
    latency: float  # one-way propagation and scheduling delay, before jitter
    jitter: float = 0.0  # a uniform extra delay in [0, jitter)
    loss: LossModel = field(default_factory=NoLoss)
    duplicate_probability: float = 0.0
    reorder_probability: float = 0.0
    reorder_delay: float = 0.0  # extra delay of an explicitly reordered datagram
    mtu: int = 1500
    mtu_policy: MtuPolicy = MtuPolicy.DROP
    buffer_bytes: int = 64 * 1024  # transmit queue bound (drop-tail)
    overhead_bytes: int = IPV4_UDP_OVERHEAD
    preserve_order: bool = False
    duty_cycle: float = 1.0  # share of time the transmitter may be on (EU868 LoRa: 0.01)

    def __post_init__(self) -> None:
        if self.bandwidth_bps <= 0:
            raise ValueError("bandwidth must be positive")
        if min(self.latency, self.jitter, self.reorder_delay) < 0:
            raise ValueError("delays must not be negative")
        for p in (self.duplicate_probability, self.reorder_probability):
            if not 0.0 <= p <= 1.0:
                raise ValueError("probabilities must be in [0, 1]")
        if not 0.0 < self.duty_cycle <= 1.0:
            raise ValueError("duty cycle must be in (0, 1]")
        if self.mtu <= 0 or self.buffer_bytes <= 0 or self.overhead_bytes < 0:
            raise ValueError("mtu and buffer must be positive, overhead not negative")

    def serialization_time(self, size: int) -> float:
        """Seconds the radio needs to put a datagram of ``size`` bytes on the air."""
        return (size + self.overhead_bytes) * 8.0 / self.bandwidth_bps


@dataclass(frozen=True)
class Delivery:
    """A datagram that arrives at the far end at time ``at``."""

    at: float
    datagram: bytes
    duplicate: bool = False


@dataclass(frozen=True)
class LinkStatistics:
    """Counters of one direction, a snapshot."""

    sent: int
    sent_bytes: int
    scheduled: int
    delivered: int
    delivered_bytes: int
    lost: int
    buffer_full: int
    too_large: int
    duplicated: int
    reordered: int


class RadioLink:
    """One direction of a link: :meth:`send` datagrams, collect :meth:`deliveries_due`."""

    def __init__(self, parameters: DirectionParameters, *, seed: int | str = 0) -> None:
        self.parameters = parameters
        self._rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not a secret
        self._loss = copy.deepcopy(parameters.loss)  # links built from one preset share no state
        self._transmit_end = 0.0  # when the current transmission ends
        self._next_start = 0.0  # when the next may begin (after any duty-cycle off time)
        self._in_queue: deque[tuple[float, int]] = deque()  # (transmission end, bytes)
        self._queued_bytes = 0
        self._pending: list[tuple[float, int, bytes, bool]] = []  # heap of deliveries
        self._sequence = 0
        self._last_arrival = 0.0
        self._counts = {
            "sent": 0,
            "sent_bytes": 0,
            "scheduled": 0,
            "delivered": 0,
            "delivered_bytes": 0,
            "lost": 0,
            "buffer_full": 0,
            "too_large": 0,
            "duplicated": 0,
            "reordered": 0,
        }

    def queued_bytes(self, now: float) -> int:
        """Bytes accepted but not yet fully transmitted at ``now``."""
        self._drain_queue(now)
        return self._queued_bytes

    def send(self, datagram: bytes, now: float) -> SendOutcome:
        """Offer ``datagram`` to the radio at ``now``; returns what became of it."""
        params = self.parameters
        size = len(datagram)
        self._counts["sent"] += 1
        self._counts["sent_bytes"] += size
        if size > params.mtu:
            self._counts["too_large"] += 1
            if params.mtu_policy is MtuPolicy.REPORT:
                raise DatagramTooLargeError(size, params.mtu)
            return SendOutcome.TOO_LARGE
        self._drain_queue(now)
        if self._queued_bytes + size > params.buffer_bytes:
            self._counts["buffer_full"] += 1
            return SendOutcome.BUFFER_FULL
        start = max(now, self._next_start)
        airtime = params.serialization_time(size)
        self._transmit_end = start + airtime
        self._next_start = self._transmit_end + airtime * (1.0 / params.duty_cycle - 1.0)
        self._in_queue.append((self._transmit_end, size))
        self._queued_bytes += size
        # Fixed draw order per accepted datagram: loss, jitter, reorder, duplicate (+ its jitter).
        lost = self._loss.lost(self._rng)
        jitter = self._rng.random() * params.jitter
        reorder = self._rng.random() < params.reorder_probability
        duplicate = self._rng.random() < params.duplicate_probability
        duplicate_jitter = self._rng.random() * params.jitter
        if lost:
            self._counts["lost"] += 1
            return SendOutcome.LOST
        arrival = self._transmit_end + params.latency + jitter
        if params.preserve_order:
            arrival = max(arrival, self._last_arrival)
        if reorder:
            arrival += params.reorder_delay
            self._counts["reordered"] += 1
        else:
            self._last_arrival = max(self._last_arrival, arrival)
        self._schedule(arrival, datagram, duplicate=False)
        if duplicate:
            self._counts["duplicated"] += 1
            self._schedule(arrival + duplicate_jitter, datagram, duplicate=True)
        return SendOutcome.SCHEDULED

    def next_deadline(self) -> float | None:
        """When the earliest pending delivery is due, or None when nothing is in flight."""
        return self._pending[0][0] if self._pending else None

    def deliveries_due(self, now: float) -> list[Delivery]:
        """Every delivery due at or before ``now``, earliest first (ties in send order)."""
        due: list[Delivery] = []
        while self._pending and self._pending[0][0] <= now:
            at, _, datagram, duplicate = heapq.heappop(self._pending)
            self._counts["delivered"] += 1
            self._counts["delivered_bytes"] += len(datagram)
            due.append(Delivery(at=at, datagram=datagram, duplicate=duplicate))
        return due

    def statistics(self) -> LinkStatistics:
        """A snapshot of the counters."""
        return LinkStatistics(**self._counts)

    def _schedule(self, at: float, datagram: bytes, *, duplicate: bool) -> None:
        self._counts["scheduled"] += 1
        heapq.heappush(self._pending, (at, self._sequence, datagram, duplicate))
        self._sequence += 1

    def _drain_queue(self, now: float) -> None:
        while self._in_queue and self._in_queue[0][0] <= now:
            self._queued_bytes -= self._in_queue.popleft()[1]
