"""How many devices one gateway process carries: handshakes, resumptions and operations per
second, latency, CPU per operation and memory per session, next to the raw trio UDP echo rate.

The gateway runs in a child process (:mod:`bench._capacity_gateway`): its real UDP endpoint and
session core with default limits, one relay per session, and a null upstream that accepts and
receipts every stanza at once, so nothing but the gateway is measured. This process is the load:
emulated devices, each a real :class:`~gateway.session.DeviceSession` (EDHOC with P-256 on the
device side too: nothing is faked), on their own UDP sockets, one socket per emulated host
address (``127.2.x.y``: the gateway's limits before authentication are per host, and real devices
sit behind addresses of their own). A host's devices take turns; a host opens at most as many
handshakes and resumptions per second as the gateway's per-host budget allows
(``gateway.session.gateway_config.DEFAULT_ADDRESS_RATE`` and ``_BURST``), as a well-behaved
device does. After each exchange a device's pending acknowledgement is sent at once (its own
clock is moved past its acknowledgement delay): the fast path that lets sockets be shared.

Levels add sessions to the same gateway process (1k, then 10k, then 50k): at each level the new
devices handshake (handshakes/s), then ``OPS_DEVICES`` devices send 20-character messages for a
fixed time, each waiting for its DeliveryReport (operations/s, p50/p99 latency), then some
devices resume with their tickets (resumptions/s). The gateway's CPU time comes from
``/proc/PID/stat`` and its resident memory from ``/proc/PID/status`` (VmRSS): memory per session
is the growth over the level's new sessions (a relay each included). The baseline, in the same
run: a trio UDP echo server in a child process under the same window of datagrams in flight.
One more, smaller run of the gateway under cProfile names what limits it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import trio

from bench._capacity_gateway import credentials
from bench._framework import Chart, Goal, Report, Table, comparison
from device_sim.client.core import INITIATOR_CONNECTION_ID
from gateway import edhoc, wire
from gateway.session import (
    DeviceSession,
    DeviceSessionEstablished,
    DeviceSessionResumed,
    DeviceSessionState,
    EdhocInitiator,
    OperationReceived,
    TicketReceived,
    WireCodec,
)
from gateway.session.gateway_config import DEFAULT_ADDRESS_BURST, DEFAULT_ADDRESS_RATE

DESCRIPTION = "gateway capacity: sessions, handshakes/resumptions/operations per second, memory"

SEED = 5
TEXT_20 = "See you at six, ok?!"
FULL_LEVELS = (1000, 10_000, 50_000)
QUICK_LEVELS = (1000,)
MAX_HOSTS = 4000  # emulated host addresses (sockets); under the 20,000 descriptors allowed here
CONCURRENCY = 128  # devices mid-exchange at once in operations and resumptions (echo: the same)
# Handshakes in flight at once: fewer, so that on a loaded machine an answer comes before the
# device's retransmission timer and the phase measures handshakes, not retransmissions.
HANDSHAKE_CONCURRENCY = 32
EXCHANGE_TIMEOUT = 30.0  # seconds one exchange may take before the device counts as failed
CHILD_START_TIMEOUT = 600.0  # deriving 50k credentials takes a while on a small machine
ACK_FAST_FORWARD = 0.2  # seconds of a device's own clock run ahead to send its pending ack
PROFILE_TOP = 12
PROFILE_LEVEL = 300  # sessions of the profiled run (cProfile slows the gateway several times)


def trusted_lookup(trusted: edhoc.Credential) -> Callable[[edhoc.IdCred], edhoc.Credential | None]:
    """The device's view of the gateway: the one credential it was provisioned with."""

    def lookup(id_cred: edhoc.IdCred) -> edhoc.Credential | None:
        return trusted if id_cred.matches(trusted) else None

    return lookup


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far (/proc/PID/stat, fields 14-15)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields_after = text.rsplit(")", 1)[1].split()
    return (int(fields_after[11]) + int(fields_after[12])) / _clock_ticks()


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (VmRSS in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line")


class Child:
    """A child process of :mod:`bench._capacity_gateway`, talked to over its stdin/stdout."""

    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "bench._capacity_gateway", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.port = int(self._line(CHILD_START_TIMEOUT).split()[1])

    def _line(self, timeout: float) -> str:
        import select

        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            raise RuntimeError("the gateway child did not answer in time")
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the gateway child exited ({self.process.poll()})")
        return line

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self) -> dict[str, Any]:
        """The child's counters (one JSON line)."""
        assert self.process.stdin is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        result: dict[str, Any] = json.loads(self._line(60.0))
        return result

    def stop(self) -> None:
        """Ask it to quit and wait (bounded), then make sure it is gone."""
        if self.process.poll() is None and self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


