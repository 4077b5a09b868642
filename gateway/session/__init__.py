"""Secure device sessions over UDP and TCP (sans-IO): record protection, reliable delivery,
mobility, resumption and denial-of-service defences. See docs/protocol.md ("Session layer").

What a user of the package needs is exported here: the two endpoints (:class:`GatewaySessions`,
:class:`DeviceSession`) with their configurations, statistics and states, the adapters that plug
EDHOC and the wire codec into them, the ticket key ring a gateway persists, the events and the
error tree, and the packet parser and TCP framing that transports and tools use. The internals
(record protection, replay window, fragmentation, tickets' packet formats, control items, ...)
stay importable from their modules.
"""

from __future__ import annotations

from gateway.session.channel import ChannelConfig, ChannelStatistics
from gateway.session.codec import MessageCodec, WireCodec
from gateway.session.device_side import DeviceSession, DeviceSessionState, DeviceStatistics
from gateway.session.errors import (
    DropReason,
    LocalSessionError,
    PacketError,
    RemoteSessionError,
    SessionError,
    SessionFailedError,
)
from gateway.session.events import (
    DeviceSessionEstablished,
    DeviceSessionResumed,
    Event,
    KeyUpdated,
    OperationAcknowledged,
    OperationReceived,
    OperationRejected,
    PathMigrated,
    PathValidated,
    SessionClosed,
    TicketReceived,
)
from gateway.session.gateway_config import GatewayConfig, GatewayStatistics, SessionState
from gateway.session.gateway_side import GatewaySessions
from gateway.session.handshake import EdhocInitiator, EdhocResponder, HandshakeFailedError
from gateway.session.packets import (
    HandshakeKind,
    HandshakePacket,
    ProtectedRecord,
    StreamDeframer,
    frame,
    parse_packet_untrusted,
)
from gateway.session.tickets import TicketKeyRing, TicketRejectedError, TicketRingFileError

__all__ = [
    "ChannelConfig",
    "ChannelStatistics",
    "DeviceSession",
    "DeviceSessionEstablished",
    "DeviceSessionResumed",
    "DeviceSessionState",
    "DeviceStatistics",
    "DropReason",
    "EdhocInitiator",
    "EdhocResponder",
    "Event",
    "GatewayConfig",
    "GatewaySessions",
    "GatewayStatistics",
    "HandshakeFailedError",
    "HandshakeKind",
    "HandshakePacket",
    "KeyUpdated",
    "LocalSessionError",
    "MessageCodec",
    "OperationAcknowledged",
    "OperationReceived",
    "OperationRejected",
    "PacketError",
    "PathMigrated",
    "PathValidated",
    "ProtectedRecord",
    "RemoteSessionError",
    "SessionClosed",
    "SessionError",
    "SessionFailedError",
    "SessionState",
    "StreamDeframer",
    "TicketKeyRing",
    "TicketReceived",
    "TicketRejectedError",
    "TicketRingFileError",
    "WireCodec",
    "frame",
    "parse_packet_untrusted",
]
