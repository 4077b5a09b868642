"""The store's SQLite schema as an ordered list of migrations, versioned by ``PRAGMA user_version``.

Version N of the schema is the result of applying ``MIGRATIONS[0:N]`` to an empty database; a
database at version k < N is brought up by applying ``MIGRATIONS[k:N]``, each migration in its own
transaction together with its ``user_version`` bump (SQLite's DDL and that pragma are
transactional), so a crash mid-migration leaves the database at k or k+1, never in between. A
database whose version is above :data:`SCHEMA_VERSION` was written by a newer gateway and is
refused rather than guessed at. Each migration is tested from the version before it
(tests/store/test_schema.py).

- v1: devices, upstream credentials, contact aliases and roster versions, both durable queues,
  de-duplication ids, named blobs (the ticket key ring, resumption state), XEP-0198 stream state,
  the signature verifier's replay memory.
- v2: coalescing: a ``coalesce_key`` column on the to-device queue with a unique index per
  (device, key), so a contact's new presence replaces its queued one; per-key expiry indexes for
  the bounded de-duplication ids and the pruning sweeps.
- v3: reusable device message ids: ``generation`` and ``released`` columns on
  ``seen_device_messages``. An id is released once the device acknowledged its final
  DeliveryReport; accepting it again bumps its generation, so each acceptance gets its own
  stanza id and origin-id (rows from v2 are generation 0, not released: their ids are unchanged).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.store.errors import SchemaError

_V1: Sequence[str] = (
    """CREATE TABLE devices (
        kid BLOB PRIMARY KEY,
        credential BLOB NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('enrolled', 'revoked')),
        account_jid TEXT NOT NULL,
        created_at REAL NOT NULL,
        revoked_at REAL
    ) STRICT""",
    "CREATE INDEX devices_by_account ON devices (account_jid)",
    """CREATE TABLE upstream_credentials (
        account_jid TEXT PRIMARY KEY,
        hash_name TEXT NOT NULL,
        salt BLOB NOT NULL,
        iterations INTEGER NOT NULL CHECK (iterations > 0),
        salted_password BLOB NOT NULL,
        password TEXT,
        updated_at REAL NOT NULL
    ) STRICT""",
    """CREATE TABLE contact_aliases (
        device_kid BLOB NOT NULL REFERENCES devices (kid) ON DELETE CASCADE,
        alias INTEGER NOT NULL CHECK (alias >= 0),
        contact_jid TEXT NOT NULL,
        PRIMARY KEY (device_kid, alias),
        UNIQUE (device_kid, contact_jid)
    ) STRICT""",
    """CREATE TABLE roster_versions (
        device_kid BLOB PRIMARY KEY REFERENCES devices (kid) ON DELETE CASCADE,
        version TEXT NOT NULL
    ) STRICT""",
    """CREATE TABLE device_queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        device_kid BLOB NOT NULL,
        message_id BLOB NOT NULL,
        kind TEXT NOT NULL,
        payload BLOB NOT NULL,
        enqueued_at REAL NOT NULL,
        expires_at REAL,
        UNIQUE (device_kid, message_id)
    ) STRICT""",
    """CREATE TABLE upstream_queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account_jid TEXT NOT NULL,
        device_message_id BLOB NOT NULL,
        payload BLOB NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'acked')),
        enqueued_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (account_jid, device_message_id)
    ) STRICT""",
    """CREATE TABLE seen_device_messages (
        device_kid BLOB NOT NULL,
        message_id BLOB NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (device_kid, message_id)
    ) STRICT""",
    """CREATE TABLE seen_stanza_ids (
        account_jid TEXT NOT NULL,
        stanza_id TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (account_jid, stanza_id)
    ) STRICT""",
    """CREATE TABLE named_blobs (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        updated_at REAL NOT NULL
    ) STRICT""",
    """CREATE TABLE stream_resumption (
        account_jid TEXT PRIMARY KEY,
        resumption_id TEXT NOT NULL,
        h_inbound INTEGER NOT NULL CHECK (h_inbound >= 0),
        h_outbound INTEGER NOT NULL CHECK (h_outbound >= 0),
        location TEXT,
        updated_at REAL NOT NULL
    ) STRICT""",
    """CREATE TABLE replay_memory (
        digest BLOB PRIMARY KEY,
        expires_at REAL NOT NULL
    ) STRICT""",
)

_V2: Sequence[str] = (
    "ALTER TABLE device_queue ADD COLUMN coalesce_key TEXT",
    """CREATE UNIQUE INDEX device_queue_coalesced
        ON device_queue (device_kid, coalesce_key) WHERE coalesce_key IS NOT NULL""",
    "CREATE INDEX device_queue_by_expiry ON device_queue (expires_at) WHERE expires_at IS NOT NULL",
    "CREATE INDEX seen_device_messages_by_expiry ON seen_device_messages (device_kid, expires_at)",
    "CREATE INDEX seen_stanza_ids_by_expiry ON seen_stanza_ids (account_jid, expires_at)",
    "CREATE INDEX replay_memory_by_expiry ON replay_memory (expires_at)",
)

_V3: Sequence[str] = (
    "ALTER TABLE seen_device_messages ADD COLUMN generation INTEGER NOT NULL DEFAULT 0 "
    "CHECK (generation >= 0)",
    "ALTER TABLE seen_device_messages ADD COLUMN released INTEGER NOT NULL DEFAULT 0 "
    "CHECK (released IN (0, 1))",
)

MIGRATIONS: Sequence[Sequence[str]] = (_V1, _V2, _V3)
"""``MIGRATIONS[k]`` takes a database from version k to version k+1."""

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(connection: sqlite3.Connection) -> int:
    """The database's schema version (0 for a new, empty database)."""
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(connection: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to ``target`` (default: the current version); return the version.

    ``connection`` must be in autocommit mode (``isolation_level=None``) so each migration's own
    ``BEGIN IMMEDIATE ... COMMIT`` is the transaction. Raises :class:`SchemaError` for a database
    newer than ``target``'s code knows or a target outside the known versions.
    """
    if not 0 <= target <= SCHEMA_VERSION:
        raise SchemaError(f"no schema version {target}; this code knows 0..{SCHEMA_VERSION}")
    current = schema_version(connection)
    if current > SCHEMA_VERSION:
        raise SchemaError(
            f"database schema version {current} is newer than this gateway's {SCHEMA_VERSION}; "
            "run the newer gateway or restore a backup"
        )
    if current > target:
        raise SchemaError(f"database is at version {current}, above the requested {target}")
    for version in range(current, target):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version + 1:d}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return schema_version(connection)
