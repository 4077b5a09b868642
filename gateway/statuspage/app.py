"""The status page as an ASGI application, its sampler task, and its mount beside the metrics.

:class:`StatusApp` answers under a path prefix (``/status`` by default):

- ``/status`` redirects to ``/status/``, so the page's relative links resolve under the prefix;
- ``/status/``: the HTML page (complete, server-rendered) when the request is authorized, else
  a shell without data whose script fetches the feed with the token;
- ``/status/status.json``: the JSON feed; ``401`` without a valid token when one is required;
- ``/status/app.js`` and ``/status/style.css``: the page's script and style (no data in them).

Without a token the app serves everyone who reaches it, which is why it may only listen on
loopback then: :class:`MetricsWithStatusEndpoint` refuses a non-loopback bind without one.
With a token every data-bearing response needs ``Authorization: Bearer TOKEN``.

Rates and charts come from a :class:`~gateway.statuspage.samples.SampleRing` that
:meth:`StatusApp.sample_forever` fills every ``sample_interval`` seconds of trio time; the
service starts it in its nursery beside the endpoint.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from prometheus_client.registry import CollectorRegistry

from gateway.metrics.http import (
    DEFAULT_MAX_REQUEST_HEAD,
    DEFAULT_METRICS_HOST,
    DEFAULT_PORT,
    MetricsEndpoint,
    ReadinessCheck,
)
from gateway.observability import LogEntry, installed_recent_errors
from gateway.statuspage.assets import APP_JS, STYLE_CSS
from gateway.statuspage.render import render_page, status_document
from gateway.statuspage.samples import DEFAULT_SAMPLES, SampleRing
from gateway.statuspage.source import StatusSource
from gateway.statuspage.token import token_matches

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_REFRESH_SECONDS",
    "DEFAULT_SAMPLE_INTERVAL",
    "MetricsWithStatusEndpoint",
    "StatusApp",
    "StatusTokenRequiredError",
]

logger = logging.getLogger(__name__)

DEFAULT_PREFIX: Final = "/status"
DEFAULT_SAMPLE_INTERVAL: Final = 5.0  # seconds between chart samples
DEFAULT_REFRESH_SECONDS: Final = 5.0  # how often the open page fetches the feed

_SECURITY_HEADERS: Final = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
]
_HTML: Final = b"text/html; charset=utf-8"
_TEXT: Final = b"text/plain; charset=utf-8"


class StatusTokenRequiredError(ValueError):
    """The status page was asked to listen beyond loopback without a token."""


def _now_rfc3339() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class StatusApp:
    """The status page's ASGI application (see the module's routes)."""

    def __init__(
        self,
        source: StatusSource,
        *,
        token: str | None = None,
        errors: Callable[[], Sequence[LogEntry]] | None = None,
        prefix: str = DEFAULT_PREFIX,
        sample_interval: float = DEFAULT_SAMPLE_INTERVAL,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        samples: int = DEFAULT_SAMPLES,
    ) -> None:
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError("the prefix starts with '/' and does not end with one")
        if sample_interval <= 0 or refresh_seconds <= 0:
            raise ValueError("intervals must be positive")
        self.source = source
        self.token = token
        self.prefix = prefix
        self.sample_interval = sample_interval
        self.refresh_ms = max(int(refresh_seconds * 1000), 1)
        self.ring = SampleRing(samples)
        self._errors = errors

    # -- sampling --------------------------------------------------------------------------

    def sample(self, now: float) -> None:
        """Record one chart sample for ``now`` (seconds of any monotonic clock)."""
        try:
            sessions = len(self.source.sessions())
            totals = self.source.totals()
        except Exception as exc:
            logger.warning("status source failed: %s", type(exc).__name__)
            return
        self.ring.record(now, sessions, totals)

    async def sample_forever(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Sample now and then every ``sample_interval`` seconds of trio time, until cancelled."""
        deadline = trio.current_time()
        self.sample(deadline)
        task_status.started()
        while True:
            deadline += self.sample_interval
            await trio.sleep_until(deadline)
            self.sample(trio.current_time())

    # -- HTTP ------------------------------------------------------------------------------

    def handles(self, path: str) -> bool:
        """Whether ``path`` is under this app's prefix."""
        return path == self.prefix or path.startswith(self.prefix + "/")

    def _document(self) -> dict[str, object]:
        errors_of = self._errors
        if errors_of is None:
            recent = installed_recent_errors()
            errors: Sequence[LogEntry] = recent.entries() if recent is not None else []
        else:
            errors = errors_of()
        return status_document(
            generated_at=_now_rfc3339(),
            sessions=self.source.sessions(),
            totals=self.source.totals(),
            samples=self.ring.samples(),
            errors=errors,
        )

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        authorization = None
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name.lower() == b"authorization":
                    authorization = value
        return token_matches(self.token, authorization)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """The ASGI application: lifespan (nothing to do) and the page's routes."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"only GET and HEAD\n", _TEXT, [(b"allow", b"GET, HEAD")])
            return
        status, body, content_type, extra = self._route(scope)
        await _respond(send, status, b"" if method == "HEAD" else body, content_type, extra)

    def _route(self, scope: Scope) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        path = scope["path"] if scope["type"] == "http" else ""
        if path == self.prefix:
            location = (self.prefix + "/").encode("ascii")
            return 308, b"see " + location + b"\n", _TEXT, [(b"location", location)]
        relative = path[len(self.prefix) :] if self.handles(path) else None
        if relative == "/app.js":
            return 200, APP_JS.encode("utf-8"), b"text/javascript; charset=utf-8", []
        if relative == "/style.css":
            return 200, STYLE_CSS.encode("utf-8"), b"text/css; charset=utf-8", []
        if relative not in ("/", "/status.json"):
            return 404, b"not found: try " + self.prefix.encode() + b"/\n", _TEXT, []
        authorized = self._authorized(scope)
        if relative == "/status.json" and not authorized:
            challenge = [(b"www-authenticate", b'Bearer realm="impp-gateway status"')]
            return 401, b"a bearer token is required\n", _TEXT, challenge
        try:
            document = self._document() if authorized else None
        except Exception as exc:
            logger.warning("status source failed: %s", type(exc).__name__)
            return 500, b"the status source failed; see the gateway's log\n", _TEXT, []
        if relative == "/status.json":
            body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
            return 200, body.encode("utf-8"), b"application/json", []
        page = render_page(
            document,
            feed="status.json",
            refresh_ms=self.refresh_ms,
            token_required=self.token is not None,
        )
        return 200, page.encode("utf-8"), _HTML, []


async def _respond(
    send: ASGISendCallable,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]],
) -> None:
    headers = [(b"content-type", content_type), *_SECURITY_HEADERS, *extra]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers, "trailers": False}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class MetricsWithStatusEndpoint(MetricsEndpoint):
    """The metrics endpoint with the status page mounted under its prefix.

    Everything else (``/metrics``, ``/healthz``, ``/readyz``, binding rules) is the
    :class:`~gateway.metrics.http.MetricsEndpoint`'s; beyond loopback (``allow_public``) the
    status app must have a token, or this refuses to be built.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: ReadinessCheck,
        status: StatusApp,
        *,
        host: str = DEFAULT_METRICS_HOST,
        port: int = DEFAULT_PORT,
        allow_public: bool = False,
        max_request_head: int = DEFAULT_MAX_REQUEST_HEAD,
    ) -> None:
        super().__init__(
            registry,
            readiness,
            host=host,
            port=port,
            allow_public=allow_public,
            max_request_head=max_request_head,
        )
        if status.token is None and not _loopback(host):
            raise StatusTokenRequiredError(
                f"the status page would listen on {host} beyond loopback without a token: give "
                "the status app a token (load_token on a 0600 file), or listen on 127.0.0.1"
            )
        self.status = status

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Requests under the status prefix go to the status app, the rest to the metrics."""
        if scope["type"] == "http" and self.status.handles(scope["path"]):
            await self.status(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _loopback(host: str) -> bool:
    """The same test as the metrics endpoint's: ``localhost`` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
