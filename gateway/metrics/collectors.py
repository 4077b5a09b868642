"""Prometheus collectors over the layers' frozen ``statistics()`` snapshots, read at scrape time.

Each layer already counts what it does and drops (STYLE rule 8) and hands out a frozen snapshot;
these collectors read the snapshots when Prometheus scrapes and translate every field into a
metric family. Nothing is counted twice and the cores carry no metrics hooks. Sources are
callables (``endpoint.statistics``, ``writer.statistics``) so the service wires live objects and
tests pass real ones.

:data:`FIELD_FAMILIES` says which family carries each field of each statistics dataclass; a test
checks that it names every field and that each family is exposed, so a counter added to a layer
cannot be forgotten here. Reason labels are emitted at zero for every reason the layer defines,
so a rate over a reason exists before its first drop.

Per-device numbers become histograms over devices (how many devices have a queue of at most N
items), never one series per device: the number of series stays fixed however many devices enroll.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from gateway.relay import RelayStatistics
from gateway.session import GatewayStatistics
from gateway.session.errors import DropReason
from gateway.signing import VerificationFailure, VerifierStatistics
from gateway.store import WriterStatistics
from gateway.transport import TransportStatistics
from gateway.wire.enums import DeliveryStatus
from gateway.xmpp import ClientState, ClientStatistics, StanzaDropReason

from .views import DeviceQueueView, RelayView, RetiredUpstream, UpstreamView

__all__ = [
    "FIELD_FAMILIES",
    "LATENCY_FAMILIES",
    "QUEUE_AGE_BUCKETS",
    "QUEUE_DEPTH_BUCKETS",
    "LatencyCollector",
    "LatencySnapshot",
    "RelayCollector",
    "SessionCollector",
    "SignatureCollector",
    "StoreCollector",
    "TransportCollector",
    "UpstreamCollector",
]

PREFIX = "impp_gateway"

# Upper bounds of the queue histograms over devices: depth in items, age in seconds (a minute,
# five, a quarter, an hour, four, a day, a week: the spans an operator asks about a sleeping
# device).
QUEUE_DEPTH_BUCKETS: tuple[float, ...] = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, math.inf)
QUEUE_AGE_BUCKETS: tuple[float, ...] = (
    1, 10, 60, 300, 900, 3600, 14400, 86400, 604800, math.inf,
)  # fmt: skip

# The transport adapters' own drop reasons (gateway/transport/_driver.py, udp.py, tcp.py).
TRANSPORT_DROP_REASONS: tuple[str, ...] = (
    "internal_error",
    "internal_error_timer",
    "internal_error_send",
    "internal_error_connection",
    "send_queue_full",
    "closing",
    "receive_error",
    "too_large",
    "event_after_close",
)

FIELD_FAMILIES: Mapping[type, Mapping[str, str]] = {
    GatewayStatistics: {
        "datagrams_received": f"{PREFIX}_session_datagrams",
        "datagrams_sent": f"{PREFIX}_session_datagrams",
        "bytes_received": f"{PREFIX}_session_bytes",
        "bytes_sent": f"{PREFIX}_session_bytes",
        "handshakes_in_progress": f"{PREFIX}_device_sessions",
        "sessions": f"{PREFIX}_device_sessions",
        "retries_sent": f"{PREFIX}_session_retries_sent",
        "handshakes_completed": f"{PREFIX}_session_handshakes_completed",
        "resumptions": f"{PREFIX}_session_resumptions",
        "replaced": f"{PREFIX}_session_replaced",
        "rejects_sent": f"{PREFIX}_session_rejects_sent",
        "handshakes_evicted": f"{PREFIX}_session_handshakes_evicted",
        "migrations": f"{PREFIX}_session_migrations",
        "amplification_held": f"{PREFIX}_session_amplification_held",
        "retransmissions": f"{PREFIX}_session_live_retransmissions",
        "acknowledgements_held": f"{PREFIX}_session_acknowledgements_held",
        "acknowledgements_overdue": f"{PREFIX}_session_acknowledgements_overdue",
        "dropped": f"{PREFIX}_session_dropped",
    },
    TransportStatistics: {
        "datagrams_received": f"{PREFIX}_transport_packets",
        "datagrams_sent": f"{PREFIX}_transport_packets",
        "send_errors": f"{PREFIX}_transport_send_errors",
        "dropped": f"{PREFIX}_transport_dropped",
        "core": f"{PREFIX}_session_datagrams",  # the core's fields, as GatewayStatistics above
    },
    UpstreamView: {
        "state": f"{PREFIX}_upstream_sessions",
        "stopped": f"{PREFIX}_upstream_sessions",
        "connections": f"{PREFIX}_upstream_reconnects",
        "client": f"{PREFIX}_upstream_stanzas",  # the client's fields, as ClientStatistics below
    },
    RetiredUpstream: {
        "client": f"{PREFIX}_upstream_stanzas",  # the closed sessions' ClientStatistics
        "connections": f"{PREFIX}_upstream_connections",
        "reconnections": f"{PREFIX}_upstream_reconnects",
    },
    ClientStatistics: {
        "stanzas_sent": f"{PREFIX}_upstream_stanzas",
        "stanzas_received": f"{PREFIX}_upstream_stanzas",
        "bytes_received": f"{PREFIX}_upstream_bytes_received",
        "dropped": f"{PREFIX}_upstream_stanzas_dropped",
        "unacknowledged": f"{PREFIX}_upstream_unacknowledged_stanzas",
    },
    WriterStatistics: {
        "commits": f"{PREFIX}_store_commits",
        "failed_commits": f"{PREFIX}_store_commits",
        "operations_committed": f"{PREFIX}_store_batch_operations",
        "operations_failed": f"{PREFIX}_store_operations_failed",
        "largest_batch": f"{PREFIX}_store_batch_operations_max",
        "commit_seconds_total": f"{PREFIX}_store_commit_seconds",
        "commit_seconds_max": f"{PREFIX}_store_commit_seconds_max",
        "pending": f"{PREFIX}_store_pending_operations",
    },
    RelayView: {
        "queues": f"{PREFIX}_device_queue_depth",
        "delivery_reports": f"{PREFIX}_delivery_reports",
        "relays": f"{PREFIX}_relay_dropped",  # each relay's fields, as RelayStatistics below
    },
    DeviceQueueView: {
        "depth": f"{PREFIX}_device_queue_depth",
        "oldest_age": f"{PREFIX}_device_queue_oldest_age_seconds",
    },
    RelayStatistics: {
        "dropped": f"{PREFIX}_relay_dropped",
        "pending_reports": f"{PREFIX}_relay_pending_reports",
        "owed_receipts": f"{PREFIX}_relay_owed_receipts",
        "tracked_queue": f"{PREFIX}_relay_tracked_queue_items",
        "reports_delivered": f"{PREFIX}_delivery_reports",
        "reports_failed": f"{PREFIX}_delivery_reports",
        "reports_unknown": f"{PREFIX}_delivery_reports",
        "messages_signed": f"{PREFIX}_relay_signatures_made",
        "presence_signed": f"{PREFIX}_relay_signatures_made",
        "signing_failures": f"{PREFIX}_relay_signing_failures",
        "inbound_verified": f"{PREFIX}_relay_inbound_signatures",
        "inbound_signature_failed": f"{PREFIX}_relay_inbound_signatures",
        "inbound_unsigned": f"{PREFIX}_relay_inbound_signatures",
        "presence_unsubscribed": f"{PREFIX}_relay_presence_withheld",
        "overflow_reports": f"{PREFIX}_relay_sender_reports",
        "expiry_reports": f"{PREFIX}_relay_sender_reports",
        "blocked_reports": f"{PREFIX}_relay_sender_reports",
        "unavailable_announced": f"{PREFIX}_relay_unavailable_announced",
        "directed_watchers": f"{PREFIX}_relay_directed_watchers",
        "wake_sync_timeouts": f"{PREFIX}_relay_wake_sync_timeouts",
    },
    VerifierStatistics: {
        "verified": f"{PREFIX}_signature_verifications",
        "unsigned": f"{PREFIX}_signature_verifications",
        "failed": f"{PREFIX}_signature_verifications",
        "remembered_signatures": f"{PREFIX}_signature_remembered_signatures",
        "remembered_senders": f"{PREFIX}_signature_remembered_senders",
    },
}


def _by_reason(known: Iterable[str], snapshots: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Sum per-reason counters over snapshots, every known reason present (at zero if unseen)."""
    totals: Counter[str] = Counter(dict.fromkeys(known, 0))
    for snapshot in snapshots:
        for reason, count in snapshot.items():
            totals[str(reason)] += count
    return dict(sorted(totals.items()))


