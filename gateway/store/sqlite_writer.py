"""The one writer thread: it owns the SQLite write connection and commits operations in groups.

Theory of operation. A trio task hands the writer an *operation*, a function of the connection,
and awaits the commit that holds it. The writer thread takes every operation queued at that
moment (up to ``max_batch``), runs them in one transaction, each inside its own SAVEPOINT (an
operation that raises is rolled back alone and fails alone), and COMMITs once. With WAL and
``synchronous=FULL`` that COMMIT returns only after the WAL is fsynced, so one fsync makes a whole
batch durable: while it runs, new operations queue up and form the next batch (group commit, as
in PostgreSQL's commit_delay-free "flush what has accumulated"). Only then are the batch's
waiters woken with their results: an operation is acknowledged only after its commit. If the
COMMIT (or BEGIN) fails, the batch is rolled back and every operation of it fails with
:class:`CommitFailedError`; none is reported durable.

Why ``TrioToken.run_sync_soon`` for completion. The writer must never wait for the trio loop,
and the loop must never wait on an fsync. ``trio.to_thread.run_sync`` per operation would park one
thread per in-flight operation (500 producers, 500 threads) and cannot group them;
``trio.from_thread.run_sync`` would make the writer block until the loop gets round to it, coupling
commit rate to event-loop latency. ``run_sync_soon`` is thread-safe, never blocks, runs its
callbacks in FIFO order on the loop's own thread, and one callback per *batch* wakes all of that
batch's waiters (``trio.Event.set`` and ``trio.Semaphore.release`` are then called where they must
be, on the trio thread). The hand-over the other way is a ``deque`` under a ``threading.Condition``
whose lock is held only to append or to pop a batch, never across a statement or an fsync.

Backpressure. At most ``max_pending`` operations are submitted and not yet completed; a
``trio.Semaphore`` makes the next producer wait (a trio wait, not a thread block) until a batch
completes. Memory is bounded by that limit, not by how fast producers run.

Cancellation. A waiter cancelled after submitting does not withdraw its operation: it may still
commit. The caller has then *not* had an acknowledgement and must treat the outcome as unknown
(every write that matters is keyed by an id, so a retry is idempotent or reported DUPLICATE).

Closing. :meth:`SqliteWriter.aclose` refuses new operations at once (:class:`StoreClosedError`),
lets the thread commit everything already queued, waits for those waiters to be woken, then joins
the thread, which closes the connection. A writer thread that dies of anything unexpected fails
the batch in hand and everything queued, and refuses further operations, so no waiter hangs.
"""

from __future__ import annotations

import collections
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import trio

from gateway.store.errors import (
    CommitFailedError,
    OperationFailedError,
    StoreClosedError,
    StoreError,
)

T = TypeVar("T")

Operation = Callable[[sqlite3.Connection], T]

DEFAULT_MAX_BATCH = 1024  # operations per COMMIT; bounds one transaction's work and lock time
DEFAULT_MAX_PENDING = 4096  # submitted, not yet completed; beyond this producers wait


@dataclass(frozen=True)
class WriterStatistics:
    """A snapshot of the writer's counters (taken under its lock, so mutually consistent)."""

    commits: int
    failed_commits: int
    operations_committed: int
    operations_failed: int
    largest_batch: int
    commit_seconds_total: float
    commit_seconds_max: float
    pending: int

    @property
    def mean_batch_size(self) -> float:
        """Operations per successful commit (0 before the first)."""
        return self.operations_committed / self.commits if self.commits else 0.0

    @property
    def mean_commit_seconds(self) -> float:
        """Mean wall time of one batch, BEGIN to the end of COMMIT (0 before the first)."""
        total = self.commits + self.failed_commits
        return self.commit_seconds_total / total if total else 0.0


