"""The running service's operations side: metrics, readiness, the status page, the admin socket.

The libraries (gateway.metrics, gateway.statuspage, gateway.admin) hold no state of the
gateway's own; this module gives them views of the :class:`~gateway.service.GatewayService`
that runs them, read on the trio thread when asked (a scrape, a page, an admin request):

- :func:`metric_sources` feeds ``build_registry`` from the listeners' statistics (which carry
  their session cores'), the upstream managers' sessions, the store writer's statistics, a
  relay view (each device's queue depth and age, from :class:`QueueSampler`'s in-memory
  table, turned into histograms over devices by the collector) and the verifiers' statistics;
- :func:`not_ready` is the readiness check: listeners up, store answering, not draining;
- :class:`ServiceStatus` is the status page's :class:`~gateway.statuspage.StatusSource`;
- :class:`ServiceAdmin` is the admin socket's :class:`~gateway.admin.AdminHandler`.

:func:`start_operations` mounts them in the service's nursery, as ``[metrics]`` says; queue
depths are read from the store by :class:`QueueSampler` every :data:`QUEUE_SAMPLE_INTERVAL`
seconds, never at scrape time (a scrape must not wait on SQLite).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

import trio

from gateway import __version__
from gateway.admin import (
    ListenerSnapshot,
    SessionSnapshot,
    StatusSnapshot,
    StoreSnapshot,
    admin_socket_path,
    serve_admin,
)
from gateway.metrics import (
    DeviceQueueView,
    MetricsEndpoint,
    MetricSources,
    RelayView,
    RetiredUpstream,
    UpstreamView,
    build_registry,
    retired_upstream,
    upstream_views,
)
from gateway.service.latency import Direction
from gateway.signing import VerifierStatistics
from gateway.statuspage import (
    MetricsWithStatusEndpoint,
    SessionStatus,
    StatusApp,
    StatusTotals,
    load_token,
)
from gateway.store import StoreError, WriterStatistics

if TYPE_CHECKING:
    from gateway.service.service import GatewayService, ServiceAddresses, _Bound

__all__ = [
    "QUEUE_SAMPLE_INTERVAL",
    "QueueSampler",
    "ServiceAdmin",
    "ServiceStatus",
    "metric_sources",
    "not_ready",
    "start_operations",
]

# How stale a queue depth on /metrics, the status page and `sessions` may be: one store read
# of every device's queue each time (a read per device cost a worker-thread hop each, which at
# a thousand devices was a large share of an idle gateway's CPU).
QUEUE_SAMPLE_INTERVAL: Final = 1.0

logger = logging.getLogger("gateway.service.ops")


@dataclass(frozen=True)
class _QueueSample:
    depth: int
    oldest_enqueued_at: float | None  # wall-clock time of the oldest item, None when empty


class QueueSampler:
    """Each bound device's queue depth and oldest item, re-read from the store periodically."""

    def __init__(self, service: GatewayService, interval: float = QUEUE_SAMPLE_INTERVAL) -> None:
        self.service = service
        self.interval = interval
        self.samples: dict[bytes, _QueueSample] = {}
        self.store_failed: str | None = None  # the last store error's type, until a read works

    async def sample(self) -> None:
        """Read every bound device's queue once (a failing store is reported by readiness)."""
        service = self.service
        now = service.clock()
        try:
            queues = await service.store.device_queue_summary(now=now)
        except StoreError as exc:
            self.store_failed = type(exc).__name__
            return
        self.store_failed = None
        self.samples = {kid: _QueueSample(*queues.get(kid, (0, None))) for kid in service.bound}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sample now, report started, then every ``interval`` seconds until cancelled."""
        await self.sample()
        task_status.started()
        while True:
            await trio.sleep(self.interval)
            await self.sample()

    def depth(self, kid: bytes) -> int:
        """The device's queue depth at the last sample (0 before the first)."""
        sample = self.samples.get(kid)
        return sample.depth if sample is not None else 0

    def oldest_age(self, kid: bytes, now: float) -> float | None:
        """Seconds the device's oldest queued item has waited, None when its queue is empty."""
        sample = self.samples.get(kid)
        if sample is None or sample.oldest_enqueued_at is None:
            return None
        return max(now - sample.oldest_enqueued_at, 0.0)


