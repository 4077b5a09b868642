"""The operations endpoint: ``/metrics``, ``/healthz`` and ``/readyz`` over HTTP/1.1 on trio.

Served by hypercorn (``hypercorn.trio.serve``), a maintained ASGI server that runs on trio and
parses HTTP with h11 within a bounded buffer (``h11_max_incomplete_size``); a malformed request
gets a 400 and ends that connection only. The application here is a plain ASGI callable with
three routes:

- ``/metrics``: the registry in the format the scraper asks for (``Accept`` negotiation by
  ``prometheus_client.exposition.choose_encoder``: OpenMetrics or the Prometheus text format);
- ``/healthz``: liveness; answering at all proves the trio loop runs;
- ``/readyz``: readiness from a callable the service supplies, returning the reasons the gateway
  is not ready (listeners down, store closed, draining): none gives 200, any gives 503 with one
  reason a line.

Like the device listeners, the endpoint binds loopback unless ``allow_public`` is given
(Prosody's mod_http_openmetrics does the same): metrics tell an observer how busy each listener
is and why packets are dropped.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import Final

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

__all__ = [
    "DEFAULT_METRICS_HOST",
    "DEFAULT_PORT",
    "MetricsEndpoint",
    "PublicBindRefusedError",
    "ReadinessCheck",
]

logger = logging.getLogger(__name__)

DEFAULT_METRICS_HOST: Final = "127.0.0.1"  # loopback unless the operator explicitly allows more
DEFAULT_PORT: Final = 9464  # the OpenTelemetry Prometheus exporter default; any free port will do
DEFAULT_MAX_REQUEST_HEAD: Final = 8 * 1024  # a scrape's request line and headers fit easily

ReadinessCheck = Callable[[], Sequence[str]]
"""The reasons the gateway is not ready now; an empty sequence when it is."""

_TEXT: Final = (b"content-type", b"text/plain; charset=utf-8")


class PublicBindRefusedError(ValueError):
    """The endpoint was asked to listen beyond loopback without ``allow_public``."""


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MetricsEndpoint:
    """The ASGI application and its server; start with ``port = await nursery.start(ep.serve)``.

    ``readiness`` returns why the gateway is not ready (see :data:`ReadinessCheck`); the
    endpoint is cancelled with the nursery that runs it.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: ReadinessCheck,
        *,
        host: str = DEFAULT_METRICS_HOST,
        port: int = DEFAULT_PORT,
        allow_public: bool = False,
        max_request_head: int = DEFAULT_MAX_REQUEST_HEAD,
    ) -> None:
        if not allow_public and not _is_loopback(host):
            raise PublicBindRefusedError(
                f"the metrics endpoint {_bind_text(host, port)} listens beyond loopback, and "
                "allow_public is false: allow it explicitly (as listen.allow_public does for "
                f"the device listeners) to expose metrics to that network, or listen on "
                f"127.0.0.1:{port}"
            )
        self.registry = registry
        self.readiness = readiness
        self.host = host
        self.port = port
        self.max_request_head = max_request_head

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the bound port to ``nursery.start()``, and serve until cancelled."""
        config = Config()
        config.bind = [_bind_text(self.host, self.port)]
        config.accesslog = None
        config.errorlog = logger
        config.include_server_header = False
        config.h11_max_incomplete_size = self.max_request_head

        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(self._run_server, config)
            port = int(binds[0].rsplit(":", 1)[1])
            logger.info("metrics endpoint listening on %s", _bind_text(self.host, port))
            task_status.started(port)

    async def _run_server(
        self, config: Config, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await serve(self, config, task_status=task_status, mode="asgi")

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """The ASGI application: lifespan (nothing to do) and the three routes."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return  # websockets are not offered; hypercorn closes the connection
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await self._respond(
                send, 405, b"only GET and HEAD\n", [_TEXT, (b"allow", b"GET, HEAD")]
            )
            return
        status, body, headers = self._route(scope)
        if method == "HEAD":
            body = b""
        await self._respond(send, status, body, headers)

    def _route(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        path = scope["path"] if scope["type"] == "http" else ""
        if path == "/healthz":
            return 200, b"ok\n", [_TEXT]
        if path == "/readyz":
            return self._readiness()
        if path == "/metrics":
            accept = ""
            if scope["type"] == "http":
                for name, value in scope["headers"]:
                    if name.lower() == b"accept":
                        accept = value.decode("latin-1")
            encoder, content_type = choose_encoder(accept)
            try:
                body = encoder(self.registry)
            except Exception:
                logger.exception("collecting metrics failed")
                return 500, b"collecting metrics failed; see the gateway's log\n", [_TEXT]
            return 200, body, [(b"content-type", content_type.encode("ascii"))]
        return 404, b"not found: try /metrics, /healthz or /readyz\n", [_TEXT]

    def _readiness(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        try:
            reasons = list(self.readiness())
        except Exception:
            logger.exception("the readiness check raised")
            reasons = ["the readiness check failed; see the gateway's log"]
        if not reasons:
            return 200, b"ready\n", [_TEXT]
        text = "".join(f"{reason}\n" for reason in reasons)
        return 503, text.encode("utf-8", errors="replace"), [_TEXT]

    @staticmethod
    async def _respond(
        send: ASGISendCallable, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"cache-control", b"no-store")],
                "trailers": False,
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