def _counter(name: str, documentation: str, labels: Sequence[str]) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels)


def _gauge(name: str, documentation: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels)


def _session_families(samples: Sequence[tuple[str, GatewayStatistics]]) -> Iterator[Metric]:
    """The session core's families, one labelled sample per listener."""
    datagrams = _counter("session_datagrams", "Datagrams or stream packets the core handled.",
                         ["listener", "direction"])  # fmt: skip
    octets = _counter("session_bytes", "Bytes the core received and sent, headers included.",
                      ["listener", "direction"])  # fmt: skip
    sessions = _gauge("device_sessions", "Device sessions by state.", ["listener", "state"])
    dropped = _counter("session_dropped", "Packets the core dropped, by reason.",
                       ["listener", "reason"])  # fmt: skip
    simple = {
        "retries_sent": _counter(
            "session_retries_sent", "Stateless retries (cookies) sent under load.", ["listener"]
        ),
        "handshakes_completed": _counter(
            "session_handshakes_completed",
            "Full EDHOC handshakes that opened a session (failures: session_dropped).",
            ["listener"],
        ),
        "resumptions": _counter(
            "session_resumptions", "Sessions resumed from a ticket.", ["listener"]
        ),
        "acknowledgements_overdue": _counter(
            "session_acknowledgements_overdue",
            "Sessions ended because a received record waited too long for durability.",
            ["listener"],
        ),
        "replaced": _counter(
            "session_replaced", "Sessions ended because their device resumed.", ["listener"]
        ),
        "rejects_sent": _counter(
            "session_rejects_sent", "REJECTs sent (reset token or decoy).", ["listener"]
        ),
        "handshakes_evicted": _counter(
            "session_handshakes_evicted",
            "Half-open handshakes dropped to admit another host's.",
            ["listener"],
        ),
        "migrations": _counter(
            "session_migrations", "Sessions moved to a new validated address.", ["listener"]
        ),
        "amplification_held": _counter(
            "session_amplification_held",
            "Datagrams held until the peer sent more or was validated (3x rule).",
            ["listener"],
        ),
    }
    retransmissions = _gauge(
        "session_live_retransmissions",
        "Retransmissions by the sessions alive now (falls when a session ends).",
        ["listener"],
    )
    held = _gauge(
        "session_acknowledgements_held",
        "Received records waiting until the gateway has made them durable.",
        ["listener"],
    )
    drop_reasons = [reason.value for reason in DropReason]
    for listener, stats in samples:
        datagrams.add_metric([listener, "received"], stats.datagrams_received)
        datagrams.add_metric([listener, "sent"], stats.datagrams_sent)
        octets.add_metric([listener, "received"], stats.bytes_received)
        octets.add_metric([listener, "sent"], stats.bytes_sent)
        sessions.add_metric([listener, "handshaking"], stats.handshakes_in_progress)
        sessions.add_metric([listener, "established"], stats.sessions)
        for field_name, family in simple.items():
            family.add_metric([listener], getattr(stats, field_name))
        retransmissions.add_metric([listener], stats.retransmissions)
        held.add_metric([listener], stats.acknowledgements_held)
        for reason, count in _by_reason(drop_reasons, [stats.dropped]).items():
            dropped.add_metric([listener, reason], count)
    yield datagrams
    yield octets
    yield sessions
    yield from simple.values()
    yield retransmissions
    yield held
    yield dropped


