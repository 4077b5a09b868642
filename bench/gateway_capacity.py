"""How many devices one gateway process carries: handshakes, resumptions and operations per
second, latency, CPU per operation and memory per session, next to the raw trio UDP echo rate;
to a null upstream (the gateway alone) and through the real service to a real Prosody.

Null upstream. The gateway runs in a child process (:mod:`bench._capacity_gateway`): its real
UDP endpoint and session core with default limits, one relay per session, and a null upstream
that accepts and receipts every stanza at once, so nothing but the gateway is measured. This
process is the load: emulated devices, each a real :class:`~gateway.session.DeviceSession`
(EDHOC with P-256 on the device side too: nothing is faked), on their own UDP sockets, one
socket per emulated host address (``127.2.x.y``: the gateway's limits before authentication are
per host, and real devices sit behind addresses of their own). A host's devices take turns; a
host opens at most as many handshakes and resumptions per second as the gateway's per-host
budget allows (``gateway.session.gateway_config.DEFAULT_ADDRESS_RATE`` and ``_BURST``), as a
well-behaved device does. After each exchange a device's pending acknowledgement is sent at
once (its own clock is moved past its acknowledgement delay): the fast path that lets sockets
be shared. A datagram read during one device's exchange that is another's (a record the gateway
retransmits to a device between its exchanges) is handed to the device whose keys open it,
which acknowledges it at once, as a device on a socket of its own would.

Levels add sessions to the same gateway process (1k, then 10k, then 50k): at each level the new
devices handshake (handshakes/s), then ``OPS_DEVICES`` devices send 20-character messages for a
fixed time, each waiting for its DeliveryReport (operations/s, p50/p99 latency), then some
devices resume with their tickets (resumptions/s). The gateway's CPU time comes from
``/proc/PID/stat`` and its resident memory from ``/proc/PID/status`` (VmRSS): memory per session
is the growth over the level's new sessions (a relay each included). The baseline, in the same
run: a trio UDP echo server in a child process under the same window of datagrams in flight.
One more, smaller run of the gateway under cProfile names what limits it.

Through Prosody. A private Prosody (:mod:`device_sim.domain_server`) with an account per device
and the gateway service in a child (:mod:`bench._capacity_service`: what ``impp-gateway run``
runs, over a directory made by ``impp-gateway init``), provisioned as :mod:`bench._capacity_prosody`
describes. Per level the new devices are enrolled, the service binds them (one upstream XMPP
session each: upstream logins/s), they handshake, then operations go to people logged in to
Prosody who answer the receipts (operations/s, latency, the gateway's and Prosody's CPU per
operation and share of a core), then resumptions.

Device layer only. The session core alone, in a process of its own (:mod:`bench._capacity_state`):
its resident memory and Python heap per idle session, without relay or upstream.
"""

from __future__ import annotations

