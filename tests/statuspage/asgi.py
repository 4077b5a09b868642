"""A minimal ASGI client: one GET (or other method) through an app, no server, no network."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

App = Callable[..., Awaitable[None]]


@dataclass
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


async def call(
    app: App, path: str, *, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    """Send one HTTP request through ``app`` and collect its response."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 9464),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, *bodies = sent
    assert start["type"] == "http.response.start"
    return Response(
        status=start["status"],
        headers={name.lower(): value for name, value in start["headers"]},
        body=b"".join(message.get("body", b"") for message in bodies),
    )
