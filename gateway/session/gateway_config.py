"""Configuration, states and statistics of the gateway side (gateway_side.py).

Every limit is a named default with its reason; :class:`GatewayConfig` gathers them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from gateway.session.channel import DEFAULT_MAX_ACKNOWLEDGEMENT_HOLD, ChannelConfig
from gateway.session.mobility import DEFAULT_MAX_HELD
from gateway.session.tickets import DEFAULT_TICKET_LIFETIME

DEFAULT_CID_LENGTH = 2  # gateway connection ids: 65536 sessions, 12-byte record overhead
DEFAULT_RETRY_THRESHOLD = 256  # handshakes in progress above which INITIALs need a retry token
DEFAULT_MAX_HANDSHAKES = 4096  # hard cap on handshake state
DEFAULT_MAX_SESSIONS = 60000  # established sessions (below the cid space)
DEFAULT_HANDSHAKE_TIMEOUT = 60.0  # seconds a half-open handshake is kept
DEFAULT_IDLE_TIMEOUT = 6 * 3600.0  # seconds without an authenticated record before forgetting
DEFAULT_ADDRESS_RATE = 2.0  # INITIALs and verified RESUMEs per second per host (hosts.py)
DEFAULT_ADDRESS_BURST = 10.0
DEFAULT_VALIDATED_RATE = 2.0  # INITIALs with a valid retry token per second per address
DEFAULT_VALIDATED_BURST = 10.0
DEFAULT_REJECT_RATE = 2.0  # REJECTs (and RETRYs beyond the INITIAL budget) per second per host
DEFAULT_REJECT_BURST = 10.0
DEFAULT_GLOBAL_REJECT_RATE = 1000.0  # REJECTs and such RETRYs per second in all
DEFAULT_GLOBAL_REJECT_BURST = 2000.0
DEFAULT_HANDSHAKE_PACKET_RATE = 10.0  # HANDSHAKE packets (message_3) per second per host
DEFAULT_HANDSHAKE_PACKET_BURST = 20.0  # a device repeats message_3 at most 8 times
DEFAULT_HOST_RECORD_RATE = 2000.0  # failed records (unknown id, failed AEAD) per second per
DEFAULT_HOST_RECORD_BURST = 4000.0  # host; once spent, only sessions' own validated paths count
DEFAULT_DEVICE_RATE = 200.0  # authenticated records per second per session
DEFAULT_DEVICE_BURST = 400.0
DEFAULT_MAX_HANDSHAKES_PER_HOST = 16  # half-open handshakes one host may hold
DEFAULT_RETRY_PER_HOST = 4  # half-open handshakes of a host above which its INITIALs need a token


class SessionState(enum.Enum):
    """Lifecycle of one gateway-side session."""

    HANDSHAKING = "handshaking"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Input(enum.Enum):
    """Authenticated inputs that move a session."""

    HANDSHAKE_COMPLETED = "handshake_completed"
    CLOSE = "close"
    TIMEOUT = "timeout"


TRANSITIONS: dict[tuple[SessionState, Input], SessionState] = {
    (SessionState.HANDSHAKING, Input.HANDSHAKE_COMPLETED): SessionState.ESTABLISHED,
    (SessionState.HANDSHAKING, Input.TIMEOUT): SessionState.CLOSED,
    (SessionState.HANDSHAKING, Input.CLOSE): SessionState.CLOSED,
    (SessionState.ESTABLISHED, Input.CLOSE): SessionState.CLOSED,
    (SessionState.ESTABLISHED, Input.TIMEOUT): SessionState.CLOSED,
}


@dataclass(frozen=True)
class GatewayConfig:
    """Limits of the gateway side; defaults are named and explained above."""

    cid_length: int = DEFAULT_CID_LENGTH
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    retry_threshold: int = DEFAULT_RETRY_THRESHOLD
    max_handshakes: int = DEFAULT_MAX_HANDSHAKES
    max_sessions: int = DEFAULT_MAX_SESSIONS
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    ticket_lifetime: int = DEFAULT_TICKET_LIFETIME
    address_rate: float = DEFAULT_ADDRESS_RATE
    address_burst: float = DEFAULT_ADDRESS_BURST
    validated_rate: float = DEFAULT_VALIDATED_RATE
    validated_burst: float = DEFAULT_VALIDATED_BURST
    reject_rate: float = DEFAULT_REJECT_RATE
    reject_burst: float = DEFAULT_REJECT_BURST
    global_reject_rate: float = DEFAULT_GLOBAL_REJECT_RATE
    global_reject_burst: float = DEFAULT_GLOBAL_REJECT_BURST
    handshake_packet_rate: float = DEFAULT_HANDSHAKE_PACKET_RATE
    handshake_packet_burst: float = DEFAULT_HANDSHAKE_PACKET_BURST
    host_record_rate: float = DEFAULT_HOST_RECORD_RATE
    host_record_burst: float = DEFAULT_HOST_RECORD_BURST
    max_handshakes_per_host: int = DEFAULT_MAX_HANDSHAKES_PER_HOST
    retry_per_host: int = DEFAULT_RETRY_PER_HOST
    device_rate: float = DEFAULT_DEVICE_RATE
    device_burst: float = DEFAULT_DEVICE_BURST
    max_held: int = DEFAULT_MAX_HELD
    # Acknowledge a record of operations only once the application released each one
    # (GatewaySessions.release): the service does, once it commits them. Off by default so that
    # a caller that never releases is acknowledged on receipt, as before, instead of stalling.
    hold_acknowledgements: bool = False
    max_acknowledgement_hold: float = DEFAULT_MAX_ACKNOWLEDGEMENT_HOLD


@dataclass(frozen=True)
class GatewayStatistics:
    """A frozen snapshot of the demultiplexer's counters."""

    datagrams_received: int
    datagrams_sent: int
    bytes_received: int
    bytes_sent: int
    handshakes_in_progress: int
    sessions: int
    retries_sent: int
    handshakes_completed: int  # full handshakes that opened a session
    resumptions: int  # resumptions that opened a session (failures are in ``dropped``)
    replaced: int  # sessions ended because their identity resumed
    rejects_sent: int  # REJECTs with a reset token or a decoy (resets.py)
    handshakes_evicted: int  # half-open handshakes dropped to admit another host's
    migrations: int
    amplification_held: int  # datagrams delayed until the peer sent more or was validated
    retransmissions: int
    acknowledgements_held: int  # received records now waiting for the application's release
    acknowledgements_overdue: int  # sessions ended because a record outlived its maximum hold
    dropped: dict[str, int]
