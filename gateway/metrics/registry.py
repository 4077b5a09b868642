"""One registry from the sources the service holds: the narrow API the service wires."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.registry import CollectorRegistry

from gateway.metrics.collectors import (
    LatencyCollector,
    LatencySnapshot,
    RelayCollector,
    SessionCollector,
    SignatureCollector,
    StoreCollector,
    TransportCollector,
    UpstreamCollector,
)
from gateway.metrics.views import RelayView, RetiredUpstream, UpstreamView
from gateway.session import GatewayStatistics
from gateway.signing import VerifierStatistics
from gateway.store import WriterStatistics
from gateway.transport import TransportStatistics

__all__ = ["MetricSources", "build_registry"]


@dataclass(frozen=True)
class MetricSources:
    """Callables returning each layer's snapshot; a source left out exposes no families.

    ``listeners`` maps a short listener name (a label value) to ``endpoint.statistics``;
    ``cores`` is for session cores run without a transport adapter (tests, simulations).
    """

    listeners: Mapping[str, Callable[[], TransportStatistics]] = field(default_factory=dict)
    cores: Mapping[str, Callable[[], GatewayStatistics]] = field(default_factory=dict)
    upstream: Callable[[], Sequence[UpstreamView]] | None = None
    upstream_retired: Callable[[], RetiredUpstream] | None = None
    store: Callable[[], WriterStatistics] | None = None
    relay: Callable[[], RelayView] | None = None
    verifier: Callable[[], VerifierStatistics] | None = None
    latency: Mapping[str, Callable[[], LatencySnapshot]] = field(default_factory=dict)


def build_registry(sources: MetricSources) -> CollectorRegistry:
    """A fresh registry (not the process-global one) holding a collector per given source."""
    if sources.listeners and sources.cores:
        raise ValueError(
            "give listeners or bare cores, not both: each listener already exposes its core's "
            "session families, and one family may appear only once"
        )
    registry = CollectorRegistry(auto_describe=False)
    if sources.listeners:
        registry.register(TransportCollector(sources.listeners))
    if sources.cores:
        registry.register(SessionCollector(sources.cores))
    if sources.upstream is not None:
        registry.register(UpstreamCollector(sources.upstream, sources.upstream_retired))
    if sources.store is not None:
        registry.register(StoreCollector(sources.store))
    if sources.relay is not None:
        registry.register(RelayCollector(sources.relay))
    if sources.verifier is not None:
        registry.register(SignatureCollector(sources.verifier))
    if sources.latency:
        registry.register(LatencyCollector(sources.latency))
    return registry
