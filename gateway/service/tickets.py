"""The session layer's ticket key ring, kept in the store and committed before it is relied on.

Resumption tickets (docs/protocol.md, the session layer's ``tickets.py``) are sealed with the
gateway's rotating ticket keys; the ring also remembers which tickets were spent. A restarted
gateway must honour the tickets the last one issued and refuse the ones it saw spent, so the
ring lives in the store as the named blob :data:`TICKET_RING_BLOB`. :class:`StoredTicketRing`
restores it at start (a restore rotates the current key, so the new process never reuses a
serial), commits it back at once, and then serves as each listener's send gate
(``CoreDriver.send_gate``): a datagram carrying a NewTicket waits until the ring that sealed it
is committed, so a crash right after the send still leaves the ticket usable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from gateway.session import TicketKeyRing, TicketRingFileError
from gateway.store import GatewayStore, StoreError

__all__ = ["TICKET_RING_BLOB", "StoredTicketRing"]

TICKET_RING_BLOB = "session/ticket-key-ring"

logger = logging.getLogger("gateway.service")


def _fingerprint(ring: TicketKeyRing) -> tuple[int, float, int]:
    """What changes whenever the ring seals a ticket: its current key, when that key began,
    and the next serial (a spent ticket is always followed by the new ticket issued for it)."""
    return (ring.current, ring.rotated_at, ring.next_serial)


class StoredTicketRing:
    """The ring the session cores share, and which state of it the store holds."""

    def __init__(
        self,
        store: GatewayStore,
        clock: Callable[[], float],
        on_failure: Callable[[str], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.ring = TicketKeyRing()
        self._on_failure = on_failure  # told "ticket-ring-not-saved" (the service's counters)
        self._committed: tuple[int, float, int] | None = None
        self._lock = trio.Lock()

    async def restore(self) -> TicketKeyRing:
        """Read the stored ring (or start a fresh one) and commit it back (it was rotated)."""
        blob = await self.store.get_blob(TICKET_RING_BLOB)
        if blob is not None:
            try:
                self.ring = TicketKeyRing.from_bytes(blob, trio.current_time())
                logger.info("ticket key ring restored from the store")
            except TicketRingFileError:
                logger.warning("stored ticket key ring unreadable: a fresh one is used")
        await self.save()
        return self.ring

    async def save(self) -> None:
        """Commit the ring as it is now (and remember which state of it is committed)."""
        fingerprint = _fingerprint(self.ring)
        await self.store.put_blob(TICKET_RING_BLOB, self.ring.to_bytes(), now=self.clock())
        self._committed = fingerprint

    async def commit_if_changed(self) -> None:
        """The listeners' send gate: commit the ring if it changed since the last commit.

        Every ticket the session cores issue (after a handshake, after a resumption, which also
        spends the old ticket) moves the ring's serial, and a rotation its key. A failing store
        does not hold the devices back: the ticket may then not survive a crash, which costs
        that device one full handshake.
        """
        if _fingerprint(self.ring) == self._committed:
            return
        async with self._lock:
            if _fingerprint(self.ring) == self._committed:
                return  # another flush committed it while this one waited
            try:
                await self.save()
            except StoreError as exc:
                self._on_failure("ticket-ring-not-saved")
                logger.warning("ticket key ring not saved: %s", type(exc).__name__)
