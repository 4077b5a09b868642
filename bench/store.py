"""Store benchmark: acknowledged operations per second with group commit against one commit per
operation, both measured in the same run with the same 500 trio producers.

Each producer enqueues messages for a device and waits for the acknowledgement (the commit that
holds its operation, WAL with ``synchronous=FULL``) before its next one, as the relay does before
it acknowledges a stanza upstream. The baseline is the same store with ``max_batch=1``: every
operation pays its own fsync. The database lives in a fresh temporary directory; the file system
it sits on is recorded, since an fsync on tmpfs costs nothing and the ratio would mean nothing.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench._framework import Report, Table
from gateway.store import QueueKind, open_sqlite_store

DESCRIPTION = "store: acknowledged ops/s with group commit vs one commit per operation"

PRODUCERS = 500
PAYLOAD = b"m" * 120  # about one short chat message as the device will receive it


def _file_system(path: Path) -> str:
    """The type of the file system holding ``path`` (longest matching mount point)."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if (
                    len(fields) >= 3
                    and str(path).startswith(fields[1])
                    and len(fields[1]) > len(best)
                ):
                    best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


async def _measure(path: Path, *, max_batch: int, per_producer: int) -> dict[str, Any]:
    async with open_sqlite_store(path, max_batch=max_batch, max_device_queue=10**9) as store:

        async def produce(producer: int) -> None:
            kid = b"device-%d" % (producer % 50)
            for n in range(per_producer):
                await store.enqueue_to_device(
                    kid, b"%d-%d" % (producer, n), QueueKind.MESSAGE, PAYLOAD, now=0.0
                )

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for producer in range(PRODUCERS):
                nursery.start_soon(produce, producer)
        elapsed = time.perf_counter() - start
        stats = store.statistics()
    operations = PRODUCERS * per_producer
    if stats.operations_committed != operations:
        raise RuntimeError(f"{stats.operations_committed} of {operations} operations committed")
    return {
        "operations": operations,
        "seconds": round(elapsed, 4),
        "acknowledged_per_second": round(operations / elapsed),
        "commits": stats.commits,
        "mean_batch": round(stats.mean_batch_size, 1),
        "largest_batch": stats.largest_batch,
        "mean_commit_ms": round(stats.mean_commit_seconds * 1000, 3),
        "max_commit_ms": round(stats.commit_seconds_max * 1000, 3),
    }


async def _both(directory: Path, per_producer: int, baseline_per_producer: int) -> dict[str, Any]:
    grouped = await _measure(directory / "grouped.db", max_batch=1024, per_producer=per_producer)
    single = await _measure(
        directory / "single.db", max_batch=1, per_producer=baseline_per_producer
    )
    return {"group_commit": grouped, "one_commit_per_operation": single}


def run(quick: bool) -> Report:
    """Measure both modes in one run and report their ratio."""
    per_producer = 1 if quick else 40
    baseline_per_producer = 1 if quick else 6
    with tempfile.TemporaryDirectory(prefix="bench-store-") as directory:
        measured = trio.run(_both, Path(directory), per_producer, baseline_per_producer)
        file_system = _file_system(Path(directory).resolve())
    grouped = measured["group_commit"]
    single = measured["one_commit_per_operation"]
    ratio = grouped["acknowledged_per_second"] / single["acknowledged_per_second"]
    results: dict[str, Any] = {
        "producers": PRODUCERS,
        "payload_bytes": len(PAYLOAD),
        "file_system": file_system,
        "synchronous": "FULL",
        "journal_mode": "WAL",
        "cpu_count": os.cpu_count(),
        **measured,
        "group_over_single": round(ratio, 2),
    }
    columns = [
        "mode",
        "ops",
        "acked ops/s",
        "commits",
        "mean batch",
        "largest batch",
        "mean commit ms",
        "max commit ms",
    ]
    rows = [
        [
            label,
            m["operations"],
            m["acknowledged_per_second"],
            m["commits"],
            m["mean_batch"],
            m["largest_batch"],
            m["mean_commit_ms"],
            m["max_commit_ms"],
        ]
        for label, m in (("group commit", grouped), ("one commit per op", single))
    ]
    return Report(
        results=results,
        tables=[Table(f"{PRODUCERS} trio producers, each awaiting its commit", columns, rows)],
        notes=[
            f"group commit acknowledges {ratio:.1f}x the operations per second of one commit per "
            f"operation (database on {file_system}, WAL, synchronous=FULL)",
        ],
    )
