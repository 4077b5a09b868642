"""The relay: binds a device's session to its upstream account and translates both ways.

Sans-IO at its core (:class:`DeviceRelay`: a device operation or an upstream event in, commands
out, as wsproto composes its parts); :mod:`gateway.relay.xmpp_upstream` carries the upstream
commands out on the sans-IO XMPP client. docs/relay.md describes the command set, the
translation table both ways, the sleep/wake rules and the acknowledgement rules.
"""

from __future__ import annotations

from gateway.relay import commands
from gateway.relay.commands import Command, DeviceCommand, StoreCommand, UpstreamCommand
from gateway.relay.contacts import ContactBook
from gateway.relay.errors import LocalRelayError, RelayError
from gateway.relay.inputs import DeviceDelivered, DeviceLinkLost, DeviceLinkUp, QueueOverflowed
from gateway.relay.relay import (
    DeviceInput,
    DeviceRelay,
    InboundVerifier,
    RelayConfig,
    RelayStatistics,
    SleepState,
)
from gateway.relay.signing import DeviceSigner, OnBehalfDeviceSigner

__all__ = [
    "Command",
    "ContactBook",
    "DeviceCommand",
    "DeviceDelivered",
    "DeviceInput",
    "DeviceLinkLost",
    "DeviceLinkUp",
    "DeviceRelay",
    "DeviceSigner",
    "InboundVerifier",
    "LocalRelayError",
    "OnBehalfDeviceSigner",
    "QueueOverflowed",
    "RelayConfig",
    "RelayError",
    "RelayStatistics",
    "SleepState",
    "StoreCommand",
    "UpstreamCommand",
    "commands",
]