def not_ready(service: GatewayService, queues: QueueSampler) -> list[str]:
    """Why the gateway is not ready to take devices now (empty: ready)."""
    reasons: list[str] = []
    if service.draining:
        reasons.append("draining")
    elif not service.listening:
        reasons.append("device listeners not up")
    if queues.store_failed is not None:
        reasons.append(f"store not answering ({queues.store_failed})")
    return reasons


def _upstream_state(service: GatewayService, bound: _Bound | None) -> str:
    """The state of a bound device's upstream session ("none" without one).

    Callers pass the entry they already hold: ``service.bound`` is a copy of the whole table,
    and taking it once per device made a status sample quadratic in the devices."""
    if bound is None:
        return "none"
    session = service.upstream_session(bound.account)
    if session is None:
        return "none"
    return "stopped" if session.stopped else session.client.state.name.lower()


def _verifier_statistics(service: GatewayService) -> VerifierStatistics:
    """Every device's verifier summed (one verifier per device keeps replay memory apart)."""
    verified = unsigned = signatures = senders = 0
    failed: Counter[str] = Counter()
    for verifier in list(service.verifiers.values()):
        statistics = verifier.statistics()
        verified += statistics.verified
        unsigned += statistics.unsigned
        failed.update(statistics.failed)
        signatures += statistics.remembered_signatures
        senders += statistics.remembered_senders
    return VerifierStatistics(verified, unsigned, dict(failed), signatures, senders)


def _store_statistics(service: GatewayService) -> WriterStatistics | None:
    statistics = getattr(service.store, "statistics", None)
    if statistics is None:
        return None
    result = statistics()
    return result if isinstance(result, WriterStatistics) else None


def metric_sources(service: GatewayService, queues: QueueSampler) -> MetricSources:
    """The live sources of ``build_registry`` (see the module docstring)."""

    def upstream() -> list[UpstreamView]:
        sessions = [s for m in service.managers.values() for s in m.sessions.values()]
        return upstream_views(sessions)

    def relay() -> RelayView:
        now = service.clock()
        views = [
            DeviceQueueView(queues.depth(kid), queues.oldest_age(kid, now) or 0.0)
            for kid in service.bound
        ]
        relays = [bound.binding.relay.statistics() for bound in service.bound.values()]
        if service.retired_relays is not None:
            relays.append(service.retired_relays)
        return RelayView(queues=views, relays=relays)

    def upstream_retired() -> RetiredUpstream:
        return retired_upstream(service.managers.values())

    store_source = None
    if _store_statistics(service) is not None:

        def store_source() -> WriterStatistics:
            statistics = _store_statistics(service)
            assert statistics is not None
            return statistics

    return MetricSources(
        listeners={listener.name: listener.facade.statistics for listener in service.listeners},
        upstream=upstream,
        upstream_retired=upstream_retired,
        store=store_source,
        relay=relay,
        verifier=lambda: _verifier_statistics(service),
        latency={
            direction.value: functools.partial(service.latency.snapshot, direction)
            for direction in Direction
        },
    )


class ServiceStatus:
    """The status page's source: the service's bound devices and its counters."""

    def __init__(self, service: GatewayService, queues: QueueSampler) -> None:
        self.service = service
        self.queues = queues

    def sessions(self) -> Sequence[SessionStatus]:
        """One row per device with a live session."""
        service = self.service
        now = trio.current_time()
        rows: list[SessionStatus] = []
        for kid, bound in service.bound.items():
            for index, _ in sorted(bound.links):
                listener = service.listeners[index]
                rows.append(
                    SessionStatus(
                        kid=kid.hex(),
                        account=str(bound.account),
                        state="established",
                        transport=listener.name.split(" ", 1)[0],
                        queue_depth=self.queues.depth(kid),
                        idle_seconds=0.0
                        if bound.last_activity is None
                        else max(now - bound.last_activity, 0.0),
                    )
                )
        return rows

    def totals(self) -> StatusTotals:
        """Handshakes, deliveries, queued items and upstream states, summed now."""
        service = self.service
        counters = service.counters
        handshakes = counters.get("session-established", 0) + counters.get("session-resumed", 0)
        failed = counters.get("session-refused", 0) + counters.get("handshake-refused-draining", 0)
        for listener in service.listeners:
            failed += listener.core.statistics().dropped.get("handshake_failed", 0)
        delivered = failed_reports = 0
        for bound in service.bound.values():
            delivered += bound.binding.counters.get("delivered-to-device")
            failed_reports += bound.binding.relay.statistics().reports_failed
        upstreams = Counter(_upstream_state(service, bound) for bound in service.bound.values())
        return StatusTotals(
            handshakes_ok=handshakes,
            handshakes_failed=failed,
            deliveries_ok=delivered,
            deliveries_failed=failed_reports,
            queued=sum(self.queues.depth(kid) for kid in service.bound),
            upstreams=dict(upstreams),
        )


