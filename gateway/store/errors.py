"""The store's error tree: our misuse (a closed store) apart from a failed durable write.

A caller that catches :class:`StoreError` knows the operation is *not* acknowledged: nothing it
submitted may be reported durable to a device or to a server.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises; the operation it concerns is not acknowledged."""


class StoreClosedError(StoreError):
    """The store is closing or closed and takes no new operations (ours: submit before close)."""


class CommitFailedError(StoreError):
    """The commit that held this operation failed; no operation of that batch is durable."""


class OperationFailedError(StoreError):
    """This one operation raised inside its batch and was rolled back; the rest of the batch
    committed. The original exception is the ``__cause__``."""


class SchemaError(StoreError):
    """The database's schema version is one this code cannot read or migrate (for example a
    database written by a newer gateway)."""
