"""The status page: live sessions, queues, handshake and delivery rates as small charts, and the
last errors, served as HTML and JSON beside the metrics (docs/operations.md, "Status page").

The service implements :class:`StatusSource` and mounts the page on its metrics endpoint::

    status = StatusApp(source, token=load_token(path) if path else None)
    endpoint = MetricsWithStatusEndpoint(registry, readiness, status, host=..., allow_public=...)
    await nursery.start(status.sample_forever)
    port = await nursery.start(endpoint.serve)
"""

from __future__ import annotations

from gateway.statuspage.app import (
    DEFAULT_PREFIX,
    DEFAULT_REFRESH_SECONDS,
    DEFAULT_SAMPLE_INTERVAL,
    MetricsWithStatusEndpoint,
    StatusApp,
    StatusTokenRequiredError,
)
from gateway.statuspage.render import render_page, status_document
from gateway.statuspage.samples import DEFAULT_SAMPLES, Sample, SampleRing
from gateway.statuspage.source import SessionStatus, StatusCallables, StatusSource, StatusTotals
from gateway.statuspage.svg import chart_svg
from gateway.statuspage.token import (
    MIN_TOKEN_LENGTH,
    TokenFileError,
    generate_token,
    load_token,
    token_matches,
)

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_REFRESH_SECONDS",
    "DEFAULT_SAMPLES",
    "DEFAULT_SAMPLE_INTERVAL",
    "MIN_TOKEN_LENGTH",
    "MetricsWithStatusEndpoint",
    "Sample",
    "SampleRing",
    "SessionStatus",
    "StatusApp",
    "StatusCallables",
    "StatusSource",
    "StatusTokenRequiredError",
    "StatusTotals",
    "TokenFileError",
    "chart_svg",
    "generate_token",
    "load_token",
    "render_page",
    "status_document",
    "token_matches",
]