class SessionCollector(Collector):
    """Families of session cores read directly: ``{listener name: core.statistics}``."""

    def __init__(self, sources: Mapping[str, Callable[[], GatewayStatistics]]) -> None:
        self._sources = dict(sources)

    def collect(self) -> Iterable[Metric]:
        """Read every core now."""
        return _session_families([(name, read()) for name, read in self._sources.items()])


class TransportCollector(Collector):
    """The listeners' families and their cores': ``{listener name: endpoint.statistics}``.

    The listener name is a label; keep it to the few configured listeners (``"udp"``, ``"tcp"``
    or ``"udp 127.0.0.1:5690"``).
    """

    def __init__(self, sources: Mapping[str, Callable[[], TransportStatistics]]) -> None:
        self._sources = dict(sources)

    def collect(self) -> Iterable[Metric]:
        """Read every listener now."""
        samples = [(name, read()) for name, read in self._sources.items()]
        packets = _counter("transport_packets", "Datagrams or stream packets the adapter moved.",
                           ["listener", "direction"])  # fmt: skip
        send_errors = _counter("transport_send_errors", "Socket sends that failed.", ["listener"])
        dropped = _counter(
            "transport_dropped",
            "What the adapter dropped itself, by reason.",
            ["listener", "reason"],
        )
        for name, stats in samples:
            packets.add_metric([name, "received"], stats.datagrams_received)
            packets.add_metric([name, "sent"], stats.datagrams_sent)
            send_errors.add_metric([name], stats.send_errors)
            for reason, count in _by_reason(TRANSPORT_DROP_REASONS, [stats.dropped]).items():
                dropped.add_metric([name, reason], count)
        yield packets
        yield send_errors
        yield dropped
        yield from _session_families([(name, stats.core) for name, stats in samples])


