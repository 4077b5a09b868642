"""``impp-gateway run``: the configuration check first, then the service as a real process."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from gateway import wire
from gateway.cli import main
from gateway.config import load_configuration
from gateway.store import open_sqlite_store
from tests.conftest import MakePerson
from tests.service.conftest import WAIT, EnrolledDevice, connect_device, enroll
from tests.support.prosody import ProsodyServer

GATEWAY_COMMAND = [str(Path(sys.executable).with_name("impp-gateway")), "run"]


def test_run_prints_every_problem_with_its_fix_and_exits_2(
    gateway_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = gateway_home.read_text()
    gateway_home.write_text(text.replace("[limits]\n", "[limits]\nmax_sesions = 5\n", 1))
    assert main(["run", "--config", str(gateway_home)]) == 2
    err = capsys.readouterr().err
    assert "limits.max_sesions" in err
    assert "fix:" in err
    assert "not started" in err


def test_run_takes_the_init_directory(
    gateway_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (gateway_home.parent / "ca" / "ca-key.pem").unlink()  # a problem the check reports
    assert main(["run", "--config", str(gateway_home.parent)]) == 2
    assert "ca-key.pem" in capsys.readouterr().err


@dataclass
class GatewayProcess:
    """``impp-gateway run`` as a child process, with its log (stderr) as it arrives."""

    process: trio.Process
    log: bytearray = field(default_factory=bytearray)

    async def wait_for_line(self, needle: str, timeout: float = WAIT) -> None:
        """Read the log until a line holding ``needle`` has arrived (bounded)."""
        assert self.process.stderr is not None
        with trio.fail_after(timeout):
            while needle.encode() not in self.log:
                chunk = await self.process.stderr.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"the gateway exited before logging {needle!r}")
                self.log += chunk

    async def drain_log(self) -> None:
        """Read the rest of the log until the process closes it."""
        assert self.process.stderr is not None
        with trio.fail_after(WAIT):
            while chunk := await self.process.stderr.receive_some(65536):
                self.log += chunk


async def start_process(config: Path) -> GatewayProcess:
    """Start ``impp-gateway run --config config``; wait until it serves and its upstream is up."""
    process = await trio.lowlevel.open_process(
        [*GATEWAY_COMMAND, "--config", str(config)], stderr=subprocess.PIPE
    )
    gateway = GatewayProcess(process)
    await gateway.wait_for_line("gateway running")
    await gateway.wait_for_line("established (stream management")
    return gateway


async def test_the_gateway_process_carries_chat_and_stops_cleanly_on_sigterm(
    gateway_home: Path, make_person: MakePerson, running_prosody: ProsodyServer
) -> None:
    configuration = load_configuration(gateway_home, check_ports=False)
    account = running_prosody.create_user()
    async with open_sqlite_store(configuration.store.database) as store:
        enrolled: EnrolledDevice = await enroll(store, configuration, account)
    person = await make_person()
    gateway = await start_process(gateway_home)
    try:
        async with trio.open_nursery() as nursery:
            port = configuration.listen.udp[0].port
            device = await connect_device(nursery, enrolled, port)
            device.send(wire.SetPresence(open=True))
            device.send(wire.SendMessage(1, person.jid, wire.TextContent("secret body one")))
            assert (await person.next_message(sender=account.jid)).body == "secret body one"
            await person.send_message(account.jid, "secret body two")
            incoming = await device.next_operation(wire.IncomingMessage)
            assert isinstance(incoming.content, wire.TextContent)
            assert incoming.content.text == "secret body two"
            nursery.cancel_scope.cancel()
        gateway.process.send_signal(signal.SIGTERM)
        await gateway.drain_log()
        with trio.fail_after(WAIT):
            assert await gateway.process.wait() == 0
    finally:
        if gateway.process.returncode is None:
            gateway.process.kill()
            await gateway.process.wait()
    log = gateway.log.decode()
    assert "received SIGTERM" in log
    assert "stopped" in log
    # One line per event, and none of what must never be logged.
    assert "secret body" not in log
    assert account.password not in log
    assert "Traceback" not in log
