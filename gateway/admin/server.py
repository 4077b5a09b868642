"""The local admin socket: a UNIX stream socket, mode 0600, that answers status and session
requests from ``impp-gateway status`` and ``impp-gateway sessions``.

The running service implements :class:`AdminHandler` and starts :func:`serve_admin` with
``nursery.start``; the server does nothing but read request lines, call the handler and write
its answers (:mod:`gateway.admin.protocol`). Access control is the file mode: the socket is
created under a umask of 077 and then chmod-ed to 0600, in a data directory that is itself
0700, so only the gateway's own user can connect. A path that exists is refused unless it is a
stale socket (a socket nobody accepts on, left by a gateway that was killed), which is removed.
A bad request, an oversized line, a slow client or a failing handler costs that one connection
an error answer; the server goes on.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import trio

from gateway.admin.protocol import (
    MAX_LINE,
    AdminProtocolError,
    Operation,
    Request,
    encode_line,
    parse_request_untrusted,
)
from gateway.admin.snapshots import (
    JsonObject,
    SessionSnapshot,
    StatusSnapshot,
    session_to_json,
    status_to_json,
)

__all__ = [
    "ADMIN_SOCKET_NAME",
    "DEFAULT_CONNECTION_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "AdminHandler",
    "AdminServer",
    "AdminServerStatistics",
    "AdminSocketError",
    "admin_socket_path",
    "serve_admin",
]

ADMIN_SOCKET_NAME: Final = "admin.sock"
SOCKET_MODE: Final = 0o600
# An operator's command sends one line and reads one; a client silent this long is gone.
DEFAULT_CONNECTION_TIMEOUT: Final = 10.0
# Operators, scripts and a monitoring agent at once; more waiting clients are told "busy".
DEFAULT_MAX_CONNECTIONS: Final = 8
_RECEIVE_SIZE: Final = 4096

logger = logging.getLogger("gateway.admin")


def admin_socket_path(data_dir: Path) -> Path:
    """Where a gateway whose data directory is ``data_dir`` listens for admin requests."""
    return data_dir / ADMIN_SOCKET_NAME


class AdminSocketError(Exception):
    """The admin socket cannot be created at its path; the message says why and what to do."""


class AdminHandler(Protocol):
    """What the service gives the admin socket: snapshots of its state, and closing a session."""

    def status(self) -> StatusSnapshot:
        """The gateway as a whole now."""
        ...

    def sessions(self, device: bytes | None) -> Sequence[SessionSnapshot]:
        """Every enrolled device's session, or only the one whose kid is ``device``."""
        ...

    async def close(self, device: bytes) -> bool:
        """End the device session of ``device``; False when it has none."""
        ...


@dataclass(frozen=True)
class AdminServerStatistics:
    """What the server refused or failed, by reason (for metrics and tests)."""

    requests: int
    malformed: int
    oversized: int
    timed_out: int
    busy: int
    handler_failures: int


