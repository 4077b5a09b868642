"""The store's SQL: one plain function per operation, taking the connection first.

Write functions run on the writer thread inside the batch's transaction (each in its own
SAVEPOINT, see :mod:`gateway.store.sqlite_writer`); read functions run on a read-pool connection.
Nothing here logs: payloads and credentials pass through as bound parameters only. Column values
read back are checked by type (:func:`_blob` and friends), so a row written by anything else
fails loudly rather than producing a mistyped record.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.store.records import (
    ContactAlias,
    DeviceQueueItem,
    DeviceRecord,
    EnqueuedUpstream,
    EnqueueResult,
    EnrollmentState,
    QueueKind,
    StreamResumption,
    UpstreamCredential,
    UpstreamQueueItem,
    UpstreamState,
)

Row = Sequence[object]


@dataclass(frozen=True)
class Limits:
    """Per-key bounds on what the store keeps."""

    max_device_queue: int
    max_upstream_queue: int
    max_seen_per_key: int
    max_replay_digests: int


def _blob(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"expected a BLOB column, got {type(value).__name__}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a TEXT column, got {type(value).__name__}")
    return value


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an INTEGER column, got {type(value).__name__}")
    return value


def _real(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"expected a REAL column, got {type(value).__name__}")
    return float(value)


def _optional_real(value: object) -> float | None:
    return None if value is None else _real(value)


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


# -- devices ----------------------------------------------------------------------------------


def _device(row: Row) -> DeviceRecord:
    return DeviceRecord(
        kid=_blob(row[0]),
        credential=_blob(row[1]),
        state=EnrollmentState(_text(row[2])),
        account_jid=_text(row[3]),
        created_at=_real(row[4]),
        revoked_at=_optional_real(row[5]),
    )


def enroll_device(connection: sqlite3.Connection, device: DeviceRecord) -> bool:
    cursor = connection.execute(
        "INSERT INTO devices (kid, credential, state, account_jid, created_at, revoked_at) VALUES "
        "(?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kid) DO NOTHING",
        (
            device.kid,
            device.credential,
            device.state.value,
            device.account_jid,
            device.created_at,
            device.revoked_at,
        ),
    )
    return cursor.rowcount == 1


def revoke_device(connection: sqlite3.Connection, kid: bytes, now: float) -> bool:
    cursor = connection.execute(
        "UPDATE devices SET state = 'revoked', revoked_at = ? WHERE kid = ? AND state = 'enrolled'",
        (now, kid),
    )
    return cursor.rowcount == 1


def get_device(connection: sqlite3.Connection, kid: bytes) -> DeviceRecord | None:
    row = connection.execute(
        "SELECT kid, credential, state, account_jid, created_at, revoked_at FROM devices WHERE "
        "kid = ?",
        (kid,),
    ).fetchone()
    return None if row is None else _device(row)


def list_devices(connection: sqlite3.Connection) -> list[DeviceRecord]:
    rows = connection.execute(
        "SELECT kid, credential, state, account_jid, created_at, revoked_at FROM devices ORDER BY "
        "created_at, kid"
    ).fetchall()
    return [_device(row) for row in rows]


# -- upstream credentials ---------------------------------------------------------------------


def put_credential(connection: sqlite3.Connection, credential: UpstreamCredential) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO upstream_credentials (account_jid, hash_name, salt, iterations, "
        "salted_password, password, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            credential.account_jid,
            credential.hash_name,
            credential.salt,
            credential.iterations,
            credential.salted_password,
            credential.password,
            credential.updated_at,
        ),
    )


def get_credential(connection: sqlite3.Connection, account_jid: str) -> UpstreamCredential | None:
    row = connection.execute(
        "SELECT account_jid, hash_name, salt, iterations, salted_password, password, updated_at "
        "FROM upstream_credentials WHERE account_jid = ?",
        (account_jid,),
    ).fetchone()
    if row is None:
        return None
    return UpstreamCredential(
        account_jid=_text(row[0]),
        hash_name=_text(row[1]),
        salt=_blob(row[2]),
        iterations=_integer(row[3]),
        salted_password=_blob(row[4]),
        password=_optional_text(row[5]),
        updated_at=_real(row[6]),
    )


# -- contact aliases and roster versions ------------------------------------------------------


def assign_alias(connection: sqlite3.Connection, device_kid: bytes, contact_jid: str) -> int:
    row = connection.execute(
        "SELECT alias FROM contact_aliases WHERE device_kid = ? AND contact_jid = ?",
        (device_kid, contact_jid),
    ).fetchone()
    if row is not None:
        return _integer(row[0])
    # The smallest alias not in use: 0 if free, else one past an alias whose successor is free.
    row = connection.execute(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM contact_aliases WHERE device_kid = ?1 "
        "AND alias = 0) THEN 0 ELSE (SELECT MIN(a.alias) + 1 FROM contact_aliases a "
        "WHERE a.device_kid = ?1 AND NOT EXISTS (SELECT 1 FROM contact_aliases b "
        "WHERE b.device_kid = ?1 AND b.alias = a.alias + 1)) END",
        (device_kid,),
    ).fetchone()
    alias = _integer(row[0])
    connection.execute(
        "INSERT INTO contact_aliases (device_kid, alias, contact_jid) VALUES (?, ?, ?)",
        (device_kid, alias, contact_jid),
    )
    return alias


def remove_alias(connection: sqlite3.Connection, device_kid: bytes, contact_jid: str) -> bool:
    cursor = connection.execute(
        "DELETE FROM contact_aliases WHERE device_kid = ? AND contact_jid = ?",
        (device_kid, contact_jid),
    )
    return cursor.rowcount == 1


def aliases(connection: sqlite3.Connection, device_kid: bytes) -> list[ContactAlias]:
    rows = connection.execute(
        "SELECT alias, contact_jid FROM contact_aliases WHERE device_kid = ? ORDER BY alias",
        (device_kid,),
    ).fetchall()
    return [ContactAlias(device_kid, _integer(r[0]), _text(r[1])) for r in rows]


def set_roster_version(connection: sqlite3.Connection, device_kid: bytes, version: str) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO roster_versions (device_kid, version) VALUES (?, ?)",
        (device_kid, version),
    )


def get_roster_version(connection: sqlite3.Connection, device_kid: bytes) -> str | None:
    row = connection.execute(
        "SELECT version FROM roster_versions WHERE device_kid = ?", (device_kid,)
    ).fetchone()
    return None if row is None else _text(row[0])


# -- the to-device queue ----------------------------------------------------------------------


def _queue_item(row: Row) -> DeviceQueueItem:
    return DeviceQueueItem(
        seq=_integer(row[0]),
        device_kid=_blob(row[1]),
        message_id=_blob(row[2]),
        kind=QueueKind(_text(row[3])),
        payload=_blob(row[4]),
        enqueued_at=_real(row[5]),
        expires_at=_optional_real(row[6]),
        coalesce_key=_optional_text(row[7]),
    )


def device_queue_length(connection: sqlite3.Connection, device_kid: bytes) -> int:
    row = connection.execute(
        "SELECT COUNT(*) FROM device_queue WHERE device_kid = ?", (device_kid,)
    ).fetchone()
    return _integer(row[0])


def device_queue_summary(
    connection: sqlite3.Connection, now: float
) -> dict[bytes, tuple[int, float | None]]:
    """Every device with a queue: (items, expired or not; enqueued_at of its first unexpired)."""
    rows = connection.execute(
        "SELECT s.device_kid, s.depth, q.enqueued_at FROM ("
        " SELECT device_kid, COUNT(*) AS depth,"
        " MIN(CASE WHEN expires_at IS NULL OR expires_at > ? THEN seq END) AS first"
        " FROM device_queue GROUP BY device_kid"
        ") AS s LEFT JOIN device_queue AS q ON q.seq = s.first",
        (now,),
    ).fetchall()
    return {
        bytes(kid): (_integer(depth), None if oldest is None else float(oldest))
        for kid, depth, oldest in rows
    }


def enqueue_to_device(
    connection: sqlite3.Connection,
    limits: Limits,
    device_kid: bytes,
    message_id: bytes,
    kind: QueueKind,
    payload: bytes,
    now: float,
    expires_at: float | None,
    coalesce_key: str | None = None,
) -> EnqueueResult:
    if connection.execute(
        "SELECT 1 FROM device_queue WHERE device_kid = ? AND message_id = ?",
        (device_kid, message_id),
    ).fetchone():
        return EnqueueResult.DUPLICATE
    replaced = False
    if coalesce_key is not None:
        replaced = (
            connection.execute(
                "DELETE FROM device_queue WHERE device_kid = ? AND coalesce_key = ?",
                (device_kid, coalesce_key),
            ).rowcount
            > 0
        )
    if not replaced and device_queue_length(connection, device_kid) >= limits.max_device_queue:
        return EnqueueResult.OVERFLOW
    connection.execute(
        "INSERT INTO device_queue (device_kid, message_id, kind, payload, enqueued_at, "
        "expires_at, coalesce_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (device_kid, message_id, kind.value, payload, now, expires_at, coalesce_key),
    )
    return EnqueueResult.REPLACED if replaced else EnqueueResult.QUEUED


def presence_coalesce_key(contact_jid: str) -> str:
    """The coalescing key of a contact's presence: one queued presence per contact."""
    return f"presence {contact_jid}"