@contextlib.contextmanager
def running_child(*arguments: str) -> Iterator[Child]:
    """A child for the duration of the block."""
    child = Child(*arguments)
    try:
        yield child
    finally:
        child.stop()


# ---- emulated devices -------------------------------------------------------------------------


@dataclass
class Device:
    """One emulated device: its credential, session and own clock offset."""

    index: int
    credential: edhoc.Credential
    gateway: edhoc.Credential
    session: DeviceSession | None = None
    offset: float = 0.0
    next_id: int = 1

    def now(self) -> float:
        return trio.current_time() + self.offset

    def new_session(self) -> DeviceSession:
        gateway = self.gateway
        credential = self.credential

        def make() -> EdhocInitiator:
            return EdhocInitiator(
                edhoc.Initiator(
                    method=edhoc.Method.STATIC_DH_STATIC_DH,
                    suites=[edhoc.CipherSuite.SUITE_2],
                    c_i=INITIATOR_CONNECTION_ID,
                    credential=credential,
                    credential_lookup=trusted_lookup(gateway),
                )
            )

        self.session = DeviceSession(handshake_factory=make, codec=WireCodec())
        return self.session


@dataclass
class Host:
    """One emulated host address: a socket, its devices, and its handshake budget."""

    socket: trio.socket.SocketType
    devices: list[Device] = field(default_factory=list)
    tokens: float = DEFAULT_ADDRESS_BURST
    refilled: float = 0.0
    lock: trio.Lock = field(default_factory=trio.Lock)

    async def spend_token(self) -> None:
        """Wait until the gateway's per-host budget allows one more INITIAL or RESUME."""
        while True:
            now = trio.current_time()
            self.tokens = min(
                DEFAULT_ADDRESS_BURST, self.tokens + (now - self.refilled) * DEFAULT_ADDRESS_RATE
            )
            self.refilled = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await trio.sleep((1.0 - self.tokens) / DEFAULT_ADDRESS_RATE)


class ExchangeFailedError(Exception):
    """A device's exchange did not finish in time or its session closed."""


async def _flush(host: Host, device: Device, gateway: tuple[str, int]) -> None:
    assert device.session is not None
    for datagram in device.session.datagrams_to_send(device.now()):
        await host.socket.sendto(datagram, gateway)


async def _exchange_until(
    host: Host, device: Device, gateway: tuple[str, int], done: type | tuple[type, ...]
) -> None:
    """Drive ``device`` until its session reports an event of type ``done``."""
    session = device.session
    assert session is not None
    await _flush(host, device, gateway)
    with trio.fail_after(EXCHANGE_TIMEOUT):
        while True:
            for event in session.events():
                if isinstance(event, done):
                    return
                if session.state is DeviceSessionState.CLOSED:
                    raise ExchangeFailedError(f"session closed: {event}")
            deadline = session.next_deadline()
            wait_until = (
                deadline - device.offset if deadline is not None else trio.current_time() + 1.0
            )
            with trio.move_on_at(wait_until):
                data = await host.socket.recv(4096)
                session.receive_datagram(data, device.now())
            session.handle_timeout(device.now())
            await _flush(host, device, gateway)


