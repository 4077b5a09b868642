"""Containment of our own bugs in the receive and timer loops (STYLE.md rule 8).

The protocol cores are meant to be total: any bytes from the network end in a value or the
package's own error, which the cores count as a drop reason. A case they missed must still cost
one packet, not the endpoint: the adapters run each packet (and each timer run) inside
:meth:`InternalErrors.contain`, which catches ``Exception`` (never ``BaseException``, so
``trio.Cancelled`` and ``KeyboardInterrupt`` go on), counts it under a reason, and logs it.

The log line names the exception type and where it was raised (file, line, function), never its
message or arguments: those can quote packet bytes or key material. Each distinct (reason, type,
place) is logged once at ERROR level, later repeats at DEBUG, so a peer that found a crashing
packet cannot flood the log; the counter still shows every one.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

_PLACES_SHOWN = 3  # innermost stack frames named in the log line


class InternalErrors:
    """Counts contained exceptions into a drop-counter dict and logs where they came from."""

    def __init__(self, counters: dict[str, int], logger: logging.Logger) -> None:
        self._counters = counters
        self._logger = logger
        self._logged: set[tuple[str, str, str]] = set()

    @contextmanager
    def contain(self, reason: str) -> Iterator[None]:
        """Run the block; an ``Exception`` from it is counted under ``reason`` and swallowed."""
        try:
            yield
        except Exception as exc:
            self.record(reason, exc)

    def record(self, reason: str, exc: Exception) -> None:
        """Count ``exc`` under ``reason`` and log its type and origin (not its message)."""
        self._counters[reason] = self._counters.get(reason, 0) + 1
        while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]  # a nursery's wrapping: name what was raised inside
        frames = traceback.extract_tb(exc.__traceback__)[-_PLACES_SHOWN:]
        place = " <- ".join(
            f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
            for frame in reversed(frames)
        )
        key = (reason, type(exc).__qualname__, place)
        level = logging.DEBUG if key in self._logged else logging.ERROR
        self._logged.add(key)
        self._logger.log(
            level,
            "internal error contained (%s): %s at %s; counted, the loop goes on",
            reason,
            type(exc).__qualname__,
            place,
        )
