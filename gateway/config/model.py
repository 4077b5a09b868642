"""The gateway's configuration as typed, frozen values, with every default named and explained.

:func:`gateway.config.load_configuration` builds a :class:`Configuration` from the TOML file
that ``impp-gateway init`` writes (``gateway/config/template.py``); nothing else constructs one
from text. Paths in the file are relative to the file's directory and are stored here resolved.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gateway.relay.config import DEFAULT_LINK_LOST_GRACE, DEFAULT_MAX_DIRECTED
from gateway.session.gateway_config import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_HANDSHAKES,
    DEFAULT_MAX_HANDSHAKES_PER_HOST,
    DEFAULT_MAX_SESSIONS,
)
from gateway.transport import DEFAULT_HOST
from gateway.xmpp import DEFAULT_MAX_STANZA_SIZE

__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_DEVICE_PORT",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_METRICS_HOST",
    "DEFAULT_METRICS_PORT",
    "DEFAULT_QUEUE_LENGTH",
    "MAX_SESSIONS_LIMIT",
    "Configuration",
    "EdhocSection",
    "GatewaySection",
    "LimitsSection",
    "ListenAddress",
    "ListenSection",
    "LogLevel",
    "MetricsSection",
    "SigningSection",
    "StoreSection",
    "Trust",
    "UpstreamDomain",
    "UpstreamSection",
]

CONFIG_FILE_NAME: Final = "gateway.toml"

# The device listeners' port, UDP and TCP alike. No IANA assignment: a registered-range port
# that the usual IMPP neighbours (CoAP 5683/5684, XMPP 5222/5269) do not use.
DEFAULT_DEVICE_PORT: Final = 5690

# Operations held for one sleeping device before the overflow policy applies: a night of chat
# and presence for a person's handheld, and a bound on what one device can make the store hold.
DEFAULT_QUEUE_LENGTH: Final = 1000

# Sessions are told apart by a 2-byte connection id (gateway.session DEFAULT_CID_LENGTH).
MAX_SESSIONS_LIMIT: Final = 65535

# Seconds a SIGTERM drain may take before the gateway exits anyway: long enough to flush the
# store and say Close to every device, short of systemd's default TimeoutStopSec (90 s).
DEFAULT_DRAIN_TIMEOUT: Final = 10.0

# The metrics endpoint: loopback, on the OpenTelemetry Prometheus exporter's default port.
DEFAULT_METRICS_HOST: Final = "127.0.0.1"
DEFAULT_METRICS_PORT: Final = 9464


class LogLevel(enum.Enum):
    """How much the gateway logs; never keys, passwords or message bodies at any level."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class ListenAddress:
    """One listener's address: an IP literal (or ``localhost``) and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class GatewaySection:
    """``[gateway]``: where the gateway keeps its files, how much it logs, how long it drains."""

    data_dir: Path
    log_level: LogLevel = LogLevel.INFO
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT


@dataclass(frozen=True)
class ListenSection:
    """``[listen]``: the device listeners; loopback only unless ``allow_public``."""

    udp: tuple[ListenAddress, ...] = (ListenAddress(DEFAULT_HOST, DEFAULT_DEVICE_PORT),)
    tcp: tuple[ListenAddress, ...] = (ListenAddress(DEFAULT_HOST, DEFAULT_DEVICE_PORT),)
    allow_public: bool = False


@dataclass(frozen=True)
class EdhocSection:
    """``[edhoc]``: the gateway's static EDHOC key (PKCS #8 PEM) and its CCS credential."""

    key_file: Path
    credential_file: Path


@dataclass(frozen=True)
class SigningSection:
    """``[signing]``: the S/MIME CA directory (gateway.signing) and its optional passphrase."""

    ca_dir: Path
    passphrase_file: Path | None = None


@dataclass(frozen=True)
class StoreSection:
    """``[store]``: the SQLite database (gateway.store)."""

    database: Path


@dataclass(frozen=True)
class Trust:
    """Which CAs an upstream server's certificate must chain to: the system's, or one PEM file."""

    ca_file: Path | None = None  # None: the system's default store

    def __str__(self) -> str:
        return "system" if self.ca_file is None else str(self.ca_file)


@dataclass(frozen=True)
class UpstreamDomain:
    """``[upstream.domains."DOMAIN"]``: how to reach one account domain's XMPP server."""

    domain: str
    server_host: str | None = None  # None: SRV, then DOMAIN:5222 (gateway.xmpp.resolver)
    server_port: int | None = None
    trust: Trust = field(default_factory=Trust)
    allow_plaintext: bool = False  # honoured only on loopback (gateway.xmpp.client)
    max_stanza_size: int = DEFAULT_MAX_STANZA_SIZE


@dataclass(frozen=True)
class UpstreamSection:
    """``[upstream]``: defaults for every domain, and the domains configured by name."""

    trust: Trust = field(default_factory=Trust)
    max_stanza_size: int = DEFAULT_MAX_STANZA_SIZE
    domains: tuple[UpstreamDomain, ...] = ()


@dataclass(frozen=True)
class LimitsSection:
    """``[limits]``: capacity limits of the device side (gateway.session's defaults), and the
    relay's: how long a device that vanished stays shown available, how many directed
    presences it may hold (gateway.relay.config's defaults)."""

    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_handshakes: int = DEFAULT_MAX_HANDSHAKES
    max_handshakes_per_host: int = DEFAULT_MAX_HANDSHAKES_PER_HOST
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    queue_length: int = DEFAULT_QUEUE_LENGTH
    link_lost_grace: float = DEFAULT_LINK_LOST_GRACE
    max_directed: int = DEFAULT_MAX_DIRECTED


@dataclass(frozen=True)
class MetricsSection:
    """``[metrics]``: the operations endpoint (``/metrics``, ``/healthz``, ``/readyz`` and the
    status page); loopback only unless ``allow_public``, and then the page needs a token."""

    enabled: bool = True
    listen: ListenAddress = ListenAddress(DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT)
    allow_public: bool = False
    status_token_file: Path | None = None  # None: the page is served without a token


@dataclass(frozen=True)
class Configuration:
    """The whole validated configuration, and the file it came from."""

    source: Path
    gateway: GatewaySection
    listen: ListenSection
    edhoc: EdhocSection
    signing: SigningSection
    store: StoreSection
    upstream: UpstreamSection
    limits: LimitsSection
    metrics: MetricsSection = field(default_factory=MetricsSection)