async def _send_pending_ack(host: Host, device: Device, gateway: tuple[str, int]) -> None:
    """Move the device's clock past its acknowledgement delay so its ack goes now."""
    session = device.session
    assert session is not None
    deadline = session.next_deadline()
    if deadline is not None and deadline - device.now() <= ACK_FAST_FORWARD:
        device.offset += max(0.0, deadline - device.now())
        session.handle_timeout(device.now())
        await _flush(host, device, gateway)


async def handshake(host: Host, device: Device, gateway: tuple[str, int]) -> float:
    """A full handshake until the ticket is in; returns its latency in seconds."""
    async with host.lock:
        await host.spend_token()
        started = trio.current_time()
        session = device.new_session()
        session.connect(device.now())
        try:
            await _exchange_until(host, device, gateway, DeviceSessionEstablished)
            if session.ticket is None:
                await _exchange_until(host, device, gateway, TicketReceived)
        except BaseException:
            device.session = None  # not counted as held; never used for operations
            raise
        await _send_pending_ack(host, device, gateway)
        return trio.current_time() - started


async def resume(host: Host, device: Device, gateway: tuple[str, int]) -> float:
    """A resumption with the device's ticket; returns its latency in seconds."""
    async with host.lock:
        session = device.session
        if session is None or session.ticket is None:
            raise ExchangeFailedError("no ticket to resume with")
        await host.spend_token()
        started = trio.current_time()
        session.resume(device.now())
        await _exchange_until(host, device, gateway, DeviceSessionResumed)
        elapsed = trio.current_time() - started
        # The gateway sends a fresh ticket in a record after RESUMED; unacknowledged, it would be
        # retransmitted until the gateway gave the session up.
        await _exchange_until(host, device, gateway, TicketReceived)
        await _send_pending_ack(host, device, gateway)
        return elapsed


async def operation(host: Host, device: Device, gateway: tuple[str, int]) -> float:
    """SendMessage until its DeliveryReport; returns the latency in seconds."""
    async with host.lock:
        session = device.session
        assert session is not None
        started = trio.current_time()
        message_id = device.next_id
        device.next_id += 1
        session.send_operation(wire.SendMessage(message_id, 1, wire.TextContent(TEXT_20)))
        await _flush(host, device, gateway)
        with trio.fail_after(EXCHANGE_TIMEOUT):
            while True:
                reported = False
                for event in session.events():
                    if (
                        isinstance(event, OperationReceived)
                        and isinstance(event.message, wire.DeliveryReport)
                        and event.message.id == message_id
                    ):
                        reported = True
                if reported:
                    break
                if session.state is DeviceSessionState.CLOSED:
                    raise ExchangeFailedError("session closed during an operation")
                deadline = session.next_deadline()
                wait_until = (
                    deadline - device.offset if deadline is not None else trio.current_time() + 1
                )
                with trio.move_on_at(wait_until):
                    data = await host.socket.recv(4096)
                    session.receive_datagram(data, device.now())
                session.handle_timeout(device.now())
                await _flush(host, device, gateway)
        elapsed = trio.current_time() - started
        await _send_pending_ack(host, device, gateway)
        return elapsed


def _host_address(index: int) -> str:
    return f"127.2.{index // 250}.{index % 250 + 1}"


async def _open_hosts(count: int) -> list[Host]:
    hosts = []
    for index in range(count):
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await sock.bind((_host_address(index), 0))
        hosts.append(Host(sock, refilled=trio.current_time()))
    return hosts


