"""The whole relay end to end: latency both ways, message rate against Prosody's own ceiling,
and the gateway's memory per idle enrolled device.

Everything runs for real on loopback: a private Prosody (device_sim.domain_server), the
in-process :class:`~gateway.service.GatewayService` over a directory made by ``impp-gateway
init`` with its durable SQLite store, a device driven by :mod:`gateway.transport`'s device driver
over UDP (EDHOC, then the session layer), and the person on the other end as an ordinary XMPP
client session (the project's :class:`~gateway.xmpp.client.XmppClient` under an
:class:`~gateway.xmpp.net.manager.UpstreamManager`; the benchmark does not import the tests'
slixmpp helper).

* Latency: one message at a time, device -> person (``SendMessage`` until the person's client
  has the ``<message/>``) and person -> device (``<message/>`` until the device's session hands
  over the ``IncomingMessage``, which the gateway has committed to the store first); p50 / p99.
* Rate: N messages device -> person through the gateway, clock stopped when the person has the
  last one; the baseline, in the same run against the same server, is the same N messages sent
  straight from another XMPP client session to the same person (the ceiling Prosody sets).
  The same is measured person -> device, against person -> XMPP client.
* Memory: the growth of this process's resident set (``VmRSS`` in /proc/self/status) when M
  more devices are enrolled and the gateway has opened each one's upstream session, divided by
  M. tracemalloc is not used: it does not see OpenSSL's allocations for the TLS sessions.
"""

from __future__ import annotations

import functools
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from bench._framework import Report, Table
from bench.store import _file_system
from device_sim.domain_server import Account, ProsodyServer, running_prosody
from device_sim.harness import (
    EnrolledDevice,
    RunningGateway,
    device_session,
    enroll,
    make_gateway_home,
    open_gateway_store,
    serving_gateway,
    upstream_ready,
)
from gateway import wire
from gateway.session import DeviceSessionEstablished, OperationReceived, SessionClosed
from gateway.transport import DeviceDriver, run_device_over_udp
from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, XmppClient
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.manager import (
    UpstreamManager,
    UpstreamSession,
    UpstreamSettings,
    open_upstream_manager,
)
from gateway.xmpp.net.resolver import ServerAddress
from gateway.xmpp.net.tls import TrustStore

DESCRIPTION = "relay end to end: latency both ways, msgs/s vs straight to Prosody, RSS per device"

WAIT = 60.0  # seconds of real time any one phase may take before the run is declared broken


# -- receivers: both ends record the arrival time of each text they get ----------------------------


@dataclass
class _Inbox:
    """Arrival times by message text, and an event per awaited text."""

    arrived: dict[str, float] = field(default_factory=dict)
    count: int = 0
    _waiting: dict[str, trio.Event] = field(default_factory=dict)
    _count_waiters: list[tuple[int, trio.Event]] = field(default_factory=list)

    def record(self, text: str) -> None:
        self.arrived[text] = time.perf_counter()
        self.count += 1
        waiter = self._waiting.pop(text, None)
        if waiter is not None:
            waiter.set()
        for wanted, event in list(self._count_waiters):
            if self.count >= wanted:
                event.set()
                self._count_waiters.remove((wanted, event))

    async def wait_text(self, text: str) -> float:
        """When ``text`` arrived (waiting, bounded, until it has)."""
        if text not in self.arrived:
            event = self._waiting.setdefault(text, trio.Event())
            with trio.fail_after(WAIT):
                await event.wait()
        return self.arrived[text]

    async def wait_count(self, wanted: int) -> None:
        """Until ``wanted`` texts have arrived in all (bounded)."""
        if self.count < wanted:
            event = trio.Event()
            self._count_waiters.append((wanted, event))
            with trio.fail_after(WAIT):
                await event.wait()


async def _drain_device(driver: DeviceDriver, inbox: _Inbox, established: trio.Event) -> None:
    async for event in driver.events:
        if isinstance(event, DeviceSessionEstablished):
            established.set()
        elif isinstance(event, OperationReceived) and isinstance(
            event.message, wire.IncomingMessage
        ):
            content = event.message.content
            if isinstance(content, wire.TextContent):
                inbox.record(content.text)
        elif isinstance(event, SessionClosed):
            return  # the gateway's drain at the end of the run (or a failure the waits time out on)


def _send_receipt(client: XmppClient, *, to: Jid, id: str) -> None:
    client.send_receipt(to, id)


async def _drain_xmpp(session: UpstreamSession, inbox: _Inbox) -> None:
    """Record each message body; answer XEP-0184 receipt requests as slixmpp's plugin does.

    Without the receipts the gateway keeps every SendMessage in flight until its report
    timeout, and refuses more than its limit of them with QUEUE_FULL.
    """
    async for event in session.events:
        if isinstance(event, ev.MessageReceived) and event.message.body is not None:
            inbox.record(event.message.body)
            message = event.message
            sender, message_id = message.from_, message.id
            if message.receipt_requested and sender is not None and message_id is not None:
                await session.use(functools.partial(_send_receipt, to=sender, id=message_id))


