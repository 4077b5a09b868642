"""Stateless reset tokens: REJECTs that only the gateway can make (RFC 9000 §10.3 in spirit).

A REJECT tells a device that the gateway no longer holds its session, so the device resumes. Sent
in the clear, it must not be forgeable, or anyone could knock any device out of its session. Each
connection id ``cid`` therefore has a token ``HMAC-SHA-256(reset_key, "reset" || cid)[:16]``,
which the gateway gives the device inside the session (in NewTicket, codec.py); a device acts on a
REJECT(unknown connection) only when it carries its own connection id's token, compared in constant
time. The gateway recomputes the token from the connection id alone, so it can answer a record of
a session it lost (a restart: the reset key is persisted with the ticket key ring, tickets.py).

Indistinguishability (RFC 9000 §10.3.1's concern, seen from the other side): a record that fails
authentication on a *live* connection id is answered with a REJECT of the same size whose token is
``HMAC(reset_key, "decoy" || cid)[:16]``, so a prober who sends records to every id sees one
REJECT per id, deterministic per id, and cannot tell live ids from free ones; the live device
ignores the decoy, whose token is not its own.

A free id's token is revealed to whoever probes it (only when a REJECT carrying it is actually
sent). Connection ids are short and are reused, so :class:`ConnectionIds` keeps the exact set of
ids that are free and whose token was never revealed, and allocates from it uniformly at random.
When that set is empty (someone swept every free id; each token is revealed only by a REJECT,
rate-limited per host and globally, gateway_side.py), the free id revealed longest ago is reissued
in a new *epoch*: its token becomes ``HMAC(reset_key, "reset" || cid || epoch)[:16]``, which
nobody was sent. The epoch lives in memory only, so after a restart the gateway answers that id
with its epoch-0 token, which such a device ignores; it then recovers by its own timeout instead
of at once (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from gateway.session.errors import LocalSessionError

RESET_TOKEN_LENGTH = 16  # bytes: as QUIC's stateless reset token (RFC 9000 §10.3)
RESET_KEY_LENGTH = 32
DEFAULT_MAX_REVEALED = 1 << 16  # connection ids whose revealed token is remembered


class ResetTokens:
    """Compute reset and decoy tokens from the gateway's reset key; track revealed ids."""

    def __init__(self, key: bytes, *, max_revealed: int = DEFAULT_MAX_REVEALED) -> None:
        if len(key) != RESET_KEY_LENGTH:
            raise LocalSessionError("reset keys are 32 bytes")
        self._key = key
        self.max_revealed = max_revealed
        self._revealed: dict[bytes, None] = {}

    def __repr__(self) -> str:
        return f"ResetTokens(revealed={len(self._revealed)})"

    def token(self, connection_id: bytes, epoch: int = 0) -> bytes:
        """The reset token of ``connection_id`` in ``epoch`` (what its device holds).

        Epoch 0, the usual one, is computed from the id alone and so survives a restart; a later
        epoch is used only for an id reissued after its epoch-0 token was revealed.
        """
        suffix = epoch.to_bytes(8, "big") if epoch else b""
        return hmac.new(self._key, b"reset" + connection_id + suffix, hashlib.sha256).digest()[
            :RESET_TOKEN_LENGTH
        ]

    def decoy(self, connection_id: bytes) -> bytes:
        """A token of the same size that is not ``connection_id``'s, the same on every call."""
        return hmac.new(self._key, b"decoy" + connection_id, hashlib.sha256).digest()[
            :RESET_TOKEN_LENGTH
        ]

    def reveal(self, connection_id: bytes) -> bytes:
        """The token to send for a free ``connection_id``; remembers that it is now known."""
        self._revealed.pop(connection_id, None)
        self._revealed[connection_id] = None
        while len(self._revealed) > self.max_revealed:
            self._revealed.pop(next(iter(self._revealed)))
        return self.token(connection_id)

    def revealed(self, connection_id: bytes) -> bool:
        """True if ``connection_id``'s token was sent while it was free."""
        return connection_id in self._revealed


def token_matches(expected: bytes, received: bytes) -> bool:
    """Constant-time comparison of a REJECT's token with the device's own."""
    return len(expected) == RESET_TOKEN_LENGTH and hmac.compare_digest(expected, received)