@dataclass
class PhaseResult:
    """What one phase measured."""

    count: int
    seconds: float
    latencies: list[float]
    failures: int
    cpu_seconds: float
    failure_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, fraction: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _run_jobs(
    jobs: list[tuple[Any, Host, Device]], gateway: tuple[str, int], pid: int, concurrency: int
) -> PhaseResult:
    """Run ``(coroutine function, host, device)`` jobs, ``concurrency`` at once."""
    latencies: list[float] = []
    failures = 0
    slots = trio.Semaphore(concurrency)
    reasons: dict[str, int] = {}
    cpu_before = cpu_seconds(pid)
    started = trio.current_time()

    async def one(job: tuple[Any, Host, Device]) -> None:
        nonlocal failures
        function, host, device = job
        try:
            latencies.append(await function(host, device, gateway))
        except (ExchangeFailedError, trio.TooSlowError) as exc:
            failures += 1
            reason = f"{type(exc).__name__}: {exc}"[:80]
            reasons[reason] = reasons.get(reason, 0) + 1
        finally:
            slots.release()

    async with trio.open_nursery() as nursery:
        for job in jobs:
            await slots.acquire()
            nursery.start_soon(one, job)
    seconds = trio.current_time() - started
    cpu = cpu_seconds(pid) - cpu_before
    return PhaseResult(len(latencies), seconds, latencies, failures, cpu, reasons)


async def _run_operations(
    hosts: list[Host], gateway: tuple[str, int], pid: int, duration: float
) -> PhaseResult:
    """Devices of the first :data:`CONCURRENCY` hosts send operations back to back."""
    latencies: list[float] = []
    failures = 0
    cpu_before = cpu_seconds(pid)
    started = trio.current_time()
    stop_at = started + duration

    async def worker(host: Host) -> None:
        nonlocal failures
        device = host.devices[0]
        while trio.current_time() < stop_at:
            try:
                latencies.append(await operation(host, device, gateway))
            except (ExchangeFailedError, trio.TooSlowError):
                failures += 1

    async with trio.open_nursery() as nursery:
        for host in hosts[:CONCURRENCY]:
            if host.devices and host.devices[0].session is not None:
                nursery.start_soon(worker, host)
    seconds = trio.current_time() - started
    return PhaseResult(len(latencies), seconds, latencies, failures, cpu_seconds(pid) - cpu_before)


async def echo_baseline(port: int, pid: int, duration: float) -> PhaseResult:
    """The raw trio UDP echo rate with :data:`CONCURRENCY` datagrams in flight."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    await sock.connect(("127.0.0.1", port))
    payload = b"x" * 60
    latencies: list[float] = []
    sent_at: dict[int, float] = {}
    cpu_before = cpu_seconds(pid)
    started = trio.current_time()
    for sequence in range(CONCURRENCY):
        sent_at[sequence] = trio.current_time()
        await sock.send(sequence.to_bytes(4, "big") + payload)
    next_sequence = CONCURRENCY
    count = 0
    with trio.move_on_after(duration + 5.0):
        while trio.current_time() < started + duration:
            data = await sock.recv(2048)
            sequence = int.from_bytes(data[:4], "big")
            sent = sent_at.pop(sequence, None)
            if sent is not None:
                latencies.append(trio.current_time() - sent)
                count += 1
            sent_at[next_sequence] = trio.current_time()
            await sock.send(next_sequence.to_bytes(4, "big") + payload)
            next_sequence += 1
    seconds = trio.current_time() - started
    sock.close()
    return PhaseResult(count, seconds, latencies, 0, cpu_seconds(pid) - cpu_before)


@dataclass
class LevelResult:
    """What one level measured."""

    sessions: int
    handshakes: PhaseResult
    operations: PhaseResult
    resumptions: PhaseResult
    rss_per_session: float
    gateway_stats: dict[str, Any]


async def _measure(
    levels: tuple[int, ...], duration: float, resumptions: int, child: Child
) -> tuple[list[LevelResult], float]:
    """Open each level's sessions, then run its operations and resumptions; see the module."""
    top = max(levels)
    gateway_identity, known = credentials(top, SEED)
    gateway_public = gateway_identity.public()
    devices = [Device(i + 1, known[k], gateway_public) for i, k in enumerate(known)]
    hosts = await _open_hosts(min(MAX_HOSTS, top))
    for position, device in enumerate(devices):
        hosts[position % len(hosts)].devices.append(device)
    gateway = ("127.0.0.1", child.port)
    results: list[LevelResult] = []
    established = 0
    rss_before = rss_bytes(child.pid)
    baseline_rss = rss_before
    for level in levels:
        new = devices[established:level]
        by_host = {id(d): hosts[(d.index - 1) % len(hosts)] for d in new}
        jobs = [(handshake, by_host[id(d)], d) for d in new]
        handshakes = await _run_jobs(jobs, gateway, child.pid, HANDSHAKE_CONCURRENCY)
        established = level
        stats = child.stats()
        rss_after = rss_bytes(child.pid)
        per_session = (rss_after - rss_before) / max(1, len(new))
        rss_before = rss_after
        operations = await _run_operations(hosts, gateway, child.pid, duration)
        resume_devices = [d for d in devices[:level] if d.session is not None][-resumptions:]
        resume_jobs = [(resume, hosts[(d.index - 1) % len(hosts)], d) for d in resume_devices]
        resumed = await _run_jobs(resume_jobs, gateway, child.pid, CONCURRENCY)
        print(
            f"gateway-capacity {_k(level)}: {handshakes.rate:,.1f} handshakes/s, "
            f"{operations.rate:,.1f} ops/s, {resumed.rate:,.1f} resumptions/s, "
            f"{per_session:,.0f} B/session, {stats['sessions']:,} sessions",
            file=sys.stderr,
            flush=True,
        )
        results.append(
            LevelResult(
                level,
                handshakes,
                operations,
                resumed,
                per_session,
                child.stats() | {"after_handshakes": stats},
            )
        )
    for host in hosts:
        host.socket.close()
    return results, (rss_bytes(child.pid) - baseline_rss) / max(1, established)


