"""``kill -9`` of the gateway, and a restart of Prosody, during traffic: counted at both ends.

The gateway acknowledges an inbound stanza to the server only once it is committed to the
device's queue, and persists the stream's resumption id and count before the server hears it;
the restarted gateway resumes the stream, and the server redelivers the rest. Each SendMessage
is committed to the durable to-upstream queue (its id remembered) before its record may be
acknowledged, sent from there with a deterministic id and origin-id, and leaves the queue at the
server's acknowledgement; after a restart or on a fresh stream the account's archive (XEP-0313)
says which queued messages the server already has, and only the others are sent again.

The device application keeps each SendMessage until its DeliveryReport arrives and sends again,
after the restart, every one it holds (more than a device must: the gateway's durability
promise lets it forget at the record's acknowledgement; resending is the harder case). The
person sends at a steady pace through the kill. The person counts what it received by stanza
id, the device what it showed by IncomingMessage id; with a Prosody restart, the person's own
archive is the count, since its connection breaks with the server's.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import trio

from gateway import wire
from gateway.config import load_configuration
from gateway.service.binding import origin_id_for
from gateway.store import open_sqlite_store
from gateway.xmpp import XmppClient
from gateway.xmpp import events as ev
from gateway.xmpp.archive import ArchiveCatchUp, parse_archive_fin_untrusted
from gateway.xmpp.timers import DEFAULT_ACK_TIMEOUT as ACK_TIMEOUT
from tests.conftest import MakePerson
from tests.service.conftest import WAIT, Device, connect_device, enroll
from tests.service.test_run_command import GATEWAY_COMMAND, GatewayProcess, start_process
from tests.support.prosody import Account, ProsodyServer
from tests.xmpp.upstream import EventLog, config_for, manager_for

MESSAGES = 20  # each way


async def _log_lines(gateway: GatewayProcess) -> str:
    """The gateway's log lines (what it wrote so far, read for at most a second), less the
    one per device operation and inbound message: printed when a test fails."""
    assert gateway.process.stderr is not None
    with trio.move_on_after(1.0):
        while chunk := await gateway.process.stderr.receive_some(65536):
            gateway.log += chunk
    noisy = (b"from the device", b": message from ")
    return "\n".join(
        line.decode(errors="replace")
        for line in gateway.log.splitlines()
        if not any(n in line for n in noisy)
    )


def _queue_checks(log: str) -> list[str]:
    """What the gateway's checks of its to-upstream queue against the archive found."""
    return [
        line.split("queue checked: ")[-1].split('"')[0]
        for line in log.splitlines()
        if '"message"' in line and "to-upstream queue checked" in line
    ]


async def _restart(config: Path) -> tuple[GatewayProcess, bool]:
    """Start the gateway again; wait until its upstream stream is resumed or fresh (bounded)."""
    process = await trio.lowlevel.open_process(
        [*GATEWAY_COMMAND, "--config", str(config)], stderr=subprocess.PIPE
    )
    gateway = GatewayProcess(process)
    await gateway.wait_for_line("gateway running")
    assert process.stderr is not None
    with trio.fail_after(WAIT):
        while b" resumed" not in gateway.log and b"established (stream" not in gateway.log:
            chunk = await process.stderr.receive_some(65536)
            if not chunk:
                raise AssertionError("the gateway exited before its upstream came up")
            gateway.log += chunk
    return gateway, b" resumed" in gateway.log


def _message(number: int, to: str) -> wire.SendMessage:
    return wire.SendMessage(number + 1, to, wire.TextContent(f"d{number}"))


def _text(message: wire.Message) -> str:
    if isinstance(message, wire.IncomingMessage) and isinstance(message.content, wire.TextContent):
        return message.content.text
    return ""


def _count_incoming(counter: Counter[str], shown: set[int], received: list[wire.Message]) -> None:
    """Count what the device shows: it drops an IncomingMessage whose id it has shown
    (docs/protocol.md, device checklist), so a redelivery of the same queued item is no
    duplicate; the same body under a new id is."""
    for message in received:
        if isinstance(message, wire.IncomingMessage) and message.id not in shown:
            shown.add(message.id)
            counter[_text(message)] += 1


