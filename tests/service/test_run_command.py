"""``impp-gateway run``: the configuration check first, then the service as a real process."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from gateway import wire
from gateway.cli import main
from gateway.config import load_configuration
from gateway.session import SessionClosed
from gateway.store import open_sqlite_store
from tests.conftest import MakePerson
from tests.service.conftest import WAIT, EnrolledDevice, connect_device, device_session, enroll
from tests.service.test_ops import http_get, samples
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


async def start_again(config: Path) -> tuple[GatewayProcess, bool]:
    """Start the gateway again; wait (bounded) until its upstream stream is resumed or fresh."""
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


def _text(message: wire.Message) -> str:
    if isinstance(message, wire.IncomingMessage) and isinstance(message.content, wire.TextContent):
        return message.content.text
    return ""


async def test_sigterm_leaves_the_upstream_stream_resumable_for_the_next_process(
    gateway_home: Path, make_person: MakePerson, running_prosody: ProsodyServer
) -> None:
    """A planned restart: the drain persists the stream's XEP-0198 state and drops the
    connection without ``</stream>``; the next process resumes the stream (no fresh login) and
    what the person sent while no gateway ran reaches the device exactly once."""
    configuration = load_configuration(gateway_home, check_ports=False)
    account = running_prosody.create_user()
    async with open_sqlite_store(configuration.store.database) as store:
        enrolled = await enroll(store, configuration, account)
    person = await make_person()
    port = configuration.listen.udp[0].port
    first = await start_process(gateway_home)
    second: GatewayProcess | None = None
    try:
        async with trio.open_nursery() as nursery:
            device = await connect_device(nursery, enrolled, port)
            device.send(wire.SetPresence(open=True))
            await person.send_message(account.jid, "before")
            before = await device.next_operation(wire.IncomingMessage)
            assert _text(before) == "before"
            first.process.send_signal(signal.SIGTERM)
            await first.drain_log()
            with trio.fail_after(WAIT):
                assert await first.process.wait() == 0
            await device.next_event(SessionClosed)  # the drain said Close to the device
            await person.send_message(account.jid, "while down")
            second, resumed = await start_again(gateway_home)
            assert resumed, "the restarted gateway logged in afresh instead of resuming"
            again = await connect_device(nursery, enrolled, port)
            await person.send_message(account.jid, "after")
            with trio.fail_after(WAIT):
                while _text(await again.next_operation(wire.IncomingMessage)) != "after":
                    pass
            nursery.cancel_scope.cancel()
    except BaseException:
        for gateway in (first, second):
            if gateway is not None:
                print(gateway.log.decode()[-4000:])
        raise
    finally:
        for gateway in (first, second):
            if gateway is not None and gateway.process.returncode is None:
                gateway.process.kill()
                await gateway.process.wait()
    texts = [_text(m) for m in again.received]
    assert texts.count("while down") == 1, texts
    # "before" may come again if the SIGTERM beat the device's acknowledgement, but as the same
    # queued item (same id), which the device recognises as shown.
    again_before = [m for m in again.received if _text(m) == "before"]
    assert all(isinstance(m, wire.IncomingMessage) and m.id == before.id for m in again_before)
    first_log = first.log.decode()
    assert "1 upstream streams left resumable" in first_log
    assert second is not None
    assert "established (stream" not in second.log.decode()


async def _half_open_handshake(enrolled: EnrolledDevice, port: int) -> trio.socket.SocketType:
    """Send a device's first handshake message and never answer: a half-open handshake."""
    session = device_session(enrolled)
    now = trio.current_time()
    session.connect(now)
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    for datagram in session.datagrams_to_send(now):
        await sock.sendto(datagram, ("127.0.0.1", port))
    return sock


async def _until_handshaking(metrics_port: int, holds: Callable[[float], bool]) -> None:
    """Scrape until the count of half-open handshakes satisfies ``holds`` (callers bound it):
    another process's session table is visible only through its metrics."""
    while True:
        _, text = await http_get(metrics_port, "/metrics")
        count = sum(
            value
            for labels, value in samples(text, "impp_gateway_device_sessions")
            if labels.get("state") == "handshaking"
        )
        if holds(count):
            return
        await trio.sleep(0.05)  # the next scrape; no event crosses the process boundary


async def test_sighup_applies_live_limits_and_names_what_needs_a_restart(
    gateway_home: Path, running_prosody: ProsodyServer
) -> None:
    """Edit gateway.toml, SIGHUP the running process: the handshake timeout (live) bites at
    once, and the log line names the queue length (the open store enforces it) as needing a
    restart."""
    configuration = load_configuration(gateway_home, check_ports=False)
    account = running_prosody.create_user()
    async with open_sqlite_store(configuration.store.database) as store:
        enrolled = await enroll(store, configuration, account)
    gateway = await start_process(gateway_home)
    try:
        found = re.search(rb"metrics endpoint listening on 127\.0\.0\.1:(\d+)", gateway.log)
        assert found is not None
        metrics_port = int(found.group(1))
        text = await trio.Path(gateway_home).read_text()
        for old, new in (
            ("handshake_timeout = 60.0", "handshake_timeout = 1.0"),
            ("queue_length = 1000", "queue_length = 10"),
            ('log_level = "info"', 'log_level = "debug"'),
        ):
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        await trio.Path(gateway_home).write_text(text)
        gateway.process.send_signal(signal.SIGHUP)
        await gateway.wait_for_line("reload: applied")
        line = next(
            entry for entry in gateway.log.decode().splitlines() if "reload: applied" in entry
        )
        assert "gateway.log_level" in line
        assert "limits.handshake_timeout" in line
        assert "needs a restart" in line
        assert line.index("limits.queue_length") > line.index("needs a restart")
        # The new timeout applies to the running session core: a half-open handshake is
        # forgotten after a second (60 s before the reload; the wait is bounded by WAIT).
        sock = await _half_open_handshake(enrolled, configuration.listen.udp[0].port)
        with sock, trio.fail_after(WAIT):
            await _until_handshaking(metrics_port, lambda count: count > 0)
            await _until_handshaking(metrics_port, lambda count: count == 0)
        gateway.process.send_signal(signal.SIGTERM)
        await gateway.drain_log()
        with trio.fail_after(WAIT):
            assert await gateway.process.wait() == 0
    finally:
        if gateway.process.returncode is None:
            gateway.process.kill()
            await gateway.process.wait()
