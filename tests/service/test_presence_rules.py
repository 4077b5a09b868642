"""RFC 2779's presence and delivery rules through the service, a real Prosody and slixmpp people.

Directed presence is seen only by the chosen watcher and survives later broadcasts (§2.3.3,
§5.2.3); a device whose session dies without Sleep is shown unavailable after the grace, keeps
its account so what is sent meanwhile waits for it, and is available again when it returns
(§3.2.4, §3.2.5, §2.1.1); a message the device's full queue refuses is reported to its sender
as a stanza error (§5.4.1). Every wait is on an event, bounded by ``WAIT``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from gateway import wire
from gateway.config import Configuration, load_configuration
from gateway.relay import SleepState
from gateway.session import DeviceSessionEstablished
from gateway.store import GatewayStore, open_sqlite_store
from gateway.transport import DeviceDriver, run_device_over_udp
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
from tests.support.person import ReceivedPresence, XmppPerson
from tests.support.prosody import ProsodyServer

IDLE_TIMEOUT = 3.0  # seconds of device silence before the gateway ends its session
LINK_LOST_GRACE = 1.0  # seconds the relay then waits for a new session
QUEUE_LENGTH = 2  # the device's durable queue holds this many items


@pytest.fixture
def tuned_home(gateway_home: Path) -> Path:
    """The gateway's configuration file with a short idle timeout for device sessions and a
    short grace for a device whose session ended without Sleep."""
    text = gateway_home.read_text()
    for key, value in (("idle_timeout", IDLE_TIMEOUT), ("link_lost_grace", LINK_LOST_GRACE)):
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert count == 1, key
    gateway_home.write_text(text)
    return gateway_home


@pytest.fixture
async def tuned_store(tuned_home: Path) -> AsyncIterator[tuple[GatewayStore, Configuration]]:
    """The store (a small device queue) and configuration of the tuned gateway."""
    configuration = load_configuration(tuned_home, check_ports=False)
    assert configuration.limits.idle_timeout == IDLE_TIMEOUT
    assert configuration.limits.link_lost_grace == LINK_LOST_GRACE
    async with open_sqlite_store(
        configuration.store.database, max_device_queue=QUEUE_LENGTH
    ) as store:
        yield store, configuration


async def _presence_until(
    person: XmppPerson, sender: str, wanted: str, *, never: str | None = None
) -> ReceivedPresence:
    """The next presence from ``sender`` with status ``wanted``; none before may be ``never``."""
    with trio.fail_after(WAIT):
        while True:
            seen = await person.next_presence(sender=sender)
            assert never is None or seen.status != never, f"{person.jid} saw {never!r}"
            if seen.status == wanted:
                return seen


async def test_directed_presence_is_seen_only_by_the_chosen_watcher(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    alice = await make_person()
    bob = await make_person()
    async with serving_device(open_store, running_prosody) as scene:
        device, device_account = scene.device, scene.account
        device.send(wire.SetPresence(open=True, note="hello all"))
        for person in (alice, bob):
            await watched_by(person, device, device_account.jid)

        device.send(wire.SetPresence(show=wire.Show.CHAT, note="for alice", to=alice.jid))
        seen = await _presence_until(alice, device_account.jid, "for alice")
        assert seen.show == "chat"
        # A broadcast follows: Bob's next presence is it, never Alice's directed one; Alice
        # gets the broadcast and then her direction again, so it is not undone.
        device.send(wire.SetPresence(note="for all"))
        await _presence_until(bob, device_account.jid, "for all", never="for alice")
        await _presence_until(alice, device_account.jid, "for all")
        await _presence_until(alice, device_account.jid, "for alice")

        # Withheld from Bob: he sees the device unavailable, and a broadcast does not undo it.
        device.send(wire.SetPresence(open=False, to=bob.jid))
        with trio.fail_after(WAIT):
            while (await bob.next_presence(sender=device_account.jid)).type != "unavailable":
                pass
        device.send(wire.SetPresence(note="again"))
        await _presence_until(alice, device_account.jid, "again")
        with trio.fail_after(WAIT):
            while True:
                last = await bob.next_presence(sender=device_account.jid)
                if last.type == "unavailable":
                    break
        assert last.status == ""  # withheld: not even the broadcast note


async def _connect_until_cancelled(
    nursery: trio.Nursery, enrolled: EnrolledDevice, port: int
) -> tuple[Device, trio.CancelScope]:
    """A device over UDP whose radio dies (it falls silent) when the scope is cancelled."""
    device = Device(DeviceDriver(device_session(enrolled)))
    radio = trio.CancelScope()

    async def run() -> None:
        with radio:
            await run_device_over_udp(device.driver, ("127.0.0.1", port))

    nursery.start_soon(run)
    device.driver.connect()
    await device.next_event(DeviceSessionEstablished)
    return device, radio


def _state(gateway: RunningGateway, kid: bytes) -> SleepState:
    return gateway.service.bindings()[kid].relay.state


async def test_a_device_whose_session_dies_is_shown_unavailable_and_returns(
    tuned_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    store, configuration = tuned_store
    device_account = running_prosody.create_user()
    enrolled = await enroll(store, configuration, device_account)
    person = await make_person()
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        await upstream_ready(gateway, enrolled.kid)
        binding = gateway.service.bindings()[enrolled.kid]
        assert binding.relay.config.link_lost_grace == LINK_LOST_GRACE  # from the file
        device, radio = await _connect_until_cancelled(nursery, enrolled, gateway.udp_port)
        device.send(wire.SetPresence(open=True, note="on duty"))
        await watched_by(person, device, device_account.jid)

        radio.cancel()  # no Sleep, no goodbye: the device just falls silent
        with trio.fail_after(WAIT):
            while (await person.next_presence(sender=device_account.jid)).type != "unavailable":
                pass
        assert _state(gateway, enrolled.kid) is SleepState.LOST
        assert binding.relay.statistics().unavailable_announced == 1

        # Its account stays; a message sent now waits for it (RFC 2779 §2.1.1).
        await person.send_message(device_account.jid, "while you were away")
        again = await connect_device(nursery, enrolled, gateway.udp_port)
        back = await _presence_until(person, device_account.jid, "on duty")
        assert back.type != "unavailable"
        incoming = await again.next_operation(wire.IncomingMessage)
        assert isinstance(incoming.content, wire.TextContent)
        assert incoming.content.text == "while you were away"
        assert _state(gateway, enrolled.kid) is SleepState.AWAKE
        await gateway.stop()
        nursery.cancel_scope.cancel()


async def test_a_message_the_full_queue_refuses_is_reported_to_its_sender(
    tuned_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    store = tuned_store[0]
    person = await make_person()
    await person.record_errors()
    async with serving_device(tuned_store, running_prosody) as scene:
        device, device_account, enrolled = scene.device, scene.account, scene.enrolled
        device.send(wire.SetPresence(open=True))  # available, so bare-JID messages reach it
        binding = scene.binding
        device.send(wire.Sleep(600))
        with trio.fail_after(WAIT):
            await binding.counters.wait_for(lambda c: c.get("upstream-UpstreamSetActive") >= 1)
        ids = [
            await person.send_message(device_account.jid, f"night {number}")
            for number in range(QUEUE_LENGTH + 1)
        ]
        report = await person.next_message(sender=device_account.jid)
        assert (report.type, report.id) == ("error", ids[-1])
        assert "resource-constraint" in report.xml
        assert await store.device_queue_length(enrolled.kid) == QUEUE_LENGTH
        assert binding.relay.statistics().overflow_reports == 1
