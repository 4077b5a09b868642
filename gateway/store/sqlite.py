"""`SqliteStore`: the :class:`~gateway.store.protocol.GatewayStore` over one SQLite file.

Writes go through the group-committing writer thread (:mod:`gateway.store.sqlite_writer`) and
return after their commit. Reads run on a small pool of query-only connections through
``trio.to_thread.run_sync`` with a capacity limiter equal to the pool's size, so each worker
thread holds a connection of its own; in WAL mode readers see the last commit and never block the
writer. A read issued after a write returned sees that write (it committed before returning).
"""

from __future__ import annotations

import collections
import functools
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import trio

from gateway.store import sqlite_ops as ops
from gateway.store.connection import open_connection, restrict_file_modes
from gateway.store.errors import StoreClosedError
from gateway.store.records import (
    ContactAlias,
    DeviceQueueItem,
    DeviceRecord,
    EnqueuedUpstream,
    EnqueueResult,
    QueueKind,
    StreamResumption,
    UpstreamCredential,
    UpstreamQueueItem,
    UpstreamState,
)
from gateway.store.schema import migrate
from gateway.store.sqlite_writer import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_PENDING,
    SqliteWriter,
    WriterStatistics,
)

T = TypeVar("T")

DEFAULT_READERS = 2  # read connections; the machine class this runs on has two cores
DEFAULT_MAX_DEVICE_QUEUE = 1000  # items per device: a night of traffic for a chatty contact list
DEFAULT_MAX_UPSTREAM_QUEUE = 1000  # stanzas per account waiting for the server
DEFAULT_MAX_SEEN_PER_KEY = 4096  # de-duplication ids kept per device or per account
DEFAULT_MAX_REPLAY_DIGESTS = 100_000  # signed-message digests kept by the replay memory


class _ReadPool:
    """Query-only connections handed to one worker thread at a time."""

    def __init__(self, path: Path, size: int) -> None:
        self._lock = threading.Lock()
        self._idle: collections.deque[sqlite3.Connection] = collections.deque(
            open_connection(path, query_only=True) for _ in range(size)
        )
        self.limiter = trio.CapacityLimiter(size)

    def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            connection = self._idle.popleft()
        try:
            return operation(connection)
        finally:
            with self._lock:
                self._idle.append(connection)

    def close(self) -> None:
        with self._lock:
            while self._idle:
                self._idle.popleft().close()


