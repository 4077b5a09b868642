"""XMPP ``<presence/>`` <-> PIDF (inside Message/CPIM) (RFC 3922 §5).

Theory of operation
-------------------
XMPP -> PIDF (:func:`presence_to_pidf`, :func:`presence_to_cpim`, RFC 3922 §5.1):

* ``from`` -> PIDF ``entity`` (``pres:``, resource removed) and CPIM ``From`` (``im:``); the
  resource becomes the tuple ``id`` (§5.1.1). A tuple id is an XML NCName (RFC 3863 §4.4),
  a resource is any text, so :func:`resource_to_tuple_id` keeps a resource that already is
  an NCName not starting with ``_`` and otherwise writes ``_`` + the hex of its UTF-8;
  :func:`tuple_id_to_resource` reverses that. No resource at all is the id ``_``.
* no ``type`` -> ``<basic>open</basic>``; ``type='unavailable'`` -> ``closed`` (§5.1.4). The
  subscription types are §6 operations, not PIDF, and are refused here.
* ``<show/>`` -> ``<im:im>`` in ``urn:ietf:params:xml:ns:pidf:im`` (§5.1.5). RFC 3922 maps
  the value through (``away`` -> ``away``) and its §5.2.10 example maps ``busy`` back to
  ``dnd``, so: away->away, chat->chat, dnd->busy, xa->xa, and back busy->dnd.
* ``<status/>`` -> tuple ``<note/>`` with its ``xml:lang`` (§5.1.6).
* ``<priority/>`` 0..127 -> ``<contact priority>`` = floor(1000 p / 127) / 1000, which
  reproduces the RFC's examples (1->0.007, 2->0.015, 13->0.102, 126->0.992, 127->1);
  negative priorities are not mapped (§5.1.7). The contact is the sender's ``im:`` URI
  (§5.1.9.2).
* ``<timestamp/>`` and ``DateTime`` are gateway-generated from the time the caller passes.

PIDF -> XMPP (:func:`pidf_to_presences`, :func:`cpim_to_presences`, RFC 3922 §5.2): one
stanza per tuple, ``from`` = From/entity + ``/`` + the tuple's resource (§5.2.1); ``open``
-> available, ``closed`` -> ``unavailable`` (§5.2.9); ``<im:im>`` -> ``<show/>`` (§5.2.10);
tuple notes -> ``<status/>`` (§5.2.11); contact priority -> ``<priority/>`` =
ceil(127 q) capped at 126 below 1, the exact inverse of the forward map that also
reproduces every range the RFC gives (§5.2.13); contact URIs, timestamps,
``cc``, ``DateTime``, ``Subject``, ``NS`` are not passed (§5.2.3-§5.2.8, §5.2.12,
§5.2.14). A document with zero tuples MUST NOT be mapped (§5.2.11).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from xml.etree.ElementTree import Element, SubElement

from gateway.impp.address import ImppAddress
from gateway.impp.cpim import CpimAddress, CpimMessage
from gateway.impp.errors import AddressError, CpimError, MappingError, PidfError
from gateway.impp.mapping_message import (
    JABBER_CLIENT_NS,
    XML_LANG,
    check_required,
    check_xml_text,
    split_stanza_tag,
    stanza_address,
)
from gateway.impp.pidf import (
    PIDF_CONTENT_TYPE,
    Basic,
    Note,
    PidfContact,
    PidfDocument,
    PidfTuple,
    parse_pidf_untrusted,
)

__all__ = [
    "PIDF_IM_TO_SHOW",
    "SHOW_TO_PIDF_IM",
    "cpim_to_presences",
    "pidf_priority_to_xmpp",
    "pidf_to_presences",
    "presence_to_cpim",
    "presence_to_pidf",
    "resource_to_tuple_id",
    "tuple_id_to_resource",
    "xmpp_priority_to_pidf",
]

# RFC 3922 §5.1.5: XMPP <show/> -> <im:im> value.
SHOW_TO_PIDF_IM = {"away": "away", "chat": "chat", "dnd": "busy", "xa": "xa"}
# RFC 3922 §5.2.10 (busy -> dnd) plus the identity for XMPP's own values and a few common
# extended states; other values leave <show/> out (plain availability).
PIDF_IM_TO_SHOW = {
    "away": "away",
    "chat": "chat",
    "busy": "dnd",
    "dnd": "dnd",
    "xa": "xa",
    "extended-away": "xa",
    "berightback": "away",
    "onthephone": "dnd",
}
_NCNAME_SAFE = re.compile(r"[^\W\d_][\w.\-]*\Z")
_HEX_ID = re.compile(r"_([0-9a-f]{2})*\Z")


def resource_to_tuple_id(resource: str | None) -> str:
    """The PIDF tuple id for an XMPP resource (reversible; see the module docstring)."""
    if resource is None:
        return "_"
    if _NCNAME_SAFE.match(resource):
        return resource
    return "_" + resource.encode("utf-8").hex()


def tuple_id_to_resource(tuple_id: str) -> str | None:
    """The XMPP resource a tuple id stands for, or None for no resource."""
    if _HEX_ID.match(tuple_id):
        try:
            decoded = bytes.fromhex(tuple_id[1:]).decode("utf-8")
        except UnicodeDecodeError:
            return tuple_id
        return decoded or None
    return tuple_id


def xmpp_priority_to_pidf(priority: int) -> Decimal | None:
    """RFC 3922 §5.1.7: 0..127 -> 0..1 with three decimals; negative -> not mapped."""
    if priority < 0:
        return None
    return Decimal(min(priority, 127) * 1000 // 127) / 1000


def pidf_priority_to_xmpp(priority: Decimal) -> int:
    """RFC 3922 §5.2.13: 0..1 -> 0..127, never negative; inverse of the forward map."""
    clamped = min(max(priority, Decimal(0)), Decimal(1))
    if clamped == 1:
        return 127
    # ceil(127 q) gives the RFC's 0.001-0.007 -> 1, 0.008-0.015 -> 2; below 1 it is capped at
    # 126 so that, as the RFC's last example says, 0.992-0.999 -> 126 and only 1 -> 127.
    return min(int((clamped * 127).to_integral_value(rounding=ROUND_CEILING)), 126)


def _child_text(stanza: Element, namespace: str, name: str) -> str | None:
    element = stanza.find("{" + namespace + "}" + name)
    if element is None:
        return None
    return (element.text or "").strip()


def presence_to_pidf(stanza: Element, *, timestamp: datetime | None = None) -> PidfDocument:
    """Map an available/unavailable presence stanza to a PIDF document (RFC 3922 §5.1)."""
    namespace = split_stanza_tag(stanza, "presence")
    presence_type = stanza.get("type")
    if presence_type not in (None, "unavailable"):
        raise MappingError(
            f"presence of type {presence_type!r} is a subscription operation, not PIDF (§6)"
        )
    sender = stanza_address(stanza, "from")
    available = presence_type is None
    im_status: str | None = None
    show = _child_text(stanza, namespace, "show")
    if show is not None and available:
        if show not in SHOW_TO_PIDF_IM:
            raise MappingError(
                f"<show/> value {show[:20]!r} is not one of {sorted(SHOW_TO_PIDF_IM)}"
            )
        im_status = SHOW_TO_PIDF_IM[show]
    default_lang = stanza.get(XML_LANG)
    try:
        notes = tuple(
            Note(element.text or "", element.get(XML_LANG, default_lang))
            for element in stanza.findall("{" + namespace + "}status")
            if (element.text or "").strip()
        )
        raw_priority = _child_text(stanza, namespace, "priority")
        pidf_priority: Decimal | None = None
        if raw_priority is not None:
            try:
                value = int(raw_priority)
            except ValueError as exc:
                raise MappingError(f"<priority/> {raw_priority[:10]!r} is not an integer") from exc
            if not -128 <= value <= 127:
                raise MappingError(f"<priority/> {value} is outside -128..127")
            pidf_priority = xmpp_priority_to_pidf(value)
        return PidfDocument(
            entity=sender.pres_uri,
            tuples=(
                PidfTuple(
                    id=resource_to_tuple_id(sender.resource),
                    basic=Basic.OPEN if available else Basic.CLOSED,
                    im_status=im_status,
                    contact=PidfContact(sender.im_uri, pidf_priority),
                    notes=notes,
                    timestamp=timestamp,
                ),
            ),
        )
    except PidfError as exc:
        raise MappingError(f"the presence cannot be expressed in PIDF: {exc}") from exc


def presence_to_cpim(
    stanza: Element,
    *,
    date_time: datetime | None = None,
    timestamp: datetime | None = None,
    sender_name: str | None = None,
    recipient_name: str | None = None,
) -> CpimMessage:
    """Map a presence stanza to Message/CPIM carrying ``application/pidf+xml`` (§5.1)."""
    document = presence_to_pidf(stanza, timestamp=timestamp)
    sender = stanza_address(stanza, "from")
    recipients = []
    if stanza.get("to") is not None:
        recipients.append(CpimAddress.of(stanza_address(stanza, "to"), recipient_name))
    try:
        return CpimMessage.build(
            sender=CpimAddress.of(sender, sender_name),
            recipients=recipients,
            date_time=date_time,
            content_type=f"{PIDF_CONTENT_TYPE}; charset=utf-8",
            body=document.to_bytes(),
        )
    except CpimError as exc:
        raise MappingError(f"the presence cannot be expressed in CPIM: {exc}") from exc


def pidf_to_presences(
    document: PidfDocument,
    *,
    sender: ImppAddress | None = None,
    to: str | None = None,
    namespace: str = JABBER_CLIENT_NS,
) -> list[Element]:
    """Map a PIDF document to one presence stanza per tuple (RFC 3922 §5.2).

    ``sender`` is the CPIM From address when the document came inside Message/CPIM;
    otherwise the document's ``entity`` is used.
    """
    if not document.tuples:
        raise MappingError("a PIDF document without tuples MUST NOT be mapped (§5.2.11)")
    if sender is None:
        try:
            sender = document.entity_address
        except AddressError as exc:
            raise MappingError(f"the PIDF entity cannot be mapped to XMPP: {exc}") from exc
    stanzas: list[Element] = []
    for item in document.tuples:
        if item.basic is None and item.im_status is None:
            continue  # only status values we do not understand: nothing to say
        stanza = Element("{" + namespace + "}presence")
        resource = tuple_id_to_resource(item.id)
        try:
            origin = sender.with_resource(resource)
        except AddressError:
            origin = sender.bare  # an id that is no valid resource: the account only
        stanza.set("from", origin.jid)
        if to is not None:
            stanza.set("to", to)
        available = item.basic is not Basic.CLOSED
        if not available:
            stanza.set("type", "unavailable")
        show = PIDF_IM_TO_SHOW.get(item.im_status or "") if available else None
        if show is not None:
            SubElement(stanza, "{" + namespace + "}show").text = show
        for note in item.notes:
            status = SubElement(stanza, "{" + namespace + "}status")
            status.text = check_xml_text(note.text, "a note")
            if note.lang is not None:
                status.set(XML_LANG, note.lang)
        if available and item.contact is not None and item.contact.priority is not None:
            priority = pidf_priority_to_xmpp(item.contact.priority)
            SubElement(stanza, "{" + namespace + "}priority").text = str(priority)
        stanzas.append(stanza)
    if not stanzas:
        raise MappingError("no tuple of the PIDF document carries a status we understand")
    return stanzas


def cpim_to_presences(
    message: CpimMessage,
    *,
    understood: Collection[tuple[str, str]] = (),
    namespace: str = JABBER_CLIENT_NS,
) -> list[Element]:
    """Map Message/CPIM carrying PIDF to presence stanzas, one per tuple and To (§5.2)."""
    check_required(message, understood)
    media_type, _ = message.content_type
    if media_type != PIDF_CONTENT_TYPE:
        raise MappingError(f"content of type {media_type!r} is not {PIDF_CONTENT_TYPE} (§5.2)")
    try:
        document = parse_pidf_untrusted(message.body)
    except PidfError as exc:
        raise MappingError(f"the encapsulated PIDF document is invalid: {exc}") from exc
    sender: ImppAddress | None = None
    if message.sender is not None:
        try:
            sender = message.sender.address
        except AddressError as exc:
            raise MappingError(f"the From address cannot be mapped to XMPP: {exc}") from exc
    targets: list[str | None] = []
    for recipient in message.recipients:
        try:
            targets.append(recipient.address.bare_jid)
        except AddressError as exc:
            raise MappingError(f"the To address cannot be mapped to XMPP: {exc}") from exc
    stanzas: list[Element] = []
    for target in targets or [None]:
        stanzas += pidf_to_presences(document, sender=sender, to=target, namespace=namespace)
    return stanzas
