"""The operations endpoint over real loopback HTTP: routes, negotiation, readiness, binding."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence

import pytest
import trio
from prometheus_client.core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from gateway.metrics import (
    MetricsEndpoint,
    MetricSources,
    PublicBindRefusedError,
    StoreCollector,
    build_registry,
)
from gateway.store import WriterStatistics
from tests.metrics.client import get, raw_exchange

# The OpenMetrics parser ships without annotations; this is its documented signature.
om_parse: Callable[[str], Iterable[Metric]] = openmetrics_parser.text_string_to_metric_families


class Readiness:
    """A readiness callable the test flips."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self) -> Sequence[str]:
        return self.reasons


def _writer_statistics() -> WriterStatistics:
    return WriterStatistics(
        commits=3,
        failed_commits=1,
        operations_committed=12,
        operations_failed=2,
        largest_batch=7,
        commit_seconds_total=0.5,
        commit_seconds_max=0.25,
        pending=4,
    )


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
async def port(readiness: Readiness) -> AsyncIterator[int]:
    registry = build_registry(MetricSources(store=_writer_statistics))
    async with trio.open_nursery() as nursery:
        bound: int = await nursery.start(MetricsEndpoint(registry, readiness, port=0).serve)
        yield bound
        nursery.cancel_scope.cancel()


async def test_metrics_are_served_in_prometheus_text_by_default(port: int) -> None:
    response = await get(port, "/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    commits = {s.labels["outcome"]: s.value for s in families["impp_gateway_store_commits"].samples}
    assert commits == {"ok": 3.0, "failed": 1.0}
    pending = families["impp_gateway_store_pending_operations"]
    assert [s.value for s in pending.samples] == [4.0]


async def test_openmetrics_is_served_when_the_scraper_asks(port: int) -> None:
    response = await get(port, "/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    names = {f.name for f in om_parse(response.text)}
    assert "impp_gateway_store_commit_seconds" in names


async def test_liveness_answers(port: int) -> None:
    response = await get(port, "/healthz")
    assert (response.status, response.text) == (200, "ok\n")


async def test_readiness_flips_to_503_with_the_reasons(port: int, readiness: Readiness) -> None:
    assert (await get(port, "/readyz")).status == 200
    readiness.reasons = ["store closed", "draining"]
    response = await get(port, "/readyz")
    assert response.status == 503
    assert response.text == "store closed\ndraining\n"
    readiness.reasons = []
    assert (await get(port, "/readyz")).status == 200


async def test_a_raising_readiness_check_reads_as_not_ready() -> None:
    def broken() -> Sequence[str]:
        raise RuntimeError("boom")

    async with trio.open_nursery() as nursery:
        endpoint = MetricsEndpoint(CollectorRegistry(), broken, port=0)
        bound: int = await nursery.start(endpoint.serve)
        response = await get(bound, "/readyz")
        assert response.status == 503
        assert "boom" not in response.text
        nursery.cancel_scope.cancel()


async def test_unknown_paths_and_methods_are_refused(port: int) -> None:
    assert (await get(port, "/nope")).status == 404
    assert (await get(port, "/metrics", method="POST")).status == 405
    head = await get(port, "/metrics", method="HEAD")
    assert (head.status, head.body) == (200, b"")


@pytest.mark.parametrize(
    "garbage",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"\x00\xff" * 100 + b"\r\n\r\n",
        # a head that never ends, past the endpoint's bound on an incomplete head
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000,
    ],
)
async def test_a_malformed_request_ends_only_its_connection(port: int, garbage: bytes) -> None:
    answer = await raw_exchange(port, garbage)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:80]
    assert (await get(port, "/healthz")).status == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_a_public_bind_needs_the_explicit_flag(host: str) -> None:
    with pytest.raises(PublicBindRefusedError, match="beyond loopback, and allow_public is false"):
        MetricsEndpoint(CollectorRegistry(), list, host=host)


def test_a_public_bind_with_the_flag_is_accepted() -> None:
    endpoint = MetricsEndpoint(CollectorRegistry(), list, host="0.0.0.0", allow_public=True)
    assert endpoint.host == "0.0.0.0"


async def test_ipv6_loopback_is_served() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(_writer_statistics))
    async with trio.open_nursery() as nursery:
        endpoint = MetricsEndpoint(registry, list, host="::1", port=0)
        bound: int = await nursery.start(endpoint.serve)
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream("::1", bound)
            async with stream:
                await stream.send_all(
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                data = bytearray()
                while chunk := await stream.receive_some(4096):
                    data += chunk
        assert data.startswith(b"HTTP/1.1 200")
        nursery.cancel_scope.cancel()
