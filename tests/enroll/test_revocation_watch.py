"""The running gateway's half of revocation: SIGHUP and the polled marker both trigger a refresh."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import trio
import trio.testing

from gateway.enroll.revocation import (
    PID_FILE_NAME,
    REVOCATION_MARKER_BLOB,
    NotifyResult,
    notify_gateway,
)
from gateway.enroll.revocation_watch import watch_revocations
from gateway.store import GatewayStore, StoreError, open_sqlite_store


class MarkerOnly:
    """The one store method the watcher uses, in memory (no threads: exact virtual times)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.fail = False

    async def get_blob(self, name: str) -> bytes | None:
        if self.fail:
            raise StoreError("the database is unavailable")
        return self.blobs.get(name)


async def test_sighup_refreshes_at_once_and_the_pid_file_lives_with_the_task(
    tmp_path: Path,
) -> None:
    calls = 0
    refreshed = trio.Event()

    async def on_revocation() -> None:
        nonlocal calls
        calls += 1
        refreshed.set()

    async with (
        open_sqlite_store(tmp_path / "db.sqlite3") as store,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(watch_revocations, store, tmp_path, on_revocation)
        assert (tmp_path / PID_FILE_NAME).exists()
        assert notify_gateway(tmp_path) is NotifyResult.SIGNALLED
        with trio.fail_after(10):
            await refreshed.wait()
        nursery.cancel_scope.cancel()
    assert calls == 1
    assert not (tmp_path / PID_FILE_NAME).exists()
    assert notify_gateway(tmp_path) is NotifyResult.NOT_RUNNING


async def test_a_changed_marker_is_noticed_at_the_next_poll(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    store = MarkerOnly()
    seen: list[float] = []

    async def on_revocation() -> None:
        seen.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: watch_revocations(
                cast(GatewayStore, store),
                tmp_path,
                on_revocation,
                poll_interval=5.0,
                task_status=task_status,
            )
        )
        start = trio.current_time()
        await trio.sleep(12.0)
        assert seen == []  # nothing changed: two polls, no refresh
        store.blobs[REVOCATION_MARKER_BLOB] = b"first"
        await trio.sleep(4.0)
        assert seen == [start + 15.0]
        store.fail = True  # a failing read is retried at the next poll, and changes nothing
        store.blobs[REVOCATION_MARKER_BLOB] = b"second"
        await trio.sleep(5.0)
        assert seen == [start + 15.0]
        store.fail = False
        await trio.sleep(5.0)
        assert seen == [start + 15.0, start + 25.0]
        nursery.cancel_scope.cancel()
