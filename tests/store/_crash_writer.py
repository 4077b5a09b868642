"""Child process of test_crash.py: enqueue messages from many trio tasks forever, printing each
message id on its own line only after the store acknowledged (committed) it.

``python -m tests.store._crash_writer DATABASE FIRST_ID``"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import trio

from gateway.store import QueueKind, open_sqlite_store

PRODUCERS = 50


async def main(path: Path, first: int) -> None:
    counter = itertools.count(first)
    async with open_sqlite_store(path, max_device_queue=10**9) as store:

        async def produce() -> None:
            while True:
                number = next(counter)
                await store.enqueue_to_device(
                    b"crash-device", b"%d" % number, QueueKind.MESSAGE, b"x" * 64, now=0.0
                )
                sys.stdout.write(f"{number}\n")
                sys.stdout.flush()

        async with trio.open_nursery() as nursery:
            for _ in range(PRODUCERS):
                nursery.start_soon(produce)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), int(sys.argv[2]))
