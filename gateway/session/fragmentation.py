"""Fragmentation of operations larger than one record, and bounded reassembly.

Theory of operation. An encoded wire message that does not fit in one record's plaintext is cut
into consecutive reliable records marked FIRST, MIDDLE..., LAST in the header (packets.py). The
reliable sequence delivers records exactly once and in order, so reassembly is concatenation: no
offsets or message ids travel. Reassembly memory is bounded by ``max_operation_size``, checked
before each fragment is appended (RFC 8085 §3.2: fragments beyond the path MTU are the
application's business over UDP).
"""

from __future__ import annotations

from gateway.session.errors import DropReason, RemoteSessionError
from gateway.session.packets import Fragment

DEFAULT_MAX_OPERATION_SIZE = 256 * 1024 + 1024  # gateway.wire's 256 KiB message plus its envelope


def split(operation: bytes, max_fragment: int) -> list[tuple[Fragment, bytes]]:
    """Cut an encoded operation into fragments of at most ``max_fragment`` bytes."""
    if len(operation) <= max_fragment:
        return [(Fragment.WHOLE, operation)]
    pieces = [operation[i : i + max_fragment] for i in range(0, len(operation), max_fragment)]
    marked = [(Fragment.MIDDLE, piece) for piece in pieces]
    marked[0] = (Fragment.FIRST, pieces[0])
    marked[-1] = (Fragment.LAST, pieces[-1])
    return marked


class Reassembler:
    """Joins in-order fragments back into one operation."""

    __slots__ = ("_parts", "_size", "max_operation_size")

    def __init__(self, *, max_operation_size: int = DEFAULT_MAX_OPERATION_SIZE) -> None:
        self.max_operation_size = max_operation_size
        self._parts: list[bytes] | None = None
        self._size = 0

    def add(self, fragment: Fragment, data: bytes) -> bytes | None:
        """Feed the next in-order fragment; returns the operation when LAST completes it."""
        if fragment is Fragment.FIRST:
            if self._parts is not None:
                raise RemoteSessionError("FIRST fragment inside an operation")
            self._parts, self._size = [], 0
        elif self._parts is None:
            raise RemoteSessionError("fragment without a FIRST")
        if self._size + len(data) > self.max_operation_size:
            raise RemoteSessionError(
                "operation exceeds the reassembly limit", reason=DropReason.TOO_LARGE
            )
        self._parts.append(data)
        self._size += len(data)
        if fragment is not Fragment.LAST:
            return None
        operation = b"".join(self._parts)
        self._parts, self._size = None, 0
        return operation

    @property
    def in_progress(self) -> bool:
        """True between a FIRST and its LAST."""
        return self._parts is not None
