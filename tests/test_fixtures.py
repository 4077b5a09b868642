"""The test fixtures themselves: a real Prosody and real slixmpp people talk through it."""

from __future__ import annotations

import pytest
import trio

from tests.conftest import MakePerson
from tests.support.prosody import ProsodyError, ProsodyServer

TIMEOUT = 20  # seconds of real time for the real network; never slept


async def test_two_people_exchange_a_message(make_person: MakePerson) -> None:
    with trio.fail_after(TIMEOUT):
        alice = await make_person()
        bob = await make_person()
        await alice.send_message(bob.jid, "hello from alice ✓", thread="t1")
        received = await bob.next_message(sender=alice.jid)
        assert received.body == "hello from alice ✓"
        assert received.thread == "t1"
        assert received.sender.startswith(alice.jid + "/")
        await bob.send_message(alice.jid, "hi alice")
        assert (await alice.next_message(sender=bob.jid)).body == "hi alice"


async def test_presence_subscription_handshake(make_person: MakePerson) -> None:
    with trio.fail_after(TIMEOUT):
        alice = await make_person()
        bob = await make_person()
        await alice.subscribe(bob.jid)
        request = await bob.next_presence(sender=alice.jid, type="subscribe")
        assert request.sender.split("/")[0] == alice.jid
        await bob.approve(alice.jid)
        await alice.next_presence(sender=bob.jid, type="subscribed")
        # With the subscription in place, bob's availability reaches alice.
        await bob.send_presence(show="away", status="in a meeting")
        seen = await alice.next_presence(sender=bob.jid, type="away")
        assert seen.status == "in a meeting"
        roster = await alice.roster()
        assert roster[bob.jid]["subscription"] in {"to", "both"}


async def test_restart_keeps_accounts_and_ports(
    running_prosody: ProsodyServer, make_person: MakePerson
) -> None:
    account = running_prosody.create_user()
    port = running_prosody.c2s_port
    old_pid = running_prosody.pid
    await trio.to_thread.run_sync(running_prosody.restart)
    assert running_prosody.pid is not None
    assert running_prosody.pid != old_pid
    assert running_prosody.c2s_port == port
    assert running_prosody.running_processes() == [running_prosody.pid]
    with trio.fail_after(TIMEOUT):
        person = await make_person(account)  # the account survived the restart
        assert person.jid == account.jid


def test_stop_leaves_no_process(tmp_path_factory: pytest.TempPathFactory) -> None:

    server = ProsodyServer(tmp_path_factory.mktemp("prosody-stop"))
    server.start()
    pid = server.pid
    assert pid is not None
    assert server.running_processes() == [pid]
    server.stop()
    assert server.pid is None
    assert server.running_processes() == []
    server.stop()  # idempotent


def test_failed_start_leaves_no_process(tmp_path_factory: pytest.TempPathFactory) -> None:

    server = ProsodyServer(tmp_path_factory.mktemp("prosody-bad"))
    server.config_path.write_text("this is not lua {", "utf-8")
    with pytest.raises(ProsodyError, match="exited during start-up"):
        server.start()
    assert server.running_processes() == []


def test_missing_prosody_is_a_clear_error(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-path")))
    with pytest.raises(ProsodyError, match="apt-get install prosody"):
        ProsodyServer(tmp_path_factory.mktemp("prosody-missing"))
