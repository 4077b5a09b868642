"""Reliable delivery over datagrams: RTO estimation, retransmission with back-off, acknowledgement
ranges and in-order reassembly of the reliable record sequence.

Theory of operation.

* RTO (RFC 6298). SRTT/RTTVAR with alpha 1/8, beta 1/4, K 4; samples only from records sent once
  (Karn's algorithm, RFC 6298 §3). Before the first sample the RTO is CoAP's ACK_TIMEOUT times a
  random factor in [1, ACK_RANDOM_FACTOR) (RFC 7252 §4.8), 2 s, which suits GPRS and NB-IoT round
  trips of 0.3-1.5 s better than RFC 6298's 1 s. Each record has its own retransmission deadline;
  every timeout doubles that record's timeout (RFC 6298 §5.5) up to :data:`MAX_RTO`.
* Politeness (RFC 8085 §3.1). At most ``max_in_flight`` unacknowledged reliable records; new
  records wait until acks free a slot. A peer that acknowledges nothing for ``max_retransmissions``
  timeouts of one record is declared gone.
* Acks. The receiver acknowledges ``cumulative`` (every record below it arrived) plus ascending
  disjoint ``selective`` ranges of records received above it (RFC 2018 in spirit). Numbers travel
  modulo 2^16 (``cumulative``) and as offsets above it (ranges), and are reconstructed against the
  sender's window, whose width is far below 2^15.
* Ordering. Received records wait in a bounded buffer until every lower number arrived; each is
  delivered once, in order. Duplicates are acknowledged again (the earlier ack may have been lost)
  but never delivered twice.
* Held records (docs/protocol.md §3.5). A receiver that acknowledges only what its application
  made durable marks records that carry operations as *unreleased* until the application releases
  them: ``cumulative`` stops at the lowest unreleased record and selective ranges skip every
  unreleased one, so an ack never covers an operation that is not yet durable. The receive window
  is counted from that lowest unreleased record, which bounds what a slow application holds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from gateway import wire
from gateway.session.codec import ControlItem
from gateway.session.errors import DropReason, RecordRejectedError, RemoteSessionError
from gateway.session.packets import Content, Fragment

ACK_TIMEOUT = 2.0  # RFC 7252 §4.8: initial RTO for an unknown path, seconds
ACK_RANDOM_FACTOR = 1.5  # RFC 7252 §4.8
MIN_RTO = 1.0  # RFC 6298 §2.4
MAX_RTO = 60.0  # RFC 6298 §2.5 allows a maximum of at least 60 s
CLOCK_GRANULARITY = 0.01  # G of RFC 6298 §2
DEFAULT_MAX_IN_FLIGHT = 8  # unacknowledged reliable records (RFC 8085 §3.1 politeness)
# On a stream (TCP), where acks wait for the receiver's commits, not for the link: TCP's own
# congestion control paces the bytes, so the bound only caps what a sender keeps for a later
# session. Half the receive window, so a record never lands beyond it (a fatal gap on a stream).
DEFAULT_STREAM_MAX_IN_FLIGHT = 32
DEFAULT_MAX_RETRANSMISSIONS = 12  # timeouts of one record before the peer is declared gone
DEFAULT_RECEIVE_WINDOW = 64  # records buffered ahead of the next expected one
DEFAULT_ACK_DELAY = 0.05  # seconds a lone ack waits for data to ride on (piggybacking)
ACK_MODULUS = 1 << 16  # acks carry record numbers modulo 2^16 (docs/protocol.md §3.5)


class RttEstimator:
    """Round-trip estimate and retransmission timeout per RFC 6298 §2."""

    __slots__ = ("rto", "rttvar", "srtt")

    def __init__(self, rng: random.Random, *, initial_rto: float = ACK_TIMEOUT) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = initial_rto * rng.uniform(1.0, ACK_RANDOM_FACTOR)

    def sample(self, rtt: float) -> None:
        """Feed one round-trip measurement from a record sent exactly once."""
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(MAX_RTO, max(MIN_RTO, self.srtt + max(CLOCK_GRANULARITY, 4 * self.rttvar)))


@dataclass(slots=True)
class InFlight:
    """One sent, unacknowledged reliable record: its exact bytes are what a retransmission sends."""

    sequence: int
    datagram: bytes
    operation_ids: tuple[int, ...]
    first_sent: float
    deadline: float
    timeout: float
    transmissions: int = 1


@dataclass(slots=True)
class SendWindow:
    """Reliable records in flight, ordered by number."""

    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_retransmissions: int = DEFAULT_MAX_RETRANSMISSIONS
    records: dict[int, InFlight] = field(default_factory=dict)
    oldest_unacknowledged: int = 0  # snd_una
    next_sequence: int = 0  # snd_nxt
    retransmissions: int = 0

    def has_room(self) -> bool:
        """True if another new record may be sent."""
        return len(self.records) < self.max_in_flight

    def next_deadline(self) -> float | None:
        """Earliest retransmission deadline (records on a stream have none: ``math.inf``)."""
        deadline = math.inf
        for record in self.records.values():
            if record.deadline < deadline:
                deadline = record.deadline
        return None if deadline == math.inf else deadline

    def due(self, now: float) -> list[InFlight]:
        """Records whose timer expired; each is backed off (RFC 6298 §5.5) and counted."""
        expired = [r for r in self.records.values() if r.deadline <= now]
        for record in sorted(expired, key=lambda r: r.sequence):
            if record.transmissions > self.max_retransmissions:
                raise RemoteSessionError("peer stopped acknowledging", reason=DropReason.UNEXPECTED)
            record.timeout = min(MAX_RTO, record.timeout * 2)
            record.deadline = now + record.timeout
            record.transmissions += 1
            self.retransmissions += 1
        return sorted(expired, key=lambda r: r.sequence)

    def acknowledge(
        self, cumulative: int, selective: tuple[tuple[int, int], ...], now: float, rtt: RttEstimator
    ) -> list[InFlight]:
        """Apply an ack (numbers already reconstructed); return the newly acknowledged records."""
        acked: list[InFlight] = []
        for sequence in sorted(self.records):
            covered = sequence < cumulative or any(a <= sequence <= b for a, b in selective)
            if covered:
                acked.append(self.records.pop(sequence))
        if self.records:
            self.oldest_unacknowledged = min(self.records)
        else:
            self.oldest_unacknowledged = self.next_sequence
            if acked:
                self.records = {}  # all acknowledged: drop the table the flight grew
        for record in acked:
            if record.transmissions == 1:
                rtt.sample(now - record.first_sent)
        return acked

    def reconstruct_ack(
        self, cumulative: int, selective: tuple[tuple[int, int], ...]
    ) -> tuple[int, tuple[tuple[int, int], ...]]:
        """Undo the modulo-2^16 reduction of an ack against this window (docs/protocol.md §3.5)."""
        if not 0 <= cumulative < ACK_MODULUS:
            raise RecordRejectedError("ack number out of range", reason=DropReason.MALFORMED)
        base = self.oldest_unacknowledged
        full = (base & ~(ACK_MODULUS - 1)) | cumulative
        if full < base - ACK_MODULUS // 2:
            full += ACK_MODULUS
        elif full > base + ACK_MODULUS // 2 and full >= ACK_MODULUS:
            full -= ACK_MODULUS
        if full > self.next_sequence:
            raise RecordRejectedError("ack for a record never sent", reason=DropReason.UNEXPECTED)
        ranges = tuple((full + a - cumulative, full + b - cumulative) for a, b in selective)
        return full, ranges


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    """A decrypted reliable record waiting for its turn."""

    fragment: Fragment
    content: Content
    plaintext: bytes  # a fragment's bytes (empty for whole records, decoded on arrival)
    messages: tuple[wire.Message, ...] = ()  # whole records of operations, decoded on arrival
    control: tuple[ControlItem, ...] = ()  # whole records of control items, decoded on arrival


class ReceiveWindow:
    """Reliable records received: in-order release, duplicate detection, ack generation.

    Its two collections are empty most of the time (a gap, or records awaiting their release):
    both are shared empty placeholders until needed and again once drained, so an idle session
    keeps no buffers.
    """

    __slots__ = ("_buffered", "_unreleased", "max_ranges", "next_expected", "receive_window")

    def __init__(
        self, *, receive_window: int = DEFAULT_RECEIVE_WINDOW, max_ranges: int = 4
    ) -> None:
        self.receive_window = receive_window
        self.max_ranges = max_ranges
        self.next_expected = 0  # rcv_nxt
        self._buffered: dict[int, ReceivedRecord] = {}  # above a gap (empty without loss)
        # Received, carrying operations not yet released; None while there are none.
        self._unreleased: set[int] | None = None

    @property
    def acknowledgement_base(self) -> int:
        """The cumulative number an ack may advertise: the lowest unreleased or missing record."""
        if self._unreleased:
            return min(self.next_expected, min(self._unreleased))
        return self.next_expected

    @property
    def unreleased(self) -> int:
        """How many received records wait for their release."""
        return len(self._unreleased) if self._unreleased else 0

    def classify(self, sequence: int) -> str:
        """``"new"``, ``"duplicate"`` or ``"beyond"`` (outside the receive window)."""
        if sequence < self.next_expected or sequence in self._buffered:
            return "duplicate"
        if sequence >= self.acknowledgement_base + self.receive_window:
            return "beyond"
        return "new"

    def hold(self, sequence: int) -> None:
        """Keep ``sequence`` out of every ack until :meth:`release`."""
        if self._unreleased is None:
            self._unreleased = set()
        self._unreleased.add(sequence)

    def release(self, sequences: tuple[int, ...]) -> None:
        """Let acks cover these records again."""
        if self._unreleased is not None:
            self._unreleased.difference_update(sequences)
            if not self._unreleased:
                self._unreleased = None

    def add(self, sequence: int, record: ReceivedRecord) -> list[tuple[int, ReceivedRecord]]:
        """Store a new record; return the records now deliverable in order, with their numbers."""
        if sequence == self.next_expected and not self._buffered:  # in order, no gap: the norm
            self.next_expected += 1
            return [(sequence, record)]
        self._buffered[sequence] = record
        ready: list[tuple[int, ReceivedRecord]] = []
        while self.next_expected in self._buffered:
            ready.append((self.next_expected, self._buffered.pop(self.next_expected)))
            self.next_expected += 1
        if not self._buffered:
            self._buffered = {}  # the gap closed: drop the table it grew
        return ready

    def has_gap(self) -> bool:
        """True if records above a missing one are buffered (ack at once, as TCP does)."""
        return bool(self._buffered)

    def ack_fields(self) -> tuple[int, tuple[tuple[int, int], ...]]:
        """``(cumulative mod 2^16, selective ranges as offsets above it)`` for the wire Ack."""
        base = self.acknowledgement_base
        cumulative = base % ACK_MODULUS
        unreleased = self._unreleased or ()
        if not unreleased and not self._buffered:
            return cumulative, ()  # nothing above the cumulative number: no ranges
        received = [*range(base + 1, self.next_expected), *sorted(self._buffered)]
        ranges: list[tuple[int, int]] = []
        for sequence in received:
            if sequence in unreleased:
                continue
            if ranges and ranges[-1][1] == sequence - 1:
                ranges[-1] = (ranges[-1][0], sequence)
            else:
                ranges.append((sequence, sequence))
        offset = base - cumulative
        selective = tuple((a - offset, b - offset) for a, b in ranges[: self.max_ranges])
        return cumulative, selective
