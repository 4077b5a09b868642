"""Inbound presence: what each contact's XMPP resources say, folded into one notification.

A device does not need what XMPP presence carries for full clients: per-resource detail,
capabilities hashes (XEP-0115), delays (XEP-0203), unknown extensions. :class:`ContactPresence`
keeps, per contact, the last presence of each of its resources (a bounded number), and answers
with one whole :class:`~gateway.wire.PresenceNotification` for the contact: that of its resource
with the highest priority (RFC 6121 §8.5.2.1.1), or closed when none is available; a
notification equal to the last one given is not repeated. Who may be heard at all (subscribed,
not blocked: RFC 2779 §5.3.2) is the relay's decision, made before.
"""

from __future__ import annotations

import dataclasses

from gateway.relay.inbound import wire_language
from gateway.wire import ContactRef, PresenceNotification, Show, SignatureStatus
from gateway.wire.messages import MAX_SHORT_TEXT_SIZE
from gateway.xmpp import Jid, PresenceShow, PresenceStanza

__all__ = ["SHOW_FROM_XMPP", "ContactPresence"]

SHOW_FROM_XMPP = {
    None: Show.AVAILABLE,
    PresenceShow.CHAT: Show.CHAT,
    PresenceShow.AWAY: Show.AWAY,
    PresenceShow.XA: Show.EXTENDED_AWAY,
    PresenceShow.DND: Show.DO_NOT_DISTURB,
}


@dataclasses.dataclass(frozen=True)
class _ResourcePresence:
    show: Show
    note: str | None
    note_language: str | None
    priority: int
    signature: SignatureStatus


class ContactPresence:
    """The contacts' presence as the device last heard it (see the module docstring)."""

    __slots__ = ("_notified", "_resources", "max_resources")

    def __init__(self, max_resources: int) -> None:
        self.max_resources = max_resources
        self._resources: dict[Jid, dict[str | None, _ResourcePresence]] = {}
        self._notified: dict[Jid, PresenceNotification] = {}

    def receive(
        self, presence: PresenceStanza, reference: ContactRef, signature: SignatureStatus
    ) -> PresenceNotification | None:
        """The contact's whole presence after ``presence``, or None if the device has it already.

        ``presence.from_`` must be set; ``reference`` is how the device names the contact and
        ``signature`` the verifier's verdict on an available presence.
        """
        sender = presence.from_
        assert sender is not None
        contact = sender.bare
        resources = self._resources.setdefault(contact, {})
        resources.pop(sender.resource, None)
        if presence.available:
            if len(resources) >= self.max_resources:
                resources.pop(next(iter(resources)))
            note = presence.status
            if note is not None and (not note or len(note.encode()) > MAX_SHORT_TEXT_SIZE):
                note = None
            resources[sender.resource] = _ResourcePresence(
                show=SHOW_FROM_XMPP.get(presence.show, Show.AVAILABLE),
                note=note,
                note_language=wire_language(presence.lang) if note else None,
                priority=presence.priority,
                signature=signature,
            )
        if not resources:
            self._resources.pop(contact, None)
        best = max(resources.values(), key=lambda r: r.priority, default=None)
        if best is None:
            notification = PresenceNotification(contact=reference, open=False)
        else:
            notification = PresenceNotification(
                contact=reference,
                open=True,
                show=best.show,
                note=best.note,
                note_language=best.note_language,
                signature=best.signature,
            )
        if self._notified.get(contact) == notification:
            return None
        self._notified[contact] = notification
        return notification

    def forget(self, contact: Jid) -> None:
        """Drop what is known of ``contact`` (blocked: it is to be seen offline)."""
        self._resources.pop(contact.bare, None)
        self._notified.pop(contact.bare, None)

    def snapshot(self) -> list[PresenceNotification]:
        """The last notification of every contact, for a Wake that asks for a snapshot."""
        return list(self._notified.values())