def device_queue(
    connection: sqlite3.Connection, device_kid: bytes, now: float, limit: int
) -> list[DeviceQueueItem]:
    rows = connection.execute(
        "SELECT seq, device_kid, message_id, kind, payload, enqueued_at, expires_at, coalesce_key "
        "FROM device_queue WHERE device_kid = ? "
        "AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq LIMIT ?",
        (device_kid, now, limit),
    ).fetchall()
    return [_queue_item(row) for row in rows]


def remove_from_device_queue(
    connection: sqlite3.Connection, device_kid: bytes, seqs: Sequence[int]
) -> int:
    cursor = connection.executemany(
        "DELETE FROM device_queue WHERE device_kid = ? AND seq = ?",
        [(device_kid, seq) for seq in seqs],
    )
    return max(cursor.rowcount, 0)


def expire_device_queue(connection: sqlite3.Connection, now: float) -> list[DeviceQueueItem]:
    rows = connection.execute(
        "DELETE FROM device_queue WHERE expires_at IS NOT NULL AND expires_at <= ? "
        "RETURNING seq, device_kid, message_id, kind, payload, enqueued_at, expires_at, "
        "coalesce_key",
        (now,),
    ).fetchall()
    return sorted((_queue_item(row) for row in rows), key=lambda item: item.seq)


