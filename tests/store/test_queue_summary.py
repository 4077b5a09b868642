"""device_queue_summary: every device's queue depth and oldest unexpired item in one read,
the same figures as device_queue_length and device_queue(limit=1) device by device."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import QueueKind, SqliteStore, open_sqlite_store

EMPTY, ONE, MIXED, EXPIRED = b"\x01", b"\x02", b"\x03", b"\x04"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite_store(tmp_path / "gateway.db", max_device_queue=8) as opened:
        yield opened


async def _per_device(store: SqliteStore, kid: bytes, now: float) -> tuple[int, float | None]:
    depth = await store.device_queue_length(kid)
    items = await store.device_queue(kid, now=now, limit=1)
    return depth, items[0].enqueued_at if items else None


async def test_the_summary_matches_the_per_device_reads(store: SqliteStore) -> None:
    message = QueueKind.MESSAGE
    await store.enqueue_to_device(ONE, b"a", message, b"x", now=5.0)
    # The first item has expired by now=20: the oldest unexpired one is the second.
    await store.enqueue_to_device(MIXED, b"a", message, b"x", now=1.0, expires_at=10.0)
    await store.enqueue_to_device(MIXED, b"b", message, b"x", now=3.0)
    await store.enqueue_to_device(MIXED, b"c", message, b"x", now=4.0, expires_at=100.0)
    await store.enqueue_to_device(EXPIRED, b"a", message, b"x", now=2.0, expires_at=10.0)

    summary = await store.device_queue_summary(now=20.0)

    assert summary == {ONE: (1, 5.0), MIXED: (3, 3.0), EXPIRED: (1, None)}
    for kid in (ONE, MIXED, EXPIRED):
        assert summary[kid] == await _per_device(store, kid, 20.0)
    assert EMPTY not in summary
    assert await _per_device(store, EMPTY, 20.0) == (0, None)


async def test_an_empty_store_has_an_empty_summary(store: SqliteStore) -> None:
    assert await store.device_queue_summary(now=0.0) == {}
