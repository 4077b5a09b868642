"""The running gateway service (issue 12, transparent mode): listeners, bindings, upstreams.

:class:`GatewayService` composes the store, the device listeners, one upstream XMPP session and
one :class:`~gateway.relay.DeviceRelay` per enrolled device; :class:`DeviceBinding` is the
executor of one relay's commands; :mod:`gateway.service.ops` mounts the operations side
(metrics, readiness, status page, admin socket). docs/service.md describes what runs, the
lifecycle of a binding and the acknowledgement rules as implemented.
"""

from __future__ import annotations

from gateway.service.binding import BindingCounters, DeviceBinding, DeviceLink
from gateway.service.ops import ServiceAdmin, ServiceStatus, start_operations
from gateway.service.registry import DeviceRegistry, EnrolledDevice
from gateway.service.service import (
    DEFAULT_REGISTRY_REFRESH,
    TICKET_RING_BLOB,
    GatewayService,
    ServiceAddresses,
)

__all__ = [
    "DEFAULT_REGISTRY_REFRESH",
    "TICKET_RING_BLOB",
    "BindingCounters",
    "DeviceBinding",
    "DeviceLink",
    "DeviceRegistry",
    "EnrolledDevice",
    "GatewayService",
    "ServiceAddresses",
    "ServiceAdmin",
    "ServiceStatus",
    "start_operations",
]