class ConnectionIds:
    """The gateway's connection ids: in use, free and unrevealed, or revealed.

    The free unrevealed ids are a sparse Fisher-Yates array over ``[0, 256**length)``: only the
    positions that moved are stored, so memory is proportional to the ids ever touched, and
    picking, removing and returning an id are O(1).
    """

    def __init__(
        self,
        length: int,
        random_bytes: Callable[[int], bytes],
        *,
        max_revealed: int = DEFAULT_MAX_REVEALED,
    ) -> None:
        self.length = length
        self.max_revealed = max_revealed
        self._random_bytes = random_bytes
        self._size = 1 << (8 * length)  # free unrevealed ids: positions [0, size)
        self._value_at: dict[int, int] = {}  # position -> id, where not the identity
        self._position_of: dict[int, int] = {}  # id -> position, where not the identity
        self._in_use: set[bytes] = set()
        self._revealed: dict[bytes, None] = {}  # oldest revealed first
        self._epochs: dict[bytes, int] = {}  # ids reissued after a reveal -> their epoch

    def __repr__(self) -> str:
        return (
            f"ConnectionIds(in_use={len(self._in_use)}, unrevealed_free={self._size}, "
            f"revealed={len(self._revealed)})"
        )

    @property
    def unrevealed_free(self) -> int:
        """How many free ids have a token nobody was sent."""
        return self._size

    def allocate(self) -> bytes:
        """A free id: unrevealed while any is left, else the one revealed longest ago."""
        if self._size:
            draw = int.from_bytes(self._random_bytes(8), "big") % self._size
            value = self._value(draw)
            self._remove(value)
            connection_id = value.to_bytes(self.length, "big")
        else:
            reissue = next((c for c in self._revealed if c not in self._in_use), None)
            if reissue is None:
                raise LocalSessionError("no free connection id")
            del self._revealed[reissue]
            self._epochs[reissue] = self._epochs.get(reissue, 0) + 1
            connection_id = reissue
        self._in_use.add(connection_id)
        return connection_id

    def epoch(self, connection_id: bytes) -> int:
        """The epoch of ``connection_id``'s reset token (0 unless it was reissued)."""
        return self._epochs.get(connection_id, 0)

    def release(self, connection_id: bytes) -> None:
        """``connection_id``'s session ended: free again (unrevealed unless it was revealed)."""
        if connection_id not in self._in_use:
            return
        self._in_use.discard(connection_id)
        if connection_id not in self._revealed:
            self._insert(int.from_bytes(connection_id, "big"))

    def reveal(self, connection_id: bytes) -> None:
        """A REJECT with ``connection_id``'s reset token was sent while it was free."""
        if len(connection_id) != self.length:
            return
        value = int.from_bytes(connection_id, "big")
        if connection_id not in self._in_use and connection_id not in self._revealed:
            self._remove(value)
        self._revealed.pop(connection_id, None)
        self._revealed[connection_id] = None
        while len(self._revealed) > self.max_revealed:
            forgotten = next(iter(self._revealed))
            del self._revealed[forgotten]
            if forgotten not in self._in_use:
                self._insert(int.from_bytes(forgotten, "big"))

    def revealed(self, connection_id: bytes) -> bool:
        """True if ``connection_id``'s token was sent while it was free."""
        return connection_id in self._revealed

    def _value(self, position: int) -> int:
        return self._value_at.get(position, position)

    def _position(self, value: int) -> int:
        return self._position_of.get(value, value)

    def _set(self, position: int, value: int) -> None:
        if position == value:
            self._value_at.pop(position, None)
            self._position_of.pop(value, None)
        else:
            self._value_at[position] = value
            self._position_of[value] = position

    def _swap(self, first: int, second: int) -> None:
        value_first, value_second = self._value(first), self._value(second)
        self._set(first, value_second)
        self._set(second, value_first)

    def _remove(self, value: int) -> None:
        """Take ``value`` (inside the array) out of it."""
        self._swap(self._position(value), self._size - 1)
        self._size -= 1

    def _insert(self, value: int) -> None:
        """Put ``value`` (outside the array) back into it."""
        self._swap(self._position(value), self._size)
        self._size += 1