@dataclass
class _Client:
    """An ordinary XMPP client session and what it received."""

    account: Account
    session: UpstreamSession
    inbox: _Inbox

    @property
    def jid(self) -> Jid:
        return Jid.parse_untrusted(self.account.jid)


async def _open_client(
    nursery: trio.Nursery, manager: UpstreamManager, account: Account
) -> _Client:
    session = await manager.open_session(
        ClientConfig(jid=Jid.parse_untrusted(account.jid), password=account.password)
    )
    with trio.fail_after(WAIT):
        await session.established.wait()
    await session.send_presence()  # available, so bare-JID messages reach this resource
    client = _Client(account, session, _Inbox())
    nursery.start_soon(_drain_xmpp, session, client.inbox)
    return client


# -- the measurements ------------------------------------------------------------------------------


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _latency_summary(samples: list[float]) -> dict[str, float]:
    return {
        "samples": len(samples),
        "p50_ms": round(1000 * statistics.median(samples), 3),
        "p99_ms": round(1000 * _percentile(samples, 0.99), 3),
        "max_ms": round(1000 * max(samples), 3),
    }


async def _rate(
    count: int, prefix: str, send: Callable[[int, str], Any], inbox: _Inbox
) -> dict[str, float]:
    """Messages/s: ``send`` ``count`` texts, clock stopped when ``inbox`` holds the last one."""
    before = inbox.count
    started = time.perf_counter()
    for index in range(count):
        result = send(index, f"{prefix} {index}")
        if result is not None:
            await result
    await inbox.wait_count(before + count)
    elapsed = time.perf_counter() - started
    return {"messages": count, "seconds": round(elapsed, 4), "per_second": round(count / elapsed)}