def _profile(levels: int, duration: float) -> list[str]:
    """Run one small level under cProfile in the gateway child; its top entries by own time."""
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as directory:
        path = Path(directory) / "gateway.pstats"
        with running_child(
            "--devices", str(levels), "--seed", str(SEED), "--profile", str(path)
        ) as child:
            trio.run(_measure, (levels,), duration, min(levels, 200), child)
        stats = pstats.Stats(str(path))
        entries: list[tuple[float, float, int, str]] = []
        for (filename, line, function), (
            _cc,
            calls,
            tottime,
            cumtime,
            _callers,
        ) in stats.stats.items():  # type: ignore[attr-defined]
            short = "/".join(Path(filename).parts[-2:])
            entries.append((tottime, cumtime, calls, f"{short}:{line} {function}"))
        entries.sort(reverse=True)
        total = sum(e[0] for e in entries) or 1.0
        return [
            f"{where}: {tottime:.2f} s own ({tottime / total:.0%}), {cumtime:.2f} s cumulative, "
            f"{calls:,} calls"
            for tottime, cumtime, calls, where in entries[:PROFILE_TOP]
        ]


def _k(level: int) -> str:
    return f"{level // 1000}k" if level >= 1000 and level % 1000 == 0 else str(level)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _per(cpu: float, count: int) -> float:
    """Microseconds of CPU per item."""
    return round(cpu / max(1, count) * 1e6, 1)


def _share(phase: PhaseResult) -> float:
    """CPU seconds of the gateway per wall second of the phase (1.0: one core busy)."""
    return round(phase.cpu_seconds / max(phase.seconds, 1e-9), 3)


ECHO = "raw trio UDP echo, same machine, same run"


