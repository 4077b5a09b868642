"""``impp-devices chat`` in a real terminal (tmux) against the real gateway service and Prosody.

The gateway runs in-process over a directory made as ``impp-gateway init`` makes it, the device is
enrolled through a real login, and its provisioning file is what ``enroll`` writes; the person is
slixmpp. ``impp-devices chat`` runs as its own process in a tmux pane: keys are typed with
``send-keys`` and the screen is read with ``capture-pane``, polled until the expected line shows,
within a bounded time (never a fixed sleep). Skipped only on a developer machine without tmux;
under CI a missing tmux fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from device_sim.harness import (
    enroll,
    make_gateway_home,
    open_gateway_store,
    serving_gateway,
    upstream_ready,
)
from gateway.enroll.provisioning import write_provisioning_file
from tests.conftest import MakePerson
from tests.support.prosody import ProsodyServer

WAIT = 20.0  # seconds of real time one step through Prosody and the gateway may take
CHAT = Path(sys.executable).with_name("impp-devices")
TMUX = shutil.which("tmux")


def _tmux() -> str:
    """tmux's path; under CI (``CI`` set) a missing tmux fails, elsewhere it skips."""
    if TMUX is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing under CI; ./run installs it (apt-get install tmux)")
        pytest.skip("tmux is not installed (apt-get install tmux); CI runs this test")
    return TMUX


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: the gateway's admin socket path must fit AF_UNIX's 108 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="ct-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Pane:
    """One tmux pane on a private tmux server (``-L``), running one command."""

    def __init__(self, socket_name: str) -> None:
        self.base = [_tmux(), "-L", socket_name]

    async def _tmux(self, *args: str) -> str:
        with trio.fail_after(WAIT):
            result = await trio.run_process(
                [*self.base, *args], capture_stdout=True, capture_stderr=True, check=True
            )
        return result.stdout.decode(errors="replace")

    async def start(self, command: str) -> None:
        await self._tmux("new-session", "-d", "-s", "chat", "-x", "200", "-y", "60", command)

    async def type(self, text: str) -> None:
        await self._tmux("send-keys", "-t", "chat", "-l", text)
        await self._tmux("send-keys", "-t", "chat", "Enter")

    async def screen(self) -> str:
        return await self._tmux("capture-pane", "-p", "-J", "-t", "chat", "-S", "-500")

    async def wait_for(self, needle: str) -> str:
        """The pane's text once it shows ``needle`` (polled; at most WAIT seconds)."""
        text = ""
        with trio.move_on_after(WAIT):
            while True:
                text = await self.screen()
                if needle in text:
                    return text
                await trio.sleep(0.05)  # tmux has no change notification: the polling interval
        raise AssertionError(f"the pane never showed {needle!r}; it shows:\n{text}")

    async def kill(self) -> None:
        with trio.move_on_after(WAIT):
            await trio.run_process([*self.base, "kill-server"], check=False, capture_stderr=True)


async def test_chat_in_tmux_sends_receives_presence_sleep_and_quit(
    running_prosody: ProsodyServer, make_person: MakePerson, short_tmp: Path
) -> None:
    pane = Pane(f"impp-chat-{os.getpid()}")
    device_account = running_prosody.create_user()
    person = await make_person()
    config = make_gateway_home(short_tmp / "gw", running_prosody)
    provisioning_file = short_tmp / "device.prov"
    async with open_gateway_store(config) as (store, configuration), trio.open_nursery() as n:
        enrolled = await enroll(store, configuration, device_account)
        write_provisioning_file(provisioning_file, enrolled.provisioning(configuration))
        async with serving_gateway(n, store, configuration) as gateway:
            await upstream_ready(gateway, enrolled.kid)
            try:
                await pane.start(
                    f"{CHAT} chat --provision {provisioning_file}; echo '[chat exited' $?']'; "
                    "read _"
                )
                await pane.wait_for("connected to the gateway (EDHOC handshake done)")

                await pane.type(f"/msg {person.jid} hello from the terminal")
                message = await person.next_message(sender=device_account.jid, timeout=WAIT)
                assert message.body == "hello from the terminal"
                await pane.wait_for("delivered")

                await person.send_message(device_account.jid, "hi terminal, this is a person")
                await pane.wait_for(": hi terminal, this is a person")

                # Presence both ways: the device asks, the person approves and asks back.
                await pane.type(f"/subscribe {person.jid}")
                await person.next_presence(sender=device_account.jid, type="subscribe")
                await person.approve(device_account.jid)
                await person.subscribe(device_account.jid)
                await pane.wait_for("asks to see your presence")
                await pane.type("/approve")
                await person.send_presence(show="dnd", status="busy")
                await pane.wait_for("is busy (do not disturb)")
                await pane.type("/presence away walking the dog")
                seen = await person.next_presence(sender=device_account.jid, timeout=WAIT)
                while seen.show != "away":
                    seen = await person.next_presence(sender=device_account.jid, timeout=WAIT)
                assert seen.status == "walking the dog"

                await pane.type("/sleep 600")
                await pane.wait_for("radio off; waking at")
                await person.send_message(device_account.jid, "while you slept")
                await pane.type("/wake")
                await pane.wait_for("connected to the gateway (resumed with a ticket)")
                await pane.wait_for(": while you slept")

                await pane.type("/quit")
                screen = await pane.wait_for("[chat exited 0]")
            finally:
                await pane.kill()
    assert "session closed" in screen or "closing the session" in screen
    assert "\x1b" not in screen
