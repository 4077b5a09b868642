"""What a SIGHUP can change in a running gateway, and what needs a restart.

The running gateway re-reads its configuration file on SIGHUP (``impp-gateway run``). Only the
keys in :data:`LIVE_KEYS` are taken as they are: values the running objects read each time they
use them (the log level, the session cores' capacity limits and timeouts, the drain's budget).
Every other key that changed (listeners, store, keys and CA, upstream servers and trust, the
metrics endpoint, the per-device queue length that the open store enforces) keeps its running
value and is reported as needing a restart, by its dotted name, so an operator knows exactly
what the signal did not do. :func:`plan_reload` compares the two configurations key by key;
:func:`live_configuration` is the running configuration with the live keys taken from the new.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gateway.config.model import Configuration, ListenAddress, Trust, UpstreamDomain

__all__ = ["LIVE_KEYS", "ReloadPlan", "flatten_configuration", "live_configuration", "plan_reload"]

LIVE_KEYS: Final = frozenset(
    {
        "gateway.log_level",
        "gateway.drain_timeout",
        "limits.max_sessions",
        "limits.max_handshakes",
        "limits.max_handshakes_per_host",
        "limits.handshake_timeout",
        "limits.idle_timeout",
    }
)
"""Dotted keys a SIGHUP applies to the running gateway; any other change needs a restart."""
_MISSING: Final = object()  # a key only one side has (an upstream domain added or removed)


@dataclass(frozen=True)
class ReloadPlan:
    """The keys whose value changed: those applied now, and those that need a restart."""

    applied: tuple[str, ...]
    restart: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """Whether anything differs from the running configuration."""
        return bool(self.applied or self.restart)

    def summary(self) -> str:
        """One log line: what was applied and what a restart would still change."""
        applied = ", ".join(self.applied) or "nothing"
        text = f"reload: applied {applied}"
        if self.restart:
            text += f"; needs a restart (running value kept): {', '.join(self.restart)}"
        return text


def _value(value: Any) -> Any:
    if isinstance(value, Path | ListenAddress | Trust):
        return str(value)
    if isinstance(value, tuple):
        return tuple(_value(item) for item in value)
    if hasattr(value, "value") and not isinstance(value, int | float | str | bool):
        return value.value  # an enum such as LogLevel
    return value


def _fields(prefix: str, section: Any) -> Iterator[tuple[str, Any]]:
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        key = f"{prefix}.{item.name}"
        if item.name == "domains":
            for domain in value:
                yield from _domain(f"{key}.{domain.domain}", domain)
        elif dataclasses.is_dataclass(value) and not isinstance(value, ListenAddress | Trust):
            yield from _fields(key, value)
        else:
            yield key, _value(value)


def _domain(prefix: str, domain: UpstreamDomain) -> Iterator[tuple[str, Any]]:
    for item in dataclasses.fields(domain):
        if item.name != "domain":
            yield f"{prefix}.{item.name}", _value(getattr(domain, item.name))


def flatten_configuration(configuration: Configuration) -> dict[str, Any]:
    """Every setting by its dotted key (``limits.idle_timeout``, ``upstream.domains.D.trust``),
    as comparable plain values; the file the configuration came from is not a setting."""
    flat: dict[str, Any] = {}
    for item in dataclasses.fields(configuration):
        if item.name == "source":
            continue
        flat.update(_fields(item.name, getattr(configuration, item.name)))
    return flat


def plan_reload(running: Configuration, new: Configuration) -> ReloadPlan:
    """Compare ``new`` with the ``running`` configuration key by key (see the module docstring)."""
    old_flat, new_flat = flatten_configuration(running), flatten_configuration(new)
    keys = sorted(set(old_flat) | set(new_flat))
    changed = [key for key in keys if old_flat.get(key, _MISSING) != new_flat.get(key, _MISSING)]
    return ReloadPlan(
        applied=tuple(key for key in changed if key in LIVE_KEYS),
        restart=tuple(key for key in changed if key not in LIVE_KEYS),
    )


def live_configuration(running: Configuration, new: Configuration) -> Configuration:
    """``running`` with the values of :data:`LIVE_KEYS` taken from ``new``."""
    sections: dict[str, Any] = {}
    for key in LIVE_KEYS:
        section, name = key.split(".")
        current = sections.get(section, getattr(running, section))
        sections[section] = dataclasses.replace(
            current, **{name: getattr(getattr(new, section), name)}
        )
    return dataclasses.replace(running, **sections)