class UpstreamCollector(Collector):
    """Upstream XMPP sessions: ``lambda: upstream_views(manager.sessions.values())``, and
    ``retired``: ``lambda: retired_upstream(managers)``.

    The counters are monotonic: each session's counts cover every stream it ran (reconnections
    included), and what the sessions closed since start did is added from ``retired``, so
    neither a reconnection nor a closed session lowers a counter.
    """

    def __init__(
        self,
        source: Callable[[], Sequence[UpstreamView]],
        retired: Callable[[], RetiredUpstream] | None = None,
    ) -> None:
        self._source = source
        self._retired = retired or RetiredUpstream

    def collect(self) -> Iterable[Metric]:
        """Read every session now."""
        live = self._source()
        retired = self._retired()
        clients = [view.client for view in live]
        if retired.client is not None:
            clients.append(retired.client)
        views = live
        sessions = _gauge("upstream_sessions", "Upstream sessions by stream state.", ["state"])
        states = Counter("stopped" if view.stopped else view.state.name.lower() for view in views)
        for state in [*(s.name.lower() for s in ClientState), "stopped"]:
            sessions.add_metric([state], states.get(state, 0))
        yield sessions
        connections = sum(view.connections for view in views) + retired.connections
        reconnects = sum(max(view.connections - 1, 0) for view in views) + retired.reconnections
        yield CounterMetricFamily(
            f"{PREFIX}_upstream_connections", "Connections established.", value=connections
        )
        yield CounterMetricFamily(
            f"{PREFIX}_upstream_reconnects",
            "Connections after a session's first.",
            value=reconnects,
        )
        stanzas = _counter("upstream_stanzas", "Stanzas on the upstream streams.", ["direction"])
        stanzas.add_metric(["sent"], sum(client.stanzas_sent for client in clients))
        stanzas.add_metric(["received"], sum(client.stanzas_received for client in clients))
        yield stanzas
        yield CounterMetricFamily(
            f"{PREFIX}_upstream_bytes_received",
            "Bytes received on the upstream streams.",
            value=sum(client.bytes_received for client in clients),
        )
        dropped = _counter("upstream_stanzas_dropped", "Stanzas dropped, by reason.", ["reason"])
        reasons = [reason.value for reason in StanzaDropReason]
        totals = _by_reason(reasons, [{str(k): v for k, v in client.dropped.items()}
                                      for client in clients])  # fmt: skip
        for reason, count in totals.items():
            dropped.add_metric([reason], count)
        yield dropped
        yield GaugeMetricFamily(
            f"{PREFIX}_upstream_unacknowledged_stanzas",
            "Stanzas sent and not yet acknowledged by the server (XEP-0198).",
            value=sum(view.client.unacknowledged for view in live),
        )


