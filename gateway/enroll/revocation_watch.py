"""The running gateway's half of revocation: notice ``devices revoke`` at once, and act.

:func:`watch_revocations` is one trio task for the service's nursery. It records the process in
the data directory's pid file (so ``devices revoke`` can send it SIGHUP), then calls
``on_revocation`` (the service's registry refresh, which ends revoked devices' sessions) whenever
SIGHUP arrives or the store's revocation marker changes (polled every ``poll_interval`` seconds,
for a signal that was missed or could not be sent). It removes the pid file when it ends.
See :mod:`gateway.enroll.revocation` for the mechanism and its reasons.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import trio

from gateway.enroll.revocation import REVOCATION_MARKER_BLOB, remove_pid_file, write_pid_file
from gateway.store import GatewayStore, StoreError

__all__ = ["DEFAULT_REVOCATION_POLL", "watch_revocations"]

# Seconds between reads of the marker blob (one indexed row): how late a revocation bites when
# the signal did not arrive. SIGHUP makes it immediate.
DEFAULT_REVOCATION_POLL: Final = 5.0


async def watch_revocations(
    store: GatewayStore,
    data_dir: Path,
    on_revocation: Callable[[], Awaitable[None]],
    *,
    poll_interval: float = DEFAULT_REVOCATION_POLL,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until cancelled; call ``on_revocation`` after each SIGHUP or marker change.

    Must run in the main thread (signal handling). ``on_revocation`` is awaited inline, so two
    revocations close together cause at most one call in progress and one after it.
    """
    changed = trio.Event()
    with trio.open_signal_receiver(signal.SIGHUP) as hangups:
        write_pid_file(data_dir)
        try:
            last = await store.get_blob(REVOCATION_MARKER_BLOB)
            task_status.started()
            async with trio.open_nursery() as nursery:

                async def signals() -> None:
                    async for _ in hangups:
                        changed.set()

                async def poll() -> None:
                    nonlocal last
                    while True:
                        await trio.sleep(poll_interval)
                        try:
                            marker = await store.get_blob(REVOCATION_MARKER_BLOB)
                        except StoreError:
                            continue  # the next poll tries again; SIGHUP still works
                        if marker != last:
                            last = marker
                            changed.set()

                nursery.start_soon(signals)
                nursery.start_soon(poll)
                while True:
                    await changed.wait()
                    changed = trio.Event()
                    await on_revocation()
        finally:
            remove_pid_file(data_dir)
