"""A night's traffic through the service, a real Prosody and a slixmpp person (issue 12 §6).

While the device sleeps its person changes presence many times and sends a few messages. At
Wake the device gets the MissedSummary first, then the queue oldest first, each message exactly
once and one presence notification for the person (the latest), then live traffic. The server's
XEP-0352 buffering must not let the night's presence reach the device one by one after it woke:
Prosody holds presence for an inactive client and flushes it when told ``<active/>``.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from gateway import wire
from gateway.config import Configuration
from gateway.store import GatewayStore
from tests.conftest import MakePerson
from tests.service.conftest import (
    WAIT,
    serving_device,
)
from tests.support.prosody import ProsodyServer

POLL = 0.005  # seconds between two looks at the binding's lock
PRESENCE_CHANGES = 20
MESSAGES = 5
_SHOWS = ("away", "chat", "dnd", "xa")


async def _until(condition: Callable[[], bool]) -> None:
    """Return once ``condition`` holds; it is about tasks of this process, checked each tick."""
    with trio.fail_after(WAIT):
        while not condition():  # noqa: ASYNC110 -- a trio.Lock offers no event for its waiters
            await trio.sleep(POLL)


def _text(message: wire.IncomingMessage) -> str:
    assert isinstance(message.content, wire.TextContent)
    return message.content.text


async def test_a_night_of_presence_and_messages_arrives_coalesced_after_the_summary(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    person = await make_person()
    async with serving_device(open_store, running_prosody) as scene:
        device, device_account = scene.device, scene.account
        binding = scene.binding

        device.send(wire.SetPresence(open=True))
        device.send(wire.SubscriptionCommand(wire.SubscriptionAction.SUBSCRIBE, person.jid))
        await person.next_presence(sender=device_account.jid, type="subscribe")
        await person.approve(device_account.jid)
        await person.send_presence(status="evening")
        with trio.fail_after(WAIT):
            while (await device.next_operation(wire.PresenceNotification)).note != "evening":
                pass

        device.send(wire.Sleep(3600))
        with trio.fail_after(WAIT):
            await binding.counters.wait_for(lambda c: c.get("upstream-UpstreamSetActive") >= 1)
        device.take_pending()
        before_wake = len(device.received)

        # The binding handles one input at a time under its lock. Holding it, the test lets the
        # night's stanzas pile up unhandled at the gateway (as a burst the server flushes does)
        # and has the Wake wait behind the first of them: the lock is fair, so the relay sees one
        # presence, then the Wake, then the rest of the night.
        lock = binding._lock  # the binding's serialisation of inputs, held on purpose here
        await lock.acquire()
        try:
            for number in range(PRESENCE_CHANGES):
                show = _SHOWS[number % len(_SHOWS)]
                await person.send_presence(show=show, status=f"night {number}")
            for number in range(MESSAGES):
                await person.send_message(device_account.jid, f"night {number}")
            await person.send_message(person.jid, "all sent")  # back once the server routed all
            await person.next_message(sender=person.jid)
            await _until(lambda: lock.statistics().tasks_waiting >= 1)  # the first stanza waits
            device.send(wire.Wake())
            await _until(lambda: lock.statistics().tasks_waiting >= 2)  # and the Wake behind it
        finally:
            lock.release()

        summary = await device.next_operation(wire.MissedSummary)
        assert summary.messages == MESSAGES
        texts = [_text(await device.next_operation(wire.IncomingMessage)) for _ in range(MESSAGES)]
        assert texts == [f"night {n}" for n in range(MESSAGES)]
        await person.send_message(device_account.jid, "morning")
        assert _text(await device.next_operation(wire.IncomingMessage)) == "morning"

        after = device.received[before_wake:]
        assert isinstance(after[0], wire.MissedSummary)
        notes = [m.note for m in after if isinstance(m, wire.PresenceNotification)]
        assert notes == [f"night {PRESENCE_CHANGES - 1}"]
        texts = [_text(m) for m in after if isinstance(m, wire.IncomingMessage)]
        assert texts == [*(f"night {n}" for n in range(MESSAGES)), "morning"]