async def test_kill_9_during_traffic_then_restart(
    gateway_home: Path, make_person: MakePerson, running_prosody: ProsodyServer
) -> None:
    configuration = load_configuration(gateway_home, check_ports=False)
    account = running_prosody.create_user()
    async with open_sqlite_store(configuration.store.database) as store:
        enrolled = await enroll(store, configuration, account)
    person = await make_person()
    port = configuration.listen.udp[0].port
    first = await start_process(gateway_home)
    second: GatewayProcess | None = None
    resumed = False
    devices: list[Device] = []
    before_kill = (0, 0, 0)
    to_person: Counter[str] = Counter()
    person_ids: Counter[str] = Counter()  # stanza ids the person received
    to_device: Counter[str] = Counter()
    shown: set[int] = set()
    unreported: set[str] = set()
    try:
        async with trio.open_nursery() as nursery:
            # The first radio goes dead with the first process (a second driver of the same
            # device would resume its old session and take over the new one).
            async with trio.open_nursery() as radio:
                device = await connect_device(radio, enrolled, port)
                devices.append(device)
                device.send(wire.SetPresence(open=True))
                half = MESSAGES // 2
                for number in range(half):
                    device.send(_message(number, person.jid))
                    await person.send_message(account.jid, f"p{number}")
                # Traffic flows both ways through the first process before it is killed...
                with trio.fail_after(WAIT):
                    while sum(to_person.values()) < half // 2:
                        received = await person.next_message(sender=account.jid)
                        to_person[received.body] += 1
                        person_ids[received.id] += 1
                    while device.count(wire.IncomingMessage) < half // 2:
                        await device.next_operation(wire.IncomingMessage)
                # ...and the second half is in flight both ways when SIGKILL lands.
                for number in range(half, MESSAGES):
                    device.send(_message(number, person.jid))
                    await person.send_message(account.jid, f"p{number}")
                first.process.send_signal(signal.SIGKILL)
                with trio.fail_after(WAIT):
                    await first.process.wait()
                device.take_pending()
                reported = {m.id for m in device.received if isinstance(m, wire.DeliveryReport)}
                before_kill = (
                    len(reported),
                    device.count(wire.IncomingMessage),
                    sum(to_person.values()),
                )
                radio.cancel_scope.cancel()

            second, resumed = await _restart(gateway_home)
            again = await connect_device(nursery, enrolled, port)
            devices.append(again)
            again.send(wire.SetPresence(open=True))
            for number in range(MESSAGES):
                if number + 1 not in reported:
                    unreported.add(f"d{number}")
                    again.send(_message(number, person.jid))
            _count_incoming(to_device, shown, device.received)
            # Each wait after the restart outlasts the upstream's ack timeout (a resumed stream
            # the server stops reading is replaced after ACK_TIMEOUT), and all of them together
            # are bounded.
            step = ACK_TIMEOUT + WAIT
            with trio.fail_after(ACK_TIMEOUT + 3 * WAIT):
                while (
                    len({_text(m) for m in [*device.received, *again.received]} - {""}) < MESSAGES
                ):
                    await again.next_operation(wire.IncomingMessage, timeout=step)
                while len(to_person) < MESSAGES:
                    received = await person.next_message(sender=account.jid, timeout=step)
                    to_person[received.body] += 1
                    person_ids[received.id] += 1
                # Anything still on its way would be a duplicate: a marker each way closes it.
                again.send(wire.SendMessage(999, person.jid, wire.TextContent("end")))
                while (
                    received := await person.next_message(sender=account.jid, timeout=step)
                ).body != "end":
                    to_person[received.body] += 1
                    person_ids[received.id] += 1
                await person.send_message(account.jid, "end")
                while (
                    _text(await again.next_operation(wire.IncomingMessage, timeout=step)) != "end"
                ):
                    pass
            _count_incoming(to_device, shown, [m for m in again.received if _text(m) != "end"])
            nursery.cancel_scope.cancel()
    except BaseException:
        seen = sorted({_text(m) for d in devices for m in d.received})
        print(f"to person: {dict(to_person)}\nat the device: {seen}")
        for gateway in (first, second):
            if gateway is not None:
                print(await _log_lines(gateway))
        raise
    finally:
        checks = _queue_checks(await _log_lines(second)) if second is not None else []
        for gateway in (first, second):
            if gateway is not None and gateway.process.returncode is None:
                gateway.process.kill()
                await gateway.process.wait()
    lost_to_person = [f"d{n}" for n in range(MESSAGES) if not to_person[f"d{n}"]]
    lost_to_device = [f"p{n}" for n in range(MESSAGES) if not to_device[f"p{n}"]]
    twice_to_person = {body: n for body, n in to_person.items() if n > 1}
    expected_ids = {origin_id_for(enrolled.kid, n + 1) for n in range(MESSAGES)}
    twice_to_device = {body: n for body, n in to_device.items() if n > 1}
    print(
        f"before the kill: device had {before_kill[0]} reports and {before_kill[1]} messages, "
        f"person {before_kill[2]} messages; "
        f"lost to person {lost_to_person}, to device {lost_to_device}; "
        f"duplicated to person {twice_to_person}, to device {twice_to_device}; "
        f"resent by the device after the restart {len(unreported)}; "
        f"upstream stream {'resumed' if resumed else 'fresh'} after the restart; "
        f"queue checks {checks}"
    )
    # The restarted gateway resumed the XEP-0198 stream from the store, so the server resent
    # what the first process had received but not committed (and so not acknowledged).
    assert resumed
    assert lost_to_person == []
    assert lost_to_device == []
    assert twice_to_device == {}
    # Exactly once to the person, counted by stanza id: every message under its own id, once.
    assert twice_to_person == {}
    assert set(person_ids) == expected_ids
    assert set(person_ids.values()) == {1}


