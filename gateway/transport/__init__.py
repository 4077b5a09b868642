"""trio adapters for device sessions: the gateway's UDP endpoint and TCP listener, and device-side
drivers. The only socket code on the device side; all protocol logic is in gateway.session.
"""

from __future__ import annotations

from gateway.transport._driver import CoreDriver, DeviceSessionEvent, TransportStatistics
from gateway.transport.device import (
    DeviceDriver,
    DeviceTransportStatistics,
    run_device_over_stream,
    run_device_over_udp,
)
from gateway.transport.tcp import StreamGateway, TcpListener
from gateway.transport.udp import DEFAULT_HOST, UdpEndpoint

__all__ = [
    "DEFAULT_HOST",
    "CoreDriver",
    "DeviceDriver",
    "DeviceSessionEvent",
    "DeviceTransportStatistics",
    "StreamGateway",
    "TcpListener",
    "TransportStatistics",
    "UdpEndpoint",
    "run_device_over_stream",
    "run_device_over_udp",
]
