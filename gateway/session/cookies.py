"""Stateless retry tokens: under handshake load the gateway keeps no state for an INITIAL until
the sender proves it receives at its address (RFC 9000 §8.1.2, DTLS cookies RFC 9147 §5.1).

A token is ``issued_at (4, seconds) || HMAC-SHA-256(key, address || issued_at)[:12]``; it is valid
for ``lifetime`` seconds from that address only. The key is per process: a restart simply makes
devices ask again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_LENGTH = 16
DEFAULT_TOKEN_LIFETIME = 30.0  # seconds a retry token is accepted


def address_bytes(address: object) -> bytes:
    """A stable byte form of a transport address (host, port[, ...])."""
    return repr(address).encode("utf-8", "backslashreplace")


class RetryTokens:
    """Issue and check stateless retry tokens."""

    def __init__(self, *, lifetime: float = DEFAULT_TOKEN_LIFETIME, key: bytes | None = None):
        self.lifetime = lifetime
        self._key = key if key is not None else secrets.token_bytes(32)

    def _mac(self, address: object, issued: bytes) -> bytes:
        return hmac.new(self._key, address_bytes(address) + issued, hashlib.sha256).digest()[:12]

    def issue(self, address: object, now: float) -> bytes:
        """A token for ``address``."""
        issued = (int(now) & 0xFFFFFFFF).to_bytes(4, "big")
        return issued + self._mac(address, issued)

    def valid(self, token: bytes, address: object, now: float) -> bool:
        """True if ``token`` was issued to ``address`` within its lifetime (constant-time check)."""
        if len(token) != TOKEN_LENGTH:
            return False
        issued = token[:4]
        age = (int(now) - int.from_bytes(issued, "big")) & 0xFFFFFFFF
        if age > self.lifetime:
            return False
        return hmac.compare_digest(token[4:], self._mac(address, issued))
