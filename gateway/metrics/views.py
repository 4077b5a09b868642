"""Frozen snapshots the metrics read where a layer keeps no single ``statistics()`` of its own.

The upstream manager holds one :class:`~gateway.xmpp.UpstreamSession` per account, each with its
current client; :func:`upstream_views` turns that into one :class:`UpstreamView` per session. The
relay and the store keep queue depths per device; the service, which holds both, builds a
:class:`RelayView` from what it has in memory (reading the store at scrape time would block the
scrape on SQLite), and the collector turns the per-device numbers into histograms over devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.relay import RelayStatistics
from gateway.xmpp import ClientState, ClientStatistics
from gateway.xmpp.net import UpstreamSession

__all__ = ["DeviceQueueView", "RelayView", "UpstreamView", "upstream_views"]


@dataclass(frozen=True)
class UpstreamView:
    """One account's upstream session: its stream's state and counters, and its connections.

    ``stopped`` is true once the session gave up for good (closed, or refused permanently, such as
    a wrong password); ``connections`` counts the connections it established so far.
    """

    state: ClientState
    stopped: bool
    connections: int
    client: ClientStatistics


def upstream_views(sessions: Iterable[UpstreamSession]) -> list[UpstreamView]:
    """A view of each session (``manager.sessions.values()``), read now."""
    return [
        UpstreamView(
            state=session.client.state,
            stopped=session.stopped,
            connections=session.connections,
            client=session.client.statistics(),
        )
        for session in sessions
    ]


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