async def _wait_for_count(gateway: GatewayProcess, needle: bytes, count: int) -> None:
    """Read the gateway's log until ``count`` lines hold ``needle`` (bounded)."""
    assert gateway.process.stderr is not None
    with trio.fail_after(3 * WAIT):
        while sum(needle in line for line in gateway.log.splitlines()) < count:
            chunk = await gateway.process.stderr.receive_some(65536)
            if not chunk:
                raise AssertionError(f"the gateway exited before logging {needle!r}")
            gateway.log += chunk


async def _archived_ids(prosody: ProsodyServer, account: Account) -> Counter[str]:
    """The stanza ids of every message in ``account``'s own archive (XEP-0313), counted."""
    found: Counter[str] = Counter()
    async with manager_for(prosody) as manager:
        session = await manager.open_session(config_for(account, resource="count"))
        await EventLog(session.events).wait_for(ev.SessionEstablished)
        catch_up = ArchiveCatchUp(["none"], query_id="count", start=0.0, page_size=50)
        with trio.fail_after(WAIT):
            while (query := catch_up.next_query()) is not None:
                ask = functools.partial(
                    XmppClient.send_iq, type="set", payload=query, now=trio.current_time()
                )
                iq_id = await session.use(ask)
                while True:
                    event = await session.events.receive()
                    if isinstance(event, ev.ArchiveResultReceived):
                        found[event.result.stanza_id or ""] += 1
                        catch_up.result_received(event.result)
                    elif isinstance(event, ev.IqResultReceived) and event.id == iq_id:
                        catch_up.page_finished(parse_archive_fin_untrusted(event.payload))
                        break
                    assert not isinstance(event, ev.IqFailed | ev.IqTimedOut)
        assert not catch_up.exhausted
    return found


async def test_prosody_killed_and_restarted_during_device_traffic_loses_and_duplicates_nothing(
    gateway_home: Path, make_person: MakePerson, running_prosody: ProsodyServer
) -> None:
    configuration = load_configuration(gateway_home, check_ports=False)
    account = running_prosody.create_user()
    async with open_sqlite_store(configuration.store.database) as store:
        enrolled = await enroll(store, configuration, account)
    person = await make_person()
    gateway = await start_process(gateway_home)
    port = configuration.listen.udp[0].port
    try:
        async with trio.open_nursery() as nursery:
            device = await connect_device(nursery, enrolled, port)
            device.send(wire.SetPresence(open=True))
            for number in range(MESSAGES // 2):
                device.send(_message(number, person.jid))
            # The restart lands while the first half is on its way and the second half is sent.
            restart = trio.Event()

            async def restart_prosody() -> None:
                # Killed, not stopped: what it had taken but not acknowledged is then unknown
                # to the gateway, the case where resending blindly duplicates.
                pid = running_prosody.pid
                assert pid is not None
                os.killpg(pid, signal.SIGKILL)
                await trio.to_thread.run_sync(running_prosody.restart)
                restart.set()

            nursery.start_soon(restart_prosody)
            for number in range(MESSAGES // 2, MESSAGES):
                device.send(_message(number, person.jid))
            with trio.fail_after(3 * WAIT):
                await restart.wait()
            # The gateway's fresh stream, once it has checked its queue against the archive.
            await _wait_for_count(gateway, b"to-upstream queue checked", 2)
            # No report can come (the person's connection died with the server): the device
            # sends every message again, refused or not, as a device that never heard back.
            for number in range(MESSAGES):
                device.send(_message(number, person.jid))
            device.send(wire.SendMessage(999, person.jid, wire.TextContent("end")))
            back = await make_person(person.account)
            with trio.fail_after(3 * WAIT):
                while (await back.next_message(sender=account.jid)).body != "end":
                    pass
            archived = await _archived_ids(running_prosody, person.account)
            nursery.cancel_scope.cancel()
    except BaseException:
        print(await _log_lines(gateway))
        raise
    finally:
        if gateway.process.returncode is None:
            gateway.process.kill()
            await gateway.process.wait()
    expected = {origin_id_for(enrolled.kid, n + 1) for n in range(MESSAGES)}
    lost = sorted(expected - set(archived))
    twice = {i: n for i, n in archived.items() if i in expected and n > 1}
    checks = _queue_checks(await _log_lines(gateway))
    print(f"after a Prosody restart: lost {len(lost)}, duplicated {twice}; queue checks {checks}")
    assert lost == []
    assert twice == {}
