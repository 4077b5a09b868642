"""What the admin socket reports: frozen snapshots of a running gateway, and their JSON form.

The service builds these from its own state when asked
(:class:`~gateway.admin.server.AdminHandler`); the admin server turns them into JSON with the
explicit functions below (no pickling, no ``dataclasses.asdict`` of arbitrary objects), so
what crosses the socket is exactly the fields listed here. None of them holds a key, a
ticket, a password or a message body: identifiers, states, counts and ages only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "JsonObject",
    "ListenerSnapshot",
    "SessionSnapshot",
    "StatusSnapshot",
    "StoreSnapshot",
    "session_to_json",
    "status_to_json",
]

JsonObject = dict[str, object]


@dataclass(frozen=True)
class ListenerSnapshot:
    """One device listener: its kind (``udp`` or ``tcp``) and the address it is bound to."""

    kind: str
    address: str


@dataclass(frozen=True)
class StoreSnapshot:
    """The store: its state (``open``, ``closing``, ``failed``...) and what both queues hold."""

    state: str
    device_queue_total: int
    upstream_queue_total: int


@dataclass(frozen=True)
class StatusSnapshot:
    """The gateway as a whole, for ``impp-gateway status``.

    ``sessions_by_state`` counts device sessions by state name, ``upstream_by_state`` the
    upstream XMPP sessions by state name; ``uptime`` is in seconds.
    """

    version: str
    uptime: float
    listeners: tuple[ListenerSnapshot, ...]
    sessions_by_state: Mapping[str, int] = field(default_factory=dict)
    upstream_by_state: Mapping[str, int] = field(default_factory=dict)
    store: StoreSnapshot = StoreSnapshot("unknown", 0, 0)
    draining: bool = False


@dataclass(frozen=True)
class SessionSnapshot:
    """One enrolled device and its two legs, for ``impp-gateway sessions``.

    ``kid`` is the device's EDHOC key identifier; ``address`` and ``cid`` (the session's
    connection id) are None while the device has no session; ages are seconds before the
    snapshot, None when there is nothing to age (no activity yet, an empty queue).
    """

    kid: bytes
    account: str
    state: str
    upstream_state: str
    address: str | None = None
    cid: bytes | None = None
    last_activity_age: float | None = None
    queue_depth: int = 0
    oldest_queued_age: float | None = None
    asleep: bool = False


def _age(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def status_to_json(status: StatusSnapshot) -> JsonObject:
    """The JSON object the ``status`` request answers with (besides ``"ok": true``)."""
    return {
        "version": status.version,
        "uptime": round(status.uptime, 3),
        "listeners": [
            {"kind": listener.kind, "address": listener.address} for listener in status.listeners
        ],
        "sessions_by_state": {str(k): int(v) for k, v in status.sessions_by_state.items()},
        "upstream_by_state": {str(k): int(v) for k, v in status.upstream_by_state.items()},
        "store": {
            "state": status.store.state,
            "device_queue_total": status.store.device_queue_total,
            "upstream_queue_total": status.store.upstream_queue_total,
        },
        "draining": status.draining,
    }


def session_to_json(session: SessionSnapshot) -> JsonObject:
    """One entry of the ``sessions`` answer; byte strings are written in lower-case hex."""
    return {
        "kid": session.kid.hex(),
        "account": session.account,
        "state": session.state,
        "upstream_state": session.upstream_state,
        "address": session.address,
        "cid": None if session.cid is None else session.cid.hex(),
        "last_activity_age": _age(session.last_activity_age),
        "queue_depth": session.queue_depth,
        "oldest_queued_age": _age(session.oldest_queued_age),
        "asleep": session.asleep,
    }
