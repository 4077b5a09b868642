"""``impp-gateway devices list|show|revoke`` and the revocation signal to a running gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
import trio

from gateway.cli import main
from gateway.enroll.revocation import (
    PID_FILE_NAME,
    REVOCATION_MARKER_BLOB,
    NotifyResult,
    notify_gateway,
    process_start_time,
    read_pid_file,
    remove_pid_file,
    write_pid_file,
)
from gateway.store import EnrollmentState, open_sqlite_store
from tests.enroll.conftest import Gateway
from tests.enroll.test_enroll import enroll, rows
from tests.support.prosody import ProsodyServer

CHILD_TIMEOUT = 30  # seconds for a child python to start, take its signal and exit


@pytest.fixture
def hangups() -> Iterator[list[int]]:
    """SIGHUPs this process receives while the test runs (the handler records them)."""
    received: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGHUP, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_list_show_revoke(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    hangups: list[int],
) -> None:
    assert main(gateway.argv("devices", "list")) == 0
    assert "no devices enrolled" in capsys.readouterr().out
    account = running_prosody.create_user()
    assert enroll(gateway, account, tmp_path) == 0
    capsys.readouterr()

    assert main(gateway.argv("devices", "list")) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["KID", "ACCOUNT", "STATE", "ENROLLED", "AT"]
    kid, jid, state, day, clock = row.split()
    assert (kid, jid, state) == ("00", account.jid, "enrolled")
    assert len(day) == 10
    assert clock.endswith("Z")

    assert main(gateway.argv("devices", "show", "0x00")) == 0
    shown = capsys.readouterr().out
    assert f"account:      {account.jid}" in shown
    assert "state:        enrolled" in shown
    assert "SCRAM-SHA-256 salted password" in shown
    assert "no password stored" in shown
    assert "valid until" in shown
    assert account.password not in shown

    # A running gateway (here: this process, through its pid file) is signalled at once.
    write_pid_file(gateway.directory)
    assert main(gateway.argv("devices", "revoke", "00")) == 0
    out = capsys.readouterr().out
    assert f"revoked device 00 ({account.jid})" in out
    assert "told (SIGHUP)" in out
    assert hangups == [signal.SIGHUP]
    assert rows(gateway, "SELECT state FROM devices") == [("revoked",)]
    assert rows(
        gateway, f"SELECT count(*) FROM named_blobs WHERE name = '{REVOCATION_MARKER_BLOB}'"
    ) == [(1,)]

    assert main(gateway.argv("devices", "revoke", "00")) == 0
    assert "was already revoked" in capsys.readouterr().out
    assert hangups == [signal.SIGHUP]
    assert main(gateway.argv("devices", "show", "00")) == 0
    assert "revoked at:" in capsys.readouterr().out
    remove_pid_file(gateway.directory)
    assert not (gateway.directory / PID_FILE_NAME).exists()


def test_unknown_and_malformed_kids(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(gateway.argv("devices", "show", "ff")) == 1
    assert "no device has kid ff" in capsys.readouterr().err
    assert main(gateway.argv("devices", "revoke", "xyz")) == 1
    assert "'xyz' is not a kid" in capsys.readouterr().err


def test_revocation_marker_changes_with_every_revocation(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = running_prosody.create_user(), running_prosody.create_user()
    assert enroll(gateway, first, tmp_path) == 0
    assert enroll(gateway, second, tmp_path) == 0

    async def marker() -> bytes | None:
        async with open_sqlite_store(gateway.database) as store:
            return await store.get_blob(REVOCATION_MARKER_BLOB)

    assert trio.run(marker) is None
    assert main(gateway.argv("devices", "revoke", "00")) == 0
    after_first = trio.run(marker)
    assert main(gateway.argv("devices", "revoke", "01")) == 0
    after_second = trio.run(marker)
    assert after_first is not None
    assert after_second is not None
    assert after_first != after_second
    assert "no gateway runs from this data directory" in capsys.readouterr().out

    async def states() -> list[EnrollmentState]:
        async with open_sqlite_store(gateway.database) as store:
            return [device.state for device in await store.list_devices()]

    assert trio.run(states) == [EnrollmentState.REVOKED, EnrollmentState.REVOKED]


def test_a_stale_pid_file_is_never_signalled(tmp_path: Path, hangups: list[int]) -> None:
    # This process's pid with another start time: what a pid reused after a crash looks like.
    start = process_start_time(os.getpid())
    assert start is not None
    (tmp_path / PID_FILE_NAME).write_text(f"{os.getpid()} {start + 1}\n")
    assert notify_gateway(tmp_path) is NotifyResult.STALE
    assert hangups == []
    (tmp_path / PID_FILE_NAME).write_text("not a pid file\n")
    assert read_pid_file(tmp_path) is None
    assert notify_gateway(tmp_path) is NotifyResult.NOT_RUNNING


def test_another_process_receives_the_signal(tmp_path: Path) -> None:
    """The gateway's half, as a child process: it writes the pid file, waits for SIGHUP."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys\n"
            "from pathlib import Path\n"
            "from gateway.enroll.revocation import write_pid_file\n"
            "signal.signal(signal.SIGHUP, lambda *_: sys.exit(42))\n"
            f"write_pid_file(Path({str(tmp_path)!r}))\n"
            "print('ready', flush=True)\n"
            "signal.pause()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        assert notify_gateway(tmp_path) is NotifyResult.SIGNALLED
        assert child.wait(timeout=CHILD_TIMEOUT) == 42
        assert notify_gateway(tmp_path) is NotifyResult.STALE
    finally:
        child.kill()
        child.wait(timeout=CHILD_TIMEOUT)
        if child.stdout is not None:
            child.stdout.close()
