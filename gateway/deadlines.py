"""Sleep until a sans-IO core's next deadline in a trio task, re-reading it whenever it may move.

Every protocol core here exposes its timers as a ``next_deadline()`` query (STYLE.md rule 1),
and its trio adapter runs one task that sleeps until that time, runs the core's timers and
repeats. The deadline read before sleeping goes stale as soon as another task feeds the core: a
datagram arrives and the core sets a 50 ms acknowledgement timer, an application call queues
data. A sleeping task that is not told keeps sleeping toward the old deadline (issue 11: lone
records acknowledged only seconds later). :class:`DeadlineTimer` is that task's sleep, with the
two ways to disturb it:

- :meth:`DeadlineTimer.reschedule`: the core's deadline may have moved; the sleeper reads it
  again and goes on sleeping toward the new one (call after every input to the core);
- :meth:`DeadlineTimer.wake`: return from :meth:`DeadlineTimer.wait` at once, because there is
  work now (output queued by a call that cannot await).

It imports only trio, so every adapter can use it (gateway/transport today; the XMPP
connection's timer task has the same shape).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio


class DeadlineTimer:
    """The sleep of one core's timer task: until ``next_deadline()``, kept current."""

    def __init__(self, next_deadline: Callable[[], float | None]) -> None:
        self._next_deadline = next_deadline
        self._changed = trio.Event()
        self._woken = False

    def reschedule(self) -> None:
        """The core's next deadline may have changed: make a waiting :meth:`wait` re-read it."""
        self._changed.set()

    def wake(self) -> None:
        """Make :meth:`wait` return now (or, if no task waits, as soon as one calls it)."""
        self._woken = True
        self._changed.set()

    async def wait(self) -> bool:
        """Wait until the core's next deadline (``None``: none) or :meth:`wake`.

        Returns True when the deadline came, False when woken. Always a checkpoint, so a loop
        around it never starves other tasks, even with a deadline already past.
        """
        while True:
            if self._woken:
                self._woken = False
                await trio.lowlevel.checkpoint()
                return False
            # No await between reading the deadline and arming the event: a reschedule() from
            # another task lands either before the read (seen by it) or on this event.
            deadline = self._next_deadline()
            self._changed = trio.Event()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._changed.wait()
                continue
            return True
