"""A TCP proxy on loopback that a test can cut, to break upstream connections on purpose."""

from __future__ import annotations

import contextlib

import trio


class CuttableProxy:
    """Forwards loopback connections to ``target``; :meth:`cut` breaks every live one."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.connections_accepted = 0
        self._live: set[trio.CancelScope] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._handle, listeners)
            task_status.started()

    def cut(self) -> None:
        """Close every current connection on both sides (new ones are still accepted)."""
        for scope in list(self._live):
            scope.cancel()

    async def _handle(self, downstream: trio.SocketStream) -> None:
        self.connections_accepted += 1
        with trio.CancelScope() as scope:
            self._live.add(scope)
            try:
                upstream = await trio.open_tcp_stream(self.target_host, self.target_port)
                async with upstream, downstream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, downstream, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pump, upstream, downstream, nursery.cancel_scope)
            finally:
                self._live.discard(scope)
        with contextlib.suppress(Exception):
            await trio.aclose_forcefully(downstream)

    @staticmethod
    async def _pump(
        source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope
    ) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while data := await source.receive_some(65536):
                await sink.send_all(data)
        scope.cancel()