class SqliteStore:
    """The gateway's durable state in one SQLite database (see :func:`open_sqlite_store`)."""

    def __init__(
        self, path: Path, writer: SqliteWriter, readers: _ReadPool, limits: ops.Limits
    ) -> None:
        self.path = path
        self._writer = writer
        self._readers = readers
        self._limits = limits

    async def _write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.submit(operation)

    async def _read(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer.closed:
            raise StoreClosedError("the store is closed")
        return await trio.to_thread.run_sync(
            self._readers.run, operation, limiter=self._readers.limiter
        )

    def statistics(self) -> WriterStatistics:
        """The writer's counters: commits, batch sizes, commit latency, failures."""
        return self._writer.statistics()

    async def aclose(self) -> None:
        """Commit every operation already submitted, refuse new ones, close the connections."""
        await self._writer.aclose()
        self._readers.close()
        restrict_file_modes(self.path)

    # -- the device registry ----------------------------------------------------------------
    async def enroll_device(self, device: DeviceRecord) -> bool:
        return await self._write(functools.partial(ops.enroll_device, device=device))

    async def revoke_device(self, kid: bytes, *, now: float) -> bool:
        return await self._write(functools.partial(ops.revoke_device, kid=kid, now=now))

    async def get_device(self, kid: bytes) -> DeviceRecord | None:
        return await self._read(functools.partial(ops.get_device, kid=kid))

    async def list_devices(self) -> Sequence[DeviceRecord]:
        return await self._read(ops.list_devices)

    # -- upstream credentials ---------------------------------------------------------------
    async def put_credential(self, credential: UpstreamCredential) -> None:
        await self._write(functools.partial(ops.put_credential, credential=credential))

    async def get_credential(self, account_jid: str) -> UpstreamCredential | None:
        return await self._read(functools.partial(ops.get_credential, account_jid=account_jid))

    # -- contact aliases and roster versions -------------------------------------------------
    async def assign_alias(self, device_kid: bytes, contact_jid: str) -> int:
        return await self._write(
            functools.partial(ops.assign_alias, device_kid=device_kid, contact_jid=contact_jid)
        )

    async def remove_alias(self, device_kid: bytes, contact_jid: str) -> bool:
        return await self._write(
            functools.partial(ops.remove_alias, device_kid=device_kid, contact_jid=contact_jid)
        )

    async def aliases(self, device_kid: bytes) -> Sequence[ContactAlias]:
        return await self._read(functools.partial(ops.aliases, device_kid=device_kid))

    async def set_roster_version(self, device_kid: bytes, version: str) -> None:
        await self._write(
            functools.partial(ops.set_roster_version, device_kid=device_kid, version=version)
        )

    async def get_roster_version(self, device_kid: bytes) -> str | None:
        return await self._read(functools.partial(ops.get_roster_version, device_kid=device_kid))

    # -- the to-device queue ----------------------------------------------------------------
    async def enqueue_to_device(
        self,
        device_kid: bytes,
        message_id: bytes,
        kind: QueueKind,
        payload: bytes,
        *,
        now: float,
        expires_at: float | None = None,
        coalesce_key: str | None = None,
    ) -> EnqueueResult:
        return await self._write(
            functools.partial(
                ops.enqueue_to_device,
                limits=self._limits,
                device_kid=device_kid,
                message_id=message_id,
                kind=kind,
                payload=payload,
                now=now,
                expires_at=expires_at,
                coalesce_key=coalesce_key,
            )
        )

    async def put_presence(
        self,
        device_kid: bytes,
        contact_jid: str,
        message_id: bytes,
        payload: bytes,
        *,
        now: float,
        expires_at: float | None = None,
    ) -> EnqueueResult:
        return await self._write(
            functools.partial(
                ops.enqueue_to_device,
                limits=self._limits,
                device_kid=device_kid,
                message_id=message_id,
                kind=QueueKind.PRESENCE,
                payload=payload,
                now=now,
                expires_at=expires_at,
                coalesce_key=ops.presence_coalesce_key(contact_jid),
            )
        )

    async def device_queue(
        self, device_kid: bytes, *, now: float, limit: int = 100
    ) -> Sequence[DeviceQueueItem]:
        return await self._read(
            functools.partial(ops.device_queue, device_kid=device_kid, now=now, limit=limit)
        )

    async def remove_from_device_queue(self, device_kid: bytes, seqs: Sequence[int]) -> int:
        return await self._write(
            functools.partial(ops.remove_from_device_queue, device_kid=device_kid, seqs=seqs)
        )

    async def expire_device_queue(self, *, now: float) -> Sequence[DeviceQueueItem]:
        return await self._write(functools.partial(ops.expire_device_queue, now=now))

    async def device_queue_length(self, device_kid: bytes) -> int:
        return await self._read(functools.partial(ops.device_queue_length, device_kid=device_kid))

    async def device_queue_summary(self, *, now: float) -> Mapping[bytes, tuple[int, float | None]]:
        return await self._read(functools.partial(ops.device_queue_summary, now=now))

    # -- the to-upstream queue --------------------------------------------------------------
    async def enqueue_upstream(
        self, account_jid: str, device_message_id: bytes, payload: bytes, *, now: float
    ) -> EnqueueResult:
        return await self._write(
            functools.partial(
                ops.enqueue_upstream,
                limits=self._limits,
                account_jid=account_jid,
                device_message_id=device_message_id,
                payload=payload,
                now=now,
            )
        )

    async def enqueue_upstream_once(
        self,
        account_jid: str,
        device_kid: bytes,
        device_message_id: bytes,
        queue_id: bytes,
        payload: bytes,
        *,
        now: float,
        remember_until: float,
        generation: int = 0,
    ) -> EnqueuedUpstream:
        return await self._write(
            functools.partial(
                ops.enqueue_upstream_once,
                limits=self._limits,
                account_jid=account_jid,
                device_kid=device_kid,
                device_message_id=device_message_id,
                queue_id=queue_id,
                payload=payload,
                now=now,
                remember_until=remember_until,
                generation=generation,
            )
        )

    async def set_upstream_state(
        self, account_jid: str, seqs: Sequence[int], state: UpstreamState, *, now: float
    ) -> int:
        return await self._write(
            functools.partial(
                ops.set_upstream_state, account_jid=account_jid, seqs=seqs, state=state, now=now
            )
        )

    async def upstream_queue(
        self, account_jid: str, *, states: Sequence[UpstreamState], limit: int = 100
    ) -> Sequence[UpstreamQueueItem]:
        return await self._read(
            functools.partial(
                ops.upstream_queue, account_jid=account_jid, states=states, limit=limit
            )
        )

    async def remove_upstream(self, account_jid: str, seqs: Sequence[int]) -> int:
        return await self._write(
            functools.partial(ops.remove_upstream, account_jid=account_jid, seqs=seqs)
        )

    # -- de-duplication ids and replay memory -----------------------------------------------
    async def remember_device_message(
        self, device_kid: bytes, message_id: bytes, *, expires_at: float
    ) -> bool:
        return await self._write(
            functools.partial(
                ops.remember_device_message,
                limits=self._limits,
                device_kid=device_kid,
                message_id=message_id,
                expires_at=expires_at,
            )
        )

    async def release_device_message(self, device_kid: bytes, message_id: bytes) -> bool:
        return await self._write(
            functools.partial(
                ops.release_device_message, device_kid=device_kid, message_id=message_id
            )
        )

    async def remember_stanza_id(
        self, account_jid: str, stanza_id: str, *, expires_at: float
    ) -> bool:
        return await self._write(
            functools.partial(
                ops.remember_stanza_id,
                limits=self._limits,
                account_jid=account_jid,
                stanza_id=stanza_id,
                expires_at=expires_at,
            )
        )

    async def remember_digest(self, digest: bytes, *, expires_at: float) -> bool:
        return await self._write(
            functools.partial(
                ops.remember_digest, limits=self._limits, digest=digest, expires_at=expires_at
            )
        )

    async def forget_expired(self, *, now: float) -> int:
        return await self._write(functools.partial(ops.forget_expired, now=now))

    # -- named blobs and XEP-0198 stream state ----------------------------------------------
    async def put_blob(self, name: str, value: bytes, *, now: float) -> None:
        await self._write(functools.partial(ops.put_blob, name=name, value=value, now=now))

    async def get_blob(self, name: str) -> bytes | None:
        return await self._read(functools.partial(ops.get_blob, name=name))

    async def put_stream_resumption(self, state: StreamResumption) -> None:
        await self._write(functools.partial(ops.put_stream_resumption, state=state))

    async def get_stream_resumption(self, account_jid: str) -> StreamResumption | None:
        return await self._read(
            functools.partial(ops.get_stream_resumption, account_jid=account_jid)
        )

    async def clear_stream_resumption(self, account_jid: str) -> bool:
        return await self._write(
            functools.partial(ops.clear_stream_resumption, account_jid=account_jid)
        )


def _open_writer_connection(path: Path) -> sqlite3.Connection:
    connection = open_connection(path)
    try:
        migrate(connection)
    except BaseException:
        connection.close()
        raise
    restrict_file_modes(path)
    return connection


@asynccontextmanager
async def open_sqlite_store(
    path: str | Path,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_pending: int = DEFAULT_MAX_PENDING,
    readers: int = DEFAULT_READERS,
    max_device_queue: int = DEFAULT_MAX_DEVICE_QUEUE,
    max_upstream_queue: int = DEFAULT_MAX_UPSTREAM_QUEUE,
    max_seen_per_key: int = DEFAULT_MAX_SEEN_PER_KEY,
    max_replay_digests: int = DEFAULT_MAX_REPLAY_DIGESTS,
) -> AsyncIterator[SqliteStore]:
    """Open (creating and migrating as needed) the database and yield the store; on exit, every
    submitted operation is committed before the connections close.

    ``max_batch=1`` gives one commit per operation (the benchmark's baseline).
    """
    database = Path(path)
    connection = await trio.to_thread.run_sync(_open_writer_connection, database)
    writer = SqliteWriter(connection, max_batch=max_batch, max_pending=max_pending)
    try:
        pool = await trio.to_thread.run_sync(_ReadPool, database, readers)
    except BaseException:
        connection.close()
        raise
    writer.start()
    store = SqliteStore(
        database,
        writer,
        pool,
        ops.Limits(max_device_queue, max_upstream_queue, max_seen_per_key, max_replay_digests),
    )
    try:
        yield store
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
