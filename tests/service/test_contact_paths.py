"""Contact paths end to end: a loopback device, the in-process service, a real Prosody, slixmpp.

A subscription the device asked for and then cancelled stops the contact's presence reaching it
(RFC 2779 §5.3.2); a blocked contact sees the device offline and cannot reach it, and both come
back with the unblock (XEP-0191, polite blocking); a device whose NAT rebinds mid-traffic loses
and repeats nothing; a device holding the wrong key never gets a session. "No longer" and "once"
are shown without waiting for silence: a marker follows on a path that still works, in the same
order as what is under test, and it must be what arrives next. Every wait is bounded by ``WAIT``;
where the gateway's session core counts something with no event to wait on (a datagram sent, a
handshake refused), a spy on the core's public methods sets one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable

import pytest
import trio

from device_sim.harness import new_credential
from gateway import wire
from gateway.config import Configuration
from gateway.service.ops import QueueSampler, ServiceStatus
from gateway.session import DeviceSessionEstablished, GatewaySessions
from gateway.store import GatewayStore
from gateway.transport import DeviceDriver, run_device_over_udp
from gateway.xmpp import Jid
from tests.conftest import MakePerson
from tests.service.conftest import (
    WAIT,
    Device,
    EnrolledDevice,
    RunningGateway,
    connect_device,
    device_session,
    enroll,
    serving_device,
    start_gateway,
    upstream_ready,
    watched_by,
)
from tests.support.prosody import ProsodyServer

TRAFFIC = 10  # messages each way in the rebinding test; the NAT rebinds half-way


def _text(message: wire.IncomingMessage) -> str:
    assert isinstance(message.content, wire.TextContent)
    return message.content.text


async def _heard(device: Device) -> wire.PresenceNotification | wire.IncomingMessage:
    """The next contact presence or incoming message the device received (others skipped)."""
    with trio.fail_after(WAIT):
        while True:
            message = await device.next_operation(object)
            if isinstance(message, wire.PresenceNotification | wire.IncomingMessage):
                return message


def _after_each_datagram(
    monkeypatch: pytest.MonkeyPatch, core: GatewaySessions, predicate: Callable[[], bool]
) -> trio.Event:
    """An event set once ``predicate()`` holds after the gateway's core handled a datagram:
    what the core counts has no event of its own to wait on."""
    reached = trio.Event()
    handle = core.receive_datagram

    def spy(data: bytes, address: Hashable, now: float) -> None:
        handle(data, address, now)
        if predicate():
            reached.set()

    monkeypatch.setattr(core, "receive_datagram", spy)
    return reached


async def test_a_cancelled_subscription_stops_the_contacts_presence(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    person = await make_person()
    async with serving_device(open_store, running_prosody) as scene:
        device, device_account = scene.device, scene.account
        device.send(wire.SetPresence(open=True))

        # Asked by the device, approved by the person: the person's presence reaches it.
        device.send(wire.SubscriptionCommand(wire.SubscriptionAction.SUBSCRIBE, person.jid))
        await person.next_presence(sender=device_account.jid, type="subscribe")
        await person.approve(device_account.jid)
        with trio.fail_after(WAIT):
            while not (await device.next_operation(wire.PresenceNotification)).open:
                pass
        await watched_by(person, device, device_account.jid)
        # The marker's path keeps the presence's order: a presence sent before a message
        # arrives before it, so a presence that is not there before the marker was not sent.
        await person.send_presence(status="before")
        await person.send_message(device_account.jid, "marker 1")
        first = await _heard(device)
        assert isinstance(first, wire.PresenceNotification)
        assert (first.open, first.note) == (True, "before")
        second = await _heard(device)
        assert isinstance(second, wire.IncomingMessage)
        assert _text(second) == "marker 1"

        # Cancelled by the device both ways: it stops seeing the person, and stops the person
        # seeing it.
        device.send(wire.SubscriptionCommand(wire.SubscriptionAction.UNSUBSCRIBE, person.jid))
        await person.next_presence(sender=device_account.jid, type="unsubscribe")
        device.send(wire.SubscriptionCommand(wire.SubscriptionAction.DENY, person.jid))
        await person.next_presence(sender=device_account.jid, type="unsubscribed")

        await person.send_presence(show="chat", status="after")
        await person.send_message(device_account.jid, "marker 2")
        with trio.fail_after(WAIT):
            while True:
                seen = await _heard(device)
                if isinstance(seen, wire.IncomingMessage):
                    break
                # Only the person going offline for the device may come first (RFC 6121
                # §3.3.3: the unsubscribe is answered with an unavailable presence).
                assert not seen.open, f"presence after the cancellation: {seen}"
        assert _text(seen) == "marker 2"
        roster = await person.roster()
        assert roster[device_account.jid]["subscription"] == "none"


async def test_block_hides_the_device_and_stops_the_contact_unblock_restores_both(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    person = await make_person()
    # The server bounces the refused message as an error stanza without a body.
    await person.record_errors()
    async with serving_device(open_store, running_prosody) as scene:
        device, device_account = scene.device, scene.account
        device.send(wire.SetPresence(open=True, note="on duty"))
        await watched_by(person, device, device_account.jid)

        device.send(wire.SubscriptionCommand(wire.SubscriptionAction.BLOCK, person.jid))
        with trio.fail_after(WAIT):
            while (await person.next_presence(sender=device_account.jid)).type != "unavailable":
                pass  # polite: the person sees the device go offline, not a refusal
        blocked_id = await person.send_message(device_account.jid, "while blocked")
        bounce = await person.next_message(sender=device_account.jid)
        assert (bounce.type, bounce.id) == ("error", blocked_id)  # the server refused it

        device.send(wire.SubscriptionCommand(wire.SubscriptionAction.UNBLOCK, person.jid))
        with trio.fail_after(WAIT):
            while True:
                back = await person.next_presence(sender=device_account.jid)
                if back.type != "unavailable":
                    break
        assert back.status == "on duty"
        await person.send_message(device_account.jid, "after unblock")
        # The first message the device receives is the one after the unblock.
        incoming = await device.next_operation(wire.IncomingMessage)
        assert _text(incoming) == "after unblock"
        assert device.count(wire.IncomingMessage) == 1
        relay = scene.binding.relay
        assert not relay.contacts.is_blocked(Jid.parse_untrusted(person.jid))


def _sent_after_queued(
    monkeypatch: pytest.MonkeyPatch, core: GatewaySessions, text: str
) -> trio.Event:
    """An event set once the gateway's core has put out datagrams after the incoming message
    ``text`` was queued to the device: that message is then on its way."""
    queued = False
    sent = trio.Event()
    queue = core.send_operation
    take = core.datagrams_to_send

    def spy_queue(connection_id: bytes, message: wire.Message) -> int:
        nonlocal queued
        if isinstance(message, wire.IncomingMessage) and _text(message) == text:
            queued = True
        return queue(connection_id, message)

    def spy_take(now: float) -> list[tuple[bytes, Hashable]]:
        datagrams = take(now)
        if queued and datagrams:
            sent.set()
        return datagrams

    monkeypatch.setattr(core, "send_operation", spy_queue)
    monkeypatch.setattr(core, "datagrams_to_send", spy_take)
    return sent


async def test_nat_rebinding_mid_traffic_loses_and_repeats_nothing(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, configuration = open_store
    device_account = running_prosody.create_user()
    enrolled = await enroll(store, configuration, device_account)
    person = await make_person()
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        await upstream_ready(gateway, enrolled.kid)
        core = gateway.service.listeners[0].core
        device = Device(DeviceDriver(device_session(enrolled)))
        old_socket = trio.CancelScope()

        async def radio(scope: trio.CancelScope) -> None:
            with scope:
                await run_device_over_udp(device.driver, ("127.0.0.1", gateway.udp_port))

        nursery.start_soon(radio, old_socket)
        device.driver.connect()
        await device.next_event(DeviceSessionEstablished)
        device.send(wire.SetPresence(open=True))
        lost = _sent_after_queued(monkeypatch, core, f"down {TRAFFIC // 2}")
        for number in range(TRAFFIC):
            device.send(
                wire.SendMessage(
                    id=number + 1, to=person.jid, content=wire.TextContent(f"up {number}")
                )
            )
            await person.send_message(device_account.jid, f"down {number}")
            if number == TRAFFIC // 2:
                # The NAT gives the device a new source port. The old socket is gone before
                # the gateway sends this message there (so it is lost on the way); the same
                # session goes on from a new socket, and the gateway must follow it.
                old_socket.cancel()
                with trio.fail_after(WAIT):
                    await lost.wait()
                nursery.start_soon(radio, trio.CancelScope())
        device.send(
            wire.SendMessage(id=TRAFFIC + 1, to=person.jid, content=wire.TextContent("marker"))
        )
        await person.send_message(device_account.jid, "marker")

        up = [
            (await person.next_message(sender=device_account.jid)).body for _ in range(TRAFFIC + 1)
        ]
        assert up == [f"up {n}" for n in range(TRAFFIC)] + ["marker"]
        down = [
            _text(await device.next_operation(wire.IncomingMessage)) for _ in range(TRAFFIC + 1)
        ]
        assert down == [f"down {n}" for n in range(TRAFFIC)] + ["marker"]
        statistics = core.statistics()
        assert statistics.migrations >= 1
        assert statistics.retransmissions >= 1  # what went to the old port was sent again
        assert gateway.service.counters.get("session-established") == 1  # one session throughout
        await gateway.stop()
        nursery.cancel_scope.cancel()


async def _impostor(
    nursery: trio.Nursery, holding: EnrolledDevice, gateway: RunningGateway
) -> tuple[Device, trio.CancelScope]:
    """A device that attempts a handshake with ``holding``'s key, until the scope is cancelled."""
    device = Device(DeviceDriver(device_session(holding)))
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            await run_device_over_udp(device.driver, ("127.0.0.1", gateway.udp_port))

    nursery.start_soon(run)
    device.driver.connect()
    return device, scope


