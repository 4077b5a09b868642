"""The group-committing writer: acknowledgement after commit, batches under concurrency, failed
batches, backpressure, and close/drain."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from gateway.store.connection import open_connection
from gateway.store.errors import (
    CommitFailedError,
    OperationFailedError,
    StoreClosedError,
    StoreError,
)
from gateway.store.sqlite_writer import SqliteWriter

PRODUCERS = 500


def _database(path: Path) -> sqlite3.Connection:
    connection = open_connection(path)
    connection.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    connection.execute(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, parent INTEGER "
        "REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    return connection


def _insert(value: int) -> Callable[[sqlite3.Connection], int]:
    def operation(connection: sqlite3.Connection) -> int:
        connection.execute("INSERT INTO item (id) VALUES (?)", (value,))
        return value

    return operation


def _ids(path: Path) -> set[int]:
    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute("SELECT id FROM item")}
    finally:
        connection.close()


async def _hold_writer(writer: SqliteWriter, nursery: trio.Nursery) -> threading.Event:
    """Submit an operation that blocks the writer thread until the returned event is set, and
    return once the writer is inside it: whatever is submitted next queues up as one batch."""
    entered = threading.Event()
    release = threading.Event()

    def block(connection: sqlite3.Connection) -> int:
        entered.set()
        release.wait(30)
        return -1

    nursery.start_soon(writer.submit, block)
    assert await trio.to_thread.run_sync(entered.wait, 30)
    return release


async def test_500_producers_every_acknowledged_operation_is_durable(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = SqliteWriter(_database(path))
    writer.start()
    acknowledged: list[int] = []

    async def produce(value: int) -> None:
        await writer.submit(_insert(value))
        acknowledged.append(value)

    async with trio.open_nursery() as nursery:
        for value in range(PRODUCERS):
            nursery.start_soon(produce, value)
    await writer.aclose()
    assert sorted(acknowledged) == list(range(PRODUCERS))
    assert _ids(path) == set(acknowledged)
    stats = writer.statistics()
    assert stats.operations_committed == PRODUCERS
    assert stats.operations_failed == 0
    assert stats.failed_commits == 0
    assert stats.commits < PRODUCERS
    assert stats.largest_batch > 1
    assert stats.mean_batch_size > 1
    assert stats.commit_seconds_max > 0
    assert stats.pending == 0


async def test_queued_operations_share_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = SqliteWriter(_database(path))
    writer.start()
    results: list[int] = []

    async def produce(value: int) -> None:
        results.append(await writer.submit(_insert(value)))

    async with trio.open_nursery() as nursery:
        release = await _hold_writer(writer, nursery)
        for value in range(50):
            nursery.start_soon(produce, value)
        await trio.testing.wait_all_tasks_blocked()
        assert writer.statistics().pending == 50
        release.set()
    await writer.aclose()
    stats = writer.statistics()
    assert stats.commits == 2
    assert stats.largest_batch == 50
    assert sorted(results) == list(range(50))


async def test_a_failed_commit_fails_every_operation_of_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = SqliteWriter(_database(path))
    writer.start()
    outcomes: dict[int, BaseException | int] = {}

    def orphan(connection: sqlite3.Connection) -> int:
        # A deferred foreign key is checked at COMMIT: this makes the COMMIT itself fail.
        connection.execute("INSERT INTO item (id, parent) VALUES (999, 12345)")
        return 999

    async def produce(value: int, operation: Callable[[sqlite3.Connection], int]) -> None:
        try:
            outcomes[value] = await writer.submit(operation)
        except CommitFailedError as exc:
            outcomes[value] = exc

    async with trio.open_nursery() as nursery:
        release = await _hold_writer(writer, nursery)
        for value in range(10):
            nursery.start_soon(produce, value, _insert(value))
        nursery.start_soon(produce, 999, orphan)
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert len(outcomes) == 11
    assert all(isinstance(o, CommitFailedError) for o in outcomes.values())
    assert "none of them is durable" in str(outcomes[0])
    # The writer carries on: the next batch commits.
    assert await writer.submit(_insert(1000)) == 1000
    await writer.aclose()
    assert _ids(path) == {1000}
    stats = writer.statistics()
    assert stats.failed_commits == 1
    assert stats.operations_failed == 11


async def test_a_failing_operation_is_rolled_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = SqliteWriter(_database(path))
    writer.start()
    outcomes: dict[int, BaseException | int] = {}

    async def produce(value: int) -> None:
        try:
            outcomes[value] = await writer.submit(_insert(value))
        except OperationFailedError as exc:
            outcomes[value] = exc

    async with trio.open_nursery() as nursery:
        release = await _hold_writer(writer, nursery)
        for value in (1, 2, 2, 3):  # the second 2 violates the primary key
            nursery.start_soon(produce, value)
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    await writer.aclose()
    assert _ids(path) == {1, 2, 3}
    failures = [o for o in outcomes.values() if isinstance(o, OperationFailedError)]
    assert len(failures) <= 1  # outcomes is keyed by value: one of the two 2s
    stats = writer.statistics()
    assert stats.operations_failed == 1
    assert stats.operations_committed == 4  # 1, 2, 3 and the holding operation
    assert stats.commits == 2


async def test_backpressure_bounds_what_is_pending(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = SqliteWriter(_database(path), max_pending=8)
    writer.start()
    async with trio.open_nursery() as nursery:
        release = await _hold_writer(writer, nursery)
        for value in range(20):
            nursery.start_soon(writer.submit, _insert(value))
        await trio.testing.wait_all_tasks_blocked()
        assert writer.statistics().pending == 7  # the holding operation takes the eighth slot
        release.set()
    await writer.aclose()
    assert _ids(path) == set(range(20))


async def test_close_drains_queued_operations_then_refuses(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = SqliteWriter(_database(path))
    writer.start()
    acknowledged: list[int] = []

    async def produce(value: int) -> None:
        acknowledged.append(await writer.submit(_insert(value)))

    async with trio.open_nursery() as nursery:
        release = await _hold_writer(writer, nursery)
        for value in range(30):
            nursery.start_soon(produce, value)
        await trio.testing.wait_all_tasks_blocked()
        closed = trio.Event()

        async def close() -> None:
            await writer.aclose()
            closed.set()

        nursery.start_soon(close)
        await trio.testing.wait_all_tasks_blocked()
        assert writer.closed
        assert not closed.is_set()
        with pytest.raises(StoreClosedError, match="closed"):
            await writer.submit(_insert(100))
        release.set()
    assert closed.is_set()
    assert sorted(acknowledged) == list(range(30))
    assert _ids(path) == set(range(30))
    with pytest.raises(StoreClosedError):
        await writer.submit(_insert(101))


# The writer re-raises what killed it, so its traceback is printed; here that death is the point.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dying_writer_thread_fails_its_waiters_and_refuses_more(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = SqliteWriter(_database(path))
    writer.start()

    def die(connection: sqlite3.Connection) -> int:
        raise SystemExit("simulated death of the writer thread")  # not an Exception: escapes

    outcomes: list[BaseException] = []

    async def produce(operation: Callable[[sqlite3.Connection], int]) -> None:
        try:
            await writer.submit(operation)
        except StoreError as exc:
            outcomes.append(exc)

    async with trio.open_nursery() as nursery:
        release = await _hold_writer(writer, nursery)
        nursery.start_soon(produce, die)
        for value in range(5):
            nursery.start_soon(produce, _insert(value))
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert len(outcomes) == 6
    assert all("not durable" in str(o) for o in outcomes)
    with pytest.raises(StoreError, match="stopped"):
        await writer.submit(_insert(99))
    await writer.aclose()
    assert _ids(path) == set()
