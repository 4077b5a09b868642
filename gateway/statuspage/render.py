"""The status page's two views of one snapshot: a JSON document and the HTML page.

:func:`status_document` builds the JSON feed (what the page's script fetches to update itself);
:func:`render_page` draws the same data as HTML on the server, so the page is complete before
any script runs. Every string from the gateway's state (an account JID, a state name, a log
message) is escaped here; the charts come from :mod:`gateway.statuspage.svg`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Final

from gateway.observability import LogEntry
from gateway.statuspage.samples import Sample
from gateway.statuspage.source import SessionStatus, StatusTotals
from gateway.statuspage.svg import chart_svg

__all__ = ["CHARTS", "MAX_ERRORS_SHOWN", "MAX_SESSIONS_SHOWN", "render_page", "status_document"]

MAX_SESSIONS_SHOWN: Final = 200  # rows of the sessions table; the count covers all of them
MAX_ERRORS_SHOWN: Final = 20  # newest log warnings and errors listed

CHARTS: Final = (
    ("sessions", "live sessions", "", lambda s: float(s.sessions)),
    ("queued", "queued for devices", "", lambda s: float(s.queued)),
    ("handshakes", "handshakes", "/min", lambda s: s.handshakes_per_minute),
    ("handshake-failures", "failed handshakes", "/min", lambda s: s.handshake_failures_per_minute),
    ("deliveries", "deliveries", "/min", lambda s: s.deliveries_per_minute),
    ("delivery-failures", "failed deliveries", "/min", lambda s: s.delivery_failures_per_minute),
)


def _session_row(session: SessionStatus) -> dict[str, object]:
    return {
        "kid": session.kid,
        "account": session.account,
        "state": session.state,
        "transport": session.transport,
        "queue_depth": session.queue_depth,
        "idle_seconds": round(session.idle_seconds, 1),
    }


def status_document(
    *,
    generated_at: str,
    sessions: Sequence[SessionStatus],
    totals: StatusTotals,
    samples: Sequence[Sample],
    errors: Sequence[LogEntry],
) -> dict[str, object]:
    """The JSON feed: counts, the newest sessions, the series and their charts, last errors."""
    shown = sorted(sessions, key=lambda s: s.idle_seconds)[:MAX_SESSIONS_SHOWN]
    series = {name: [pick(s) for s in samples] for name, _, _, pick in CHARTS}
    return {
        "generated_at": generated_at,
        "sessions": {"count": len(sessions), "rows": [_session_row(s) for s in shown]},
        "queued": totals.queued,
        "upstreams": dict(totals.upstreams),
        "totals": {
            "handshakes_ok": totals.handshakes_ok,
            "handshakes_failed": totals.handshakes_failed,
            "deliveries_ok": totals.deliveries_ok,
            "deliveries_failed": totals.deliveries_failed,
        },
        "series": series,
        "charts": {
            name: chart_svg(name, title, series[name], unit) for name, title, unit, _ in CHARTS
        },
        "errors": [entry.as_json() for entry in errors[-MAX_ERRORS_SHOWN:]],
    }


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _rows(rows: Sequence[Mapping[str, object]]) -> str:
    cells = ("kid", "account", "state", "transport", "queue_depth", "idle_seconds")
    return "".join(
        "<tr>" + "".join(f"<td>{_e(row[cell])}</td>" for cell in cells) + "</tr>" for row in rows
    )


def _errors(errors: Sequence[Mapping[str, object]]) -> str:
    return "".join(
        f"<li><time>{_e(entry['time'])}</time> <b>{_e(entry['level'])}</b> "
        f"<code>{_e(entry['logger'])}</code> {_e(entry['message'])}</li>"
        for entry in errors
    )


def render_page(
    document: Mapping[str, object] | None, *, feed: str, refresh_ms: int, token_required: bool
) -> str:
    """The HTML page; with ``document`` ``None`` (a token is needed and the request had none)
    a shell without data, which its script fills once it has the token."""
    count = "…"
    queued = "…"
    updated = "waiting for the first update"
    charts = "".join(
        f'<figure class="chart-slot" id="chart-slot-{name}"></figure>' for name, *_ in CHARTS
    )
    rows = ""
    errors = ""
    upstreams = ""
    if document is not None:
        sessions = document["sessions"]
        assert isinstance(sessions, Mapping)
        count = _e(sessions["count"])
        queued = _e(document["queued"])
        updated = _e(document["generated_at"])
        svgs = document["charts"]
        assert isinstance(svgs, Mapping)
        charts = "".join(
            f'<figure class="chart-slot" id="chart-slot-{name}">{svgs[name]}</figure>'
            for name, *_ in CHARTS
        )
        rows = _rows(sessions["rows"])
        error_list = document["errors"]
        assert isinstance(error_list, Sequence)
        errors = _errors(error_list)
        states = document["upstreams"]
        assert isinstance(states, Mapping)
        upstreams = ", ".join(f"{_e(k)}: {_e(v)}" for k, v in sorted(states.items()))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>impp-gateway status</title>
<link rel="stylesheet" href="style.css">
<script src="app.js" defer></script>
</head>
<body data-feed="{_e(feed)}" data-refresh-ms="{refresh_ms}" data-updates="0"
 data-token-required="{str(token_required).lower()}">
<header><h1>impp-gateway status</h1>
<p id="status-note">updated <span id="updated">{updated}</span></p></header>
<section class="figures">
<p><span class="figure" id="session-count">{count}</span> live sessions</p>
<p><span class="figure" id="queued">{queued}</span> queued for devices</p>
<p>upstream sessions: <span id="upstreams">{upstreams or "none"}</span></p>
</section>
<section id="charts">{charts}</section>
<section><h2>Sessions</h2>
<table><thead><tr><th>kid</th><th>account</th><th>state</th><th>transport</th><th>queued</th>
<th>idle (s)</th></tr></thead><tbody id="sessions">{rows}</tbody></table></section>
<section><h2>Last errors</h2><ol id="errors">{errors}</ol></section>
</body>
</html>
"""
