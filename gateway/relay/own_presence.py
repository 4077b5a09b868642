"""The device's own presence: the broadcast one and its directions to chosen watchers.

SetPresence without ``to`` changes the broadcast presence field by field (a partial update);
with ``to`` it changes what that one watcher sees instead (RFC 2779 §2.3.3, §5.2.3: a
direction, docs/protocol.md §6.7), again field by field, over the broadcast presence: a field
the direction does not set follows the broadcast one. ``to`` alone ends the direction.

XMPP's server sends each later broadcast to every subscriber, a directed one included, and an
unavailable broadcast also to those that had only directed presence (RFC 6121 §4.6.1-§4.6.3).
So after each broadcast the relay sends every direction again (:meth:`DevicePresence.views`),
and a later broadcast does not undo one; only the device's absence wins over directions (an
unavailable broadcast alone, which the server carries to all of them).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.relay.commands import UpstreamSendPresence
from gateway.relay.signing import PresenceState
from gateway.wire import SetPresence, Show
from gateway.xmpp import Jid

__all__ = ["DevicePresence"]


class _Direction:
    """The fields one watcher sees differently (None: follows the broadcast presence)."""

    __slots__ = ("note", "note_language", "open", "show")

    def __init__(self) -> None:
        self.open: bool | None = None
        self.show: Show | None = None
        self.note: str | None = None
        self.note_language: str | None = None

    def merge(self, update: SetPresence) -> None:
        if update.open is not None:
            self.open = update.open
        if update.show is not None:
            self.show = update.show
        if update.note is not None:
            self.note = update.note
            self.note_language = update.note_language if update.note else None
        elif update.note_language is not None and self.note:
            self.note_language = update.note_language


class DevicePresence:
    """The broadcast presence and the directions (see the module docstring)."""

    __slots__ = ("_directions", "broadcast", "broadcast_set", "max_directed")

    def __init__(self, max_directed: int) -> None:
        self.max_directed = max_directed
        self.broadcast = PresenceState()
        self.broadcast_set = False  # the device has said what its broadcast presence is
        self._directions: dict[Jid, _Direction] = {}

    def update(self, update: SetPresence) -> None:
        """Apply a SetPresence without ``to`` to the broadcast presence."""
        self.broadcast.update(
            open=update.open,
            show=update.show,
            note=update.note,
            note_language=update.note_language,
        )
        self.broadcast_set = True

    def direct(self, contact: Jid, update: SetPresence) -> bool:
        """Apply a directed SetPresence for ``contact``; False if no room for a new direction."""
        contact = contact.bare
        if update.open is None and update.show is None and update.note is None:
            self._directions.pop(contact, None)  # ``to`` alone: the broadcast again
            return True
        direction = self._directions.get(contact)
        if direction is None:
            if len(self._directions) >= self.max_directed:
                return False
            direction = self._directions[contact] = _Direction()
        direction.merge(update)
        return True

    @property
    def directed(self) -> list[Jid]:
        """The watchers with a direction, in the order they got it."""
        return list(self._directions)

    def view(self, contact: Jid) -> PresenceState:
        """What ``contact`` is to see: the broadcast presence with its direction over it."""
        direction = self._directions.get(contact.bare)
        if direction is None:
            return self.broadcast
        state = PresenceState()
        state.update(
            open=self.broadcast.open,
            show=self.broadcast.show,
            note=self.broadcast.note or "",
            note_language=self.broadcast.note_language,
        )
        withheld = direction.open is False and direction.note is None
        state.update(
            open=direction.open,
            show=direction.show,
            note="" if withheld else direction.note,  # withheld: not even the broadcast note
            note_language=direction.note_language,
        )
        return state

    @property
    def visible(self) -> bool:
        """Whether anyone sees the device available now (so its absence must be announced)."""
        if self.broadcast_set and self.broadcast.open:
            return True
        return any(self.view(contact).open for contact in self._directions)

    @property
    def known(self) -> bool:
        """Whether the device has said anything of its presence (to restore when it returns)."""
        return self.broadcast_set or bool(self._directions)

    def commands(
        self,
        *,
        absent: bool,
        blocked: Callable[[Jid], bool],
        sign: Callable[[PresenceState], bytes | None],
        only: Jid | None = None,
    ) -> list[UpstreamSendPresence]:
        """The presence stanzas that show the device as it is now: the broadcast one, then each
        direction (to a contact not ``blocked``); or only what ``only`` sees.

        An ``absent`` device is unavailable to everyone, whatever it set: one unavailable
        broadcast, which the server also carries to those with directed presence (RFC 6121
        §4.6.3). ``sign`` makes the signed PIDF of what a stanza shows.
        """
        if only is not None:
            return [_stanza(self.view(only), only, absent, sign)]
        stanzas = [_stanza(self.broadcast, None, absent, sign)]
        if not absent:
            stanzas += [
                _stanza(self.view(contact), contact, False, sign)
                for contact in self._directions
                if not blocked(contact)
            ]
        return stanzas


def _stanza(
    state: PresenceState,
    to: Jid | None,
    absent: bool,
    sign: Callable[[PresenceState], bytes | None],
) -> UpstreamSendPresence:
    """One presence showing ``state`` (unavailable if ``absent``) to ``to`` (None: broadcast)."""
    open_now = state.open and not absent
    shown = state if open_now or not state.open else state.closed()
    return UpstreamSendPresence(
        available=open_now,
        show=state.effective_show if open_now else Show.AVAILABLE,
        status=state.note,
        status_language=state.note_language if state.note else None,
        to=to,
        signed=sign(shown),
    )
