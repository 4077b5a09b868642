"""Collectors over real layer objects, scraped over loopback HTTP and parsed by the client
library's own parser; every statistics field is exposed and every family is documented."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import trio
import trio.testing
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from gateway.jid import Jid
from gateway.metrics import (
    FIELD_FAMILIES,
    LATENCY_FAMILIES,
    DeviceQueueView,
    MetricsEndpoint,
    MetricSources,
    RelayView,
    RetiredUpstream,
    build_registry,
    upstream_views,
)
from gateway.relay import DeviceRelay
from gateway.service.latency import Direction, EndToEndLatency, LatencyHistogram
from gateway.session import ChannelConfig, GatewayConfig, GatewaySessions
from gateway.signing import E2eVerifier, SignerTrustStore
from gateway.signing.e2e import E2E_TAG
from gateway.store.connection import open_connection
from gateway.store.sqlite_writer import SqliteWriter
from gateway.transport import TcpListener, UdpEndpoint
from gateway.xmpp import ClientConfig
from gateway.xmpp.net import ServerResolver, UpstreamSession, UpstreamSettings
from tests.metrics.client import get
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import Recorder, make_gateway, start_gateway_and_device

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def _insert(value: int) -> Callable[[sqlite3.Connection], int]:
    def operation(connection: sqlite3.Connection) -> int:
        connection.execute("INSERT INTO item (id) VALUES (?)", (value,))
        return value

    return operation


def _core(*, stream: bool) -> GatewaySessions:
    """A gateway core for a transport adapter (datagrams, or framed streams for TCP)."""
    return make_gateway(config=GatewayConfig(channel=ChannelConfig(stream=stream)))


async def _one_handshake(clock: trio.testing.MockClock) -> GatewaySessions:
    """A gateway core after one device completed its handshake (virtual time)."""
    gateway = make_gateway()
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(nursery, seed=7, link=LinkModel(delay=0.1))
        node = await start_gateway_and_device(nursery, net, gateway, Recorder())
        node.device.connect(trio.current_time())
        node.poke()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert len(gateway.sessions()) == 1
    return gateway


def _real_clock(clock: trio.testing.MockClock) -> None:
    """From here on, the mock clock runs at real speed and never jumps (real sockets follow)."""
    clock.autojump_threshold = math.inf
    clock.rate = 1.0


async def _scrape(sources: MetricSources) -> dict[str, Metric]:
    registry = build_registry(sources)
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(MetricsEndpoint(registry, list, port=0).serve)
        response = await get(port, "/metrics")
        nursery.cancel_scope.cancel()
    assert response.status == 200
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def _values(family: Metric, **match: str) -> dict[str, float]:
    """``{sample name + sorted labels: value}`` of the samples whose labels include ``match``."""
    return {
        sample.name + repr(sorted(sample.labels.items())): sample.value
        for sample in family.samples
        if all(sample.labels.get(k) == v for k, v in match.items())
    }


def _value(family: Metric, **labels: str) -> float:
    (value,) = [s.value for s in family.samples if s.labels == labels]
    return value


async def _all_sources(tmp_path: Path, clock: trio.testing.MockClock) -> MetricSources:
    gateway = await _one_handshake(clock)
    _real_clock(clock)
    connection = open_connection(tmp_path / "w.db")
    connection.execute("CREATE TABLE item (id INTEGER PRIMARY KEY)")
    writer = SqliteWriter(connection)
    writer.start()
    for value in range(5):
        await writer.submit(_insert(value))
    await writer.aclose()
    verifier = E2eVerifier(SignerTrustStore(()))
    verifier.verify_stanza(ET.Element("{jabber:client}message"), now=0.0)
    doubled = ET.Element("{jabber:client}message", {"from": "a@example.net"})
    ET.SubElement(doubled, E2E_TAG)
    ET.SubElement(doubled, E2E_TAG)
    verifier.verify_stanza(doubled, now=0.0)
    upstream = UpstreamSession(
        ClientConfig(Jid.parse_untrusted("alice@example.net"), "not-used"),
        UpstreamSettings(),
        ServerResolver(),
    )
    relay = DeviceRelay(Jid.parse_untrusted("alice@example.net"))
    queues = [DeviceQueueView(0), DeviceQueueView(3, 30.0), DeviceQueueView(40, 7200.0)]
    latency = EndToEndLatency()
    for seconds in (0.002, 0.2, 0.3, 7200.0):
        latency.observe(Direction.PERSON_TO_DEVICE, seconds)
    latency.observe(Direction.DEVICE_TO_PERSON, 0.04)
    retired = RetiredUpstream(upstream.statistics(), connections=3, reconnections=2)
    return MetricSources(
        cores={"udp": gateway.statistics},
        store=writer.statistics,
        verifier=verifier.statistics,
        upstream=lambda: upstream_views([upstream]),
        upstream_retired=lambda: retired,
        relay=lambda: RelayView(queues, {"delivered": 2, "failed": 1}, [relay.statistics()]),
        latency={d.value: functools.partial(latency.snapshot, d) for d in Direction},
    )


async def test_values_match_real_objects(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sources = await _all_sources(tmp_path, autojump_clock)
    assert sources.cores
    core = sources.cores["udp"]()
    families = await _scrape(sources)

    sessions = families["impp_gateway_device_sessions"]
    assert _value(sessions, listener="udp", state="established") == 1
    assert _value(sessions, listener="udp", state="handshaking") == 0
    datagrams = families["impp_gateway_session_datagrams"]
    assert _value(datagrams, listener="udp", direction="received") == core.datagrams_received > 0
    octets = families["impp_gateway_session_bytes"]
    assert _value(octets, listener="udp", direction="sent") == core.bytes_sent > 0
    dropped = families["impp_gateway_session_dropped"]
    assert _value(dropped, listener="udp", reason="ticket_rejected") == 0  # present at zero

    commits = families["impp_gateway_store_commits"]
    assert _value(commits, outcome="ok") >= 1
    batches = families["impp_gateway_store_batch_operations"]
    assert _values(batches)["impp_gateway_store_batch_operations_sum[]"] == 5
    latency = families["impp_gateway_store_commit_seconds"]
    assert _values(latency)["impp_gateway_store_commit_seconds_count[]"] == _value(
        commits, outcome="ok"
    )

    checks = families["impp_gateway_signature_verifications"]
    assert _value(checks, outcome="unsigned", reason="") == 1
    assert _value(checks, outcome="failed", reason="malformed") == 1
    assert _value(checks, outcome="verified", reason="") == 0

    upstream = families["impp_gateway_upstream_sessions"]
    assert _value(upstream, state="idle") == 1
    assert _value(upstream, state="ready") == 0

    depth = families["impp_gateway_device_queue_depth"]
    buckets = {s.labels["le"]: s.value for s in depth.samples if s.name.endswith("_bucket")}
    assert (buckets["0.0"], buckets["5.0"], buckets["50.0"], buckets["+Inf"]) == (1, 2, 3, 3)
    age = families["impp_gateway_device_queue_oldest_age_seconds"]
    buckets = {s.labels["le"]: s.value for s in age.samples if s.name.endswith("_bucket")}
    assert (buckets["60.0"], buckets["3600.0"], buckets["14400.0"]) == (1, 1, 2)
    reports = families["impp_gateway_delivery_reports"]
    assert _value(reports, outcome="delivered") == 2
    assert _value(reports, outcome="unknown") == 0

    assert _value(families["impp_gateway_upstream_connections"]) == 3  # retired ones count
    assert _value(families["impp_gateway_upstream_reconnects"]) == 2
    to_device = families["impp_gateway_message_latency_person_to_device_seconds"]
    buckets = {s.labels["le"]: s.value for s in to_device.samples if s.name.endswith("_bucket")}
    assert (buckets["0.005"], buckets["0.25"], buckets["0.5"], buckets["3600.0"]) == (1, 2, 3, 3)
    assert buckets["+Inf"] == 4
    totals = _values(to_device)
    assert totals["impp_gateway_message_latency_person_to_device_seconds_count[]"] == 4
    assert totals["impp_gateway_message_latency_person_to_device_seconds_sum[]"] == (
        0.002 + 0.2 + 0.3 + 7200.0
    )
    to_person = families["impp_gateway_message_latency_device_to_person_seconds"]
    assert _values(to_person)["impp_gateway_message_latency_device_to_person_seconds_count[]"] == 1


async def test_listeners_expose_their_adapter_and_core_counters() -> None:
    udp = UdpEndpoint(_core(stream=False))
    tcp = TcpListener(_core(stream=True))
    async with trio.open_nursery() as nursery:
        await nursery.start(udp.serve)
        await nursery.start(tcp.serve)
        families = await _scrape(MetricSources(listeners={"udp": udp.statistics,
                                                          "tcp": tcp.statistics}))  # fmt: skip
        nursery.cancel_scope.cancel()
    dropped = families["impp_gateway_transport_dropped"]
    for listener in ("udp", "tcp"):
        assert _value(dropped, listener=listener, reason="internal_error") == 0
        assert _value(families["impp_gateway_transport_packets"], listener=listener,
                      direction="received") == 0  # fmt: skip
        assert _value(families["impp_gateway_device_sessions"], listener=listener,
                      state="established") == 0  # fmt: skip


async def test_every_statistics_field_is_exposed_and_every_family_documented(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sources = await _all_sources(tmp_path, autojump_clock)
    families = await _scrape(sources)
    udp = UdpEndpoint(_core(stream=False))
    async with trio.open_nursery() as nursery:
        await nursery.start(udp.serve)
        families |= await _scrape(MetricSources(listeners={"udp": udp.statistics}))
        nursery.cancel_scope.cancel()
    latency_fields = {f.name for f in dataclasses.fields(LatencyHistogram)}
    assert latency_fields == {"bounds", "counts", "total"}, latency_fields  # LatencySnapshot's
    for family in LATENCY_FAMILIES.values():
        assert family in families, family
    for statistics_class, mapping in FIELD_FAMILIES.items():
        fields = {f.name for f in dataclasses.fields(statistics_class)}
        assert fields == set(mapping), (statistics_class.__name__, fields ^ set(mapping))
        for field_name, family in mapping.items():
            assert family in families, (statistics_class.__name__, field_name, family)
    documented = DOCS.read_text(encoding="utf-8")
    missing = sorted(name for name in families if f"`{name}" not in documented)
    assert not missing, f"families not in docs/metrics.md: {missing}"


OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


async def test_every_metric_the_operations_guide_names_is_scraped(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Each ``impp_gateway_*`` name in docs/operations.md (its queries and alerts) is a family
    or a sample name of a real scrape, so no alert watches a series that never exists."""
    families = await _scrape(await _all_sources(tmp_path, autojump_clock))
    udp = UdpEndpoint(_core(stream=False))
    async with trio.open_nursery() as nursery:
        await nursery.start(udp.serve)
        families |= await _scrape(MetricSources(listeners={"udp": udp.statistics}))
        nursery.cancel_scope.cancel()
    scraped = set(families)
    for family in families.values():
        scraped |= {sample.name for sample in family.samples}
    named = set(re.findall(r"\bimpp_gateway_[a-z0-9_]+", OPERATIONS.read_text(encoding="utf-8")))
    assert len(named) >= 20, named  # the alert table is there
    missing = sorted(named - scraped)
    assert not missing, f"docs/operations.md names metrics no scrape has: {missing}"
