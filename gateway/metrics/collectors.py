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

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
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

from .views import DeviceQueueView, RelayView, UpstreamView

__all__ = [
    "FIELD_FAMILIES",
    "QUEUE_AGE_BUCKETS",
    "QUEUE_DEPTH_BUCKETS",
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
        "resumptions": f"{PREFIX}_session_resumptions",
        "replaced": f"{PREFIX}_session_replaced",
        "rejects_sent": f"{PREFIX}_session_rejects_sent",
        "handshakes_evicted": f"{PREFIX}_session_handshakes_evicted",
        "migrations": f"{PREFIX}_session_migrations",
        "amplification_held": f"{PREFIX}_session_amplification_held",
        "retransmissions": f"{PREFIX}_session_live_retransmissions",
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
        "resumptions": _counter(
            "session_resumptions", "Sessions resumed from a ticket.", ["listener"]
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
        for reason, count in _by_reason(drop_reasons, [stats.dropped]).items():
            dropped.add_metric([listener, reason], count)
    yield datagrams
    yield octets
    yield sessions
    yield from simple.values()
    yield retransmissions
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
    """Upstream XMPP sessions: ``lambda: upstream_views(manager.sessions.values())``.

    Stream counters are summed over the sessions open now, each since its current stream began:
    a reconnection or a closed session lowers the sum, which Prometheus reads as a counter reset.
    """

    def __init__(self, source: Callable[[], Sequence[UpstreamView]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        """Read every session now."""
        views = self._source()
        sessions = _gauge("upstream_sessions", "Upstream sessions by stream state.", ["state"])
        states = Counter("stopped" if view.stopped else view.state.name.lower() for view in views)
        for state in [*(s.name.lower() for s in ClientState), "stopped"]:
            sessions.add_metric([state], states.get(state, 0))
        yield sessions
        connections = sum(view.connections for view in views)
        reconnects = sum(max(view.connections - 1, 0) for view in views)
        yield CounterMetricFamily(
            f"{PREFIX}_upstream_connections", "Connections established.", value=connections
        )
        yield CounterMetricFamily(
            f"{PREFIX}_upstream_reconnects",
            "Connections after a session's first.",
            value=reconnects,
        )
        stanzas = _counter("upstream_stanzas", "Stanzas on the current streams.", ["direction"])
        stanzas.add_metric(["sent"], sum(view.client.stanzas_sent for view in views))
        stanzas.add_metric(["received"], sum(view.client.stanzas_received for view in views))
        yield stanzas
        yield CounterMetricFamily(
            f"{PREFIX}_upstream_bytes_received",
            "Bytes received on the current streams.",
            value=sum(view.client.bytes_received for view in views),
        )
        dropped = _counter("upstream_stanzas_dropped", "Stanzas dropped, by reason.", ["reason"])
        reasons = [reason.value for reason in StanzaDropReason]
        totals = _by_reason(reasons, [{str(k): v for k, v in view.client.dropped.items()}
                                      for view in views])  # fmt: skip
        for reason, count in totals.items():
            dropped.add_metric([reason], count)
        yield dropped
        yield GaugeMetricFamily(
            f"{PREFIX}_upstream_unacknowledged_stanzas",
            "Stanzas sent and not yet acknowledged by the server (XEP-0198).",
            value=sum(view.client.unacknowledged for view in views),
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
        reports = _counter("delivery_reports", "Delivery reports sent to devices.", ["outcome"])
        outcomes = [status.name.lower() for status in DeliveryStatus]
        for outcome, count in _by_reason(outcomes, [view.delivery_reports]).items():
            reports.add_metric([outcome], count)
        yield reports
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