# -- the to-upstream queue --------------------------------------------------------------------


def enqueue_upstream(
    connection: sqlite3.Connection,
    limits: Limits,
    account_jid: str,
    device_message_id: bytes,
    payload: bytes,
    now: float,
) -> EnqueueResult:
    if connection.execute(
        "SELECT 1 FROM upstream_queue WHERE account_jid = ? AND device_message_id = ?",
        (account_jid, device_message_id),
    ).fetchone():
        return EnqueueResult.DUPLICATE
    row = connection.execute(
        "SELECT COUNT(*) FROM upstream_queue WHERE account_jid = ?", (account_jid,)
    ).fetchone()
    if _integer(row[0]) >= limits.max_upstream_queue:
        return EnqueueResult.OVERFLOW
    connection.execute(
        "INSERT INTO upstream_queue (account_jid, device_message_id, payload, state, "
        "enqueued_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?)",
        (account_jid, device_message_id, payload, now, now),
    )
    return EnqueueResult.QUEUED


def upstream_entry_id(queue_id: bytes, generation: int) -> bytes:
    """The queue entry's id of a device message id's ``generation``-th acceptance: ``queue_id``
    for the first (so entries from before generations existed keep theirs), then ``/N``."""
    return queue_id if generation == 0 else b"%s/%d" % (queue_id, generation)


def _upstream_queued(connection: sqlite3.Connection, account_jid: str, entry_id: bytes) -> bool:
    return bool(
        connection.execute(
            "SELECT 1 FROM upstream_queue WHERE account_jid = ? AND device_message_id = ?",
            (account_jid, entry_id),
        ).fetchone()
    )


