"""The admin server over a real UNIX socket: protocol, file mode, stale sockets, bad requests."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest
import trio

from gateway.admin import MAX_LINE, AdminHandler, AdminServer, AdminSocketError, admin_request
from tests.admin.handler import TwoDevices


async def _start(
    nursery: trio.Nursery, path: Path, handler: AdminHandler | None = None
) -> AdminServer:
    server = AdminServer(handler or TwoDevices(), path)
    await nursery.start(server.serve)
    return server


async def _exchange(path: Path, payload: bytes) -> list[dict[str, object]]:
    """Send raw ``payload``, half-close, and read every answer line until the server closes."""
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        await stream.send_all(payload)
        await stream.send_eof()
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


async def _request(path: Path, request: dict[str, object]) -> dict[str, object]:
    return await trio.to_thread.run_sync(admin_request, path, request)


async def test_status_sessions_and_close(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    async with trio.open_nursery() as nursery:
        await _start(nursery, path)
        status = await _request(path, {"op": "status"})
        assert status["ok"] is True
        body = status["status"]
        assert isinstance(body, dict)
        assert body["listeners"] == [
            {"kind": "udp", "address": "127.0.0.1:5690"},
            {"kind": "tcp", "address": "127.0.0.1:5690"},
        ]
        assert body["store"] == {
            "state": "open",
            "device_queue_total": 3,
            "upstream_queue_total": 0,
        }
        everyone = await _request(path, {"op": "sessions"})
        listed = everyone["sessions"]
        assert isinstance(listed, list)
        assert [entry["kid"] for entry in listed] == ["0a", "0b01"]
        one = await _request(path, {"op": "sessions", "device": "0x0b01"})
        assert one["sessions"] == [
            {
                "kid": "0b01",
                "account": "bob@impp.test",
                "state": "idle",
                "upstream_state": "offline",
                "address": None,
                "cid": None,
                "last_activity_age": None,
                "queue_depth": 0,
                "oldest_queued_age": None,
                "asleep": False,
            }
        ]
        assert await _request(path, {"op": "close", "device": "0a"}) == {"ok": True, "closed": "0a"}
        again = await _request(path, {"op": "close", "device": "0a"})
        assert again == {"ok": False, "error": "device 0a has no session"}
        nursery.cancel_scope.cancel()
    assert not path.exists()  # removed when the server stops


async def test_socket_is_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    previous = os.umask(0)  # the most permissive umask a service could inherit
    try:
        async with trio.open_nursery() as nursery:
            await _start(nursery, path)
            info = path.lstat()
            assert stat.S_ISSOCK(info.st_mode)
            assert stat.S_IMODE(info.st_mode) == 0o600
            nursery.cancel_scope.cancel()
    finally:
        os.umask(previous)


async def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(path))  # bound, never listening: what a killed gateway leaves
    leftover.close()
    assert stat.S_ISSOCK(path.lstat().st_mode)
    async with trio.open_nursery() as nursery:
        await _start(nursery, path)
        assert (await _request(path, {"op": "status"}))["ok"] is True
        nursery.cancel_scope.cancel()


async def test_live_socket_and_other_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    async with trio.open_nursery() as nursery:
        await _start(nursery, path)
        with pytest.raises(AdminSocketError, match="another gateway is already answering"):
            await AdminServer(TwoDevices(), path).serve()
        assert (await _request(path, {"op": "status"}))["ok"] is True  # the first one still serves
        nursery.cancel_scope.cancel()
    regular = tmp_path / "not-a-socket"
    regular.write_text("keep me")
    with pytest.raises(AdminSocketError, match="is not a socket"):
        await AdminServer(TwoDevices(), regular).serve()
    assert regular.read_text() == "keep me"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json", "request is not a JSON object"),
        (b"[1, 2]", "request is not a JSON object"),
        (b"\xff\xfe", "request is not a JSON object"),
        (b'{"op": "reboot"}', "op must be one of status, sessions, close"),
        (b'{"op": 7}', "op must be one of status, sessions, close"),
        (b'{"op": "close"}', "close needs the device's kid"),
        (b'{"op": "sessions", "device": "zz"}', "device 'zz' is not a kid in hex (e.g. 0a)"),
        (b'{"op": "sessions", "device": 10}', "device must be the kid in hex, as a string"),
        (b'{"op": "status", "extra": 1}', "unknown request key 'extra'"),
        (b"[" * 100_000, "request longer than 65536 bytes"),
    ],
)
async def test_malformed_requests_get_errors_and_the_server_goes_on(
    tmp_path: Path, line: bytes, error: str
) -> None:
    path = tmp_path / "admin.sock"
    async with trio.open_nursery() as nursery:
        server = await _start(nursery, path)
        answers = await _exchange(path, line + b"\n" + b'{"op": "status"}\n')
        assert answers[0] == {"ok": False, "error": error}
        if len(line) <= MAX_LINE:  # after a bad line the connection still serves the next one
            assert answers[1]["ok"] is True
        assert (await _request(path, {"op": "status"}))["ok"] is True
        assert server.statistics().requests >= 1
        nursery.cancel_scope.cancel()


async def test_oversized_line_without_newline_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    async with trio.open_nursery() as nursery:
        server = await _start(nursery, path)
        answers = await _exchange(path, b"x" * (MAX_LINE + 10_000))
        assert answers == [{"ok": False, "error": f"request longer than {MAX_LINE} bytes"}]
        assert server.statistics().oversized == 1
        assert (await _request(path, {"op": "status"}))["ok"] is True
        nursery.cancel_scope.cancel()


async def test_failing_handler_is_an_error_answer(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    handler = TwoDevices()
    handler.fail = True
    async with trio.open_nursery() as nursery:
        server = await _start(nursery, path, handler)
        answer = await _request(path, {"op": "status"})
        assert answer == {"ok": False, "error": "the gateway failed to answer: RuntimeError"}
        assert server.statistics().handler_failures == 1
        handler.fail = False
        assert (await _request(path, {"op": "status"}))["ok"] is True
        nursery.cancel_scope.cancel()


async def test_silent_client_is_dropped_after_the_timeout(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "admin.sock"
    async with trio.open_nursery() as nursery:
        server = AdminServer(TwoDevices(), path, connection_timeout=10.0)
        await nursery.start(server.serve)
        stream = await trio.open_unix_socket(str(path))
        start = trio.current_time()
        async with stream:
            await stream.send_all(b'{"op": "sta')
            assert await stream.receive_some(100) == b""  # closed by the server
        assert trio.current_time() - start == pytest.approx(10.0)
        assert server.statistics().timed_out == 1
        nursery.cancel_scope.cancel()
