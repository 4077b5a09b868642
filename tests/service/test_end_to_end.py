"""The service end to end: a loopback device, the in-process service, a real Prosody, slixmpp.

"Once" is shown without waiting for silence: after the message under test, a marker follows on
the same path, and the next thing received after the first must be the marker (a duplicate
would come between them, since both legs keep order).
"""

from __future__ import annotations

import trio

from gateway import wire
from gateway.config import Configuration
from gateway.session import DeviceSessionEstablished, SessionClosed
from gateway.store import GatewayStore
from gateway.transport import DeviceDriver, run_device_over_udp
from tests.conftest import MakePerson
from tests.service.conftest import (
    WAIT,
    Device,
    connect_device,
    device_session,
    enroll,
    serving_device,
    start_gateway,
)
from tests.support.prosody import ProsodyServer


def _text(message: wire.IncomingMessage) -> str:
    assert isinstance(message.content, wire.TextContent)
    return message.content.text


async def test_handshake_chat_both_ways_and_delivery_report(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    store = open_store[0]
    person = await make_person()
    async with serving_device(open_store, running_prosody) as scene:
        device, device_account, enrolled = scene.device, scene.account, scene.enrolled
        device.send(wire.SetPresence(open=True))  # available, so bare-JID messages reach it

        device.send(wire.SendMessage(id=1, to=person.jid, content=wire.TextContent("hello")))
        first = await person.next_message(sender=device_account.jid)
        assert first.body == "hello"
        # slixmpp's xep_0184 plugin acknowledges the receipt request: DELIVERED comes back.
        report = await device.next_operation(wire.DeliveryReport)
        assert report == wire.DeliveryReport(1, wire.DeliveryStatus.DELIVERED)
        device.send(wire.SendMessage(id=2, to=person.jid, content=wire.TextContent("marker")))
        assert (await person.next_message(sender=device_account.jid)).body == "marker"

        await person.send_message(device_account.jid, "hi device")
        incoming = await device.next_operation(wire.IncomingMessage)
        assert _text(incoming) == "hi device"
        assert isinstance(incoming.sender, str)
        assert incoming.sender == person.jid
        await person.send_message(device_account.jid, "marker")
        assert _text(await device.next_operation(wire.IncomingMessage)) == "marker"
        assert device.count(wire.IncomingMessage) == 2
        # The device acknowledged both records: nothing is left in its durable queue.
        binding = scene.binding
        with trio.fail_after(WAIT):
            await binding.counters.wait_for(lambda c: c.get("delivered-to-device") >= 2)
        assert await store.device_queue_length(enrolled.kid) == 0


async def test_presence_both_ways(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    person = await make_person()
    async with serving_device(open_store, running_prosody) as scene:
        device, device_account = scene.device, scene.account

        # Available first: the server hands subscription requests to available resources.
        device.send(wire.SetPresence(open=True))
        # Mutual subscription: the device asks, the person approves and asks back.
        device.send(wire.SubscriptionCommand(wire.SubscriptionAction.SUBSCRIBE, person.jid))
        await person.next_presence(sender=device_account.jid, type="subscribe")
        await person.approve(device_account.jid)
        await person.subscribe(device_account.jid)
        request = await device.next_operation(wire.SubscriptionRequest)
        device.send(wire.SubscriptionCommand(wire.SubscriptionAction.APPROVE, request.sender))

        device.send(wire.SetPresence(open=True, show=wire.Show.AWAY, note="battery 81%"))
        with trio.fail_after(WAIT):
            while True:
                seen = await person.next_presence(sender=device_account.jid)
                if seen.type in ("away",) or seen.show == "away":
                    break
        assert seen.status == "battery 81%"

        await person.send_presence(show="dnd", status="in a meeting")
        with trio.fail_after(WAIT):
            while True:
                notification = await device.next_operation(wire.PresenceNotification)
                if notification.show is wire.Show.DO_NOT_DISTURB:
                    break
        assert notification.open is True
        assert notification.note == "in a meeting"


async def test_sleep_three_messages_then_wake(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    store = open_store[0]
    person = await make_person()
    async with serving_device(open_store, running_prosody) as scene:
        device, device_account, enrolled = scene.device, scene.account, scene.enrolled
        device.send(wire.SetPresence(open=True))
        binding = scene.binding

        device.send(wire.Sleep(600))
        with trio.fail_after(WAIT):
            await binding.counters.wait_for(lambda c: c.get("upstream-UpstreamSetActive") >= 1)
        for number in range(3):
            await person.send_message(device_account.jid, f"night {number}")
        with trio.fail_after(WAIT):
            await binding.counters.wait_for(lambda c: c.get("queued-queued") >= 3)
        assert await store.device_queue_length(enrolled.kid) == 3
        assert device.count(wire.IncomingMessage) == 0

        device.send(wire.Wake())
        summary = await device.next_operation(wire.MissedSummary)
        assert summary.messages == 3
        texts = [_text(await device.next_operation(wire.IncomingMessage)) for _ in range(3)]
        assert texts == ["night 0", "night 1", "night 2"]
        with trio.fail_after(WAIT):
            await binding.counters.wait_for(lambda c: c.get("delivered-to-device") >= 3)
        assert await store.device_queue_length(enrolled.kid) == 0

        device.send(wire.Wake())  # a second wake delivers nothing again
        assert await device.next_operation(wire.MissedSummary) == wire.MissedSummary()
        await person.send_message(device_account.jid, "marker")
        assert _text(await device.next_operation(wire.IncomingMessage)) == "marker"
        assert device.count(wire.IncomingMessage) == 4


async def test_revoked_device_is_refused(
    open_store: tuple[GatewayStore, Configuration],
    running_prosody: ProsodyServer,
) -> None:
    store, configuration = open_store
    enrolled = await enroll(store, configuration, running_prosody.create_user())
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        device = await connect_device(nursery, enrolled, gateway.udp_port)
        assert await store.revoke_device(enrolled.kid, now=0.0)
        closed = await device.next_event(SessionClosed)  # the live session ends
        assert closed.reason
        # A new handshake finds no credential for the revoked kid.
        refused = trio.Event()
        gateway.service.registry.on_refused = refused.set
        again = Device(DeviceDriver(device_session(enrolled)))
        nursery.start_soon(run_device_over_udp, again.driver, ("127.0.0.1", gateway.udp_port))
        again.driver.connect()
        # The handshake stalls at message_3 (no credential, nothing answered): wait, bounded,
        # for the gateway's lookup to refuse it, then check nothing was established.
        with trio.fail_after(WAIT):
            await refused.wait()
        assert enrolled.kid not in gateway.service.bindings()
        assert not any(isinstance(e, DeviceSessionEstablished) for e in again.events)
        await gateway.stop()
        nursery.cancel_scope.cancel()