def _level_rows(level: LevelResult, echo: PhaseResult) -> list[dict[str, Any]]:
    name = _k(level.sessions)
    ops, hs, rs = level.operations, level.handshakes, level.resumptions
    echo_cpu = _per(echo.cpu_seconds, echo.count)
    return [
        comparison(
            "level",
            f"{name} | operations/s",
            round(ops.rate, 1),
            round(echo.rate, 1),
            "per second",
            baseline_name=ECHO,
            failures=ops.failures,
            gateway_cpu_share=_share(ops),
        ),
        comparison(
            "level",
            f"{name} | operations/s if the gateway's core were saturated",
            round(1e6 / max(_per(ops.cpu_seconds, ops.count), 1e-9), 1),
            round(1e6 / max(echo_cpu, 1e-9), 1),
            "per second",
            baseline_name="echo: 1 / (echo server CPU per datagram)",
        ),
        comparison(
            "level",
            f"{name} | handshakes/s",
            round(hs.rate, 1),
            round(echo.rate, 1),
            "per second",
            baseline_name=ECHO,
            failures=hs.failures,
            failure_reasons=hs.failure_reasons,
            gateway_cpu_share=_share(hs),
        ),
        comparison(
            "level",
            f"{name} | resumptions/s",
            round(rs.rate, 1),
            round(echo.rate, 1),
            "per second",
            baseline_name=ECHO,
            failures=rs.failures,
            failure_reasons=rs.failure_reasons,
            gateway_cpu_share=_share(rs),
        ),
        comparison(
            "level",
            f"{name} | p50 operation latency",
            _ms(ops.percentile(0.5)),
            _ms(echo.percentile(0.5)),
            "ms",
            baseline_name=ECHO,
        ),
        comparison(
            "level",
            f"{name} | p99 operation latency",
            _ms(ops.percentile(0.99)),
            _ms(echo.percentile(0.99)),
            "ms",
            baseline_name=ECHO,
        ),
        comparison("level", f"{name} | p50 handshake latency", _ms(hs.percentile(0.5)), None, "ms"),
        comparison(
            "level",
            f"{name} | gateway CPU per operation",
            _per(ops.cpu_seconds, ops.count),
            echo_cpu,
            "µs",
            baseline_name="echo server CPU per datagram echoed",
        ),
        comparison(
            "level",
            f"{name} | gateway CPU per handshake",
            _per(hs.cpu_seconds, hs.count),
            None,
            "µs",
        ),
        comparison(
            "level",
            f"{name} | gateway CPU per resumption",
            _per(rs.cpu_seconds, rs.count),
            None,
            "µs",
        ),
        comparison(
            "level",
            f"{name} | resident memory per session",
            round(level.rss_per_session),
            4096,
            "B",
            baseline_name="goal: 4 KiB of idle device-layer state",
        ),
        comparison(
            "level",
            f"{name} | sessions held",
            level.gateway_stats["sessions"],
            level.sessions,
            "sessions",
            baseline_name="sessions opened by the load",
        ),
    ]


def _goals(measured: list[LevelResult], echo: PhaseResult, rss_overall: float) -> list[Goal]:
    largest = measured[-1]
    shares = [level.operations.rate / echo.rate if echo.rate else 0.0 for level in measured]
    rates = ", ".join(f"{_k(m.sessions)}: {m.operations.rate:,.0f}/s" for m in measured)
    held = largest.gateway_stats["sessions"]
    return [
        Goal(
            "ops: gateway operations per second at least 30% of the raw trio UDP echo rate",
            f"{min(shares):.1%} at worst ({rates}; echo {echo.rate:,.0f}/s)",
            min(shares) >= 0.3,
        ),
        Goal(
            "state: idle device-layer state at most 4 KiB per session",
            f"{largest.rss_per_session:,.0f} B resident per session at {_k(largest.sessions)} "
            f"(a relay each included; {rss_overall:,.0f} B over all levels)",
            largest.rss_per_session <= 4096,
        ),
        Goal(
            "sessions: 50k sessions in one process",
            f"{held:,} sessions held at the largest level ({largest.sessions:,} opened)",
            held >= 50_000,
        ),
    ]