class AdminServer:
    """Serves :class:`AdminHandler` on one UNIX socket; see the module docstring."""

    def __init__(
        self,
        handler: AdminHandler,
        path: Path,
        *,
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_line: int = MAX_LINE,
    ) -> None:
        self.handler = handler
        self.path = path
        self.connection_timeout = connection_timeout
        self.max_line = max_line
        self._connections = trio.CapacityLimiter(max_connections)
        self._counts = dict.fromkeys(
            ("requests", "malformed", "oversized", "timed_out", "busy", "handler_failures"), 0
        )

    def statistics(self) -> AdminServerStatistics:
        """A frozen copy of the counters."""
        return AdminServerStatistics(**self._counts)

    async def serve(self, *, task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
        """Create the socket, report its path through ``task_status``, serve until cancelled;
        the socket file is removed on the way out."""
        listener = await _bind_listener(self.path)
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(self.path)
                while True:
                    stream = await listener.accept()
                    nursery.start_soon(self._connection, stream)
        finally:
            with trio.CancelScope(shield=True):
                await listener.aclose()
            self.path.unlink(missing_ok=True)

    async def _connection(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                self._connections.acquire_on_behalf_of_nowait(stream)
            except trio.WouldBlock:
                self._counts["busy"] += 1
                await _send(stream, {"ok": False, "error": "busy: too many admin connections"})
                return
            try:
                await self._serve_lines(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass  # the client went away; nothing to answer
            finally:
                self._connections.release_on_behalf_of(stream)

    async def _serve_lines(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        while True:
            line: bytes | None = None
            with trio.move_on_after(self.connection_timeout) as scope:
                while (newline := buffer.find(b"\n")) < 0:
                    if len(buffer) > self.max_line:
                        await self._refuse_oversized(stream)
                        return
                    data = await stream.receive_some(_RECEIVE_SIZE)
                    if not data:
                        return
                    buffer += data
                line = bytes(buffer[:newline])
                del buffer[: newline + 1]
            if scope.cancelled_caught or line is None:
                self._counts["timed_out"] += 1
                return
            if len(line) > self.max_line:
                await self._refuse_oversized(stream)
                return
            await _send(stream, await self._answer(line))

    async def _refuse_oversized(self, stream: trio.SocketStream) -> None:
        """Answer an over-long line with an error, then end the connection.

        Closing with unread bytes queued makes the kernel reset the connection, which can
        discard the answer before the client reads it; so our side is shut first and up to
        one more line's worth of input is read and dropped (within the timeout).
        """
        self._counts["oversized"] += 1
        await _send(stream, {"ok": False, "error": f"request longer than {self.max_line} bytes"})
        await stream.send_eof()
        with trio.move_on_after(self.connection_timeout):
            discarded = 0
            while discarded <= self.max_line:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    break
                discarded += len(data)

    async def _answer(self, line: bytes) -> JsonObject:
        self._counts["requests"] += 1
        try:
            request = parse_request_untrusted(line)
        except AdminProtocolError as exc:
            self._counts["malformed"] += 1
            return {"ok": False, "error": str(exc)}
        try:
            return await self._perform(request)
        except Exception as exc:  # a failing handler must not take the admin socket down
            self._counts["handler_failures"] += 1
            logger.warning("admin %s failed: %s", request.operation.value, type(exc).__name__)
            return {"ok": False, "error": f"the gateway failed to answer: {type(exc).__name__}"}

    async def _perform(self, request: Request) -> JsonObject:
        if request.operation is Operation.STATUS:
            return {"ok": True, "status": status_to_json(self.handler.status())}
        if request.operation is Operation.SESSIONS:
            sessions = self.handler.sessions(request.device)
            return {"ok": True, "sessions": [session_to_json(s) for s in sessions]}
        assert request.device is not None  # parse_request_untrusted requires it for close
        closed = await self.handler.close(request.device)
        if not closed:
            return {"ok": False, "error": f"device {request.device.hex()} has no session"}
        return {"ok": True, "closed": request.device.hex()}


async def serve_admin(
    handler: AdminHandler,
    path: Path,
    *,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` on a UNIX socket at ``path`` until cancelled (``nursery.start`` it)."""
    await AdminServer(handler, path).serve(task_status=task_status)


async def _send(stream: trio.SocketStream, document: JsonObject) -> None:
    await stream.send_all(encode_line(document))


def _is_socket(path: Path) -> bool | None:
    """True for a socket, False for anything else, None when nothing is at ``path``."""
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except FileNotFoundError:
        return None


async def _remove_if_stale(path: Path) -> None:
    """Remove ``path`` if it is a socket nobody listens on; raise if anything else is there."""
    kind = _is_socket(path)
    if kind is None:
        return
    if not kind:
        raise AdminSocketError(
            f"{path} exists and is not a socket; refusing to replace it. Move it away, or "
            "check that gateway.data_dir names the gateway's own directory"
        )
    probe = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)  # stale: left by a gateway that did not stop cleanly
        return
    except OSError as exc:
        raise AdminSocketError(f"cannot check the existing socket {path}: {exc}") from exc
    finally:
        probe.close()
    raise AdminSocketError(
        f"another gateway is already answering on {path}; stop it first (impp-gateway status "
        "shows it)"
    )


async def _bind_listener(path: Path) -> trio.SocketListener:
    await _remove_if_stale(path)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        # The umask closes the window between bind() creating the file and the chmod below;
        # it is process-wide, so it is held only around the bind call.
        previous = os.umask(0o077)
        try:
            await sock.bind(str(path))
        finally:
            os.umask(previous)
        os.chmod(path, SOCKET_MODE)
        sock.listen(DEFAULT_MAX_CONNECTIONS)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AdminSocketError(f"{path} was created by someone else meanwhile") from exc
        raise AdminSocketError(f"cannot create the admin socket {path}: {exc}") from exc
    return trio.SocketListener(sock)
