"""Open the store at ``argv[1]`` as ``impp-gateway enroll`` does, write one blob, and close it."""

from __future__ import annotations

import sys

import trio

from gateway.store import open_sqlite_store


async def main(path: str) -> None:
    async with open_sqlite_store(path) as store:
        await store.put_blob("from the other process", b"enrolled", now=0.0)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