def run(quick: bool, options: dict[str, str]) -> Report:
    """Run the levels against a gateway child, the echo baseline, and one profiled level.

    Options: ``levels`` (comma-separated session counts), ``seconds`` (operations per level),
    ``resumptions`` (per level), ``profile_level`` (sessions of the profiled run).
    """
    wall_started = time.monotonic()
    load_before = os.getloadavg()
    if "levels" in options:
        levels = tuple(int(v) for v in options["levels"].split(","))
    else:
        levels = QUICK_LEVELS if quick else FULL_LEVELS
    duration = float(options.get("seconds", 3.0 if quick else 10.0))
    resumptions = int(options.get("resumptions", 200 if quick else 1000))
    profile_level = int(options.get("profile_level", min(*levels, PROFILE_LEVEL)))
    with running_child("--mode", "echo") as echo_child:
        echo = trio.run(echo_baseline, echo_child.port, echo_child.pid, duration)
    with running_child("--devices", str(max(levels)), "--seed", str(SEED)) as child:
        measured, rss_overall = trio.run(_measure, levels, duration, resumptions, child)
    profile = _profile(profile_level, min(duration, 3.0))
    rows: list[dict[str, Any]] = []
    for level in measured:
        rows += _level_rows(level, echo)
    elapsed = time.monotonic() - wall_started
    load_after = os.getloadavg()
    notes = [
        f"Levels {', '.join(_k(v) for v in levels)}; operations for {duration:.0f} s per level by "
        f"the first device of {CONCURRENCY} hosts; {resumptions} resumptions per level; "
        f"{HANDSHAKE_CONCURRENCY} handshakes and {CONCURRENCY} operations or resumptions in "
        f"flight at once (the echo baseline: {CONCURRENCY} datagrams); the run took "
        f"{elapsed:.0f} s of wall time.",
        "An operation is a 20-character SendMessage through the session layer and the relay to "
        "the null upstream, until its DeliveryReport is back at the device.",
        "gateway_cpu_share in a row is the gateway's CPU seconds per wall second of that phase: "
        "near 1.0 its one core is the limit; below, the load generator (this process, doing the "
        "device side of every EDHOC and record) or other work on the machine is. The 'if the "
        "gateway's core were saturated' row divides a second by the CPU per operation, for a "
        "figure that does not depend on the load generator.",
        f"Load average (1, 5, 15 min) {load_before[0]:.2f}/{load_before[1]:.2f}/"
        f"{load_before[2]:.2f} before, {load_after[0]:.2f}/{load_after[1]:.2f}/"
        f"{load_after[2]:.2f} after, on {os.cpu_count()} cores: other work shared the machine.",
        "Not done: the mode through Prosody with real upstream sessions; only the null "
        "upstream is measured.",
        f"Gateway profile (cProfile, one level of {_k(profile_level)}, top {PROFILE_TOP} by own "
        "time): " + " | ".join(profile),
    ]
    for level in measured:
        counters = json.dumps(level.gateway_stats, sort_keys=True)
        notes.append(f"Gateway counters after {_k(level.sessions)}: {counters}")
    table = [
        [
            _k(m.sessions),
            m.handshakes.rate,
            m.operations.rate,
            m.resumptions.rate,
            _ms(m.operations.percentile(0.5)),
            _ms(m.operations.percentile(0.99)),
            _per(m.operations.cpu_seconds, m.operations.count),
            m.rss_per_session,
            m.gateway_stats["sessions"],
        ]
        for m in measured
    ]
    columns = ["level", "handshakes/s", "ops/s", "resumptions/s", "p50 ms", "p99 ms"]
    columns += ["CPU µs/op", "RSS B/session", "sessions"]
    return Report(
        results=rows,
        tables=[
            Table(f"Gateway capacity (null upstream); echo {echo.rate:,.0f}/s", columns, table)
        ],
        notes=notes,
        charts=[
            Chart(
                "Per second, against the raw trio UDP echo rate",
                [_k(m.sessions) for m in measured],
                {
                    "gateway operations/s": [m.operations.rate for m in measured],
                    "handshakes/s": [m.handshakes.rate for m in measured],
                    "resumptions/s": [m.resumptions.rate for m in measured],
                    "raw trio UDP echo/s": [echo.rate for _ in measured],
                },
                "per second",
                log_scale=True,
            )
        ],
        goals=_goals(measured, echo, rss_overall),
        details={
            "echo": {"rate": echo.rate, "count": echo.count, "cpu_seconds": echo.cpu_seconds},
            "wall_seconds": round(elapsed, 1),
            "profile": profile,
            "levels": list(levels),
        },
    )
