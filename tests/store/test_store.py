"""The SQLite store through its typed methods: every table, limits, coalescing, file modes."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import (
    DeviceRecord,
    EnqueueResult,
    EnrollmentState,
    GatewayStore,
    QueueKind,
    SqliteStore,
    StoreClosedError,
    StreamResumption,
    UpstreamCredential,
    UpstreamState,
    open_sqlite_store,
)

KID = b"\x2a"
ALICE = "alice@example.org"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite_store(tmp_path / "gateway.db", max_device_queue=5) as opened:
        yield opened


async def test_sqlite_store_implements_the_protocol(store: SqliteStore) -> None:
    as_protocol: GatewayStore = store  # mypy --strict checks the structural match
    assert await as_protocol.get_device(KID) is None


async def test_device_registry(store: SqliteStore) -> None:
    device = DeviceRecord(KID, b"cred", ALICE, created_at=1.0)
    assert await store.enroll_device(device)
    assert not await store.enroll_device(DeviceRecord(KID, b"other", "eve@example.org"))
    assert await store.get_device(KID) == device
    assert await store.revoke_device(KID, now=9.0)
    assert not await store.revoke_device(KID, now=10.0)
    revoked = await store.get_device(KID)
    assert revoked is not None
    assert (revoked.state, revoked.revoked_at) == (EnrollmentState.REVOKED, 9.0)
    assert await store.list_devices() == [revoked]
    assert await store.get_device(b"unknown") is None


async def test_credentials_round_trip_and_hide_secrets_from_repr(store: SqliteStore) -> None:
    credential = UpstreamCredential(
        ALICE, "sha-256", b"salt", 4096, salted_password=b"SALTED-SECRET", password="hunter2"
    )
    await store.put_credential(credential)
    assert await store.get_credential(ALICE) == credential
    text = repr(credential)
    assert "SALTED-SECRET" not in text
    assert "hunter2" not in text
    assert "4096" in text


async def test_aliases_are_small_stable_and_reused(store: SqliteStore) -> None:
    await store.enroll_device(DeviceRecord(KID, b"cred", ALICE))
    assert await store.assign_alias(KID, "bob@example.org") == 0
    assert await store.assign_alias(KID, "carol@example.org") == 1
    assert await store.assign_alias(KID, "dave@example.org") == 2
    assert await store.assign_alias(KID, "bob@example.org") == 0
    assert await store.remove_alias(KID, "carol@example.org")
    assert not await store.remove_alias(KID, "carol@example.org")
    assert await store.assign_alias(KID, "erin@example.org") == 1
    assert [(a.alias, a.contact_jid) for a in await store.aliases(KID)] == [
        (0, "bob@example.org"),
        (1, "erin@example.org"),
        (2, "dave@example.org"),
    ]
    await store.set_roster_version(KID, "v7")
    assert await store.get_roster_version(KID) == "v7"


async def test_device_queue_order_duplicates_overflow_and_expiry(store: SqliteStore) -> None:
    results = [
        await store.enqueue_to_device(
            KID, f"m{i}".encode(), QueueKind.MESSAGE, b"body", now=float(i), expires_at=100.0 + i
        )
        for i in range(5)
    ]
    assert results == [EnqueueResult.QUEUED] * 5
    assert (
        await store.enqueue_to_device(KID, b"m1", QueueKind.MESSAGE, b"again", now=6.0)
        is EnqueueResult.DUPLICATE
    )
    assert (
        await store.enqueue_to_device(KID, b"m9", QueueKind.MESSAGE, b"full", now=6.0)
        is EnqueueResult.OVERFLOW
    )
    items = await store.device_queue(KID, now=0.0)
    assert [i.message_id for i in items] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [i.message_id for i in await store.device_queue(KID, now=101.5)] == [b"m2", b"m3", b"m4"]
    expired = await store.expire_device_queue(now=101.5)
    assert [i.message_id for i in expired] == [b"m0", b"m1"]
    assert await store.remove_from_device_queue(KID, [items[2].seq, items[3].seq]) == 2
    assert [i.message_id for i in await store.device_queue(KID, now=0.0)] == [b"m4"]


async def test_presence_is_coalesced_per_contact(store: SqliteStore) -> None:
    await store.enqueue_to_device(KID, b"m0", QueueKind.MESSAGE, b"hi", now=0.0)
    for n in range(20):
        result = await store.put_presence(
            KID, "bob@example.org", f"p{n}".encode(), f"away {n}".encode(), now=1.0 + n
        )
        assert result is (EnqueueResult.QUEUED if n == 0 else EnqueueResult.REPLACED)
    await store.put_presence(KID, "carol@example.org", b"c0", b"online", now=30.0)
    items = await store.device_queue(KID, now=0.0)
    assert [(i.kind, i.coalesce_key, i.payload) for i in items] == [
        (QueueKind.MESSAGE, None, b"hi"),
        (QueueKind.PRESENCE, "presence bob@example.org", b"away 19"),
        (QueueKind.PRESENCE, "presence carol@example.org", b"online"),
    ]


async def test_upstream_queue_states(store: SqliteStore) -> None:
    for i in range(3):
        assert (
            await store.enqueue_upstream(ALICE, f"d{i}".encode(), b"<message/>", now=1.0)
            is EnqueueResult.QUEUED
        )
    assert (
        await store.enqueue_upstream(ALICE, b"d1", b"<message/>", now=2.0)
        is EnqueueResult.DUPLICATE
    )
    pending = await store.upstream_queue(ALICE, states=[UpstreamState.PENDING])
    assert await store.set_upstream_state(ALICE, [pending[0].seq], UpstreamState.SENT, now=3.0) == 1
    assert (
        await store.set_upstream_state(ALICE, [pending[1].seq], UpstreamState.ACKED, now=4.0) == 1
    )
    sent = await store.upstream_queue(ALICE, states=[UpstreamState.SENT, UpstreamState.PENDING])
    assert [(s.device_message_id, s.state) for s in sent] == [
        (b"d0", UpstreamState.SENT),
        (b"d2", UpstreamState.PENDING),
    ]
    assert await store.remove_upstream(ALICE, [pending[1].seq]) == 1
    assert len(await store.upstream_queue(ALICE, states=list(UpstreamState))) == 2


async def test_deduplication_and_replay_memory_are_bounded_and_expire(tmp_path: Path) -> None:
    async with open_sqlite_store(
        tmp_path / "d.db", max_seen_per_key=3, max_replay_digests=3
    ) as store:
        assert await store.remember_device_message(KID, b"a", expires_at=10.0)
        assert not await store.remember_device_message(KID, b"a", expires_at=10.0)
        assert await store.remember_stanza_id(ALICE, "s1", expires_at=10.0)
        assert not await store.remember_stanza_id(ALICE, "s1", expires_at=11.0)
        assert await store.remember_digest(b"h1", expires_at=10.0)
        assert not await store.remember_digest(b"h1", expires_at=10.0)
        for n, message_id in enumerate((b"b", b"c", b"d")):
            assert await store.remember_device_message(KID, message_id, expires_at=20.0 + n)
        # Past the bound of 3, the id closest to expiry (a) was forgotten.
        assert await store.remember_device_message(KID, b"a", expires_at=30.0)
        for digest in (b"h2", b"h3", b"h4"):
            assert await store.remember_digest(digest, expires_at=20.0)
        assert await store.remember_digest(b"h1", expires_at=20.0)  # the oldest was dropped
        removed = await store.forget_expired(now=25.0)
        assert removed >= 3
        assert await store.remember_stanza_id(ALICE, "s1", expires_at=40.0)


async def test_blobs_and_stream_resumption(store: SqliteStore) -> None:
    assert await store.get_blob("ticket-keys") is None
    await store.put_blob("ticket-keys", b"\x00ring", now=1.0)
    await store.put_blob("ticket-keys", b"\x01ring", now=2.0)
    assert await store.get_blob("ticket-keys") == b"\x01ring"
    state = StreamResumption(ALICE, "sm-id-1", h_inbound=17, h_outbound=4, location="[::1]:5222")
    await store.put_stream_resumption(state)
    assert await store.get_stream_resumption(ALICE) == state
    assert await store.clear_stream_resumption(ALICE)
    assert await store.get_stream_resumption(ALICE) is None


async def test_database_files_are_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    previous = os.umask(0)  # the most permissive umask: the modes must not depend on it
    try:
        async with open_sqlite_store(path) as store:
            await store.put_blob("k", b"v", now=0.0)
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)
            assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
                f.name: 0o600 for f in files
            }
    finally:
        os.umask(previous)


async def test_a_loosened_database_file_is_tightened_on_open(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    async with open_sqlite_store(path):
        pass
    path.chmod(0o644)
    async with open_sqlite_store(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_closed_store_refuses_reads_and_writes(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "c.db") as store:
        await store.put_blob("k", b"v", now=0.0)
    with pytest.raises(StoreClosedError):
        await store.put_blob("k", b"w", now=1.0)
    with pytest.raises(StoreClosedError):
        await store.get_blob("k")


async def test_coalescing_by_key_replaces_even_when_full_and_keeps_duplicates(
    store: SqliteStore,
) -> None:
    for i in range(4):
        await store.enqueue_to_device(KID, f"m{i}".encode(), QueueKind.MESSAGE, b"x", now=0.0)
    assert (
        await store.enqueue_to_device(
            KID, b"s1", QueueKind.SUBSCRIPTION, b"ask", now=1.0, coalesce_key="subscribe bob"
        )
        is EnqueueResult.QUEUED
    )
    assert await store.device_queue_length(KID) == 5  # full
    assert (
        await store.enqueue_to_device(
            KID, b"s2", QueueKind.SUBSCRIPTION, b"ask2", now=2.0, coalesce_key="subscribe bob"
        )
        is EnqueueResult.REPLACED
    )
    # A retransmission of a queued message id changes nothing, not even what it would replace.
    assert (
        await store.enqueue_to_device(
            KID, b"s2", QueueKind.SUBSCRIPTION, b"ask3", now=3.0, coalesce_key="subscribe bob"
        )
        is EnqueueResult.DUPLICATE
    )
    assert (
        await store.put_presence(KID, "bob@example.org", b"p1", b"on", now=4.0)
        is EnqueueResult.OVERFLOW
    )
    items = await store.device_queue(KID, now=0.0)
    assert [(i.message_id, i.payload) for i in items][-1] == (b"s2", b"ask2")
