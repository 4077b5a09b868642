"""Two processes on one database, as when ``impp-gateway enroll`` runs beside ``run``.

SQLite's locks are POSIX advisory locks, which a process loses, all of them, as soon as it closes
any descriptor of the file. The other process, finding no lock when it closed, took itself for the
last user: it checkpointed and deleted the write-ahead log the running gateway was still writing
to. What the gateway committed after that went into the deleted file and was lost, and the
database was left truncated ("database disk image is malformed"); the capacity benchmark hit it
when it enrolled 9,000 devices beside a running service.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import trio

from gateway.store import open_sqlite_store

REPO = Path(__file__).resolve().parents[2]


async def test_a_process_opening_and_closing_the_store_loses_nothing_of_the_running_one(
    tmp_path: Path,
) -> None:
    database = tmp_path / "gateway.sqlite3"
    async with open_sqlite_store(database) as store:
        await store.put_blob("before", b"1", now=0.0)
        other = await trio.run_process(
            [sys.executable, "-m", "tests.store._open_and_close", str(database)],
            cwd=REPO,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert other.returncode == 0, other.stderr.decode()
        # The running process's log is still there, and it goes on committing into it.
        assert database.with_name(database.name + "-wal").exists()
        await store.put_blob("after", b"2", now=0.0)
    async with open_sqlite_store(database) as reopened:
        assert await reopened.get_blob("before") == b"1"
        assert await reopened.get_blob("from the other process") == b"enrolled"
        assert await reopened.get_blob("after") == b"2"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