async def test_a_wrong_key_is_refused_and_the_enrolled_device_still_connects(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, configuration = open_store
    device_account = running_prosody.create_user()
    enrolled = await enroll(store, configuration, device_account)
    person = await make_person()
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        await upstream_ready(gateway, enrolled.kid)
        status = ServiceStatus(gateway.service, QueueSampler(gateway.service))
        core = gateway.service.listeners[0].core

        # The enrolled kid, another private key: message_3's MAC does not verify.
        wrong_key = EnrolledDevice(
            enrolled.kid,
            new_credential(enrolled.kid, device_account.jid),
            enrolled.gateway,
            enrolled.account,
        )
        mac_refused = _after_each_datagram(
            monkeypatch, core, lambda: core.statistics().dropped["handshake_failed"] >= 1
        )
        impostor, stop = await _impostor(nursery, wrong_key, gateway)
        with trio.fail_after(WAIT):
            await mac_refused.wait()
        assert status.totals().handshakes_failed >= 1
        stop.cancel()
        impostor.take_pending()
        assert not any(isinstance(e, DeviceSessionEstablished) for e in impostor.events)

        # A kid nobody enrolled: the gateway's lookup refuses it.
        unknown_kid = secrets.token_bytes(3)
        refused = trio.Event()
        gateway.service.registry.on_refused = refused.set
        stranger, stop = await _impostor(
            nursery,
            EnrolledDevice(
                unknown_kid,
                new_credential(unknown_kid, device_account.jid),
                enrolled.gateway,
                enrolled.account,
            ),
            gateway,
        )
        with trio.fail_after(WAIT):
            await refused.wait()
        failed_before = status.totals().handshakes_failed
        stop.cancel()
        stranger.take_pending()
        assert not any(isinstance(e, DeviceSessionEstablished) for e in stranger.events)
        assert failed_before >= 2
        assert gateway.service.counters.get("session-established", 0) == 0
        assert not gateway.service.bound[enrolled.kid].links

        # The device holding the enrolled key connects and talks.
        device = await connect_device(nursery, enrolled, gateway.udp_port)
        assert gateway.service.counters.get("session-established") == 1
        device.send(wire.SendMessage(id=1, to=person.jid, content=wire.TextContent("still me")))
        assert (await person.next_message(sender=device_account.jid)).body == "still me"
        await gateway.stop()
        nursery.cancel_scope.cancel()
