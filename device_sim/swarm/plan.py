"""What a swarm does, decided before it runs: the operation mix, each device's operations, sleeps.

Sans-IO and deterministic: :func:`plan_operations` draws every device's operations from its own
``random.Random`` seeded by the swarm seed and the device's index, so a seed gives the same plan
on any machine and a device's plan does not change when others are added. Arrivals are a Poisson
process per device (exponential gaps at ``Mix.per_minute``); each arrival picks its kind by the
mix's weights, then its recipient: another device of the swarm (chat), one of the people (person),
or a presence change (presence, cycling available, away, do-not-disturb, available ...).
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from device_sim.radio.schedule import PeriodicWake
from gateway import wire

__all__ = [
    "Mix",
    "MixError",
    "OpKind",
    "PlannedOp",
    "SleepPlan",
    "parse_duration",
    "plan_operations",
    "sleep_schedule",
]

_PRESENCE_CYCLE = (wire.Show.AWAY, wire.Show.DO_NOT_DISTURB, wire.Show.AVAILABLE)
TOKEN_PREFIX = "swarm#"  # noqa: S105 - a body marker: "swarm#<op id>" names the operation


class MixError(ValueError):
    """A --mix, --sleep or duration the swarm cannot use."""


class OpKind(enum.Enum):
    """What one operation is."""

    CHAT = "chat"  # a message to another device of the swarm
    PERSON = "person"  # a message to a person's account
    PRESENCE = "presence"  # the device changes its own presence


@dataclass(frozen=True)
class Mix:
    """Relative weights of the operation kinds and how often each device acts."""

    chat: float = 6.0
    person: float = 2.0
    presence: float = 2.0
    per_minute: float = 2.0  # operations per device per minute

    def __post_init__(self) -> None:
        if min(self.chat, self.person, self.presence) < 0 or self.per_minute < 0:
            raise MixError("mix weights and the rate must not be negative")
        if self.chat + self.person + self.presence <= 0:
            raise MixError("at least one mix weight must be positive")

    @classmethod
    def parse(cls, text: str) -> Mix:
        """``chat=6,person=2,presence=2,rate=2`` (any subset; rate is per device per minute)."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            key = {"rate": "per_minute"}.get(name.strip(), name.strip())
            if key not in ("chat", "person", "presence", "per_minute"):
                raise MixError(f"unknown mix field {name!r}: use chat, person, presence, rate")
            try:
                values[key] = float(value)
            except ValueError as exc:
                raise MixError(f"mix field {name!r} needs a number, got {value!r}") from exc
        return cls(**values)

    def weights(self, *, devices: int, people: int) -> dict[OpKind, float]:
        """The weights that can apply: no chat alone, no person messages without people."""
        weights = {
            OpKind.CHAT: self.chat,
            OpKind.PERSON: self.person,
            OpKind.PRESENCE: self.presence,
        }
        if devices < 2:
            weights[OpKind.CHAT] = 0.0
        if people == 0:
            weights[OpKind.CHAT if devices >= 2 else OpKind.PRESENCE] += weights[OpKind.PERSON]
            weights[OpKind.PERSON] = 0.0
        if sum(weights.values()) <= 0:
            weights[OpKind.PRESENCE] = 1.0
        return weights


@dataclass(frozen=True)
class PlannedOp:
    """One operation: at ``at`` seconds after the start, device ``sender`` does ``kind``.

    ``recipient`` is a device index (chat) or a person index (person); presence ops carry the
    presence they set.
    """

    op_id: int
    at: float
    sender: int
    kind: OpKind
    recipient: int | None = None
    show: wire.Show = wire.Show.AVAILABLE

    @property
    def token(self) -> str:
        """The body's marker that names this operation at the receiving end."""
        return f"{TOKEN_PREFIX}{self.op_id}"


def plan_operations(
    *, devices: int, people: int, mix: Mix, duration: float, seed: int
) -> list[PlannedOp]:
    """Every operation of the swarm, in time order, ids from 1."""
    weights = mix.weights(devices=devices, people=people)
    kinds = [k for k, w in weights.items() if w > 0]
    kind_weights = [weights[k] for k in kinds]
    drafts: list[tuple[float, int, OpKind, int | None, wire.Show]] = []
    rate = mix.per_minute / 60.0
    for sender in range(devices):
        rng = random.Random(f"{seed}:ops:{sender}")  # noqa: S311 - a reproducible simulation
        t = 0.0
        presence_step = 0
        while rate > 0:
            t += rng.expovariate(rate)
            if t >= duration:
                break
            kind = rng.choices(kinds, kind_weights)[0]
            recipient: int | None = None
            show = wire.Show.AVAILABLE
            if kind is OpKind.CHAT:
                recipient = rng.randrange(devices - 1)
                recipient += recipient >= sender  # anyone but itself
            elif kind is OpKind.PERSON:
                recipient = rng.randrange(people)
            else:
                show = _PRESENCE_CYCLE[presence_step % len(_PRESENCE_CYCLE)]
                presence_step += 1
            drafts.append((t, sender, kind, recipient, show))
    drafts.sort(key=lambda d: (d[0], d[1]))
    return [
        PlannedOp(op_id=n, at=at, sender=s, kind=k, recipient=r, show=show)
        for n, (at, s, k, r, show) in enumerate(drafts, start=1)
    ]


@dataclass(frozen=True)
class SleepPlan:
    """Devices wake every ``period`` seconds and stay awake ``awake`` seconds."""

    period: float
    awake: float

    def __post_init__(self) -> None:
        if not 0 < self.awake < self.period:
            raise MixError("need 0 < awake < period for --sleep")

    @classmethod
    def parse(cls, text: str) -> SleepPlan:
        """``PERIOD:AWAKE``, each a duration (``60s:20s``, ``5m:30s``)."""
        period, sep, awake = text.partition(":")
        if not sep:
            raise MixError("--sleep takes PERIOD:AWAKE, e.g. 60s:20s")
        return cls(parse_duration(period), parse_duration(awake))


def sleep_schedule(plan: SleepPlan, device: int, seed: int) -> PeriodicWake:
    """Device ``device``'s schedule: the plan, seeded phase (devices do not sleep at once)."""
    rng = random.Random(f"{seed}:sleep:{device}")  # noqa: S311 - a reproducible simulation
    return PeriodicWake(period=plan.period, awake=plan.awake, phase=rng.uniform(0.0, plan.period))


def sleep_windows(schedule: PeriodicWake, duration: float) -> list[tuple[float, float]]:
    """``(sleep at, wake at)`` pairs that start within ``(0, duration)``."""
    windows: list[tuple[float, float]] = []
    t = schedule.next_sleep(schedule.next_wake(0.0))
    while t < duration:
        wake = schedule.next_wake(t + 1e-9)
        windows.append((t, wake))
        t = schedule.next_sleep(wake)
    return windows


def parse_duration(text: str) -> float:
    """``60``, ``60s``, ``5m``, ``2h``, ``1.5m`` to seconds."""
    text = text.strip().lower()
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    scale = 1.0
    if text and text[-1] in units:
        scale = units[text[-1]]
        text = text[:-1]
    try:
        value = float(text) * scale
    except ValueError as exc:
        raise MixError(f"not a duration: {text!r} (use 60s, 5m, 2h)") from exc
    if not math.isfinite(value) or value <= 0:
        raise MixError("a duration must be positive")
    return value


def ops_of(ops: Sequence[PlannedOp], sender: int) -> list[PlannedOp]:
    """The operations of one device, in time order."""
    return [op for op in ops if op.sender == sender]
