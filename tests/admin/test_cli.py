"""``impp-gateway status`` and ``sessions`` through ``gateway.cli.main``, against a real admin
server in the same trio test (the command is synchronous: it runs in a worker thread)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from gateway.admin import AdminServer, admin_socket_path
from gateway.cli import main
from tests.admin.handler import TwoDevices


@pytest.fixture
def gateway_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "gw"
    assert main(["init", str(directory), "--domain", "impp.test"]) == 0
    capsys.readouterr()
    return directory


async def _cli(*argv: str) -> int:
    return await trio.to_thread.run_sync(main, list(argv))


async def test_status_and_sessions_tables(
    gateway_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = TwoDevices()
    async with trio.open_nursery() as nursery:
        await nursery.start(AdminServer(handler, admin_socket_path(gateway_dir)).serve)
        assert await _cli("status", "--config", str(gateway_dir)) == 0
        out = capsys.readouterr().out
        assert "version:    0.test" in out
        assert "uptime:     62m" in out
        assert "listeners:  udp 127.0.0.1:5690, tcp 127.0.0.1:5690" in out
        assert "sessions:   established 1, idle 1" in out
        assert "store:      open, 3 queued to devices, 0 queued upstream" in out

        assert await _cli("sessions", "--config", str(gateway_dir)) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == [
            "KID", "ACCOUNT", "STATE", "ADDRESS", "CID", "IDLE", "UPSTREAM", "QUEUE", "OLDEST",
            "ASLEEP",
        ]  # fmt: skip
        assert lines[1].split() == [
            "0a", "alice@impp.test", "established", "127.0.0.1:40001", "0007", "12s", "online",
            "3", "5m", "no",
        ]  # fmt: skip
        assert lines[2].split() == [
            "0b01", "bob@impp.test", "idle", "-", "-", "-", "offline", "0", "-", "no",
        ]  # fmt: skip
        assert lines[3] == "2 devices"

        assert (
            await _cli("sessions", "--config", str(gateway_dir), "--device", "0b01", "--json") == 0
        )
        document = json.loads(capsys.readouterr().out)
        assert [s["kid"] for s in document["sessions"]] == ["0b01"]

        assert await _cli("sessions", "--config", str(gateway_dir), "--close", "0a") == 0
        assert capsys.readouterr().out == "closed the session of device 0a\n"
        assert list(handler.open) == [b"\x0b\x01"]
        assert await _cli("sessions", "--config", str(gateway_dir), "--close", "0a") == 1
        assert "device 0a has no session" in capsys.readouterr().err
        nursery.cancel_scope.cancel()


async def test_no_running_gateway_is_a_clear_message(
    gateway_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = admin_socket_path(gateway_dir)
    for command in ("status", "sessions"):
        assert await _cli(command, "--config", str(gateway_dir)) == 1
        err = capsys.readouterr().err
        assert err == (
            f"impp-gateway {command}: no gateway is running at {path}: start it with "
            "impp-gateway run\n"
        )


async def test_bad_kid_is_an_argument_mistake(
    gateway_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _cli("sessions", "--config", str(gateway_dir), "--close", "xyz") == 2
    assert "is not a kid in hex" in capsys.readouterr().err