class ServiceAdmin:
    """The admin socket's handler: status, every enrolled device's session, closing one."""

    def __init__(self, service: GatewayService, queues: QueueSampler) -> None:
        self.service = service
        self.queues = queues

    def status(self) -> StatusSnapshot:
        """The gateway as a whole now."""
        service = self.service
        listeners = tuple(
            ListenerSnapshot(*listener.name.split(" ", 1)) for listener in service.listeners
        )
        sessions = Counter(
            "established" if bound.links else "none" for bound in service.bound.values()
        )
        upstreams = Counter(_upstream_state(service, bound) for bound in service.bound.values())
        store_state = "failed" if self.queues.store_failed else "open"
        return StatusSnapshot(
            version=__version__,
            uptime=max(trio.current_time() - service.started_at, 0.0),
            listeners=listeners,
            sessions_by_state=dict(sessions),
            upstream_by_state=dict(upstreams),
            store=StoreSnapshot(
                store_state, sum(self.queues.depth(kid) for kid in service.bound), 0
            ),
            draining=service.draining,
        )

    def sessions(self, device: bytes | None) -> Sequence[SessionSnapshot]:
        """Every bound device (or the one whose kid is ``device``) and its two legs."""
        service = self.service
        now = trio.current_time()
        wall = service.clock()
        snapshots: list[SessionSnapshot] = []
        for kid, bound in sorted(service.bound.items()):
            if device is not None and kid != device:
                continue
            snapshot = SessionSnapshot(
                kid=kid,
                account=str(bound.account),
                state="established" if bound.links else "none",
                upstream_state=_upstream_state(service, bound),
                last_activity_age=None
                if bound.last_activity is None
                else max(now - bound.last_activity, 0.0),
                queue_depth=self.queues.depth(kid),
                oldest_queued_age=self.queues.oldest_age(kid, wall),
                asleep=bound.binding.relay.state.value == "asleep",
            )
            for index, connection_id in sorted(bound.links)[:1]:
                address = service.listeners[index].core.session_address(connection_id)
                snapshot = replace(
                    snapshot,
                    cid=connection_id,
                    address=_address_text(address),
                )
            snapshots.append(snapshot)
        return snapshots

    async def close(self, device: bytes) -> bool:
        """End the device's session (it hears Close); False when it has none."""
        return await self.service.close_device_session(device)


def _address_text(address: object) -> str | None:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return None if address is None else str(address)


async def start_operations(
    service: GatewayService, nursery: trio.Nursery, addresses: ServiceAddresses
) -> ServiceAddresses:
    """Mount the queue sampler, the admin socket and (if enabled) the metrics endpoint with the
    status page in ``nursery``; returns ``addresses`` with their port and path filled in."""
    queues = QueueSampler(service)
    await nursery.start(queues.run)
    admin_path = await nursery.start(
        serve_admin,
        ServiceAdmin(service, queues),
        admin_socket_path(service.configuration.gateway.data_dir),
    )
    metrics = service.configuration.metrics
    port: int | None = None
    if metrics.enabled:
        registry = build_registry(metric_sources(service, queues))
        token = load_token(metrics.status_token_file) if metrics.status_token_file else None
        status = StatusApp(ServiceStatus(service, queues), token=token)
        endpoint: MetricsEndpoint = MetricsWithStatusEndpoint(
            registry,
            lambda: not_ready(service, queues),
            status,
            host=metrics.listen.host,
            port=metrics.listen.port,
            allow_public=metrics.allow_public,
        )
        await nursery.start(status.sample_forever)
        port = await nursery.start(endpoint.serve)
    return dataclasses.replace(addresses, metrics_port=port, admin_socket=admin_path)
