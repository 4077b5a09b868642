"""Opening the SQLite database: file modes 0600 for the database and its -wal/-shm, WAL, and
``synchronous=FULL`` so a returned COMMIT is on disk (the WAL is fsynced at every commit).

The database holds credentials and queued message bodies, so it is a secret at rest. The file is
created with ``os.open(..., 0o600)`` before SQLite sees it; SQLite's unix VFS gives the -wal and
-shm files the permissions of the database file, and :func:`restrict_file_modes` enforces 0600 on
all three after every open (a file copied in with looser modes is tightened, not trusted). The
process umask is left alone: it is process-wide and other threads may be creating files.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

SECRET_FILE_MODE = 0o600
DEFAULT_BUSY_TIMEOUT_MS = 10_000  # a reader may wait this long for a checkpoint; no writer contends


def _companions(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def restrict_file_modes(path: Path) -> None:
    """Set the database file and whichever of its -wal/-shm exist to mode 0600."""
    for file in _companions(path):
        try:
            os.chmod(file, SECRET_FILE_MODE)
        except FileNotFoundError:
            continue


def create_secret_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an existing file is not loosened).

    An existing file is never opened here: closing any descriptor of a file drops every POSIX
    lock the process holds on it, SQLite's included, and a process whose locks are gone looks
    absent to the others; the last of them to close would then delete the write-ahead log this
    process is still writing to (tests/store/test_two_processes.py).
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, SECRET_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def _require_wal(connection: sqlite3.Connection) -> None:
    mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"the database refused WAL mode (journal_mode={mode})")


def open_connection(path: Path, *, query_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, ``synchronous=FULL``,
    foreign keys enforced. ``query_only`` connections refuse writes (the read pool's)."""
    create_secret_file(path)
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=DEFAULT_BUSY_TIMEOUT_MS / 1000
    )
    try:
        connection.execute(f"PRAGMA busy_timeout = {DEFAULT_BUSY_TIMEOUT_MS:d}")
        _require_wal(connection)
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        if query_only:
            connection.execute("PRAGMA query_only = ON")
    except BaseException:
        connection.close()
        raise
    restrict_file_modes(path)
    return connection