def _rss_bytes() -> int:
    """This process's resident set size (VmRSS of /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclass(frozen=True)
class _Sizes:
    latency_samples: int
    rate_messages: int
    idle_devices: int


async def _measure(prosody: ProsodyServer, config_path: Path, sizes: _Sizes) -> dict[str, Any]:
    results: dict[str, Any] = {}
    settings = UpstreamSettings(
        trust=TrustStore(prosody.ca_file, use_system_store=False),
        static_hosts={prosody.domain: [ServerAddress(prosody.host, prosody.c2s_port)]},
    )
    async with (
        open_gateway_store(config_path) as (store, configuration),
        open_upstream_manager(settings) as manager,
        trio.open_nursery() as nursery,
    ):
        device_account = prosody.create_user()
        enrolled = await enroll(store, configuration, device_account, kid=b"\x00\x01")
        person = await _open_client(nursery, manager, prosody.create_user())
        sender = await _open_client(nursery, manager, prosody.create_user())  # the baseline

        async with serving_gateway(
            nursery, store, configuration, registry_refresh=3600.0, stop_timeout=WAIT
        ) as gateway:
            await _measure_with_gateway(
                prosody, gateway, enrolled, person, sender, sizes, results, nursery
            )
        nursery.cancel_scope.cancel()
        stats = store.statistics()
        results["store_commits"] = stats.commits
        results["store_operations_committed"] = stats.operations_committed
        results["store_mean_batch"] = round(stats.mean_batch_size, 2)
    return results


async def _measure_with_gateway(
    prosody: ProsodyServer,
    gateway: RunningGateway,
    enrolled: EnrolledDevice,
    person: _Client,
    sender: _Client,
    sizes: _Sizes,
    results: dict[str, Any],
    nursery: trio.Nursery,
) -> None:
    """Latency, rates and memory against the running ``gateway``; figures into ``results``."""
    service, store, configuration = gateway.service, gateway.store, gateway.configuration
    await upstream_ready(gateway, enrolled.kid, WAIT)
    driver = DeviceDriver(device_session(enrolled))
    device_inbox = _Inbox()
    established = trio.Event()
    nursery.start_soon(run_device_over_udp, driver, ("127.0.0.1", gateway.udp_port))
    nursery.start_soon(_drain_device, driver, device_inbox, established)
    driver.connect()
    with trio.fail_after(WAIT):
        await established.wait()
    driver.send_operation(wire.SetPresence(open=True))
    device_jid = Jid.parse_untrusted(enrolled.account.jid)
    next_id = 1

    def device_send(_index: int, text: str) -> None:
        nonlocal next_id
        driver.send_operation(
            wire.SendMessage(
                id=next_id,
                to=person.account.jid,
                content=wire.TextContent(text),
                want_report=False,
            )
        )
        next_id += 1

    # Warm-up both ways (the first stanzas pay for caches and the presence round trip).
    for index in range(5):
        device_send(index, f"warm-up {index}")
        await person.inbox.wait_text(f"warm-up {index}")
        await person.session.send_message(device_jid, f"warm-down {index}")
        await device_inbox.wait_text(f"warm-down {index}")

    up: list[float] = []
    down: list[float] = []
    for index in range(sizes.latency_samples):
        text = f"up {index}"
        started = time.perf_counter()
        device_send(index, text)
        up.append(await person.inbox.wait_text(text) - started)
        text = f"down {index}"
        started = time.perf_counter()
        await person.session.send_message(device_jid, text)
        down.append(await device_inbox.wait_text(text) - started)
    results["latency_device_to_person"] = _latency_summary(up)
    results["latency_person_to_device"] = _latency_summary(down)

    count = sizes.rate_messages
    # Baseline first, then through the gateway, each direction: warm-up favours neither.
    results["rate_straight_client_to_person"] = await _rate(
        count,
        "base-up",
        lambda _i, text: sender.session.send_message(person.jid, text, request_receipt=True),
        person.inbox,
    )
    results["rate_device_to_person"] = await _rate(count, "rate-up", device_send, person.inbox)
    results["rate_person_to_straight_client"] = await _rate(
        count,
        "base-down",
        lambda _i, text: person.session.send_message(sender.jid, text),
        sender.inbox,
    )
    results["rate_person_to_device"] = await _rate(
        count,
        "rate-down",
        lambda _i, text: person.session.send_message(device_jid, text),
        device_inbox,
    )

    # Memory: M more devices enrolled (each through a real login, before the first reading:
    # the logins' garbage is not the gateway's), then the gateway opens an upstream session for
    # each when it next reads its registry.
    kids = []
    for number in range(2, 2 + sizes.idle_devices):
        kid = number.to_bytes(2, "big")
        await enroll(store, configuration, prosody.create_user(), kid=kid)
        kids.append(kid)
    gc.collect()
    rss_before = _rss_bytes()
    await service.refresh_registry()
    with trio.fail_after(WAIT):
        for kid in kids:
            await service.bindings()[kid].upstream_up.wait()
    gc.collect()
    rss_after = _rss_bytes()
    results["idle_devices"] = sizes.idle_devices
    results["rss_before_bytes"] = rss_before
    results["rss_after_bytes"] = rss_after
    results["rss_bytes_per_idle_device"] = round((rss_after - rss_before) / sizes.idle_devices)


def run(quick: bool) -> Report:
    """Measure against a private Prosody and an in-process gateway started for this run."""
    sizes = (
        _Sizes(latency_samples=20, rate_messages=100, idle_devices=4)
        if quick
        else _Sizes(latency_samples=300, rate_messages=1000, idle_devices=50)
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-relay-") as directory,
        running_prosody(Path(directory)) as prosody,
    ):
        config = make_gateway_home(Path(directory) / "gw", prosody)
        results = trio.run(_measure, prosody, config, sizes)
        results["store_file_system"] = _file_system(Path(directory).resolve())
    up, down = results["latency_device_to_person"], results["latency_person_to_device"]
    rates = [
        (
            "device -> gateway -> Prosody -> person",
            results["rate_device_to_person"],
            results["rate_straight_client_to_person"],
        ),
        (
            "person -> Prosody -> gateway (store) -> device",
            results["rate_person_to_device"],
            results["rate_person_to_straight_client"],
        ),
    ]
    for label, measured, baseline in rates:
        key = "device_to_person" if label.startswith("device") else "person_to_device"
        results[f"rate_{key}_over_straight"] = round(
            measured["per_second"] / baseline["per_second"], 3
        )
    tables = [
        Table(
            "End-to-end latency over loopback, one message at a time",
            ["direction", "samples", "p50 ms", "p99 ms", "max ms"],
            [
                ["device -> person", up["samples"], up["p50_ms"], up["p99_ms"], up["max_ms"]],
                [
                    "person -> device",
                    down["samples"],
                    down["p50_ms"],
                    down["p99_ms"],
                    down["max_ms"],
                ],
            ],
        ),
        Table(
            f"Messages/s ({sizes.rate_messages:,} sent back to back, until the last arrived)",
            ["path", "msgs/s", "straight XMPP client msgs/s", "ratio"],
            [
                [label, m["per_second"], b["per_second"], m["per_second"] / b["per_second"]]
                for label, m, b in rates
            ],
        ),
        Table(
            "Gateway memory per idle enrolled device (binding + upstream session, resident)",
            ["devices", "VmRSS before", "VmRSS after", "bytes per device"],
            [
                [
                    results["idle_devices"],
                    results["rss_before_bytes"],
                    results["rss_after_bytes"],
                    results["rss_bytes_per_idle_device"],
                ]
            ],
        ),
    ]
    notes = [
        "baseline of each rate: the same messages sent by an ordinary XMPP client session"
        " straight through the same Prosody in the same run (the ceiling Prosody sets);"
        " device -> person and its baseline both request XEP-0184 receipts, which the person"
        " answers as slixmpp's plugin does",
        "person -> device includes the gateway's durable store (SQLite WAL, synchronous=FULL,"
        f" on {results['store_file_system']}) commit before the device gets each message;"
        f" {results['store_operations_committed']:,} store operations in"
        f" {results['store_commits']:,} commits over the whole run",
        "memory is the VmRSS delta of the whole process (OpenSSL included), page-granular:"
        " read it at the full run's device count, not --quick's",
        "Prosody, the gateway and both clients share this machine's cores",
    ]
    return Report(results=results, tables=tables, notes=notes)
