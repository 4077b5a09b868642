"""Operating the gateway: Prometheus collectors over the layers' statistics, and the HTTP
endpoint serving ``/metrics``, ``/healthz`` and ``/readyz`` (docs/metrics.md).

The service builds a registry from the sources it holds and mounts the endpoint::

    registry = build_registry(MetricSources(listeners={"udp": udp.statistics}, ...))
    endpoint = MetricsEndpoint(registry, readiness=lambda: reasons_not_ready)
    port = await nursery.start(endpoint.serve)
"""

from __future__ import annotations

from gateway.metrics.collectors import (
    FIELD_FAMILIES,
    LATENCY_FAMILIES,
    QUEUE_AGE_BUCKETS,
    QUEUE_DEPTH_BUCKETS,
    LatencyCollector,
    LatencySnapshot,
    RelayCollector,
    SessionCollector,
    SignatureCollector,
    StoreCollector,
    TransportCollector,
    UpstreamCollector,
)
from gateway.metrics.http import (
    DEFAULT_METRICS_HOST,
    DEFAULT_PORT,
    MetricsEndpoint,
    PublicBindRefusedError,
    ReadinessCheck,
)
from gateway.metrics.registry import MetricSources, build_registry
from gateway.metrics.views import (
    DeviceQueueView,
    RelayView,
    RetiredUpstream,
    UpstreamView,
    retire_relay,
    retired_upstream,
    upstream_views,
)

__all__ = [
    "DEFAULT_METRICS_HOST",
    "DEFAULT_PORT",
    "FIELD_FAMILIES",
    "LATENCY_FAMILIES",
    "QUEUE_AGE_BUCKETS",
    "QUEUE_DEPTH_BUCKETS",
    "DeviceQueueView",
    "LatencyCollector",
    "LatencySnapshot",
    "MetricSources",
    "MetricsEndpoint",
    "PublicBindRefusedError",
    "ReadinessCheck",
    "RelayCollector",
    "RelayView",
    "RetiredUpstream",
    "SessionCollector",
    "SignatureCollector",
    "StoreCollector",
    "TransportCollector",
    "UpstreamCollector",
    "UpstreamView",
    "build_registry",
    "retire_relay",
    "retired_upstream",
    "upstream_views",
]
