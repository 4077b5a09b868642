"""The swarm's bookkeeping: what each operation became, and the closing summary (sans-IO).

A chat operation is *delivered* when its receiving device shows the message (``MessageArrived``
with the operation's token), a person operation when the sender hears DELIVERED for it (the
person's client sent a receipt, XEP-0184). A presence operation is counted *sent* only: the
client has no per-operation signal for presence and the swarm's devices do not watch each other,
so its delivery is not observed and it is in neither *delivered* nor *lost*. A message sent and
not delivered by the end is *lost*; a second arrival of the same chat operation is a
*duplicate*. Latency is from the application's call to the arrival (chat) or to the DELIVERED
report (person).
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from device_sim.budget import PROFILES, PrimitiveCounts, RadioActivity, estimate
from device_sim.radio.presets import LinkPreset
from device_sim.swarm.plan import TOKEN_PREFIX, OpKind, PlannedOp
from gateway import wire

__all__ = [
    "MAX_TRACES",
    "DeviceTotals",
    "KindSummary",
    "Ledger",
    "MessageTrace",
    "Outcome",
    "ProfileCost",
    "Summary",
    "percentile",
]

MAX_TRACES = 200  # messages listed one by one in the summary (the counts cover all of them)


class Outcome(enum.Enum):
    """What a message sent by the swarm became by the end of the run."""

    DELIVERED = "delivered"
    LOST = "lost"  # a FAILED report, or DELIVERED reported to the sender and never shown
    QUEUED = "queued"  # acknowledged by the gateway, nothing final heard yet
    UNACKNOWLEDGED = "unacknowledged"  # still in the sending device's outbox


@dataclass
class _Record:
    op: PlannedOp
    sent_at: float | None = None
    message_id: int | None = None
    delivered_at: float | None = None
    arrivals: int = 0
    accepted: bool = False  # the gateway acknowledged it: durable there, not to be resent
    report: wire.DeliveryStatus | None = None
    refused: str | None = None  # why the client would not take it


@dataclass(frozen=True)
class KindSummary:
    """Figures of one operation kind (or of all of them)."""

    planned: int
    sent: int
    accepted: int
    delivered: int
    lost: int
    queued: int  # in flight at the end, held by the gateway (accepted, no final report)
    unacknowledged: int  # in flight at the end, still in the sending device's outbox
    duplicated: int
    refused: int
    failed_reports: int
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None


@dataclass(frozen=True)
class MessageTrace:
    """One message that was not delivered, with what is needed to follow it at the gateway.

    ``sender`` and ``recipient`` are device indexes (``recipient`` indexes the people for a person
    message); ``message_id`` is the sender's SendMessage id; ``sent_at_s`` is seconds from the start
    of the run; ``report`` the final DeliveryReport's status name, if one came.
    """

    op_id: int
    kind: str
    outcome: str
    sender: int
    recipient: int
    message_id: int | None
    sent_at_s: float
    accepted: bool
    report: str | None


@dataclass(frozen=True)
class ProfileCost:
    """One device profile's cost per operation sent: CPU milliseconds, millijoules in all."""

    cpu_ms_per_op: float
    cpu_mj_per_op: float
    total_mj_per_op: float


@dataclass(frozen=True)
class DeviceTotals:
    """What the devices did together, summed over the swarm."""

    devices: int
    connected: int
    handshakes: int
    resumptions: int
    wakeups: int
    datagrams_sent: int
    datagrams_received: int
    payload_bytes_sent: int
    payload_bytes_received: int
    link_bytes_sent: int
    link_bytes_received: int
    awake_seconds: float
    asleep_seconds: float
    counts: PrimitiveCounts = field(default_factory=PrimitiveCounts)


