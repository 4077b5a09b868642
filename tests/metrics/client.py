"""A minimal HTTP/1.1 client for the tests: h11 over a trio TCP stream to loopback."""

from __future__ import annotations

from dataclasses import dataclass

import h11
import trio

TIMEOUT = 10.0  # real seconds: a loopback answer takes milliseconds; this only bounds a hang


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


async def get(port: int, path: str, *, accept: str | None = None, method: str = "GET") -> Response:
    """One request on a fresh connection; the answer read whole."""
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            connection = h11.Connection(h11.CLIENT)
            headers = [("host", f"127.0.0.1:{port}"), ("connection", "close")]
            if accept is not None:
                headers.append(("accept", accept))
            await stream.send_all(
                connection.send(h11.Request(method=method, target=path, headers=headers))
                + connection.send(h11.EndOfMessage())
            )
            status = 0
            response_headers: dict[str, str] = {}
            body = bytearray()
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    response_headers = {
                        name.decode("latin-1"): value.decode("latin-1")
                        for name, value in event.headers
                    }
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return Response(status, response_headers, bytes(body))


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, then read what comes back until the server closes the connection."""
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(data)
            received = bytearray()
            while chunk := await stream.receive_some(65536):
                received += chunk
            return bytes(received)