class _Submission(Generic[T]):
    """One operation on its way through the writer, and the trio event its waiter sleeps on."""

    __slots__ = ("done", "error", "operation", "result")

    def __init__(self, operation: Operation[T]) -> None:
        self.operation = operation
        self.done = trio.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SqliteWriter:
    """Group-committing writer over one connection, which it owns from :meth:`start` on."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_pending: int = DEFAULT_MAX_PENDING,
        name: str = "store-writer",
    ) -> None:
        if max_batch < 1 or max_pending < 1:
            raise ValueError("max_batch and max_pending must be at least 1")
        self._connection = connection
        self._max_batch = max_batch
        self._slots = trio.Semaphore(max_pending)
        self._condition = threading.Condition()
        self._queue: collections.deque[_Submission[Any]] = collections.deque()
        self._stopping = False
        self._writer_failed = False
        self._closing = False
        self._outstanding = 0
        self._drained = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._commits = 0
        self._failed_commits = 0
        self._committed = 0
        self._failed = 0
        self._largest_batch = 0
        self._commit_total = 0.0
        self._commit_max = 0.0

    def start(self) -> None:
        """Start the writer thread; call from inside trio (it captures the current trio token)."""
        self._token = trio.lowlevel.current_trio_token()
        self._thread.start()

    @property
    def closed(self) -> bool:
        """True once closing has begun: new operations are refused."""
        return self._closing

    async def submit(self, operation: Operation[T]) -> T:
        """Queue ``operation`` and return its result once the commit holding it has returned.

        Raises :class:`StoreClosedError` if the writer is closing, :class:`CommitFailedError` if
        the batch's commit failed, :class:`OperationFailedError` (or the :class:`StoreError` the
        operation raised) if this operation alone failed. Only a normal return is an
        acknowledgement.
        """
        self._refuse_if_closed()
        await self._slots.acquire()
        try:
            self._refuse_if_closed()
        except StoreClosedError:
            self._slots.release()
            raise
        submission: _Submission[T] = _Submission(operation)
        with self._condition:
            if self._writer_failed:
                self._slots.release()
                raise StoreError("the store's writer thread has stopped; nothing more is written")
            self._queue.append(submission)
            self._condition.notify()
        self._outstanding += 1
        await submission.done.wait()
        if submission.error is not None:
            raise submission.error
        return cast(T, submission.result)

    def _refuse_if_closed(self) -> None:
        if self._closing:
            raise StoreClosedError("the store is closed; no new operations are accepted")

    def statistics(self) -> WriterStatistics:
        """The counters as a frozen snapshot."""
        with self._condition:
            return WriterStatistics(
                commits=self._commits,
                failed_commits=self._failed_commits,
                operations_committed=self._committed,
                operations_failed=self._failed,
                largest_batch=self._largest_batch,
                commit_seconds_total=self._commit_total,
                commit_seconds_max=self._commit_max,
                pending=len(self._queue),
            )

    async def aclose(self) -> None:
        """Refuse new operations, commit and complete every queued one, then stop the thread."""
        self._closing = True
        if self._outstanding == 0:
            self._drained.set()
        await self._drained.wait()
        with self._condition:
            self._stopping = True
            self._condition.notify()
        if self._thread.is_alive():
            await trio.to_thread.run_sync(self._thread.join)

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        batch: list[_Submission[Any]] = []
        try:
            while True:
                with self._condition:
                    while not self._queue and not self._stopping:
                        self._condition.wait()
                    if not self._queue:
                        return
                    batch = [
                        self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))
                    ]
                self._execute(batch)
                self._report(batch)
                batch = []
        except BaseException:
            self._fail_everything(batch)
            raise
        finally:
            self._connection.close()

    def _fail_everything(self, batch: list[_Submission[Any]]) -> None:
        """The thread is dying of something unexpected: fail the batch in hand and all queued,
        and refuse what comes, so no waiter hangs and none is told its operation is durable."""
        with self._condition:
            self._writer_failed = True
            stranded = batch + list(self._queue)
            self._queue.clear()
        failure = StoreError("the store's writer thread stopped; this operation is not durable")
        for submission in stranded:
            submission.error = failure
            submission.result = None
        if stranded:
            self._report(stranded)

    def _execute(self, batch: list[_Submission[Any]]) -> None:
        connection = self._connection
        started = time.perf_counter()
        try:
            connection.execute("BEGIN IMMEDIATE")
            for submission in batch:
                self._execute_one(connection, submission)
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            failure = CommitFailedError(
                f"the commit of a batch of {len(batch)} operations failed "
                f"({type(exc).__name__}: {exc}); none of them is durable"
            )
            failure.__cause__ = exc
            for submission in batch:
                submission.error = failure
                submission.result = None
            self._account(batch, time.perf_counter() - started, committed=False)
            return
        self._account(batch, time.perf_counter() - started, committed=True)

    @staticmethod
    def _execute_one(connection: sqlite3.Connection, submission: _Submission[Any]) -> None:
        connection.execute("SAVEPOINT operation")
        try:
            submission.result = submission.operation(connection)
        except Exception as exc:
            connection.execute("ROLLBACK TO operation")
            connection.execute("RELEASE operation")
            if isinstance(exc, StoreError):
                submission.error = exc
            else:
                error = OperationFailedError(
                    f"operation rolled back ({type(exc).__name__}: {exc}); the rest of its "
                    "batch committed"
                )
                error.__cause__ = exc
                submission.error = error
            return
        connection.execute("RELEASE operation")

    def _rollback(self) -> None:
        try:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
        except sqlite3.Error:
            # SQLite may already have rolled back (an I/O error does); nothing is left to undo.
            pass

    def _account(self, batch: list[_Submission[Any]], seconds: float, *, committed: bool) -> None:
        with self._condition:
            self._commit_total += seconds
            self._commit_max = max(self._commit_max, seconds)
            failed = sum(1 for s in batch if s.error is not None)
            if committed:
                self._commits += 1
                self._largest_batch = max(self._largest_batch, len(batch))
                self._committed += len(batch) - failed
            else:
                self._failed_commits += 1
            self._failed += failed

    def _report(self, batch: list[_Submission[Any]]) -> None:
        assert self._token is not None
        # trio.run may have ended without closing the store; then nobody is left waiting.
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._complete, batch)

    def _complete(self, batch: list[_Submission[Any]]) -> None:
        """On the trio thread: wake the batch's waiters and give back their slots."""
        for submission in batch:
            submission.done.set()
            self._slots.release()
        self._outstanding -= len(batch)
        if self._closing and self._outstanding == 0:
            self._drained.set()