@dataclass(frozen=True)
class Summary:
    """The closing summary of a swarm run (``--json`` prints :meth:`to_json`)."""

    devices: int
    link: str
    seed: int
    duration_s: float
    by_kind: Mapping[str, KindSummary]
    total: KindSummary
    link_bytes_per_op: float | None
    payload_bytes_per_op: float | None
    profiles: Mapping[str, ProfileCost]
    totals: DeviceTotals
    # Messages not delivered (lost first, then in flight, oldest first), at most MAX_TRACES.
    undelivered: tuple[MessageTrace, ...] = ()
    duplicated_ops: tuple[int, ...] = ()  # operations shown more than once, at most MAX_TRACES
    stray_arrivals: int = 0  # messages shown that are no operation of this run (an earlier run's)

    @property
    def in_flight(self) -> int:
        """Messages neither delivered nor lost at the end: queued plus unacknowledged."""
        return self.total.queued + self.total.unacknowledged

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        data = asdict(self)
        data["totals"].pop("counts")
        data["totals"]["primitive_counts"] = asdict(self.totals.counts)
        data["undelivered"] = [asdict(trace) for trace in self.undelivered]
        return data

    def to_json(self) -> str:
        """The summary as one JSON document."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in (0, 1]) of ``values``, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


class Ledger:
    """What each planned operation became, fed by the swarm's driver."""

    def __init__(self, ops: Sequence[PlannedOp], *, run_tag: str = "") -> None:
        self._records = {op.op_id: _Record(op) for op in ops}
        # Bodies of this run end with " run <tag>" (see body()); others are an earlier run's.
        self.run_tag = run_tag
        self._by_message: dict[tuple[int, int], _Record] = {}
        self.stray_arrivals = 0  # messages that name no operation of this swarm
        self._open = 0  # messages sent and neither delivered nor failed
        self._start = 0.0  # when the run began, for the traces' times

    def started(self, now: float) -> None:
        """The run began at ``now`` (the origin of the traces' ``sent_at_s``)."""
        self._start = now

    def sent(self, op: PlannedOp, now: float, message_id: int | None) -> None:
        """The client took ``op`` at ``now`` (a SendMessage id for messages)."""
        record = self._records[op.op_id]
        record.sent_at = now
        record.message_id = message_id
        if op.kind is not OpKind.PRESENCE:
            self._open += 1
        if message_id is not None:
            self._by_message[(op.sender, message_id)] = record

    def refused(self, op: PlannedOp, reason: str) -> None:
        """The client would not take ``op`` (outbox full, not connected)."""
        self._records[op.op_id].refused = reason

    def body(self, op: PlannedOp) -> str:
        """The text a message operation sends: its token, its sender and the run's tag."""
        tag = f" run {self.run_tag}" if self.run_tag else ""
        return f"{op.token} from device {op.sender}{tag}"

    def refuse_unreached(self, reason: str) -> None:
        """Count every operation neither sent nor refused as refused (the run ended first)."""
        for record in self._records.values():
            if record.sent_at is None and record.refused is None:
                record.refused = reason

    def arrived(self, receiver: int, text: str | None, now: float) -> None:
        """Device ``receiver`` showed a message (one of an earlier run's is a stray)."""
        record = self._record_of(text)
        if (
            record is None
            or text != self.body(record.op)
            or record.op.kind is not OpKind.CHAT
            or record.op.recipient != receiver
        ):
            self.stray_arrivals += 1
            return
        record.arrivals += 1
        if record.arrivals == 1:
            self._close(record)
            record.delivered_at = now

    def accepted(self, sender: int, message_id: int) -> None:
        """Device ``sender`` heard that the gateway holds its message ``message_id`` durably."""
        record = self._by_message.get((sender, message_id))
        if record is not None:
            record.accepted = True

    def reported(
        self, sender: int, message_id: int, status: wire.DeliveryStatus, now: float
    ) -> None:
        """Device ``sender`` heard the final report of its message ``message_id``."""
        record = self._by_message.get((sender, message_id))
        if record is None:
            return
        if status is wire.DeliveryStatus.FAILED:
            self._close(record)
        record.report = status
        if (
            record.op.kind is OpKind.PERSON
            and status is wire.DeliveryStatus.DELIVERED
            and record.delivered_at is None
        ):
            self._close(record)
            record.delivered_at = now
            record.arrivals = 1

    def _close(self, record: _Record) -> None:
        if (
            record.sent_at is not None
            and record.delivered_at is None
            and record.report is not wire.DeliveryStatus.FAILED
        ):
            self._open -= 1

    def outstanding(self) -> int:
        """Sent messages neither delivered nor failed yet (what a drain waits for)."""
        return self._open

    def delivered(self) -> int:
        """Operations delivered so far."""
        return sum(1 for r in self._records.values() if r.delivered_at is not None)

    def sent_count(self) -> int:
        """Operations the clients took so far."""
        return sum(1 for r in self._records.values() if r.sent_at is not None)

    def _record_of(self, text: str | None) -> _Record | None:
        if text is None or not text.startswith(TOKEN_PREFIX):
            return None
        number = text[len(TOKEN_PREFIX) :].split(" ", 1)[0]
        if not number.isdigit() or len(number) > 12:
            return None
        return self._records.get(int(number))

    @staticmethod
    def outcome(record: _Record) -> Outcome:
        """What a sent message became (see the module docstring)."""
        if record.delivered_at is not None:
            return Outcome.DELIVERED
        if record.report is wire.DeliveryStatus.FAILED:
            return Outcome.LOST
        if record.report is wire.DeliveryStatus.DELIVERED and record.op.kind is OpKind.CHAT:
            return (
                Outcome.LOST
            )  # the gateway says the receiver has it; the receiver never showed it
        return Outcome.QUEUED if record.accepted else Outcome.UNACKNOWLEDGED

    def traces(self, limit: int = MAX_TRACES) -> tuple[MessageTrace, ...]:
        """The messages not delivered, lost ones first, then by the time they were sent."""
        rank = {Outcome.LOST: 0, Outcome.QUEUED: 1, Outcome.UNACKNOWLEDGED: 2}
        undelivered: list[tuple[int, float, MessageTrace]] = []
        for record in self._records.values():
            if record.sent_at is None or record.op.kind is OpKind.PRESENCE:
                continue
            outcome = self.outcome(record)
            if outcome is Outcome.DELIVERED:
                continue
            trace = MessageTrace(
                op_id=record.op.op_id,
                kind=record.op.kind.value,
                outcome=outcome.value,
                sender=record.op.sender,
                recipient=record.op.recipient if record.op.recipient is not None else -1,
                message_id=record.message_id,
                sent_at_s=round(record.sent_at - self._start, 6),
                accepted=record.accepted,
                report=record.report.name if record.report is not None else None,
            )
            undelivered.append((rank[outcome], record.sent_at, trace))
        undelivered.sort(key=lambda item: (item[0], item[1], item[2].op_id))
        return tuple(trace for _, _, trace in undelivered[:limit])

    def kind_summary(self, kind: OpKind | None) -> KindSummary:
        """Figures of ``kind`` (None: all kinds)."""
        records = [r for r in self._records.values() if kind is None or r.op.kind is kind]
        sent = [r for r in records if r.sent_at is not None]
        observable = [r for r in sent if r.op.kind is not OpKind.PRESENCE]
        outcomes = [self.outcome(r) for r in observable]
        delivered = [r for r in observable if r.delivered_at is not None]
        latencies = [  # to the microsecond: what the clock can tell, whatever time it started at
            round((r.delivered_at - r.sent_at) * 1000.0, 3)
            for r in delivered
            if r.delivered_at is not None and r.sent_at is not None
        ]
        return KindSummary(
            planned=len(records),
            sent=len(sent),
            accepted=sum(1 for r in observable if r.accepted),
            delivered=len(delivered),
            lost=outcomes.count(Outcome.LOST),
            queued=outcomes.count(Outcome.QUEUED),
            unacknowledged=outcomes.count(Outcome.UNACKNOWLEDGED),
            duplicated=sum(max(0, r.arrivals - 1) for r in observable),
            refused=sum(1 for r in records if r.refused is not None),
            failed_reports=sum(
                1
                for r in sent
                if r.report in (wire.DeliveryStatus.FAILED, wire.DeliveryStatus.UNKNOWN)
            ),
            latency_p50_ms=percentile(latencies, 0.50),
            latency_p90_ms=percentile(latencies, 0.90),
            latency_p99_ms=percentile(latencies, 0.99),
        )

    def summarize(
        self,
        *,
        devices: int,
        preset: LinkPreset,
        seed: int,
        duration: float,
        totals: DeviceTotals,
    ) -> Summary:
        """The closing summary; costs are per operation sent."""
        total = self.kind_summary(None)
        ops = total.sent
        activity = RadioActivity(
            tx_bytes=totals.link_bytes_sent,
            rx_bytes=totals.link_bytes_received,
            wakeups=totals.wakeups,
            idle_seconds=totals.awake_seconds,
            sleep_seconds=totals.asleep_seconds,
        )
        profiles: dict[str, ProfileCost] = {}
        for name, profile in PROFILES.items():
            cost = estimate(profile, totals.counts, preset, activity)
            profiles[name] = ProfileCost(
                cpu_ms_per_op=cost.cpu_ms / ops if ops else 0.0,
                cpu_mj_per_op=cost.cpu_mj / ops if ops else 0.0,
                total_mj_per_op=cost.total_mj / ops if ops else 0.0,
            )
        link_bytes = totals.link_bytes_sent + totals.link_bytes_received
        payload = totals.payload_bytes_sent + totals.payload_bytes_received
        return Summary(
            devices=devices,
            link=preset.name,
            seed=seed,
            duration_s=duration,
            by_kind={k.value: self.kind_summary(k) for k in OpKind},
            total=total,
            link_bytes_per_op=link_bytes / ops if ops else None,
            payload_bytes_per_op=payload / ops if ops else None,
            profiles=profiles,
            totals=totals,
            undelivered=self.traces(),
            stray_arrivals=self.stray_arrivals,
            duplicated_ops=tuple(
                sorted(r.op.op_id for r in self._records.values() if r.arrivals > 1)[:MAX_TRACES]
            ),
        )