import contextlib
import json
import os
import pstats
import random
import resource
import secrets
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
from bench._capacity_prosody import (
    CapacityProsody,
    ProvisionedDevice,
    enroll_in_store,
    open_person,
    provision_accounts,
    scram_secret,
    write_prosody_account,
)
from bench._device_pair import device_credential
from bench._framework import Chart, Goal, Report, Table, comparison
from device_sim.client.core import INITIATOR_CONNECTION_ID
from device_sim.harness import make_gateway_home
from gateway import edhoc, wire
from gateway.config import GATEWAY_KID, load_configuration, load_gateway_identity
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
from gateway.store import open_sqlite_store
from gateway.xmpp.net import (
    ServerAddress,
    TrustStore,
    UpstreamSettings,
    open_upstream_manager,
)

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
ACK_FAST_FORWARD_STEPS = 8  # timers run within that window, at most
PROFILE_TOP = 12
PROFILE_LEVEL = 300  # sessions of the profiled run (cProfile slows the gateway several times)
PROSODY_FULL_LEVELS = (1000,)
PROSODY_QUICK_LEVELS = (20,)
PEOPLE = 16  # person accounts the devices write to (device i to person i mod PEOPLE)
BIND_ANSWER_TIMEOUT = 1900.0  # seconds for the service's answer to ``bind`` (its own bound: 1800)
STATE_FULL_SESSIONS = 10_000  # idle sessions of the device-layer-only measurement
STATE_QUICK_SESSIONS = 300
STATE_TRACED_SESSIONS = 2000
DESCRIPTOR_MARGIN = 512  # descriptors a process needs besides its upstream connections
PROSODY_PROFILE_DEVICES = 100  # devices of the profiled run through Prosody (full runs only)


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

    def __init__(self, *arguments: str, module: str = "bench._capacity_gateway") -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", module, *arguments],
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
        return self.command("stats", 60.0)

    def command(self, name: str, timeout: float) -> dict[str, Any]:
        """Send one command line; its one JSON line of answer (within ``timeout`` seconds)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{name}\n")
        self.process.stdin.flush()
        result: dict[str, Any] = json.loads(self._line(timeout))
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
def running_child(*arguments: str, module: str = "bench._capacity_gateway") -> Iterator[Child]:
    """A child for the duration of the block."""
    child = Child(*arguments, module=module)
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
    to: int = 1  # the alias of the contact its operations write to

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
    strays: int = 0  # datagrams read during one device's exchange that were another's

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


def _dropped(session: DeviceSession) -> int:
    return sum(session.dropped.values())


async def _receive(host: Host, device: Device, data: bytes, gateway: tuple[str, int]) -> None:
    """Hand ``data`` to ``device``; if its session drops it, to the host's device it is for.

    The devices of a host share its socket and take turns, so what the gateway sends a device
    between its exchanges (a retransmitted record whose acknowledgement was lost, say) is read
    during another device's exchange. Records to a device carry no connection id (docs/
    protocol.md), so the one whose keys open it is the one it is for; that device answers (its
    acknowledgement) at once, as a device on a socket of its own would.
    """
    session = device.session
    assert session is not None
    before = _dropped(session)
    session.receive_datagram(data, device.now())
    if _dropped(session) == before:
        return
    for other in host.devices:
        candidate = other.session
        if other is device or candidate is None or candidate.channel is None:
            continue
        before = _dropped(candidate)
        candidate.receive_datagram(data, other.now())
        if _dropped(candidate) == before:
            host.strays += 1
            candidate.events()  # tickets and reports of an exchange that is over: not awaited
            await _send_pending_ack(host, other, gateway)
            return


async def _exchange_until(
    host: Host, device: Device, gateway: tuple[str, int], done: type | tuple[type, ...]
) -> object:
    """Drive ``device`` until its session reports an event of type ``done``; that event."""
    session = device.session
    assert session is not None
    await _flush(host, device, gateway)
    with trio.fail_after(EXCHANGE_TIMEOUT):
        while True:
            for event in session.events():
                if isinstance(event, done):
                    return event
                if session.state is DeviceSessionState.CLOSED:
                    raise ExchangeFailedError(f"session closed: {event}")
            deadline = session.next_deadline()
            wait_until = (
                deadline - device.offset if deadline is not None else trio.current_time() + 1.0
            )
            data = None
            with trio.move_on_at(wait_until):
                data = await host.socket.recv(4096)
            if data is not None:
                await _receive(host, device, data, gateway)
            session.handle_timeout(device.now())
            await _flush(host, device, gateway)


async def _send_pending_ack(host: Host, device: Device, gateway: tuple[str, int]) -> None:
    """Move the device's clock past its acknowledgement delay so its ack goes now.

    Every timer due within :data:`ACK_FAST_FORWARD` is run, not only the first: an earlier one
    (another timer of the session) must not leave the acknowledgement unsent.
    """
    session = device.session
    assert session is not None
    limit = device.now() + ACK_FAST_FORWARD
    for _ in range(ACK_FAST_FORWARD_STEPS):
        deadline = session.next_deadline()
        if deadline is None or deadline > limit:
            return
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
        outcome = await _exchange_until(
            host, device, gateway, (DeviceSessionResumed, DeviceSessionEstablished)
        )
        elapsed = trio.current_time() - started
        # The gateway sends a fresh ticket in a record after RESUMED (and after a handshake);
        # unacknowledged, it would be retransmitted until the gateway gave the session up.
        await _exchange_until(host, device, gateway, TicketReceived)
        await _send_pending_ack(host, device, gateway)
        if isinstance(outcome, DeviceSessionEstablished):
            # Three RESUMEs unanswered in time (or a proven REJECT): the device fell back to a
            # full handshake, as it should; not a resumption.
            raise ExchangeFailedError("resumption fell back to a full handshake")
        return elapsed


async def operation(host: Host, device: Device, gateway: tuple[str, int]) -> float:
    """SendMessage until its DeliveryReport; returns the latency in seconds."""
    async with host.lock:
        session = device.session
        assert session is not None
        started = trio.current_time()
        message_id = device.next_id
        device.next_id += 1
        session.send_operation(wire.SendMessage(message_id, device.to, wire.TextContent(TEXT_20)))
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
                data = None
                with trio.move_on_at(wait_until):
                    data = await host.socket.recv(4096)
                if data is not None:
                    await _receive(host, device, data, gateway)
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
                child.stats()
                | {"after_handshakes": stats, "strays_redelivered": sum(h.strays for h in hosts)},
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
        return _top_entries(path)


def _top_entries(path: Path) -> list[str]:
    """The :data:`PROFILE_TOP` entries of a cProfile dump by own time."""
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


# ---- through Prosody ----------------------------------------------------------------------------


@dataclass
class ProsodyLevel:
    """What one level through the real service and Prosody measured."""

    devices: int
    enroll_seconds: float
    bind: dict[str, Any]  # the child's answer to ``bind``: new, up, seconds
    bind_cpu: dict[str, float]  # CPU seconds of gateway / prosody during the logins
    handshakes: PhaseResult
    operations: PhaseResult
    resumptions: PhaseResult
    operations_cpu: dict[str, float]  # CPU seconds of prosody / load during the operations
    gateway_rss_per_device: float
    prosody_rss_per_session: float
    delivered: int  # messages the people received during the operations phase
    gateway_stats: dict[str, Any]


def _prosody_devices(count: int) -> list[tuple[bytes, edhoc.Credential]]:
    """``count`` device credentials (seeded), none with the gateway's own kid."""
    rng = random.Random(SEED)
    chosen: list[tuple[bytes, edhoc.Credential]] = []
    index = 0
    while len(chosen) < count:
        index += 1
        credential = device_credential(index, rng)
        if credential.kid != GATEWAY_KID:
            chosen.append((credential.kid or b"", credential))
    return chosen


