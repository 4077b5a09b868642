"""Configuration, states and statistics of the gateway side (gateway_side.py).

Every limit is a named default with its reason; :class:`GatewayConfig` gathers them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from gateway.session.channel import ChannelConfig
from gateway.session.tickets import DEFAULT_TICKET_LIFETIME

DEFAULT_CID_LENGTH = 2  # gateway connection ids: 65536 sessions, 12-byte record overhead
DEFAULT_RETRY_THRESHOLD = 256  # handshakes in progress above which INITIALs need a retry token
DEFAULT_MAX_HANDSHAKES = 4096  # hard cap on handshake state
DEFAULT_MAX_SESSIONS = 60000  # established sessions (below the cid space)
DEFAULT_HANDSHAKE_TIMEOUT = 60.0  # seconds a half-open handshake is kept
DEFAULT_IDLE_TIMEOUT = 6 * 3600.0  # seconds without an authenticated record before forgetting
DEFAULT_ADDRESS_RATE = 2.0  # handshake-class packets per second per address
DEFAULT_ADDRESS_BURST = 10.0
DEFAULT_DEVICE_RATE = 200.0  # records per second per session
DEFAULT_DEVICE_BURST = 400.0
DEFAULT_MAX_HELD = 16  # datagrams held back per session by the amplification limit
DEFAULT_CHALLENGE_INTERVAL = 1.0  # seconds between PATH_CHALLENGEs to an unvalidated address
MAX_CHALLENGE_INTERVAL = 60.0  # back-off cap of the PATH_CHALLENGE timer (as MAX_RTO)
PROBE_RESERVE = 64  # bytes of 3x budget kept for PATH_CHALLENGEs: two probes of <= 32 bytes
MAX_OUTSTANDING_CHALLENGES = 3  # recent challenges whose response is still accepted


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
    device_rate: float = DEFAULT_DEVICE_RATE
    device_burst: float = DEFAULT_DEVICE_BURST
    max_held: int = DEFAULT_MAX_HELD


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
    resumptions: int
    migrations: int
    amplification_held: int  # datagrams delayed until the peer sent more or was validated
    retransmissions: int
    dropped: dict[str, int]
