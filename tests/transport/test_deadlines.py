"""gateway.deadlines.DeadlineTimer at exact virtual times: it follows a deadline that moves."""

from __future__ import annotations

import trio
import trio.testing

from gateway.deadlines import DeadlineTimer


async def test_wait_follows_reschedules_and_wakes(autojump_clock: trio.testing.MockClock) -> None:
    deadline: list[float | None] = [None]
    timer = DeadlineTimer(lambda: deadline[0])
    results: list[tuple[float, bool]] = []

    async def waiter() -> None:
        while True:
            due = await timer.wait()
            results.append((trio.current_time(), due))
            if due:
                deadline[0] = None  # as a core does: its timer ran

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(5)  # no deadline: it sleeps
        assert results == []
        deadline[0] = start + 100
        timer.reschedule()  # a far deadline, then an earlier one: the earlier one counts
        await trio.sleep(1)
        deadline[0] = start + 10
        timer.reschedule()
        await trio.sleep(10)
        assert results == [(start + 10, True)]
        deadline[0] = None
        timer.wake()  # work to do now, whatever the deadline
        await trio.sleep(1)
        assert results == [(start + 10, True), (start + 16, False)]
        nursery.cancel_scope.cancel()


async def test_a_wake_before_the_wait_is_not_lost() -> None:
    timer = DeadlineTimer(lambda: None)
    timer.wake()
    with trio.fail_after(1):
        assert await timer.wait() is False
