"""Frozen snapshots the metrics read where a layer keeps no single ``statistics()`` of its own.

The upstream manager holds one :class:`~gateway.xmpp.UpstreamSession` per account, each with its
current client; :func:`upstream_views` turns that into one :class:`UpstreamView` per session. The
relay and the store keep queue depths per device; the service, which holds both, builds a
:class:`RelayView` from what it has in memory (reading the store at scrape time would block the
scrape on SQLite), and the collector turns the per-device numbers into histograms over devices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.relay import RelayStatistics
from gateway.xmpp import ClientState, ClientStatistics
from gateway.xmpp.net import UpstreamManager, UpstreamSession
from gateway.xmpp.net.manager import add_statistics

__all__ = [
    "DeviceQueueView",
    "RelayView",
    "RetiredUpstream",
    "UpstreamView",
    "retire_relay",
    "retired_upstream",
    "upstream_views",
]


@dataclass(frozen=True)
class UpstreamView:
    """One account's upstream session: its stream's state and counters, and its connections.

    ``stopped`` is true once the session gave up for good (closed, or refused permanently, such as
    a wrong password); ``connections`` counts the connections it established so far.
    """

    state: ClientState
    stopped: bool
    connections: int
    client: ClientStatistics  # every stream of the session summed (UpstreamSession.statistics)


def upstream_views(sessions: Iterable[UpstreamSession]) -> list[UpstreamView]:
    """A view of each session (``manager.sessions.values()``), read now."""
    return [
        UpstreamView(
            state=session.client.state,
            stopped=session.stopped,
            connections=session.connections,
            client=session.statistics(),
        )
        for session in sessions
    ]


@dataclass(frozen=True)
class RetiredUpstream:
    """What the sessions no longer held did, summed: the part of each upstream counter that
    keeps it from going down when a session closes (``UpstreamManager.retired``)."""

    client: ClientStatistics | None = None  # None: no session retired yet
    connections: int = 0
    reconnections: int = 0


def retired_upstream(managers: Iterable[UpstreamManager]) -> RetiredUpstream:
    """The retired totals of ``managers``, added up."""
    client: ClientStatistics | None = None
    connections = reconnections = 0
    for manager in managers:
        if manager.retired is not None:
            client = add_statistics(client, manager.retired)
        connections += manager.retired_connections
        reconnections += manager.retired_reconnections
    return RetiredUpstream(client, connections, reconnections)


@dataclass(frozen=True)
class DeviceQueueView:
    """One device's queue toward it: how many items wait, and for how long the oldest has."""

    depth: int
    oldest_age: float = 0.0  # seconds; 0 when the queue is empty


@dataclass(frozen=True)
class RelayView:
    """The relay's side: every device's queue, delivery reports by outcome, relay counters.

    ``delivery_reports`` is keyed by the lower-case name of a :class:`gateway.wire.DeliveryStatus`
    (``delivered``, ``failed``, ``unknown``) and counts the reports sent to devices since start;
    ``relays`` holds each live :class:`~gateway.relay.DeviceRelay`'s statistics.
    """

    queues: Sequence[DeviceQueueView] = ()
    delivery_reports: Mapping[str, int] = field(default_factory=dict)
    relays: Sequence[RelayStatistics] = ()


RELAY_LEVELS = frozenset({"pending_reports", "owed_receipts", "tracked_queue", "directed_watchers"})
"""The fields of :class:`~gateway.relay.RelayStatistics` that are levels, not counts."""


def retire_relay(total: RelayStatistics | None, relay: RelayStatistics) -> RelayStatistics:
    """``total`` plus the counts of a relay that ended (its levels are zero): what the service
    keeps of unbound devices so that the relay counters never go down."""
    values: dict[str, Any] = {}
    for item in dataclasses.fields(RelayStatistics):
        theirs = getattr(relay, item.name)
        if item.name in RELAY_LEVELS:
            values[item.name] = 0
            continue
        mine = getattr(total, item.name) if total is not None else None
        if isinstance(theirs, Mapping):
            merged = dict(mine or {})
            for key, count in theirs.items():
                merged[key] = merged.get(key, 0) + count
            values[item.name] = merged
        else:
            values[item.name] = (mine or 0) + theirs
    return dataclasses.replace(relay, **values)
