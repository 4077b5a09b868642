"""The device client: a sans-IO reference of what a constrained device does (see core.py)."""

from __future__ import annotations

from device_sim.client.core import (
    DEDUPE_WINDOW,
    DEFAULT_MAX_OUTBOX,
    STATE_BOUND_EMPTY_OUTBOX,
    TRANSITIONS,
    ClientError,
    ClientInput,
    ClientState,
    DeviceClient,
    InboundWindow,
    OutboxFullError,
    StateSize,
    initiator_factory,
)
from device_sim.client.events import (
    BacklogAnnounced,
    ClientClosed,
    ClientEvent,
    Connected,
    DeliveryReported,
    MessageAccepted,
    MessageArrived,
    OperationRefused,
    PresenceChanged,
    Slept,
    Woke,
)

__all__ = [
    "DEDUPE_WINDOW",
    "DEFAULT_MAX_OUTBOX",
    "STATE_BOUND_EMPTY_OUTBOX",
    "TRANSITIONS",
    "BacklogAnnounced",
    "ClientClosed",
    "ClientError",
    "ClientEvent",
    "ClientInput",
    "ClientState",
    "Connected",
    "DeliveryReported",
    "DeviceClient",
    "InboundWindow",
    "MessageAccepted",
    "MessageArrived",
    "OperationRefused",
    "OutboxFullError",
    "PresenceChanged",
    "Slept",
    "StateSize",
    "Woke",
    "initiator_factory",
]
