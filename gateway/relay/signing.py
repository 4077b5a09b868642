"""RFC 3923 objects made from the device's own operations, and the signer seam.

The relay builds the Message/CPIM object (RFC 3862) of a SendMessage and the PIDF document
(RFC 3863) of the device's presence directly from the wire operation, not from a stanza built
first, and hands them to a :class:`DeviceSigner`, which returns the signed entity
(``multipart/signed``, RFC 1847/8551) that goes into ``<e2e/>`` (RFC 3923 §3-4).
:class:`OnBehalfDeviceSigner` is the real one, over :class:`gateway.signing.OnBehalfSigner` and the
device's credential from the gateway CA.
"""

from __future__ import annotations

from typing import Protocol

from gateway.impp import (
    Basic,
    CpimAddress,
    CpimMessage,
    ImppAddress,
    Note,
    PidfDocument,
    PidfTuple,
)
from gateway.impp.mapping_presence import SHOW_TO_PIDF_IM, resource_to_tuple_id
from gateway.signing import DeviceCredential, OnBehalfSigner, SigningError
from gateway.signing.e2e import E2E_TAG
from gateway.wire import Content, MimeContent, Show, TextContent
from gateway.xmpp import Jid

__all__ = [
    "DeviceSigner",
    "OnBehalfDeviceSigner",
    "PresenceState",
    "cpim_for_message",
    "pidf_for_presence",
]

# Wire Show -> XMPP <show/> text (RFC 6121 §4.7.2.1); AVAILABLE is no <show/> at all.
SHOW_TO_XMPP: dict[Show, str | None] = {
    Show.AVAILABLE: None,
    Show.CHAT: "chat",
    Show.AWAY: "away",
    Show.EXTENDED_AWAY: "xa",
    Show.DO_NOT_DISTURB: "dnd",
}


class DeviceSigner(Protocol):
    """Signs objects on the device's behalf; raises :class:`gateway.signing.SigningError`."""

    def sign_message(self, message: CpimMessage, now: float) -> bytes:
        """The signed entity over a Message/CPIM object whose From is the device."""
        ...

    def sign_presence(self, document: PidfDocument, now: float) -> bytes:
        """The signed entity over a PIDF document whose entity is the device."""
        ...


class OnBehalfDeviceSigner:
    """:class:`DeviceSigner` over the gateway's on-behalf signer and one device credential."""

    def __init__(self, signer: OnBehalfSigner, credential: DeviceCredential) -> None:
        self._signer = signer
        self._credential = credential

    def sign_message(self, message: CpimMessage, now: float) -> bytes:
        """Sign ``message`` (its DateTime stamped later than the device's last, RFC 3923 §6.9)."""
        children = self._signer.sign_message(self._credential, message, now=now)
        return _entity(children[-1])

    def sign_presence(self, document: PidfDocument, now: float) -> bytes:
        """Sign ``document`` (its tuple timestamp stamped, RFC 3923 §6.9)."""
        return _entity(self._signer.sign_presence(self._credential, document, now=now))


def _entity(e2e: object) -> bytes:
    """The signed entity inside an ``<e2e/>`` element built by :mod:`gateway.signing`."""
    tag = getattr(e2e, "tag", None)
    text = getattr(e2e, "text", None)
    if tag != E2E_TAG or not isinstance(text, str):
        raise SigningError("the signer returned no <e2e/> element")
    return text.encode("utf-8")


def cpim_for_message(sender: Jid, recipient: Jid, content: Content) -> CpimMessage:
    """The Message/CPIM object of a SendMessage (RFC 3862 §3, RFC 3922 §4.1 addresses).

    Raises :class:`gateway.impp.ImppError` for an address CPIM cannot express (no local part).
    """
    content_headers: list[tuple[str, str]] = []
    if isinstance(content, TextContent):
        content_type = "text/plain; charset=utf-8"
        body = content.text.encode("utf-8")
        if content.language is not None:
            content_headers.append(("Content-Language", content.language))
    else:
        assert isinstance(content, MimeContent)
        content_type = content.content_type
        body = content.data
    return CpimMessage.build(
        sender=CpimAddress.of(ImppAddress.of(sender.bare)),
        recipients=[CpimAddress.of(ImppAddress.of(recipient.bare))],
        content_type=content_type,
        content_headers=content_headers,
        body=body,
    )


class PresenceState:
    """The device's whole presence, which partial SetPresence updates change field by field."""

    __slots__ = ("note", "note_language", "open", "show")

    def __init__(self) -> None:
        self.open = False
        self.show = Show.AVAILABLE
        self.note: str | None = None
        self.note_language: str | None = None

    def update(
        self,
        *,
        open: bool | None,  # the wire field's name
        show: Show | None,
        note: str | None,
        note_language: str | None,
    ) -> None:
        """Apply a SetPresence: None keeps a field, ``note=""`` removes the note."""
        if open is not None:
            self.open = open
        if show is not None:
            self.show = show
        if note is not None:
            self.note = note or None
            self.note_language = note_language if note else None
        elif note_language is not None and self.note is not None:
            self.note_language = note_language

    def closed(self) -> PresenceState:
        """This presence with ``open`` False (what watchers of an absent device see)."""
        view = PresenceState()
        view.note, view.note_language = self.note, self.note_language
        return view

    @property
    def effective_show(self) -> Show:
        """A closed presence has no show (RFC 2779 §3.1.1: closed means unreachable)."""
        return self.show if self.open else Show.AVAILABLE


def pidf_for_presence(device: Jid, state: PresenceState) -> PidfDocument:
    """The PIDF document of the device's presence (RFC 3863 §4.1, RFC 3922 §5.1 mapping).

    Raises :class:`gateway.impp.ImppError` if the device's address cannot be a ``pres:`` URI.
    """
    address = ImppAddress.of(device.bare)
    show_text = SHOW_TO_XMPP[state.effective_show]
    notes = (Note(state.note, state.note_language),) if state.note else ()
    return PidfDocument(
        entity=address.pres_uri,
        tuples=(
            PidfTuple(
                id=resource_to_tuple_id(None),
                basic=Basic.OPEN if state.open else Basic.CLOSED,
                im_status=SHOW_TO_PIDF_IM.get(show_text) if show_text else None,
                notes=notes,
            ),
        ),
    )
