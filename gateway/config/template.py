"""The commented TOML configuration that ``impp-gateway init`` writes.

Every key the loader (``gateway/config/loader.py``) knows appears here with its default and a
comment saying what it means; a test holds the template, the loader and docs/operations.md to
the same set of keys.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from gateway.config.model import (
    DEFAULT_DEVICE_PORT,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_METRICS_HOST,
    DEFAULT_METRICS_PORT,
    DEFAULT_QUEUE_LENGTH,
    MAX_SESSIONS_LIMIT,
)
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

__all__ = ["DOMAIN_TEMPLATE", "TEMPLATE", "render_configuration"]

TEMPLATE = string.Template(
    """\
# impp-gateway configuration, written by 'impp-gateway init'.
# Checked on every start and by 'impp-gateway config check --config THIS_FILE'.
# data_dir is relative to the directory of this file; the other relative paths are
# relative to data_dir.

[gateway]
# Directory holding the gateway's files (keys, CA, database), mode 0700; "." is the
# directory of this file.
data_dir = "."
# How much to log: "debug", "info", "warning" or "error". Keys, passwords and message
# bodies are never logged at any level.
log_level = "info"
# Seconds a SIGTERM drain may take (stop handshakes, close device sessions, persist each
# upstream stream's resumption state and leave it resumable, flush the store) before the
# gateway exits anyway. Keep systemd's TimeoutStopSec above it. Live on SIGHUP.
drain_timeout = $drain_timeout

[listen]
# Where devices reach the gateway: lists of "HOST:PORT" ("[IPv6]:PORT" for IPv6), HOST an IP
# address or "localhost". An empty list runs no listener of that kind.
udp = ["$host:$port"]
tcp = ["$host:$port"]
# Must be true before any listener may bind beyond loopback (for example "0.0.0.0:$port"):
# exposing the gateway to a network is a decision, not a default.
allow_public = false

[edhoc]
# The gateway's static EDHOC key (P-256, PKCS #8 PEM, mode 0600) and its CCS credential
# (RFC 9528 §3.5.3, with the gateway's kid), which devices receive at enrollment.
key_file = "edhoc-key.pem"
credential_file = "edhoc-credential.ccs"

[signing]
# The S/MIME CA that certifies each device's signing key (RFC 3923; 'impp-gateway ca ...'):
# ca-key.pem, ca-cert.pem and device-kek.pem, each mode 0600, in a directory of mode 0700.
ca_dir = "ca"
# A file (mode 0600) holding the passphrase of the CA key and KEK; "" when they have none.
passphrase_file = ""

[store]
# The SQLite database: device registry, credentials, durable queues (mode 0600).
database = "gateway.sqlite3"

[upstream]
# Defaults for every account domain; a [upstream.domains."DOMAIN"] table overrides them.
# Which CAs a server certificate must chain to: "system" or the path of a PEM bundle.
trust = "system"
# The largest stanza accepted from a server, in bytes (10000 to 16777216).
max_stanza_size = $max_stanza_size

# One table per account domain the gateway serves. Keys (all optional):
#   server = "HOST:PORT"      connect there instead of looking up SRV, then DOMAIN:5222
#   trust = "system" | "FILE" as above, for this domain
#   allow_plaintext = false   true allows a server without TLS, only if server is loopback
#   max_stanza_size = N       as above, for this domain
$domains
[limits]
# Established device sessions, at most $max_sessions_limit (2-byte connection ids).
max_sessions = $max_sessions
# Device handshakes in progress, over all hosts, and per host (IPv4 address or IPv6 /64).
max_handshakes = $max_handshakes
max_handshakes_per_host = $max_handshakes_per_host
# Seconds a half-open handshake is kept, and an idle session before it is forgotten.
handshake_timeout = $handshake_timeout
idle_timeout = $idle_timeout
# Operations queued for one sleeping device before its overflow policy applies.
queue_length = $queue_length
# Seconds a device whose session ended without Sleep (radio lost, battery gone) stays shown
# available to its watchers, waiting for a new session, before they see it unavailable.
link_lost_grace = $link_lost_grace
# Watchers one device may send a directed presence to (0 to 100000); more are refused with
# QUEUE_FULL.
max_directed = $max_directed

[metrics]
# The operations endpoint: /metrics (Prometheus), /healthz, /readyz and the status page
# /status/. false serves none of them.
enabled = true
# "HOST:PORT"; loopback unless allow_public (port 0: any free port).
listen = "$metrics_host:$metrics_port"
# Must be true before the endpoint may listen beyond loopback; the status page then needs a
# token file too.
allow_public = false
# A file (mode 0600) holding the status page's bearer token; "" serves the page without one
# (loopback only).
status_token_file = ""
"""
)

DOMAIN_TEMPLATE = string.Template(
    """\
[upstream.domains."$domain"]
# server = "xmpp.$domain:5222"
"""
)

EXAMPLE_DOMAIN = """\
# [upstream.domains."example.org"]
# server = "127.0.0.1:5222"
# trust = "/etc/ssl/example-ca.pem"
# allow_plaintext = false
# max_stanza_size = 262144
"""


def render_configuration(
    domains: Sequence[str] = (), *, host: str = DEFAULT_HOST, port: int = DEFAULT_DEVICE_PORT
) -> str:
    """The configuration text with one table per domain (already validated domain names)."""
    tables = "\n".join(DOMAIN_TEMPLATE.substitute(domain=d) for d in domains)
    return TEMPLATE.substitute(
        host=host,
        port=port,
        max_stanza_size=DEFAULT_MAX_STANZA_SIZE,
        domains=tables or EXAMPLE_DOMAIN,
        max_sessions=DEFAULT_MAX_SESSIONS,
        max_sessions_limit=MAX_SESSIONS_LIMIT,
        max_handshakes=DEFAULT_MAX_HANDSHAKES,
        max_handshakes_per_host=DEFAULT_MAX_HANDSHAKES_PER_HOST,
        handshake_timeout=DEFAULT_HANDSHAKE_TIMEOUT,
        idle_timeout=DEFAULT_IDLE_TIMEOUT,
        queue_length=DEFAULT_QUEUE_LENGTH,
        link_lost_grace=DEFAULT_LINK_LOST_GRACE,
        max_directed=DEFAULT_MAX_DIRECTED,
        drain_timeout=DEFAULT_DRAIN_TIMEOUT,
        metrics_host=DEFAULT_METRICS_HOST,
        metrics_port=DEFAULT_METRICS_PORT,
    )
