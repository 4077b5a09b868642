"""The status page in a real headless browser (Debian's chromium): it loads from the gateway's
own endpoint, shows the session the test created, draws the charts, and updates itself.

Skipped only on a developer machine without chromium; under CI (``CI`` set) a missing browser
fails, because ./run installs it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio
from prometheus_client import CollectorRegistry

from gateway.observability import LogEntry
from gateway.statuspage import MetricsWithStatusEndpoint, SessionStatus, StatusApp, StatusTotals
from tests.statuspage.fakes import session

BROWSER_TIMEOUT = 90.0  # seconds of real time for one chromium run on a loaded 2-core machine
REFRESH_SECONDS = 0.5  # the page's own refresh interval in this test
TOKEN = "browser-test-token-0123456789abcdef"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                "chromium is missing under CI; ./run installs it (apt-get install chromium)"
            )
        pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")
    return found


class GrowingSource:
    """One session the test created, then one more each time the page's data is read."""

    def __init__(self) -> None:
        self.live: list[SessionStatus] = [session(kid="0a5e", account="tester@example.org")]
        self.grow = False

    def sessions(self) -> Sequence[SessionStatus]:
        if self.grow:
            self.live.append(session(kid=f"0b{len(self.live):02x}", account="more@example.org"))
        return list(self.live)

    def totals(self) -> StatusTotals:
        return StatusTotals(queued=len(self.live) * 2, handshakes_ok=len(self.live))


def recent_errors() -> list[LogEntry]:
    return [
        LogEntry(
            "2026-12-01T10:00:00.000Z",
            "warning",
            "gateway.service",
            "upstream.failed",
            "upstream tester@example.org connection closed (timeout)",
        )
    ]


async def run_chromium(browser: str, profile: Path, *arguments: str) -> str:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    env = {**os.environ, "HOME": str(profile)}
    with trio.fail_after(BROWSER_TIMEOUT):
        result = await trio.run_process(command, capture_stdout=True, capture_stderr=True, env=env)
    return result.stdout.decode("utf-8", "replace")


async def serve_page(
    nursery: trio.Nursery, source: GrowingSource, token: str | None
) -> tuple[str, StatusApp]:
    app = StatusApp(source, token=token, refresh_seconds=REFRESH_SECONDS, errors=recent_errors)
    for step, (sessions, queued) in enumerate([(0, 0), (3, 4), (2, 9), (5, 6), (4, 1)]):
        totals = StatusTotals(queued=queued, handshakes_ok=step * step, deliveries_ok=step * 7)
        app.ring.record(step * 5.0, sessions, totals)
    endpoint = MetricsWithStatusEndpoint(CollectorRegistry(), lambda: [], app, port=0)
    port = await nursery.start(endpoint.serve)
    return f"http://127.0.0.1:{port}/status/", app


async def test_page_renders_a_session_and_updates(tmp_path: Path) -> None:
    browser = chromium()
    source = GrowingSource()
    async with trio.open_nursery() as nursery:
        url, _ = await serve_page(nursery, source, token=None)
        source.grow = False
        shot = tmp_path / "status.png"
        await run_chromium(
            browser,
            tmp_path / "profile-shot",
            f"--screenshot={shot}",
            "--window-size=1100,800",
            url,
        )
        source.grow = True  # from now on each read of the data shows one more session
        dom = await run_chromium(
            browser, tmp_path / "profile-dom", "--virtual-time-budget=5000", "--dump-dom", url
        )
        nursery.cancel_scope.cancel()
    assert shot.stat().st_size > 0
    assert "<td>0a5e</td>" in dom
    assert "<td>tester@example.org</td>" in dom
    assert 'id="chart-sessions"' in dom
    assert dom.count("<svg ") == 6
    assert "live sessions: 4" in dom  # the chart's label: the newest sample
    assert "connection closed (timeout)" in dom
    updates = re.search(r'data-updates="(\d+)"', dom)
    assert updates is not None
    assert int(updates.group(1)) >= 1, "the page's script never refreshed it from the feed"
    count = re.search(r'id="session-count">(\d+)<', dom)
    assert count is not None
    assert int(count.group(1)) >= 3  # 2 when served, more after the script's refresh


async def test_page_with_a_token_fills_itself_from_the_fragment(tmp_path: Path) -> None:
    browser = chromium()
    source = GrowingSource()
    async with trio.open_nursery() as nursery:
        url, _ = await serve_page(nursery, source, token=TOKEN)
        without = await run_chromium(
            browser, tmp_path / "p1", "--virtual-time-budget=3000", "--dump-dom", url
        )
        with_token = await run_chromium(
            browser,
            tmp_path / "p2",
            "--virtual-time-budget=3000",
            "--dump-dom",
            f"{url}#token={TOKEN}",
        )
        nursery.cancel_scope.cancel()
    assert "0a5e" not in without
    assert "needs the status token" in without
    assert "<td>0a5e</td>" in with_token
    assert 'id="session-count">1<' in with_token
    assert 'id="chart-sessions"' in with_token
