"""``kill -9`` of the gateway during traffic both ways, then a restart: counted at both ends.

The gateway acknowledges an inbound stanza to the server only once it is committed to the
device's queue, and persists the stream's resumption id and count before the server hears it;
the restarted gateway resumes the stream, and the server redelivers the rest.

The device application keeps each SendMessage until its DeliveryReport arrives and sends again,
after the restart, every one it holds (what a device does when the gateway's durability promise
and its own retention meet at the final report). The person sends at a steady pace through the
kill. Both ends then count every body they received.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import trio

from gateway import wire
from gateway.config import load_configuration
from gateway.store import open_sqlite_store
from tests.conftest import MakePerson
from tests.service.conftest import WAIT, Device, connect_device, enroll
from tests.service.test_run_command import GATEWAY_COMMAND, GatewayProcess, start_process
from tests.support.prosody import ProsodyServer

MESSAGES = 20  # each way


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
    to_device: Counter[str] = Counter()
    shown: set[int] = set()
    unreported: set[str] = set()
    try:
        async with trio.open_nursery() as nursery:
            device = await connect_device(nursery, enrolled, port)
            devices.append(device)
            device.send(wire.SetPresence(open=True))
            half = MESSAGES // 2
            for number in range(half):
                device.send(_message(number, person.jid))
                await person.send_message(account.jid, f"p{number}")
            # Traffic flows both ways through the first process before it is killed...
            with trio.fail_after(WAIT):
                while sum(to_person.values()) < half // 2:
                    to_person[(await person.next_message(sender=account.jid)).body] += 1
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

            second, resumed = await _restart(gateway_home)
            again = await connect_device(nursery, enrolled, port)
            devices.append(again)
            again.send(wire.SetPresence(open=True))
            for number in range(MESSAGES):
                if number + 1 not in reported:
                    unreported.add(f"d{number}")
                    again.send(_message(number, person.jid))
            _count_incoming(to_device, shown, device.received)
            with trio.fail_after(3 * WAIT):
                while (
                    len({_text(m) for m in [*device.received, *again.received]} - {""}) < MESSAGES
                ):
                    await again.next_operation(wire.IncomingMessage)
                while len(to_person) < MESSAGES:
                    to_person[(await person.next_message(sender=account.jid)).body] += 1
                # Anything still on its way would be a duplicate: a marker each way closes it.
                again.send(wire.SendMessage(999, person.jid, wire.TextContent("end")))
                while (received := await person.next_message(sender=account.jid)).body != "end":
                    to_person[received.body] += 1
                await person.send_message(account.jid, "end")
                while _text(await again.next_operation(wire.IncomingMessage)) != "end":
                    pass
            _count_incoming(to_device, shown, [m for m in again.received if _text(m) != "end"])
            nursery.cancel_scope.cancel()
    except BaseException:
        seen = sorted({_text(m) for d in devices for m in d.received})
        print(f"to person: {dict(to_person)}\nat the device: {seen}")
        for gateway in (first, second):
            if gateway is not None:
                print(gateway.log.decode()[-3000:])
        raise
    finally:
        for gateway in (first, second):
            if gateway is not None and gateway.process.returncode is None:
                gateway.process.kill()
                await gateway.process.wait()
    lost_to_person = [f"d{n}" for n in range(MESSAGES) if not to_person[f"d{n}"]]
    lost_to_device = [f"p{n}" for n in range(MESSAGES) if not to_device[f"p{n}"]]
    twice_to_person = {body: n for body, n in to_person.items() if n > 1}
    twice_to_device = {body: n for body, n in to_device.items() if n > 1}
    print(
        f"before the kill: device had {before_kill[0]} reports and {before_kill[1]} messages, "
        f"person {before_kill[2]} messages; "
        f"lost to person {lost_to_person}, to device {lost_to_device}; "
        f"duplicated to person {twice_to_person}, to device {twice_to_device}; "
        f"upstream stream {'resumed' if resumed else 'fresh'} after the restart"
    )
    # The restarted gateway resumed the XEP-0198 stream from the store, so the server resent
    # what the first process had received but not committed (and so not acknowledged).
    assert resumed
    assert lost_to_person == []
    assert lost_to_device == []
    assert twice_to_device == {}
    # Known gap (docs/service.md): a SendMessage the device sends again after the restart is
    # not recognised (the store cannot list recorded ids, and the account's archive is not
    # consulted), so only those may reach the person twice.
    assert set(twice_to_person) <= unreported
