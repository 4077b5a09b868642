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
    QUEUE_AGE_BUCKETS,
    QUEUE_DEPTH_BUCKETS,
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
from gateway.metrics.views import DeviceQueueView, RelayView, UpstreamView, upstream_views

__all__ = [
    "DEFAULT_METRICS_HOST",
    "DEFAULT_PORT",
    "FIELD_FAMILIES",
    "QUEUE_AGE_BUCKETS",
    "QUEUE_DEPTH_BUCKETS",
    "DeviceQueueView",
    "MetricSources",
    "MetricsEndpoint",
    "PublicBindRefusedError",
    "ReadinessCheck",
    "RelayCollector",
    "RelayView",
    "SessionCollector",
    "SignatureCollector",
    "StoreCollector",
    "TransportCollector",
    "UpstreamCollector",
    "UpstreamView",
    "build_registry",
    "upstream_views",
]
