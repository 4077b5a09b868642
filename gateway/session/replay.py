"""Anti-replay sliding window (RFC 8613 §7.4, RFC 6479 bitmap style).

The window remembers the highest number accepted and a bitmap of the ``size`` numbers below it.
:meth:`ReplayWindow.check` is a pure test; :meth:`ReplayWindow.mark` is called only after the
record was successfully decrypted, so a forged record can never move the window.
"""

from __future__ import annotations

from functools import cache

from gateway.session.errors import LocalSessionError

DEFAULT_REPLAY_WINDOW = 128  # records; RFC 8613 asks for at least 32, the issue for 64


@cache
def _mask(size: int) -> int:
    return (1 << size) - 1


class ReplayWindow:
    """Which sequence numbers have already been accepted."""

    __slots__ = ("_bitmap", "_mask", "highest", "size")

    def __init__(self, size: int = DEFAULT_REPLAY_WINDOW) -> None:
        if size < 64:
            raise LocalSessionError("replay window must hold at least 64 numbers")
        self.size = size
        self._mask = _mask(size)  # shared by every window of this size
        self.highest = -1
        self._bitmap = 0  # bit i set: highest - i was accepted

    def check(self, sequence: int) -> bool:
        """True if ``sequence`` is new and not left of the window."""
        if sequence > self.highest:
            return True
        offset = self.highest - sequence
        if offset >= self.size:
            return False
        return not (self._bitmap >> offset) & 1

    def is_newest(self, sequence: int) -> bool:
        """True if ``sequence`` would move the window forward."""
        return sequence > self.highest

    def mark(self, sequence: int) -> None:
        """Record ``sequence`` as accepted (after successful decryption only)."""
        if sequence > self.highest:
            shift = sequence - self.highest
            self._bitmap = ((self._bitmap << shift) | 1) & self._mask if shift < self.size else 1
            self.highest = sequence
        else:
            self._bitmap |= 1 << (self.highest - sequence)