class StoreCollector(Collector):
    """The store's writer: ``store.statistics`` (or ``writer.statistics``)."""

    def __init__(self, source: Callable[[], WriterStatistics]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        """Read the writer now."""
        stats = self._source()
        commits = _counter("store_commits", "Batches committed or failed.", ["outcome"])
        commits.add_metric(["ok"], stats.commits)
        commits.add_metric(["failed"], stats.failed_commits)
        yield commits
        yield SummaryMetricFamily(
            f"{PREFIX}_store_batch_operations",
            "Operations per committed batch (count: batches, sum: operations).",
            count_value=stats.commits,
            sum_value=stats.operations_committed,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_store_operations_failed",
            "Operations that failed (their batch's commit or they themselves).",
            value=stats.operations_failed,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_store_batch_operations_max",
            "The largest batch committed since start.",
            value=stats.largest_batch,
        )
        yield SummaryMetricFamily(
            f"{PREFIX}_store_commit_seconds",
            "Wall time of one batch, BEGIN to the end of COMMIT, ok and failed.",
            count_value=stats.commits + stats.failed_commits,
            sum_value=stats.commit_seconds_total,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_store_commit_seconds_max",
            "The longest batch since start.",
            value=stats.commit_seconds_max,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_store_pending_operations",
            "Operations submitted and not yet taken into a batch.",
            value=stats.pending,
        )


def _histogram_over(values: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative buckets ``(le, devices with value <= le)`` in OpenMetrics' notation."""
    ordered = sorted(values)
    buckets: list[tuple[str, float]] = []
    index = 0
    for bound in bounds:
        while index < len(ordered) and ordered[index] <= bound:
            index += 1
        buckets.append(("+Inf" if math.isinf(bound) else _bound_text(bound), index))
    return buckets


def _bound_text(bound: float) -> str:
    return str(float(bound))


class RelayCollector(Collector):
    """Queues toward devices, delivery reports and the relays' counters: a :class:`RelayView`."""

    def __init__(self, source: Callable[[], RelayView]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        """Read the view now; per-device numbers become histograms over devices."""
        view = self._source()
        depths = [float(queue.depth) for queue in view.queues]
        ages = [queue.oldest_age for queue in view.queues if queue.depth > 0]
        yield GaugeHistogramMetricFamily(
            f"{PREFIX}_device_queue_depth",
            "Devices by the number of items queued toward them.",
            buckets=_histogram_over(depths, QUEUE_DEPTH_BUCKETS),
            gsum_value=sum(depths),
        )
        yield GaugeHistogramMetricFamily(
            f"{PREFIX}_device_queue_oldest_age_seconds",
            "Devices with a non-empty queue by the age of its oldest item.",
            buckets=_histogram_over(ages, QUEUE_AGE_BUCKETS),
            gsum_value=sum(ages),
        )
        relays = view.relays
        reports = _counter("delivery_reports", "Delivery reports sent to devices.", ["outcome"])
        outcomes = [status.name.lower() for status in DeliveryStatus]
        by_relay = [
            {
                "delivered": relay.reports_delivered,
                "failed": relay.reports_failed,
                "unknown": relay.reports_unknown,
            }
            for relay in relays
        ]
        for outcome, count in _by_reason(outcomes, [view.delivery_reports, *by_relay]).items():
            reports.add_metric([outcome], count)
        yield reports
        signed = _counter(
            "relay_signatures_made", "RFC 3923 signatures made on devices' behalf.", ["kind"]
        )
        signed.add_metric(["message"], sum(relay.messages_signed for relay in relays))
        signed.add_metric(["presence"], sum(relay.presence_signed for relay in relays))
        yield signed
        yield CounterMetricFamily(
            f"{PREFIX}_relay_signing_failures",
            "Signatures on a device's behalf that could not be made.",
            value=sum(relay.signing_failures for relay in relays),
        )
        inbound = _counter(
            "relay_inbound_signatures",
            "Inbound messages and presence the relays passed on, by signature outcome.",
            ["outcome"],
        )
        inbound.add_metric(["verified"], sum(relay.inbound_verified for relay in relays))
        inbound.add_metric(["failed"], sum(relay.inbound_signature_failed for relay in relays))
        inbound.add_metric(["unsigned"], sum(relay.inbound_unsigned for relay in relays))
        yield inbound
        yield CounterMetricFamily(
            f"{PREFIX}_relay_presence_withheld",
            "Presence withheld from devices not subscribed to the sender (RFC 2779 5.3.2).",
            value=sum(relay.presence_unsubscribed for relay in relays),
        )
        sender_reports = _counter(
            "relay_sender_reports",
            "Senders told that their message will not reach the device (RFC 2779 5.4.1).",
            ["reason"],
        )
        sender_reports.add_metric(["overflow"], sum(relay.overflow_reports for relay in relays))
        sender_reports.add_metric(["expiry"], sum(relay.expiry_reports for relay in relays))
        sender_reports.add_metric(["blocked"], sum(relay.blocked_reports for relay in relays))
        yield sender_reports
        yield CounterMetricFamily(
            f"{PREFIX}_relay_unavailable_announced",
            "Times watchers were told a silent device is gone (RFC 2779 3.2.4).",
            value=sum(relay.unavailable_announced for relay in relays),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_relay_wake_sync_timeouts",
            "Wakes completed without the server's answer to the flush ping (a slow upstream).",
            value=sum(relay.wake_sync_timeouts for relay in relays),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_relay_directed_watchers",
            "Watchers holding a directed presence of a device now.",
            value=sum(relay.directed_watchers for relay in relays),
        )
        dropped = _counter("relay_dropped", "What the relays did not pass on, by reason.",
                           ["reason"])  # fmt: skip
        for reason, count in _by_reason((), [relay.dropped for relay in view.relays]).items():
            dropped.add_metric([reason], count)
        yield dropped
        yield GaugeMetricFamily(
            f"{PREFIX}_relay_pending_reports",
            "Device messages awaiting their delivery report.",
            value=sum(relay.pending_reports for relay in view.relays),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_relay_owed_receipts",
            "Receipts owed upstream until the device confirms delivery.",
            value=sum(relay.owed_receipts for relay in view.relays),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_relay_tracked_queue_items",
            "Queued items the relays track in memory.",
            value=sum(relay.tracked_queue for relay in view.relays),
        )


class LatencySnapshot(Protocol):
    """One latency histogram as the service keeps it (``gateway.service.latency``'s
    ``LatencyHistogram``): upper bounds, per-bucket counts (not cumulative, the last one for
    +Inf) and the sum of the observations."""

    @property
    def bounds(self) -> tuple[float, ...]: ...

    @property
    def counts(self) -> tuple[int, ...]: ...

    @property
    def total(self) -> float: ...


LATENCY_FAMILIES: Mapping[str, str] = {
    "device_to_person": f"{PREFIX}_message_latency_device_to_person_seconds",
    "person_to_device": f"{PREFIX}_message_latency_person_to_device_seconds",
}
"""The histogram family of each direction (``gateway.service.latency.Direction`` values)."""


class LatencyCollector(Collector):
    """End-to-end message latency: ``{direction value: lambda: latency.snapshot(direction)}``,
    one Prometheus histogram per direction (fixed buckets, so gateways aggregate)."""

    def __init__(self, sources: Mapping[str, Callable[[], LatencySnapshot]]) -> None:
        unknown = set(sources) - set(LATENCY_FAMILIES)
        if unknown:
            raise ValueError(f"unknown latency directions: {sorted(unknown)}")
        self._sources = dict(sources)

    def collect(self) -> Iterable[Metric]:
        """Read both histograms now."""
        documentation = {
            "device_to_person": "Seconds from a device's SendMessage reaching the gateway to "
            "the server acknowledging its stanza.",
            "person_to_device": "Seconds from a stanza reaching the gateway to the device "
            "acknowledging the IncomingMessage.",
        }
        for direction, read in self._sources.items():
            snapshot = read()
            buckets: list[tuple[str, float]] = []
            cumulative = 0
            for index, count in enumerate(snapshot.counts):
                cumulative += count
                le = _bound_text(snapshot.bounds[index]) if index < len(snapshot.bounds) else "+Inf"
                buckets.append((le, cumulative))
            yield HistogramMetricFamily(
                LATENCY_FAMILIES[direction],
                documentation[direction],
                buckets=buckets,
                sum_value=snapshot.total,
            )


class SignatureCollector(Collector):
    """Inbound signature checks: ``verifier.statistics``."""

    def __init__(self, source: Callable[[], VerifierStatistics]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        """Read the verifier now."""
        stats = self._source()
        checks = _counter(
            "signature_verifications",
            "Inbound stanzas by signature outcome.",
            ["outcome", "reason"],
        )
        checks.add_metric(["verified", ""], stats.verified)
        checks.add_metric(["unsigned", ""], stats.unsigned)
        failed_reasons = [reason.value for reason in VerificationFailure]
        for reason, count in _by_reason(failed_reasons, [stats.failed]).items():
            checks.add_metric(["failed", reason], count)
        yield checks
        yield GaugeMetricFamily(
            f"{PREFIX}_signature_remembered_signatures",
            "Accepted signatures remembered to refuse replays.",
            value=stats.remembered_signatures,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_signature_remembered_senders",
            "Senders whose last timestamp is remembered.",
            value=stats.remembered_senders,
        )
