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

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from device_sim.budget import PROFILES, PrimitiveCounts, RadioActivity, estimate
from device_sim.radio.presets import LinkPreset
from device_sim.swarm.plan import TOKEN_PREFIX, OpKind, PlannedOp
from gateway import wire

__all__ = ["DeviceTotals", "KindSummary", "Ledger", "ProfileCost", "Summary", "percentile"]


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
    duplicated: int
    refused: int
    failed_reports: int
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None


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

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        data = asdict(self)
        data["totals"].pop("counts")
        data["totals"]["primitive_counts"] = asdict(self.totals.counts)
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

    def __init__(self, ops: Sequence[PlannedOp]) -> None:
        self._records = {op.op_id: _Record(op) for op in ops}
        self._by_message: dict[tuple[int, int], _Record] = {}
        self.stray_arrivals = 0  # messages that name no operation of this swarm
        self._open = 0  # messages sent and neither delivered nor failed

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

    def arrived(self, receiver: int, text: str | None, now: float) -> None:
        """Device ``receiver`` showed a message."""
        record = self._record_of(text)
        if record is None or record.op.kind is not OpKind.CHAT or record.op.recipient != receiver:
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

    def kind_summary(self, kind: OpKind | None) -> KindSummary:
        """Figures of ``kind`` (None: all kinds)."""
        records = [r for r in self._records.values() if kind is None or r.op.kind is kind]
        sent = [r for r in records if r.sent_at is not None]
        observable = [r for r in sent if r.op.kind is not OpKind.PRESENCE]
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
            lost=len(observable) - len(delivered),
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
        )
