"""The relay's error tree: only our misuse, since the relay reads no network bytes itself.

Everything a device or an upstream can send reaches the relay already decoded (wire messages,
XMPP events) and is answered with commands, never with an exception; :class:`LocalRelayError`
means the program driving the relay broke its contract (an object that is neither a wire message
nor an upstream event, a relay used after :meth:`~gateway.relay.DeviceRelay.close`).
"""

from __future__ import annotations

__all__ = ["LocalRelayError", "RelayError"]


class RelayError(Exception):
    """Base of the relay's errors."""


class LocalRelayError(RelayError):
    """The caller misused the relay (a bug in the service layer, never the peer's fault)."""
