"""`kill -9` of a process writing to the store, three times over the same database (each restart
recovers the WAL the last one left): every operation a process acknowledged survives."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parents[2]
ACKNOWLEDGED_BEFORE_KILL = 400
ROUNDS = 3


async def _run_and_kill(path: Path, first: int) -> set[bytes]:
    """Start a writer, let it acknowledge enough, kill -9 it; return the ids it acknowledged."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.store._crash_writer", str(path), str(first)],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    output = bytearray()
    try:
        with trio.fail_after(120):
            while output.count(b"\n") < ACKNOWLEDGED_BEFORE_KILL:
                chunk = await process.stdout.receive_some(65536)
                assert chunk, f"the writer exited early with {await process.wait()}"
                output += chunk
        process.send_signal(signal.SIGKILL)
        with trio.fail_after(30):
            while chunk := await process.stdout.receive_some(65536):
                output += chunk
            assert await process.wait() == -signal.SIGKILL
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    # Only complete lines are acknowledgements; a partial last line is not.
    return set(bytes(output).split(b"\n")[:-1])


def _stored(path: Path) -> set[bytes]:
    connection = sqlite3.connect(path)
    try:
        return {
            row[0]
            for row in connection.execute(
                "SELECT message_id FROM device_queue WHERE device_kid = ?", (b"crash-device",)
            )
        }
    finally:
        connection.close()


async def test_every_acknowledged_operation_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    acknowledged: set[bytes] = set()
    for round_number in range(ROUNDS):
        acknowledged |= await _run_and_kill(path, first=round_number * 10**8)
        missing = acknowledged - _stored(path)
        assert not missing, (
            f"round {round_number}: {len(missing)} acknowledged operations lost, "
            f"e.g. {sorted(missing)[:5]}"
        )
    assert len(acknowledged) >= ROUNDS * ACKNOWLEDGED_BEFORE_KILL
