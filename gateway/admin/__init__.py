"""Operating a running gateway: the local admin socket, its snapshots, and ``doctor``'s checks.

The service implements :class:`AdminHandler` and mounts :func:`serve_admin` (``nursery.start``)
on :func:`admin_socket_path` of its data directory; ``impp-gateway status`` and ``sessions``
talk to it with :func:`admin_request`. docs/operations.md ("Status and sessions", "Doctor").
"""

from __future__ import annotations

from gateway.admin.client import (
    AdminClientError,
    GatewayNotRunningError,
    admin_request,
)
from gateway.admin.protocol import MAX_LINE, AdminProtocolError, parse_request_untrusted
from gateway.admin.server import (
    ADMIN_SOCKET_NAME,
    AdminHandler,
    AdminServer,
    AdminServerStatistics,
    AdminSocketError,
    admin_socket_path,
    serve_admin,
)
from gateway.admin.snapshots import (
    ListenerSnapshot,
    SessionSnapshot,
    StatusSnapshot,
    StoreSnapshot,
    session_to_json,
    status_to_json,
)

__all__ = [
    "ADMIN_SOCKET_NAME",
    "MAX_LINE",
    "AdminClientError",
    "AdminHandler",
    "AdminProtocolError",
    "AdminServer",
    "AdminServerStatistics",
    "AdminSocketError",
    "GatewayNotRunningError",
    "ListenerSnapshot",
    "SessionSnapshot",
    "StatusSnapshot",
    "StoreSnapshot",
    "admin_request",
    "admin_socket_path",
    "parse_request_untrusted",
    "serve_admin",
    "session_to_json",
    "status_to_json",
]
