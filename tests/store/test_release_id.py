"""Releasing a device message id after its final report: reusable, one generation up, durable.

``enqueue_upstream_once`` remembers a device's SendMessage id with its queue entry; once the
device acknowledged the id's final DeliveryReport, ``release_device_message`` frees it. A released
id is accepted again only as its next generation (its own queue entry and stanza id), while an id
not released stays a duplicate, as before.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store import EnqueueResult, UpstreamState, open_sqlite_store
from gateway.store.connection import open_connection
from gateway.store.schema import migrate

ACCOUNT = "alice@example.org"
KID = b"\x2a"
ID = b"1"
QUEUE_ID = b"2a/1"
LIFETIME = 7 * 86_400.0


async def test_an_id_not_released_stays_a_duplicate(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        first = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<a/>", now=1.0, remember_until=1.0 + LIFETIME
        )
        assert (first.result, first.generation, first.released) == (
            EnqueueResult.QUEUED,
            0,
            False,
        )
        again = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<a/>", now=2.0, remember_until=2.0 + LIFETIME
        )
        assert (again.result, again.queued, again.released) == (
            EnqueueResult.DUPLICATE,
            True,
            False,
        )
        assert first.seq is not None
        await store.remove_upstream(ACCOUNT, [first.seq])  # the server acknowledged it
        left = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<a/>", now=3.0, remember_until=3.0 + LIFETIME
        )
        assert (left.result, left.queued, left.released) == (EnqueueResult.DUPLICATE, False, False)


async def test_a_released_id_is_accepted_again_as_its_next_generation(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        old = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<old/>", now=1.0, remember_until=1.0 + LIFETIME
        )
        assert old.result is EnqueueResult.QUEUED
        assert await store.release_device_message(KID, ID) is True
        assert await store.release_device_message(KID, ID) is False  # idempotent
        # Offered as generation 0 (the binding does not know): nothing written, generation 1.
        asked = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<new0/>", now=2.0, remember_until=2.0 + LIFETIME
        )
        assert (asked.result, asked.released, asked.generation) == (
            EnqueueResult.DUPLICATE,
            True,
            1,
        )
        new = await store.enqueue_upstream_once(
            ACCOUNT,
            KID,
            ID,
            QUEUE_ID,
            b"<new1/>",
            now=2.0,
            remember_until=2.0 + LIFETIME,
            generation=1,
        )
        assert (new.result, new.generation, new.released) == (EnqueueResult.QUEUED, 1, False)
        # The old message, still queued (its report was UNKNOWN by timeout), keeps its entry.
        queue = await store.upstream_queue(ACCOUNT, states=list(UpstreamState))
        assert [(i.device_message_id, i.payload) for i in queue] == [
            (QUEUE_ID, b"<old/>"),
            (QUEUE_ID + b"/1", b"<new1/>"),
        ]
        # A retransmission of the new message is its duplicate, generation 1, still queued.
        again = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<new0/>", now=3.0, remember_until=3.0 + LIFETIME
        )
        assert (again.result, again.queued, again.generation, again.released) == (
            EnqueueResult.DUPLICATE,
            True,
            1,
            False,
        )


async def test_release_is_durable_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    async with open_sqlite_store(path) as store:
        await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<a/>", now=1.0, remember_until=1.0 + LIFETIME
        )
        assert await store.release_device_message(KID, ID)
    async with open_sqlite_store(path) as store:
        assert await store.release_device_message(KID, ID) is False  # still released
        asked = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<b/>", now=2.0, remember_until=2.0 + LIFETIME
        )
        assert (asked.released, asked.generation) == (True, 1)
        new = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<b/>", now=2.0, remember_until=2.0, generation=1
        )
        assert new.result is EnqueueResult.QUEUED
        # Reused and released once more: generation 2, never an earlier one again.
        assert await store.release_device_message(KID, ID)
    async with open_sqlite_store(path) as store:
        asked = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<c/>", now=3.0, remember_until=3.0 + LIFETIME
        )
        assert (asked.released, asked.generation) == (True, 2)


async def test_remembering_a_released_id_accepts_it_again(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        assert await store.remember_device_message(KID, ID, expires_at=LIFETIME)
        assert not await store.remember_device_message(KID, ID, expires_at=LIFETIME)
        assert await store.release_device_message(KID, ID)
        assert await store.remember_device_message(KID, ID, expires_at=LIFETIME)
        assert not await store.remember_device_message(KID, ID, expires_at=LIFETIME)
        asked = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<a/>", now=1.0, remember_until=1.0 + LIFETIME
        )
        assert (asked.result, asked.generation, asked.released) == (
            EnqueueResult.DUPLICATE,
            1,
            False,
        )


async def test_an_id_remembered_by_schema_version_2_is_generation_0_and_releasable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gw.db"
    connection = open_connection(path)
    assert migrate(connection, target=2) == 2
    connection.execute(
        "INSERT INTO seen_device_messages (device_kid, message_id, expires_at) VALUES (?, ?, ?)",
        (KID, ID, 1.0 + LIFETIME),
    )
    connection.execute(
        "INSERT INTO upstream_queue (account_jid, device_message_id, payload, state, enqueued_at, "
        "updated_at) VALUES (?, ?, ?, 'pending', 1.0, 1.0)",
        (ACCOUNT, QUEUE_ID, b"<queued-by-v2/>"),
    )
    connection.close()
    async with open_sqlite_store(path) as store:
        again = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<a/>", now=2.0, remember_until=2.0 + LIFETIME
        )
        assert (again.result, again.queued, again.generation, again.released) == (
            EnqueueResult.DUPLICATE,
            True,
            0,
            False,
        )
        assert await store.release_device_message(KID, ID)
        asked = await store.enqueue_upstream_once(
            ACCOUNT, KID, ID, QUEUE_ID, b"<a/>", now=3.0, remember_until=3.0 + LIFETIME
        )
        assert (asked.released, asked.generation) == (True, 1)
    check = sqlite3.connect(path)
    try:
        assert check.execute(
            "SELECT generation, released FROM seen_device_messages WHERE device_kid = ?", (KID,)
        ).fetchall() == [(0, 1)]
    finally:
        check.close()
