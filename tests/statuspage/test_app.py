"""The status page's ASGI app driven directly: routes, escaping, token enforcement, mounting."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio
from prometheus_client import CollectorRegistry, Counter

from gateway.observability import LogEntry
from gateway.statuspage import (
    MetricsWithStatusEndpoint,
    SessionStatus,
    StatusApp,
    StatusCallables,
    StatusTokenRequiredError,
    StatusTotals,
    TokenFileError,
    generate_token,
    load_token,
)
from tests.statuspage.asgi import call
from tests.statuspage.fakes import FakeSource, session

TOKEN = "t0ken-for-the-status-page-0123456789"


def errors() -> list[LogEntry]:
    return [LogEntry("2026-12-01T10:00:00.000Z", "warning", "gateway.service", "e", "<oops>")]


def make_app(source: FakeSource, token: str | None = None) -> StatusApp:
    return StatusApp(source, token=token, errors=errors)


async def test_page_shows_sessions_charts_and_errors() -> None:
    source = FakeSource(live=[session(kid="0a77")], now=StatusTotals(queued=5))
    app = make_app(source)
    app.sample(0.0)
    app.sample(5.0)
    response = await call(app, "/status/")
    assert response.status == 200
    assert response.headers[b"content-type"] == b"text/html; charset=utf-8"
    assert b"script-src 'self'" in response.headers[b"content-security-policy"]
    page = response.text
    assert '<span class="figure" id="session-count">1</span>' in page
    assert '<span class="figure" id="queued">5</span>' in page
    assert "<td>0a77</td>" in page
    assert 'id="chart-sessions"' in page
    assert page.count("<svg ") == 6
    assert "&lt;oops&gt;" in page


async def test_text_from_the_gateway_is_escaped() -> None:
    source = FakeSource(live=[session(account="<script>alert(1)</script>@x", state='"><img>')])
    page = (await call(make_app(source), "/status/")).text
    assert "<script>alert" not in page
    assert "<img>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@x" in page


async def test_feed_is_json_with_the_same_data() -> None:
    source = FakeSource(
        live=[session(), session(kid="0a02")],
        now=StatusTotals(handshakes_ok=4, upstreams={"online": 2}),
    )
    app = make_app(source)
    app.sample(0.0)
    response = await call(app, "/status/status.json")
    assert response.headers[b"content-type"] == b"application/json"
    document = json.loads(response.body)
    assert document["sessions"]["count"] == 2
    assert {row["kid"] for row in document["sessions"]["rows"]} == {"0a01", "0a02"}
    assert document["totals"]["handshakes_ok"] == 4
    assert document["upstreams"] == {"online": 2}
    assert document["series"]["sessions"] == [2.0]
    assert document["charts"]["sessions"].startswith("<svg ")
    assert document["errors"][0]["message"] == "<oops>"  # JSON; the page's script sets textContent


async def test_other_routes() -> None:
    app = make_app(FakeSource())
    redirect = await call(app, "/status")
    assert (redirect.status, redirect.headers[b"location"]) == (308, b"/status/")
    script = await call(app, "/status/app.js")
    assert script.headers[b"content-type"].startswith(b"text/javascript")
    assert b"Authorization" in script.body
    assert (await call(app, "/status/style.css")).status == 200
    assert (await call(app, "/status/nope")).status == 404
    assert (await call(app, "/status/", method="POST")).status == 405
    head = await call(app, "/status/", method="HEAD")
    assert (head.status, head.body) == (200, b"")


async def test_a_token_is_enforced_on_data() -> None:
    app = make_app(FakeSource(live=[session(kid="0a99")]), token=TOKEN)
    assert (await call(app, "/status/status.json")).status == 401
    wrong = [(b"authorization", b"Bearer " + TOKEN[:-1].encode() + b"x")]
    assert (await call(app, "/status/status.json", headers=wrong)).status == 401
    basic = [(b"authorization", b"Basic " + TOKEN.encode())]
    assert (await call(app, "/status/status.json", headers=basic)).status == 401
    right = [(b"authorization", b"Bearer " + TOKEN.encode())]
    feed = await call(app, "/status/status.json", headers=right)
    assert feed.status == 200
    assert json.loads(feed.body)["sessions"]["count"] == 1
    shell = await call(app, "/status/")
    assert shell.status == 200
    assert "0a99" not in shell.text  # no data without the token
    assert 'data-token-required="true"' in shell.text
    full = await call(app, "/status/", headers=right)
    assert "<td>0a99</td>" in full.text


async def test_a_failing_source_answers_500_and_the_page_survives() -> None:
    def broken() -> list[SessionStatus]:
        raise RuntimeError("no")

    app = StatusApp(StatusCallables(broken, StatusTotals), errors=errors)
    assert (await call(app, "/status/status.json")).status == 500
    app.sample(0.0)  # logged and skipped
    assert app.ring.samples() == []


async def test_sampler_samples_on_its_interval(autojump_clock: trio.testing.MockClock) -> None:
    source = FakeSource()
    app = StatusApp(source, sample_interval=5.0, errors=errors)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.sample_forever)
        await trio.sleep(12.0)
        nursery.cancel_scope.cancel()
    assert [sample.at for sample in app.ring.samples()] == [0.0, 5.0, 10.0]


async def test_mounted_beside_the_metrics() -> None:
    registry = CollectorRegistry()
    Counter("probe", "a probe", registry=registry).inc()
    endpoint = MetricsWithStatusEndpoint(
        registry, lambda: [], make_app(FakeSource(live=[session()]))
    )
    assert (await call(endpoint, "/status/")).status == 200
    metrics = await call(endpoint, "/metrics")
    assert b"probe_total 1.0" in metrics.body
    assert (await call(endpoint, "/healthz")).status == 200


def test_beyond_loopback_a_token_is_required() -> None:
    registry = CollectorRegistry()
    with pytest.raises(StatusTokenRequiredError, match="without a token"):
        MetricsWithStatusEndpoint(
            registry, lambda: [], make_app(FakeSource()), host="0.0.0.0", allow_public=True
        )
    endpoint = MetricsWithStatusEndpoint(
        registry, lambda: [], make_app(FakeSource(), TOKEN), host="0.0.0.0", allow_public=True
    )
    assert endpoint.status.token == TOKEN


def test_token_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "status-token"
    token = generate_token()
    path.write_text(token + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(TokenFileError, match="chmod 600"):
        load_token(path)
    os.chmod(path, 0o600)
    assert load_token(path) == token
    path.write_text("short")
    with pytest.raises(TokenFileError, match="at least"):
        load_token(path)
    with pytest.raises(TokenFileError, match="cannot open"):
        load_token(tmp_path / "missing")
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(TokenFileError, match="cannot open"):
        load_token(link)
