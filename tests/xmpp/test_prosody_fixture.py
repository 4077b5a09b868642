"""The private Prosody survives being (re)started from a thread that then exits.

Linux sends the parent-death signal when the *thread* that forked the child exits (prctl(2)), so a
Prosody restarted from a short-lived worker thread used to be SIGKILLed when that thread ended.
"""

from __future__ import annotations

import threading

import trio

from tests.support.prosody import ProsodyServer

TIMEOUT = 20.0  # seconds of real time for each wait, never slept


async def _thread_is_gone(native_id: int) -> None:
    """Wait (bounded) until the kernel has finished the thread: its death signals are sent."""
    task = trio.Path(f"/proc/self/task/{native_id}")
    with trio.fail_after(TIMEOUT):
        # The kernel offers no event for the end of one thread: poll /proc, bounded in total.
        while await task.exists():  # noqa: ASYNC110 - no event exists to wait on instead
            await trio.sleep(0.01)


async def _answers_a_stream_header(prosody: ProsodyServer) -> bytes:
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(prosody.host, prosody.c2s_port)
        async with stream:
            await stream.send_all(
                f"<?xml version='1.0'?><stream:stream to='{prosody.domain}' version='1.0' "
                "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>".encode()
            )
            received = b""
            while b"<stream:features" not in received:
                data = await stream.receive_some(4096)
                assert data, "prosody closed the connection"
                received += data
            return received


async def test_prosody_restarted_from_a_thread_survives_the_thread(
    running_prosody: ProsodyServer,
) -> None:
    started = threading.Event()
    failures: list[BaseException] = []

    def restart() -> None:
        try:
            running_prosody.restart()
        except BaseException as exc:  # reported to the test below
            failures.append(exc)
        started.set()

    worker = threading.Thread(target=restart, name="short-lived-restarter")
    worker.start()
    await trio.to_thread.run_sync(started.wait, TIMEOUT)
    assert not failures, failures
    native_id = worker.native_id
    assert native_id is not None
    await trio.to_thread.run_sync(worker.join, TIMEOUT)
    await _thread_is_gone(native_id)

    assert b"<stream:features" in await _answers_a_stream_header(running_prosody)
    assert running_prosody.pid is not None
