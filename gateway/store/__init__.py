"""The gateway's durable state: device registry, upstream credentials, contact aliases, both
durable queues, de-duplication ids, named blobs (ticket key ring, resumption state), XEP-0198
stream state and the signature verifier's replay memory.

:class:`GatewayStore` is the interface; :func:`open_sqlite_store` opens the SQLite backend (WAL,
``synchronous=FULL``, one group-committing writer thread). A write returns only after its commit:
that return is what an acknowledgement may rest on. docs/store.md describes it all.
"""

from __future__ import annotations

from pathlib import Path

from gateway.store.connection import open_connection, restrict_file_modes
from gateway.store.errors import (
    CommitFailedError,
    OperationFailedError,
    SchemaError,
    StoreClosedError,
    StoreError,
)
from gateway.store.protocol import GatewayStore
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
from gateway.store.schema import SCHEMA_VERSION
from gateway.store.sqlite import SqliteStore, open_sqlite_store
from gateway.store.sqlite_writer import WriterStatistics


def migrate_database(path: str | Path) -> int:
    """Create the database at ``path`` or bring its schema up to date; return the version.

    Synchronous, for the command line (``impp-gateway init``) and for tools run before the
    service starts. The database and its -wal/-shm are left with mode 0600. Raises
    :class:`SchemaError` for a database written by a newer gateway.
    """
    from gateway.store.schema import migrate

    database = Path(path)
    connection = open_connection(database)
    try:
        version = migrate(connection)
    finally:
        connection.close()
    restrict_file_modes(database)
    return version


__all__ = [
    "SCHEMA_VERSION",
    "CommitFailedError",
    "ContactAlias",
    "DeviceQueueItem",
    "DeviceRecord",
    "EnqueueResult",
    "EnqueuedUpstream",
    "EnrollmentState",
    "GatewayStore",
    "OperationFailedError",
    "QueueKind",
    "SchemaError",
    "SqliteStore",
    "StoreClosedError",
    "StoreError",
    "StreamResumption",
    "UpstreamCredential",
    "UpstreamQueueItem",
    "UpstreamState",
    "WriterStatistics",
    "migrate_database",
    "open_sqlite_store",
]