def enqueue_upstream_once(
    connection: sqlite3.Connection,
    limits: Limits,
    account_jid: str,
    device_kid: bytes,
    device_message_id: bytes,
    queue_id: bytes,
    payload: bytes,
    now: float,
    remember_until: float,
    generation: int = 0,
) -> EnqueuedUpstream:
    """Queue and remember in one transaction, so neither is ever without the other.

    An id remembered and not released is a DUPLICATE of its accepted generation. A released id
    is accepted again only as a generation above the released one (the payload's stanza id is
    made for it): offered with a lower one, nothing is written and the answer names the
    generation to offer it with (``released``).
    """
    seen = connection.execute(
        "SELECT generation, released FROM seen_device_messages "
        "WHERE device_kid = ? AND message_id = ?",
        (device_kid, device_message_id),
    ).fetchone()
    if seen is not None and not _integer(seen[1]):
        accepted = _integer(seen[0])
        queued = _upstream_queued(connection, account_jid, upstream_entry_id(queue_id, accepted))
        return EnqueuedUpstream(EnqueueResult.DUPLICATE, None, queued=queued, generation=accepted)
    if seen is not None and generation <= _integer(seen[0]):
        return EnqueuedUpstream(
            EnqueueResult.DUPLICATE,
            None,
            queued=False,
            generation=_integer(seen[0]) + 1,
            released=True,
        )
    entry_id = upstream_entry_id(queue_id, generation)
    if _upstream_queued(connection, account_jid, entry_id):
        # Queued, its id no longer remembered (gone past the per-device bound).
        return EnqueuedUpstream(EnqueueResult.DUPLICATE, None, queued=True, generation=generation)
    row = connection.execute(
        "SELECT COUNT(*) FROM upstream_queue WHERE account_jid = ?", (account_jid,)
    ).fetchone()
    if _integer(row[0]) >= limits.max_upstream_queue:
        return EnqueuedUpstream(EnqueueResult.OVERFLOW, None, queued=False, generation=generation)
    cursor = connection.execute(
        "INSERT INTO upstream_queue (account_jid, device_message_id, payload, state, "
        "enqueued_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?)",
        (account_jid, entry_id, payload, now, now),
    )
    seq = cursor.lastrowid
    _accept_device_message(
        connection, limits, device_kid, device_message_id, remember_until, generation
    )
    return EnqueuedUpstream(EnqueueResult.QUEUED, seq, queued=True, generation=generation)


def set_upstream_state(
    connection: sqlite3.Connection,
    account_jid: str,
    seqs: Sequence[int],
    state: UpstreamState,
    now: float,
) -> int:
    cursor = connection.executemany(
        "UPDATE upstream_queue SET state = ?, updated_at = ? WHERE account_jid = ? AND seq = ?",
        [(state.value, now, account_jid, seq) for seq in seqs],
    )
    return max(cursor.rowcount, 0)


def upstream_queue(
    connection: sqlite3.Connection,
    account_jid: str,
    states: Sequence[UpstreamState],
    limit: int,
) -> list[UpstreamQueueItem]:
    rows = connection.execute(
        "SELECT seq, account_jid, device_message_id, payload, state, enqueued_at, updated_at FROM "
        "upstream_queue WHERE account_jid = ? "
        "AND state IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?",
        (account_jid, json.dumps([state.value for state in states]), limit),
    ).fetchall()
    return [
        UpstreamQueueItem(
            seq=_integer(r[0]),
            account_jid=_text(r[1]),
            device_message_id=_blob(r[2]),
            payload=_blob(r[3]),
            state=UpstreamState(_text(r[4])),
            enqueued_at=_real(r[5]),
            updated_at=_real(r[6]),
        )
        for r in rows
    ]


def remove_upstream(connection: sqlite3.Connection, account_jid: str, seqs: Sequence[int]) -> int:
    cursor = connection.executemany(
        "DELETE FROM upstream_queue WHERE account_jid = ? AND seq = ?",
        [(account_jid, seq) for seq in seqs],
    )
    return max(cursor.rowcount, 0)


# -- de-duplication ids and replay memory -----------------------------------------------------


def remember_device_message(
    connection: sqlite3.Connection,
    limits: Limits,
    device_kid: bytes,
    message_id: bytes,
    expires_at: float,
) -> bool:
    row = connection.execute(
        "SELECT generation, released FROM seen_device_messages "
        "WHERE device_kid = ? AND message_id = ?",
        (device_kid, message_id),
    ).fetchone()
    if row is not None and not _integer(row[1]):
        return False
    generation = 0 if row is None else _integer(row[0]) + 1
    _accept_device_message(connection, limits, device_kid, message_id, expires_at, generation)
    return True


def _accept_device_message(
    connection: sqlite3.Connection,
    limits: Limits,
    device_kid: bytes,
    message_id: bytes,
    expires_at: float,
    generation: int,
) -> None:
    """Remember the id as accepted (not released) in ``generation``, until ``expires_at``."""
    connection.execute(
        "INSERT INTO seen_device_messages (device_kid, message_id, expires_at, generation, "
        "released) VALUES (?, ?, ?, ?, 0) ON CONFLICT (device_kid, message_id) DO UPDATE SET "
        "expires_at = excluded.expires_at, generation = excluded.generation, released = 0",
        (device_kid, message_id, expires_at, generation),
    )
    # Bounded per device: past the bound, the ids closest to expiry go first.
    connection.execute(
        "DELETE FROM seen_device_messages WHERE device_kid = ?1 AND expires_at <= (SELECT "
        "expires_at FROM seen_device_messages WHERE device_kid = ?1 ORDER BY expires_at DESC "
        "LIMIT 1 OFFSET ?2)",
        (device_kid, limits.max_seen_per_key),
    )


