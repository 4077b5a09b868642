"""The swarm's trio driver: many :class:`~device_sim.client.runner.DeviceRunner` in one process.

Each device gets its own runner, sockets (from ``sockets_for(index)``) and, unless the link is
turned off, its own seeded :class:`~device_sim.radio.DuplexLink` of the chosen preset. At most
``max_connecting`` devices handshake at once (a swarm of thousands would otherwise arrive as one
burst and meet the gateway's per-host handshake limits). Each connected device then works through
its planned operations and sleep windows in time order (:mod:`device_sim.swarm.plan`); after
``duration`` nothing new is started and the swarm waits up to ``drain`` seconds for what is still
in flight, then closes every session and summarises (:mod:`device_sim.swarm.ledger`). Everything
runs on ``trio.current_time()``, so under the autojump clock a run is exact and repeatable.

Message ids. The gateway de-duplicates SendMessages by ``(device, id)`` for days
(docs/protocol.md §6.4), and a real device keeps its next id across power cycles (Appendix A).
A fresh :class:`DeviceClient` counts from 1, so a second run against the same gateway must start
each device where the first one stopped (``first_message_ids``; the swarm command keeps them in a
state file), or the gateway takes the new messages for repeats of the old ones. Likewise each
device's window of IncomingMessage ids shown (``inbound_windows``): a message the gateway sent
just before a run ended, whose acknowledgement did not reach it, is sent again in the next
session (at least once, by design), and only a device that remembers the id drops the repeat.

The end. At ``duration`` the swarm first lets every device finish the operations planned before
it (a worker woken at the same instant as the end must not be cancelled before its last
operation), bounded by ``connect_timeout`` for devices still connecting; then it drains. An
operation that no device reached even so is counted refused, so that planned = sent + refused.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio

from device_sim.budget import PrimitiveCounts
from device_sim.client.core import ClientError, ClientState, DeviceClient, OutboxFullError
from device_sim.client.events import (
    ClientEvent,
    Connected,
    DeliveryReported,
    MessageAccepted,
    MessageArrived,
    Slept,
    Woke,
)
from device_sim.client.runner import DatagramSockets, DeviceRunner, RunnerError
from device_sim.radio.duplex import DuplexLink
from device_sim.radio.presets import LinkPreset
from device_sim.swarm.ledger import DeviceTotals, Ledger, Summary
from device_sim.swarm.plan import (
    Mix,
    OpKind,
    PlannedOp,
    SleepPlan,
    plan_operations,
    sleep_schedule,
    sleep_windows,
)
from gateway.enroll.provisioning import Provisioning

__all__ = ["Progress", "Swarm", "SwarmConfig"]

CLOSE_GRACE = 5.0  # seconds the Close records get to cross the link before the runners stop


@dataclass(frozen=True)
class SwarmConfig:
    """How a swarm runs; durations in seconds."""

    duration: float
    link: LinkPreset
    seed: int = 0
    mix: Mix = field(default_factory=Mix)
    people: tuple[str, ...] = ()  # JIDs of people the devices write to
    sleep: SleepPlan | None = None
    drain: float = 60.0
    max_connecting: int = 32
    connect_timeout: float = 120.0
    model_link: bool = True  # False: datagrams go straight to the sockets (no radio model)
    # Announce "available" once connected, as a client does at login: an XMPP server delivers
    # messages to an account's session only after its initial presence (RFC 6121 §4.2, §8.5.2).
    initial_presence: bool = True
    # Appended to every body (" run <tag>"), so that a message of an earlier run against the same
    # gateway, delivered late (the same seed gives the same tokens), is a stray, not this run's.
    run_tag: str = ""


@dataclass(frozen=True)
class Progress:
    """A snapshot for the live display."""

    elapsed: float
    duration: float
    devices: int
    connected: int
    asleep: int
    sent: int
    delivered: int
    outstanding: int
    link_bytes: int
    draining: bool


@dataclass
class _Device:
    index: int
    runner: DeviceRunner
    ops: list[PlannedOp]
    windows: list[tuple[float, float]]
    connected_once: bool = False
    asleep_since: float | None = None
    asleep_seconds: float = 0.0


class Swarm:
    """Devices from ``provisionings`` (one each), driving a gateway per ``config``."""

    def __init__(
        self,
        provisionings: Sequence[Provisioning],
        sockets_for: Callable[[int], DatagramSockets],
        config: SwarmConfig,
        *,
        client_for: Callable[[int], DeviceClient] | None = None,
        first_message_ids: Sequence[int] | None = None,
        inbound_windows: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        self.config = config
        self.provisionings = list(provisionings)
        self.ops = plan_operations(
            devices=len(self.provisionings),
            people=len(config.people),
            mix=config.mix,
            duration=config.duration,
            seed=config.seed,
        )
        self.ledger = Ledger(self.ops, run_tag=config.run_tag)
        self.connect_failures = 0
        self._start = 0.0
        self._draining = False
        self._drained = trio.Event()
        make_client = client_for or self._default_client
        self.devices: list[_Device] = []
        by_sender: dict[int, list[PlannedOp]] = {}
        for op in self.ops:
            by_sender.setdefault(op.sender, []).append(op)
        if first_message_ids is not None and len(first_message_ids) != len(self.provisionings):
            raise ValueError("first_message_ids needs one id per device")
        self.first_message_ids = (
            list(first_message_ids) if first_message_ids is not None else [1] * len(provisionings)
        )
        if inbound_windows is not None and len(inbound_windows) != len(self.provisionings):
            raise ValueError("inbound_windows needs one (highest, bitmap) per device")
        self._working = len(self.provisionings)  # workers not yet through their plan
        self._plans_done = trio.Event()
        for index, provisioning in enumerate(self.provisionings):
            client = make_client(index)
            client.next_message_id = self.first_message_ids[index]
            if inbound_windows is not None:
                client.inbound.highest, client.inbound.bitmap = inbound_windows[index]
            link = (
                DuplexLink(config.link, seed=config.seed * 1_000_003 + index)
                if config.model_link
                else None
            )
            windows = (
                sleep_windows(sleep_schedule(config.sleep, index, config.seed), config.duration)
                if config.sleep is not None
                else []
            )
            runner = DeviceRunner(
                client,
                provisioning,
                sockets_for(index),
                link=link,
                on_event=self._event_handler(index),
                stream_events=False,
            )
            self.devices.append(
                _Device(index=index, runner=runner, ops=by_sender.get(index, []), windows=windows)
            )

    def reserved_message_ids(self) -> list[int]:
        """Each device's next SendMessage id after this run, known before it starts: its first id
        plus its planned messages (an id is taken per message, retries keep theirs)."""
        reserved = list(self.first_message_ids)
        for op in self.ops:
            if op.kind is not OpKind.PRESENCE:
                reserved[op.sender] += 1
        return reserved

    def inbound_windows(self) -> list[tuple[int, int]]:
        """Each device's window of IncomingMessage ids shown, ``(highest, bitmap)``, for the next
        run (see the module docstring)."""
        return [
            (d.runner.client.inbound.highest, d.runner.client.inbound.bitmap) for d in self.devices
        ]

    def _default_client(self, index: int) -> DeviceClient:
        seed = self.config.seed
        return DeviceClient(
            rng=random.Random(f"{seed}:client:{index}"),  # noqa: S311 - a reproducible simulation
            random_bytes=random.Random(f"{seed}:bytes:{index}").randbytes,  # noqa: S311 - idem
        )

    # ---- events --------------------------------------------------------------------------------

    def _event_handler(self, index: int) -> Callable[[float, ClientEvent], None]:
        def on_event(now: float, event: ClientEvent) -> None:
            device = self.devices[index]
            if isinstance(event, MessageArrived):
                self.ledger.arrived(device.index, event.text, now)
            elif isinstance(event, MessageAccepted):
                self.ledger.accepted(device.index, event.message_id)
            elif isinstance(event, DeliveryReported):
                self.ledger.reported(device.index, event.message_id, event.status, now)
            elif isinstance(event, Connected):
                device.connected_once = True
            elif isinstance(event, Slept):
                device.asleep_since = now
            elif isinstance(event, Woke) and device.asleep_since is not None:
                device.asleep_seconds += _interval(device.asleep_since, now)
                device.asleep_since = None
            if self._draining and not self.ledger.outstanding():
                self._drained.set()

        return on_event

    # ---- running -------------------------------------------------------------------------------

    async def run(
        self,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval: float = 1.0,
    ) -> Summary:
        """Run the swarm to the end of its drain and return the summary."""
        config = self.config
        self._start = trio.current_time()
        self.ledger.started(self._start)
        connecting = trio.Semaphore(max(1, config.max_connecting))
        async with trio.open_nursery() as runners:
            async with trio.open_nursery() as workers:
                if on_progress is not None:
                    workers.start_soon(self._report_progress, on_progress, progress_interval)
                for device in self.devices:
                    workers.start_soon(self._work, device, runners, connecting)
                await trio.sleep_until(self._start + config.duration)
                if self.devices:
                    with trio.move_on_after(config.connect_timeout):
                        await self._plans_done.wait()
                self._draining = True
                await self._drain()
                workers.cancel_scope.cancel()
            self.ledger.refuse_unreached("the run ended first")
            end = trio.current_time()
            self._close_all()
            with trio.move_on_after(CLOSE_GRACE):
                for device in self.devices:
                    await device.runner.stopped()
            runners.cancel_scope.cancel()
        if on_progress is not None:
            on_progress(self.progress())
        return self._summary(end)

    async def _work(
        self, device: _Device, runners: trio.Nursery, connecting: trio.Semaphore
    ) -> None:
        try:
            await self._work_through_plan(device, runners, connecting)
        finally:
            self._working -= 1
            if self._working == 0:
                self._plans_done.set()

    async def _work_through_plan(
        self, device: _Device, runners: trio.Nursery, connecting: trio.Semaphore
    ) -> None:
        config = self.config
        async with connecting:
            try:
                await runners.start(device.runner.run)
            except OSError:  # no socket (file descriptors, address): this device sits out
                self.connect_failures += 1
                for op in device.ops:
                    self.ledger.refused(op, "no socket")
                return
            with trio.move_on_after(config.connect_timeout):
                try:
                    await device.runner.connected()
                except RunnerError:
                    self.connect_failures += 1  # its operations are counted as refused
        if device.runner.state is not ClientState.ESTABLISHED:
            for op in device.ops:
                self.ledger.refused(op, "not connected")
            return
        if config.initial_presence:
            device.runner.set_presence(available=True)
        steps: list[tuple[float, int, PlannedOp | tuple[float, float]]] = [
            (op.at, 1, op) for op in device.ops
        ]
        steps += [(window[0], 0, window) for window in device.windows]
        steps.sort(key=lambda s: (s[0], s[1]))
        for at, _, step in steps:
            await trio.sleep_until(self._start + at)
            if isinstance(step, PlannedOp):
                self._do(device, step)
            elif device.runner.state is ClientState.ESTABLISHED:
                sleep_at, wake_at = step
                device.runner.sleep(max(1, math.ceil(wake_at - sleep_at)))

    def _do(self, device: _Device, op: PlannedOp) -> None:
        runner = device.runner
        now = trio.current_time()
        try:
            if op.kind is OpKind.PRESENCE:
                runner.set_presence(available=True, show=op.show)
                self.ledger.sent(op, now, None)
                return
            assert op.recipient is not None
            if op.kind is OpKind.CHAT:
                to = self.provisionings[op.recipient].account
            else:
                to = self.config.people[op.recipient]
            message_id = runner.send_text(to, self.ledger.body(op))
            self.ledger.sent(op, now, message_id)
        except OutboxFullError:
            self.ledger.refused(op, "outbox full")
        except ClientError:
            self.ledger.refused(op, f"client {runner.state.value}")

    async def _drain(self) -> None:
        if self.ledger.outstanding():
            with trio.move_on_after(self.config.drain):
                await self._drained.wait()

    def _close_all(self) -> None:
        for device in self.devices:
            if device.runner.state in _STOPPED:
                continue
            try:
                device.runner.close()
            except ClientError:
                continue

    async def _report_progress(
        self, on_progress: Callable[[Progress], None], interval: float
    ) -> None:
        while True:
            on_progress(self.progress())
            await trio.sleep(interval)

    # ---- figures -------------------------------------------------------------------------------

    def progress(self) -> Progress:
        """Where the swarm is now."""
        runners = [d.runner for d in self.devices]
        return Progress(
            elapsed=trio.current_time() - self._start,
            duration=self.config.duration,
            devices=len(self.devices),
            connected=sum(1 for d in self.devices if d.connected_once),
            asleep=sum(1 for r in runners if r.state is ClientState.SLEEPING),
            sent=self.ledger.sent_count(),
            delivered=self.ledger.delivered(),
            outstanding=self.ledger.outstanding(),
            link_bytes=sum(
                r.uplink.link_bytes_sent + r.downlink.link_bytes_received for r in runners
            ),
            draining=self._draining,
        )

    def _summary(self, end: float) -> Summary:
        elapsed = _interval(self._start, end)
        counts = PrimitiveCounts()
        handshakes = resumptions = wakeups = 0
        asleep = 0.0
        for device in self.devices:
            budget = device.runner.budget
            if budget is not None:
                counts = counts + budget.counts
                handshakes += budget.handshakes
                resumptions += budget.resumptions
                wakeups += budget.wakeups
            asleep += device.asleep_seconds
            if device.asleep_since is not None:
                asleep += _interval(device.asleep_since, end)
        runners = [d.runner for d in self.devices]
        totals = DeviceTotals(
            devices=len(self.devices),
            connected=sum(1 for d in self.devices if d.connected_once),
            handshakes=handshakes,
            resumptions=resumptions,
            wakeups=wakeups,
            datagrams_sent=sum(r.uplink.datagrams_sent for r in runners),
            datagrams_received=sum(r.downlink.datagrams_received for r in runners),
            payload_bytes_sent=sum(r.uplink.bytes_sent for r in runners),
            payload_bytes_received=sum(r.downlink.bytes_received for r in runners),
            link_bytes_sent=sum(r.uplink.link_bytes_sent for r in runners),
            link_bytes_received=sum(r.downlink.link_bytes_received for r in runners),
            awake_seconds=max(0.0, elapsed * len(self.devices) - asleep),
            asleep_seconds=asleep,
            counts=counts,
        )
        return self.ledger.summarize(
            devices=len(self.devices),
            preset=self.config.link,
            seed=self.config.seed,
            duration=self.config.duration,
            totals=totals,
        )


_STOPPED = (ClientState.CLOSED, ClientState.FAILED)


def _interval(start: float, end: float) -> float:
    """Seconds from ``start`` to ``end``, to the microsecond: the same figure wherever the clock
    stood when the run began (float subtraction keeps digits of the absolute times)."""
    return max(0.0, round(end - start, 6))
