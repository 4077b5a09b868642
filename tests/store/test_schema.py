"""Schema versions and migrations, each from the version before, with data in it."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from gateway.store import (
    SCHEMA_VERSION,
    EnqueueResult,
    QueueKind,
    SchemaError,
    UpstreamState,
    migrate_database,
    open_sqlite_store,
)
from gateway.store.connection import open_connection
from gateway.store.schema import MIGRATIONS, migrate, schema_version


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def test_the_current_version_is_every_migration() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) == 3


def test_migrate_database_creates_the_schema_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    assert migrate_database(path) == SCHEMA_VERSION
    assert migrate_database(path) == SCHEMA_VERSION  # idempotent
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    connection = sqlite3.connect(path)
    try:
        assert schema_version(connection) == SCHEMA_VERSION
        assert "coalesce_key" in _columns(connection, "device_queue")
    finally:
        connection.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    migrate_database(path)
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(SchemaError, match="newer than this gateway"):
        migrate_database(path)


async def test_migration_from_the_previous_schema_version_keeps_every_queued_message(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    connection = open_connection(path)
    assert migrate(connection, target=1) == 1
    assert "coalesce_key" not in _columns(connection, "device_queue")
    kid = b"\x01\x02"
    connection.execute(
        "INSERT INTO devices VALUES (?, ?, 'enrolled', 'alice@example.org', 1.0, NULL)",
        (kid, b"credential"),
    )
    queued = [
        (kid, f"m{i}".encode(), "message" if i % 3 else "presence", bytes([i]) * 40, 10.0 + i)
        for i in range(120)
    ]
    connection.executemany(
        "INSERT INTO device_queue (device_kid, message_id, kind, payload, enqueued_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, NULL)",
        queued,
    )
    upstream = [
        ("alice@example.org", f"d{i}".encode(), b"<x/>", "pending", 5.0, 5.0) for i in range(7)
    ]
    connection.executemany(
        "INSERT INTO upstream_queue (account_jid, device_message_id, payload, state, enqueued_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        upstream,
    )
    connection.close()

    async with open_sqlite_store(path) as store:
        items = await store.device_queue(kid, now=0.0, limit=1000)
        assert [
            (i.device_kid, i.message_id, i.kind.value, i.payload, i.enqueued_at) for i in items
        ] == queued
        assert all(item.coalesce_key is None for item in items)
        pending = await store.upstream_queue("alice@example.org", states=list(UpstreamState))
        assert [p.device_message_id for p in pending] == [u[1] for u in upstream]
        # The v2 feature works on the migrated database.
        first = await store.put_presence(kid, "bob@example.org", b"p1", b"a", now=200.0)
        second = await store.put_presence(kid, "bob@example.org", b"p2", b"b", now=201.0)
        assert (first, second) == (EnqueueResult.QUEUED, EnqueueResult.REPLACED)
        assert await store.device_queue_length(kid) == 121
        assert (await store.device_queue(kid, now=0.0, limit=1000))[-1].kind is QueueKind.PRESENCE
    check = sqlite3.connect(path)
    try:
        assert schema_version(check) == SCHEMA_VERSION
    finally:
        check.close()