async def _measure_prosody(
    prosody: CapacityProsody,
    config_path: Path,
    provisioned: list[ProvisionedDevice],
    persons: list[tuple[str, str]],
    levels: tuple[int, ...],
    duration: float,
    resumptions: int,
    profile: Path | None = None,
) -> tuple[list[ProsodyLevel], dict[str, Any]]:
    """Each level: enroll, bind (logins), handshakes, operations to the people, resumptions.

    With ``profile``, the service runs under cProfile and writes its statistics there.
    """
    settings = UpstreamSettings(
        trust=TrustStore(prosody.ca_file, use_system_store=False),
        static_hosts={prosody.domain: [ServerAddress(prosody.host, prosody.c2s_port)]},
    )
    configuration = load_configuration(config_path, check_ports=False)
    gateway_public = load_gateway_identity(
        configuration.edhoc.key_file, configuration.edhoc.credential_file
    ).public()
    prosody_pid = prosody.pid
    assert prosody_pid is not None
    results: list[ProsodyLevel] = []
    async with open_upstream_manager(settings) as manager, trio.open_nursery() as nursery:
        people = [await open_person(nursery, manager, jid, password) for jid, password in persons]
        # The store exists (and holds no device) before the service first reads it.
        async with open_sqlite_store(configuration.store.database):
            pass
        arguments = ["--config", str(config_path)]
        arguments += ["--profile", str(profile)] if profile is not None else []
        child = await trio.to_thread.run_sync(
            lambda: Child(*arguments, module="bench._capacity_service")
        )
        try:
            top = max(levels)
            hosts = await _open_hosts(min(MAX_HOSTS, top))
            devices = [
                Device(i + 1, p.credential, gateway_public) for i, p in enumerate(provisioned)
            ]
            for position, device in enumerate(devices):
                hosts[position % len(hosts)].devices.append(device)
            gateway = ("127.0.0.1", child.port)
            established = 0
            for level in levels:
                new = provisioned[established:level]
                async with open_sqlite_store(
                    configuration.store.database,
                    max_device_queue=configuration.limits.queue_length,
                ) as store:
                    enroll_seconds, aliases = await enroll_in_store(store, new)
                for device in devices[established:level]:
                    device.to = aliases[device.credential.kid or b""]
                gateway_rss, prosody_rss = rss_bytes(child.pid), rss_bytes(prosody_pid)
                cpu_before = cpu_seconds(child.pid), cpu_seconds(prosody_pid)
                bind = await trio.to_thread.run_sync(
                    child.command, "bind", BIND_ANSWER_TIMEOUT, abandon_on_cancel=True
                )
                bind_cpu = {
                    "gateway": cpu_seconds(child.pid) - cpu_before[0],
                    "prosody": cpu_seconds(prosody_pid) - cpu_before[1],
                }
                up = max(1, int(bind["up"]))
                gateway_per = (rss_bytes(child.pid) - gateway_rss) / up
                prosody_per = (rss_bytes(prosody_pid) - prosody_rss) / up
                jobs = [
                    (handshake, hosts[(d.index - 1) % len(hosts)], d)
                    for d in devices[established:level]
                ]
                handshakes = await _run_jobs(jobs, gateway, child.pid, HANDSHAKE_CONCURRENCY)
                established = level
                arrived_before = sum(p.arrived for p in people)
                cpu_before = cpu_seconds(prosody_pid), cpu_seconds(os.getpid())
                operations = await _run_operations(hosts, gateway, child.pid, duration)
                operations_cpu = {
                    "prosody": cpu_seconds(prosody_pid) - cpu_before[0],
                    "load": cpu_seconds(os.getpid()) - cpu_before[1],
                }
                delivered = sum(p.arrived for p in people) - arrived_before
                resume_devices = [d for d in devices[:level] if d.session is not None]
                resume_jobs = [
                    (resume, hosts[(d.index - 1) % len(hosts)], d)
                    for d in resume_devices[-resumptions:]
                ]
                resumed = await _run_jobs(resume_jobs, gateway, child.pid, CONCURRENCY)
                stats = await trio.to_thread.run_sync(child.stats)
                stats["strays_redelivered"] = sum(h.strays for h in hosts)
                print(
                    f"gateway-capacity through Prosody {_k(level)}: {bind['up']:,} upstream "
                    f"sessions up in {bind['seconds']:.1f} s, {handshakes.rate:,.1f} "
                    f"handshakes/s, {operations.rate:,.1f} ops/s ({delivered:,} delivered), "
                    f"{resumed.rate:,.1f} resumptions/s",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(
                    ProsodyLevel(
                        level,
                        enroll_seconds,
                        bind,
                        bind_cpu,
                        handshakes,
                        operations,
                        resumed,
                        operations_cpu,
                        gateway_per,
                        prosody_per,
                        delivered,
                        stats,
                    )
                )
            for host in hosts:
                host.socket.close()
            extra = {
                "prosody_rss": rss_bytes(prosody_pid),
                "gateway_rss": rss_bytes(child.pid),
                "people": len(people),
            }
        finally:
            await trio.to_thread.run_sync(child.stop)
        nursery.cancel_scope.cancel()
    return results, extra


def _through_prosody(
    levels: tuple[int, ...], duration: float, resumptions: int, profile: Path | None = None
) -> tuple[list[ProsodyLevel], dict[str, Any]]:
    """A private Prosody with an account per device, the service in a child, the levels."""
    with tempfile.TemporaryDirectory(prefix="bench-capacity-prosody-") as directory:
        root = Path(directory)
        (root / "prosody").mkdir()
        prosody = CapacityProsody(root / "prosody")
        config_path = make_gateway_home(root / "gw", prosody)
        started = time.monotonic()
        persons = [
            (f"person{n}@{prosody.domain}", secrets.token_urlsafe(18)) for n in range(1, PEOPLE + 1)
        ]
        for jid, password in persons:
            write_prosody_account(prosody, jid.split("@")[0], scram_secret(password))
        provisioned = provision_accounts(
            prosody, _prosody_devices(max(levels)), [jid for jid, _ in persons]
        )
        accounts_seconds = time.monotonic() - started
        prosody.start()
        try:
            measured, extra = trio.run(
                _measure_prosody,
                prosody,
                config_path,
                provisioned,
                persons,
                levels,
                duration,
                resumptions,
                profile,
            )
        finally:
            prosody.stop()
    extra["accounts_seconds"] = round(accounts_seconds, 2)
    return measured, extra


def _profile_prosody(devices: int, duration: float) -> list[str]:
    """One small level through Prosody with the service under cProfile; its top entries."""
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as directory:
        path = Path(directory) / "service.pstats"
        _through_prosody((devices,), duration, min(devices, 100), path)
        return _top_entries(path)


# ---- the device layer's own state ---------------------------------------------------------------


def _device_layer_state(sessions: int) -> dict[str, Any]:
    """Idle sessions of the session core alone, in a child (:mod:`bench._capacity_state`).

    Twice: ``sessions`` for the resident memory, and at most :data:`STATE_TRACED_SESSIONS`
    under tracemalloc (which slows every allocation) for the Python heap and its sites.
    """
    figures: dict[str, Any] = {}
    for traced in (False, True):
        count = min(sessions, STATE_TRACED_SESSIONS) if traced else sessions
        arguments = [sys.executable, "-m", "bench._capacity_state", "--sessions", str(count)]
        arguments += ["--seed", str(SEED)] + (["--tracemalloc"] if traced else [])
        completed = subprocess.run(  # noqa: S603 - our own module, fixed arguments
            arguments,
            capture_output=True,
            text=True,
            check=True,
            timeout=CHILD_START_TIMEOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
        figures["traced" if traced else "untraced"] = json.loads(completed.stdout)
    return figures


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


def _prosody_rows(level: ProsodyLevel, echo: PhaseResult) -> list[dict[str, Any]]:
    name = f"through Prosody {_k(level.devices)}"
    ops, hs, rs = level.operations, level.handshakes, level.resumptions
    seconds = max(ops.seconds, 1e-9)
    prosody_share = round(level.operations_cpu["prosody"] / seconds, 3)
    load_share = round(level.operations_cpu["load"] / seconds, 3)
    logins = level.bind["up"] / max(level.bind["seconds"], 1e-9)
    return [
        comparison(
            "level",
            f"{name} | operations/s",
            round(ops.rate, 1),
            round(echo.rate, 1),
            "per second",
            baseline_name=ECHO,
            failures=ops.failures,
            delivered_to_people=level.delivered,
            gateway_cpu_share=_share(ops),
            prosody_cpu_share=prosody_share,
            load_generator_cpu_share=load_share,
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
        comparison(
            "level",
            f"{name} | gateway CPU per operation",
            _per(ops.cpu_seconds, ops.count),
            _per(echo.cpu_seconds, echo.count),
            "µs",
            baseline_name="echo server CPU per datagram echoed",
        ),
        comparison(
            "level",
            f"{name} | Prosody CPU per operation",
            _per(level.operations_cpu["prosody"], ops.count),
            None,
            "µs",
        ),
        comparison(
            "level",
            f"{name} | Prosody CPU share during operations",
            prosody_share,
            1.0,
            "cores",
            baseline_name="one core (Prosody runs on one)",
        ),
        comparison(
            "level",
            f"{name} | upstream sessions up",
            level.bind["up"],
            level.devices,
            "sessions",
            baseline_name="devices enrolled",
        ),
        comparison(
            "level",
            f"{name} | upstream logins/s",
            round(logins, 1),
            None,
            "per second",
            gateway_cpu_share=round(
                level.bind_cpu["gateway"] / max(level.bind["seconds"], 1e-9), 3
            ),
            prosody_cpu_share=round(
                level.bind_cpu["prosody"] / max(level.bind["seconds"], 1e-9), 3
            ),
            gateway_cpu_per_login_us=_per(level.bind_cpu["gateway"], level.bind["up"]),
            prosody_cpu_per_login_us=_per(level.bind_cpu["prosody"], level.bind["up"]),
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
            f"{name} | gateway resident memory per device",
            round(level.gateway_rss_per_device),
            None,
            "B",
            what="binding, relay and upstream XMPP session (TLS) per device",
        ),
        comparison(
            "level",
            f"{name} | Prosody resident memory per c2s session",
            round(level.prosody_rss_per_session),
            None,
            "B",
        ),
        comparison(
            "level",
            f"{name} | sessions held",
            level.gateway_stats["sessions"],
            level.devices,
            "sessions",
            baseline_name="sessions opened by the load",
        ),
    ]


def _state_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    untraced, traced = state["untraced"], state["traced"]
    name = f"device layer only {_k(untraced['sessions'])}"
    return [
        comparison(
            "level",
            f"{name} | resident memory per idle session",
            round(untraced["rss_per_session"]),
            4096,
            "B",
            baseline_name="goal: 4 KiB of idle device-layer state",
            sessions=untraced["sessions"],
            failed=untraced["failed"],
        ),
        comparison(
            "level",
            f"{name} | Python heap per idle session (tracemalloc)",
            round(traced["traced_per_session"]),
            4096,
            "B",
            baseline_name="goal: 4 KiB of idle device-layer state",
            top_sites=traced["traced_top"],
        ),
    ]


def _goals(
    measured: list[LevelResult],
    echo: PhaseResult,
    rss_overall: float,
    state: dict[str, Any],
    through: list[ProsodyLevel],
) -> list[Goal]:
    largest = measured[-1]
    shares = [level.operations.rate / echo.rate if echo.rate else 0.0 for level in measured]
    rates = ", ".join(f"{_k(m.sessions)}: {m.operations.rate:,.0f}/s" for m in measured)
    through_rates = ", ".join(
        f"{_k(p.devices)}: {p.operations.rate:,.0f}/s ({p.operations.rate / echo.rate:.1%})"
        for p in through
        if echo.rate
    )
    held = largest.gateway_stats["sessions"]
    untraced, traced = state["untraced"], state["traced"]
    state_figure = max(untraced["rss_per_session"], traced["traced_per_session"])
    return [
        Goal(
            "ops: gateway operations per second at least 30% of the raw trio UDP echo rate",
            f"{min(shares):.1%} at worst to the null upstream ({rates}; echo "
            f"{echo.rate:,.0f}/s); through Prosody {through_rates or 'not run'}",
            min(shares) >= 0.3,
        ),
        Goal(
            "state: idle device-layer state at most 4 KiB per session",
            f"{state_figure:,.0f} B per idle session of the session core alone (the larger of "
            f"{untraced['rss_per_session']:,.0f} B resident at {_k(untraced['sessions'])} "
            f"sessions and {traced['traced_per_session']:,.0f} B of Python heap by tracemalloc "
            f"at {_k(traced['sessions'])}); with a relay each {largest.rss_per_session:,.0f} B "
            f"resident at {_k(largest.sessions)} ({rss_overall:,.0f} B over all levels)",
            state_figure <= 4096,
        ),
        Goal(
            "sessions: 50k sessions in one process",
            f"{held:,} sessions held at the largest level ({largest.sessions:,} opened)",
            held >= 50_000,
        ),
    ]


def _levels(options: dict[str, str], key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    if key not in options:
        return default
    if options[key].strip() in ("", "0", "none"):
        return ()
    return tuple(int(v) for v in options[key].split(","))


def _prosody_notes(
    through: list[ProsodyLevel], extra: dict[str, Any], descriptors: int, quick: bool
) -> list[str]:
    """What limits the levels through Prosody, and the levels not run, from what was measured."""
    if not through:
        return ["Through Prosody: not run (prosody_levels=none)."]
    largest = through[-1]
    per_c2s = largest.prosody_rss_per_session
    per_device = largest.gateway_rss_per_device
    logins = largest.bind["up"] / max(largest.bind["seconds"], 1e-9)
    ops = largest.operations
    prosody_share = largest.operations_cpu["prosody"] / max(ops.seconds, 1e-9)
    notes = [
        "Through Prosody: the child runs what `impp-gateway run` runs (configuration from "
        "`impp-gateway init`, the SQLite store, GatewayService: a binding, relay and upstream "
        "XMPP session over TLS with SCRAM-SHA-256 per enrolled device) against a private "
        f"Prosody; {extra['people']} people (ordinary XMPP client sessions in the load "
        "process) receive the messages, count them and answer each XEP-0184 receipt request, "
        "which is what makes the DeliveryReport. An operation is a 20-character SendMessage to "
        "the device's contact alias of its person until the DeliveryReport is back at the "
        "device; delivered_to_people in the operations row counts the arrivals.",
        "Through Prosody, provisioning: Prosody's accounts are written into its internal_hashed "
        "store before it starts (SCRAM-SHA-256 salt, 4096 iterations, StoredKey, ServerKey of a "
        f"random password each, as prosodyctl register writes them; {extra['accounts_seconds']} "
        "s for all), and the gateway's store gets what enrollment stores (device record, "
        "SaltedPassword, contact alias) through its own API; enrollment's login check is left "
        "out, the service's own login of every account at bind is the real one (upstream "
        "logins/s).",
        f"Through Prosody, what limits it: during operations at {_k(largest.devices)} Prosody "
        f"used {prosody_share:.2f} of a core, the gateway {_share(ops):.2f}, this load "
        f"process {largest.operations_cpu['load'] / max(ops.seconds, 1e-9):.2f} (2 cores in "
        "all): the process near 1.0 is the limit, and all three share the 2 cores.",
    ]
    done = {p.devices for p in through}
    missing = [n for n in FULL_LEVELS if n not in done and n > largest.devices]
    handshakes = largest.handshakes.rate
    reason = "of the quick run" if quick else "to keep the full run near 30 minutes"
    parts = []
    for n in missing:
        needs = (
            f"{n * per_c2s / 2**30:.1f} GiB for Prosody's c2s sessions and "
            f"{n * per_device / 2**30:.1f} GiB for the gateway's devices (at the measured "
            f"{per_c2s:,.0f} B and {per_device:,.0f} B each), about "
            f"{n / max(logins, 1e-9) + n / max(handshakes, 1e-9):,.0f} s of upstream logins and "
            f"device handshakes (at the measured {logins:,.0f}/s and {handshakes:,.0f}/s)"
        )
        if n + DESCRIPTOR_MARGIN > descriptors:
            parts.append(
                f"{_k(n)} cannot run on this machine: every upstream session is a TCP "
                f"connection, {n:,} descriptors in the gateway and {n:,} in Prosody, against "
                f"a hard limit of {descriptors:,} per process (RLIMIT_NOFILE); it would also "
                f"need {needs}"
            )
        else:
            parts.append(
                f"{_k(n)} fits ({n:,} descriptors per process of {descriptors:,}) but was left "
                f"out {reason}; it needs {needs}; run it with "
                f"--opt prosody_levels={','.join(str(v) for v in sorted(done | {n}))}"
            )
    if parts:
        notes.append(
            "Not done through Prosody (figures projected from this run's own measurements, "
            "not measured): " + "; ".join(parts) + "."
        )
    return notes


def run(quick: bool, options: dict[str, str]) -> Report:
    """Run the levels against a gateway child, the echo baseline, and one profiled level.

    Options: ``levels`` (comma-separated session counts, null upstream), ``prosody_levels``
    (devices through Prosody; ``none`` skips them), ``seconds`` (operations per level),
    ``resumptions`` (per level), ``profile_level`` (sessions of the profiled run),
    ``state_sessions`` (idle sessions of the device-layer-only measurement),
    ``prosody_profile_devices`` (devices of the profiled run through Prosody; 0 skips it, the
    quick run's default).
    """
    wall_started = time.monotonic()
    load_before = os.getloadavg()
    levels = _levels(options, "levels", QUICK_LEVELS if quick else FULL_LEVELS)
    prosody_levels = _levels(
        options, "prosody_levels", PROSODY_QUICK_LEVELS if quick else PROSODY_FULL_LEVELS
    )
    duration = float(options.get("seconds", 3.0 if quick else 10.0))
    resumptions = int(options.get("resumptions", 200 if quick else 1000))
    profile_level = int(options.get("profile_level", min(*levels, PROFILE_LEVEL)))
    state_sessions = int(
        options.get("state_sessions", STATE_QUICK_SESSIONS if quick else STATE_FULL_SESSIONS)
    )
    prosody_profile_devices = int(
        options.get("prosody_profile_devices", 0 if quick else PROSODY_PROFILE_DEVICES)
    )
    with running_child("--mode", "echo") as echo_child:
        echo = trio.run(echo_baseline, echo_child.port, echo_child.pid, duration)
    with running_child("--devices", str(max(levels)), "--seed", str(SEED)) as child:
        measured, rss_overall = trio.run(_measure, levels, duration, resumptions, child)
    phase_seconds = {"null upstream": time.monotonic() - wall_started}
    started = time.monotonic()
    through: list[ProsodyLevel] = []
    through_extra: dict[str, Any] = {}
    if prosody_levels:
        through, through_extra = _through_prosody(prosody_levels, duration, resumptions)
    phase_seconds["through Prosody"] = time.monotonic() - started
    started = time.monotonic()
    state = _device_layer_state(state_sessions)
    phase_seconds["device layer only"] = time.monotonic() - started
    started = time.monotonic()
    profile = _profile(profile_level, min(duration, 3.0))
    prosody_profile = (
        _profile_prosody(prosody_profile_devices, min(duration, 5.0))
        if prosody_profile_devices and prosody_levels
        else []
    )
    phase_seconds["profiles"] = time.monotonic() - started
    rows: list[dict[str, Any]] = []
    for level in measured:
        rows += _level_rows(level, echo)
    for through_level in through:
        rows += _prosody_rows(through_level, echo)
    rows += _state_rows(state)
    elapsed = time.monotonic() - wall_started
    load_after = os.getloadavg()
    descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    notes = [
        f"Levels {', '.join(_k(v) for v in levels)} to the null upstream and "
        f"{', '.join(_k(v) for v in prosody_levels) or 'none'} through Prosody; operations for "
        f"{duration:.0f} s per level by the first device of {CONCURRENCY} hosts; "
        f"{resumptions} resumptions per level; {HANDSHAKE_CONCURRENCY} handshakes and "
        f"{CONCURRENCY} operations or resumptions in flight at once (the echo baseline: "
        f"{CONCURRENCY} datagrams); the run took {elapsed:.0f} s of wall time ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in phase_seconds.items())
        + ").",
        "Null upstream: an operation is a 20-character SendMessage through the session layer "
        "and the relay to an upstream that accepts and receipts it at once, until its "
        "DeliveryReport is back at the device.",
        "gateway_cpu_share in a row is the gateway's CPU seconds per wall second of that phase: "
        "near 1.0 its one core is the limit; below, the load generator (this process, doing the "
        "device side of every EDHOC and record) or other work on the machine is. The 'if the "
        "gateway's core were saturated' row divides a second by the CPU per operation, for a "
        "figure that does not depend on the load generator.",
        *_prosody_notes(through, through_extra, descriptors, quick),
        "Device layer only: the gateway's session core alone in a process of its own "
        "(bench/_capacity_state.py: no relay, no upstream, no sockets), each device through "
        "the full handshake, ticket and acknowledgements in lock step over an in-memory link, "
        "then dropped, so only the gateway's side stays. Two figures per idle session: the "
        "VmRSS growth (OpenSSL's allocations included; page-granular, and lowered by the "
        "allocator reusing the dropped devices' memory) and the Python heap the core kept "
        "(tracemalloc, after a full collection; it does not see OpenSSL's allocations). The goal "
        "is judged on the larger. Biggest allocation sites: "
        + "; ".join(state["traced"]["traced_top"]),
        f"Load average (1, 5, 15 min) {load_before[0]:.2f}/{load_before[1]:.2f}/"
        f"{load_before[2]:.2f} before, {load_after[0]:.2f}/{load_after[1]:.2f}/"
        f"{load_after[2]:.2f} after, on {os.cpu_count()} cores: other work shared the machine.",
        f"Gateway profile (cProfile, null upstream, one level of {_k(profile_level)}, top "
        f"{PROFILE_TOP} by own time): " + " | ".join(profile),
        (
            f"Service profile through Prosody (cProfile over the whole life of the service "
            f"child: {prosody_profile_devices} devices bound, handshakes, operations and "
            f"resumptions; top {PROFILE_TOP} by own time): " + " | ".join(prosody_profile)
            if prosody_profile
            else "Service profile through Prosody: not run (quick runs skip it; "
            "prosody_profile_devices=N runs it)."
        ),
    ]
    for level in measured:
        counters = json.dumps(level.gateway_stats, sort_keys=True)
        notes.append(f"Gateway counters after {_k(level.sessions)}: {counters}")
    for prosody_level in through:
        counters = json.dumps(prosody_level.gateway_stats, sort_keys=True)
        notes.append(
            f"Service counters after {_k(prosody_level.devices)} through Prosody: {counters}"
        )
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
    tables = [Table(f"Gateway capacity (null upstream); echo {echo.rate:,.0f}/s", columns, table)]
    if through:
        tables.append(
            Table(
                "Gateway capacity through Prosody (real service, real upstream sessions)",
                [
                    "devices",
                    "upstream up",
                    "logins/s",
                    "handshakes/s",
                    "ops/s",
                    "p50 ms",
                    "p99 ms",
                    "gateway µs/op",
                    "Prosody µs/op",
                    "Prosody cores",
                    "gateway B/device",
                    "Prosody B/c2s",
                ],
                [
                    [
                        _k(p.devices),
                        p.bind["up"],
                        p.bind["up"] / max(p.bind["seconds"], 1e-9),
                        p.handshakes.rate,
                        p.operations.rate,
                        _ms(p.operations.percentile(0.5)),
                        _ms(p.operations.percentile(0.99)),
                        _per(p.operations.cpu_seconds, p.operations.count),
                        _per(p.operations_cpu["prosody"], p.operations.count),
                        p.operations_cpu["prosody"] / max(p.operations.seconds, 1e-9),
                        p.gateway_rss_per_device,
                        p.prosody_rss_per_session,
                    ]
                    for p in through
                ],
            )
        )
    tables.append(
        Table(
            "Idle device-layer state (session core alone, no relay)",
            ["sessions", "RSS B/session", "tracemalloc B/session", "goal B"],
            [
                [
                    state["untraced"]["sessions"],
                    state["untraced"]["rss_per_session"],
                    state["traced"]["traced_per_session"],
                    4096,
                ]
            ],
        )
    )
    categories = sorted({m.sessions for m in measured} | {p.devices for p in through})
    null_by = {m.sessions: m for m in measured}
    through_by = {p.devices: p.operations.rate for p in through}

    def column(figure: Callable[[LevelResult], float]) -> list[float | None]:
        return [figure(null_by[c]) if c in null_by else None for c in categories]

    series: dict[str, list[float | None]] = {
        "gateway operations/s (null upstream)": column(lambda m: m.operations.rate),
        "handshakes/s (null upstream)": column(lambda m: m.handshakes.rate),
        "resumptions/s (null upstream)": column(lambda m: m.resumptions.rate),
        "raw trio UDP echo/s": [echo.rate for _ in categories],
    }
    if through:
        series["operations/s through Prosody"] = [through_by.get(c) for c in categories]
    return Report(
        results=rows,
        tables=tables,
        notes=notes,
        charts=[
            Chart(
                "Per second, against the raw trio UDP echo rate",
                [_k(c) for c in categories],
                series,
                "per second",
                log_scale=True,
            )
        ],
        goals=_goals(measured, echo, rss_overall, state, through),
        details={
            "echo": {"rate": echo.rate, "count": echo.count, "cpu_seconds": echo.cpu_seconds},
            "wall_seconds": round(elapsed, 1),
            "phase_seconds": {k: round(v, 1) for k, v in phase_seconds.items()},
            "profile": profile,
            "prosody_profile": prosody_profile,
            "levels": list(levels),
            "prosody_levels": list(prosody_levels),
            "through_prosody": through_extra,
            "device_layer_only": state,
        },
    )