def release_device_message(
    connection: sqlite3.Connection, device_kid: bytes, message_id: bytes
) -> bool:
    """The device may use the id again: keep only its generation (until the row expires)."""
    cursor = connection.execute(
        "UPDATE seen_device_messages SET released = 1 "
        "WHERE device_kid = ? AND message_id = ? AND released = 0",
        (device_kid, message_id),
    )
    return cursor.rowcount == 1


def remember_stanza_id(
    connection: sqlite3.Connection,
    limits: Limits,
    account_jid: str,
    stanza_id: str,
    expires_at: float,
) -> bool:
    cursor = connection.execute(
        "INSERT INTO seen_stanza_ids (account_jid, stanza_id, expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (account_jid, stanza_id, expires_at),
    )
    if cursor.rowcount != 1:
        return False
    connection.execute(
        "DELETE FROM seen_stanza_ids WHERE account_jid = ?1 AND expires_at <= (SELECT "
        "expires_at FROM seen_stanza_ids WHERE account_jid = ?1 ORDER BY expires_at DESC "
        "LIMIT 1 OFFSET ?2)",
        (account_jid, limits.max_seen_per_key),
    )
    return True


def remember_digest(
    connection: sqlite3.Connection, limits: Limits, digest: bytes, expires_at: float
) -> bool:
    cursor = connection.execute(
        "INSERT INTO replay_memory (digest, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (digest, expires_at),
    )
    if cursor.rowcount != 1:
        return False
    # Bounded: past the bound, the oldest insertions go (rowids grow with insertion; a range
    # delete on them costs a b-tree seek, not a scan of the whole memory).
    connection.execute(
        "DELETE FROM replay_memory WHERE rowid <= (SELECT MAX(rowid) FROM replay_memory) - ?",
        (limits.max_replay_digests,),
    )
    return True


def forget_expired(connection: sqlite3.Connection, now: float) -> int:
    removed = connection.execute(
        "DELETE FROM seen_device_messages WHERE expires_at <= ?", (now,)
    ).rowcount
    removed += connection.execute(
        "DELETE FROM seen_stanza_ids WHERE expires_at <= ?", (now,)
    ).rowcount
    removed += connection.execute(
        "DELETE FROM replay_memory WHERE expires_at <= ?", (now,)
    ).rowcount
    return removed


# -- named blobs and XEP-0198 stream state ----------------------------------------------------


def put_blob(connection: sqlite3.Connection, name: str, value: bytes, now: float) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO named_blobs (name, value, updated_at) VALUES (?, ?, ?)",
        (name, value, now),
    )


def get_blob(connection: sqlite3.Connection, name: str) -> bytes | None:
    row = connection.execute("SELECT value FROM named_blobs WHERE name = ?", (name,)).fetchone()
    return None if row is None else _blob(row[0])


def put_stream_resumption(connection: sqlite3.Connection, state: StreamResumption) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO stream_resumption (account_jid, resumption_id, h_inbound, "
        "h_outbound, location, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            state.account_jid,
            state.resumption_id,
            state.h_inbound,
            state.h_outbound,
            state.location,
            state.updated_at,
        ),
    )


def get_stream_resumption(
    connection: sqlite3.Connection, account_jid: str
) -> StreamResumption | None:
    row = connection.execute(
        "SELECT account_jid, resumption_id, h_inbound, h_outbound, location, updated_at "
        "FROM stream_resumption WHERE account_jid = ?",
        (account_jid,),
    ).fetchone()
    if row is None:
        return None
    return StreamResumption(
        account_jid=_text(row[0]),
        resumption_id=_text(row[1]),
        h_inbound=_integer(row[2]),
        h_outbound=_integer(row[3]),
        location=_optional_text(row[4]),
        updated_at=_real(row[5]),
    )


def clear_stream_resumption(connection: sqlite3.Connection, account_jid: str) -> bool:
    cursor = connection.execute(
        "DELETE FROM stream_resumption WHERE account_jid = ?", (account_jid,)
    )
    return cursor.rowcount == 1
