"""Typed views of XMPP stanzas and their builders (RFC 6120 §8, RFC 6121 §4-§5, XEP-0184).

Theory of operation.  The client works on :class:`xml.etree.ElementTree.Element` trees in Clark
notation (the parser's and serializer's currency); this module converts between those trees and
frozen dataclasses the rest of the gateway can use without knowing XML: :class:`MessageStanza`
(RFC 6121 §5.2: type, thread, subject and bodies with ``xml:lang``), :class:`PresenceStanza`
(RFC 6121 §4.7: show, status per language, priority), :class:`RosterItem` (RFC 6121 §2.1.2).
Readers are named ``..._untrusted`` and are total: they return a value or raise
:class:`StanzaParseError`.
Children we do not interpret are kept as ``extensions`` so payloads such as RFC 3923 ``<e2e/>``
pass through untouched.
"""

from __future__ import annotations

import dataclasses
import enum
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Final

from gateway.xmpp.errors import XML_LANG, RemoteXmppError
from gateway.xmpp.jid import Jid, JidError

__all__ = [
    "BIND_NS",
    "CLIENT_NS",
    "CSI_NS",
    "DISCO_INFO_NS",
    "LIMITS_NS",
    "PING_NS",
    "PREAPPROVAL_NS",
    "RECEIPTS_NS",
    "ROSTER_NS",
    "SASL_NS",
    "TLS_NS",
    "MessageStanza",
    "MessageStanzaType",
    "PresenceShow",
    "PresenceStanza",
    "RosterItem",
    "RosterSubscription",
    "StanzaParseError",
    "SubscriptionKind",
    "build_message",
    "build_presence",
    "build_roster_query",
    "build_subscription",
    "parse_message_untrusted",
    "parse_presence_untrusted",
    "parse_roster_item_untrusted",
    "parse_roster_query_untrusted",
]

CLIENT_NS: Final = "jabber:client"  # RFC 6120 §4.8.3
ROSTER_NS: Final = "jabber:iq:roster"  # RFC 6121 §2.1
RECEIPTS_NS: Final = "urn:xmpp:receipts"  # XEP-0184 §3
PING_NS: Final = "urn:xmpp:ping"  # XEP-0199 §3
DISCO_INFO_NS: Final = "http://jabber.org/protocol/disco#info"  # XEP-0030 §3
CSI_NS: Final = "urn:xmpp:csi:0"  # XEP-0352 §3
TLS_NS: Final = "urn:ietf:params:xml:ns:xmpp-tls"  # RFC 6120 §5.4
SASL_NS: Final = "urn:ietf:params:xml:ns:xmpp-sasl"  # RFC 6120 §6.4
BIND_NS: Final = "urn:ietf:params:xml:ns:xmpp-bind"  # RFC 6120 §7
PREAPPROVAL_NS: Final = "urn:xmpp:features:pre-approval"  # RFC 6121 §3.4
LIMITS_NS: Final = "urn:xmpp:stream-limits:0"  # XEP-0478 stream limits advertisement

# RFC 6121 §4.7.2.3: priority is an integer in -128..127.
_PRIORITY_RANGE: Final = range(-128, 128)


class StanzaParseError(RemoteXmppError):
    """A received stanza is malformed in a way the client cannot act on."""


class MessageStanzaType(enum.StrEnum):
    """RFC 6121 §5.2.2."""

    CHAT = "chat"
    ERROR = "error"
    GROUPCHAT = "groupchat"
    HEADLINE = "headline"
    NORMAL = "normal"


class PresenceShow(enum.StrEnum):
    """RFC 6121 §4.7.2.1 (absent means plain "available")."""

    AWAY = "away"
    CHAT = "chat"
    DND = "dnd"
    XA = "xa"


class SubscriptionKind(enum.StrEnum):
    """The four subscription presence types, RFC 6121 §3."""

    SUBSCRIBE = "subscribe"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBE = "unsubscribe"
    UNSUBSCRIBED = "unsubscribed"


class RosterSubscription(enum.StrEnum):
    """A roster item's 'subscription' attribute, RFC 6121 §2.1.2.5."""

    NONE = "none"
    TO = "to"
    FROM = "from"
    BOTH = "both"
    REMOVE = "remove"


@dataclasses.dataclass(frozen=True)
class MessageStanza:
    """A message stanza (RFC 6121 §5).

    ``bodies`` and ``subjects`` are ``(language, text)`` pairs; language ``None`` means the
    stanza's default language ``lang``.  ``receipt_requested`` is XEP-0184's ``<request/>``.
    """

    to: Jid | None
    from_: Jid | None
    id: str | None
    type: MessageStanzaType = MessageStanzaType.NORMAL
    bodies: tuple[tuple[str | None, str], ...] = ()
    subjects: tuple[tuple[str | None, str], ...] = ()
    thread: str | None = None
    parent_thread: str | None = None
    lang: str | None = None
    receipt_requested: bool = False
    extensions: tuple[ET.Element, ...] = dataclasses.field(default=(), compare=False)

    @property
    def body(self) -> str | None:
        """The body in the default language (or the first body), if any."""
        return _pick(self.bodies, self.lang)

    @property
    def subject(self) -> str | None:
        """The subject in the default language (or the first subject), if any."""
        return _pick(self.subjects, self.lang)


@dataclasses.dataclass(frozen=True)
class PresenceStanza:
    """Available or unavailable presence (RFC 6121 §4.7); ``available`` is False for unavailable."""

    from_: Jid | None
    to: Jid | None = None
    available: bool = True
    show: PresenceShow | None = None
    statuses: tuple[tuple[str | None, str], ...] = ()
    priority: int = 0
    lang: str | None = None
    extensions: tuple[ET.Element, ...] = dataclasses.field(default=(), compare=False)

    @property
    def status(self) -> str | None:
        """The status text in the default language (or the first one), if any."""
        return _pick(self.statuses, self.lang)


@dataclasses.dataclass(frozen=True)
class RosterItem:
    """One contact of the roster (RFC 6121 §2.1.2)."""

    jid: Jid
    name: str | None = None
    subscription: RosterSubscription = RosterSubscription.NONE
    ask_subscribe: bool = False  # RFC 6121 §2.1.2.2: our subscription request is pending
    approved: bool = False  # RFC 6121 §2.1.2.1: pre-approved
    groups: tuple[str, ...] = ()


def _pick(texts: tuple[tuple[str | None, str], ...], lang: str | None) -> str | None:
    for text_lang, text in texts:
        if text_lang is None or text_lang == lang:
            return text
    return texts[0][1] if texts else None


def _q(local: str, namespace: str = CLIENT_NS) -> str:
    return f"{{{namespace}}}{local}"


def _jid_attribute(element: ET.Element, name: str) -> Jid | None:
    value = element.get(name)
    if value is None:
        return None
    try:
        return Jid.parse_untrusted(value)
    except JidError as exc:
        raise StanzaParseError(f"the '{name}' attribute is not a JID") from exc


def _child_texts(element: ET.Element, local: str) -> tuple[tuple[str | None, str], ...]:
    return tuple((child.get(XML_LANG), child.text or "") for child in element.findall(_q(local)))


def parse_message_untrusted(element: ET.Element) -> MessageStanza:
    """A :class:`MessageStanza` from a received ``<message/>``; total (raises StanzaParseError)."""
    if element.tag != _q("message"):
        raise StanzaParseError("not a message stanza")
    try:
        message_type = MessageStanzaType(element.get("type", "normal"))
    except ValueError:
        # RFC 6121 §5.2.2: an unknown type is treated as normal.
        message_type = MessageStanzaType.NORMAL
    thread_element = element.find(_q("thread"))
    known = {_q("body"), _q("subject"), _q("thread"), _q("request", RECEIPTS_NS)}
    return MessageStanza(
        to=_jid_attribute(element, "to"),
        from_=_jid_attribute(element, "from"),
        id=element.get("id"),
        type=message_type,
        bodies=_child_texts(element, "body"),
        subjects=_child_texts(element, "subject"),
        thread=None if thread_element is None else (thread_element.text or None),
        parent_thread=None if thread_element is None else thread_element.get("parent"),
        lang=element.get(XML_LANG),
        receipt_requested=element.find(_q("request", RECEIPTS_NS)) is not None,
        extensions=tuple(child for child in element if child.tag not in known),
    )


def parse_presence_untrusted(element: ET.Element) -> PresenceStanza:
    """A :class:`PresenceStanza` from a received available/unavailable ``<presence/>``; total."""
    if element.tag != _q("presence"):
        raise StanzaParseError("not a presence stanza")
    presence_type = element.get("type")
    if presence_type not in (None, "unavailable"):
        raise StanzaParseError(f"presence of type {presence_type!r} is not availability")
    show: PresenceShow | None = None
    show_element = element.find(_q("show"))
    if show_element is not None:
        try:
            show = PresenceShow((show_element.text or "").strip())
        except ValueError as exc:
            raise StanzaParseError("unknown <show/> value") from exc
    priority = 0
    priority_element = element.find(_q("priority"))
    if priority_element is not None:
        try:
            priority = int((priority_element.text or "").strip())
        except ValueError as exc:
            raise StanzaParseError("<priority/> is not an integer") from exc
        if priority not in _PRIORITY_RANGE:
            raise StanzaParseError("<priority/> is outside -128..127")
    known = {_q("show"), _q("status"), _q("priority")}
    return PresenceStanza(
        from_=_jid_attribute(element, "from"),
        to=_jid_attribute(element, "to"),
        available=presence_type is None,
        show=show,
        statuses=_child_texts(element, "status"),
        priority=priority,
        lang=element.get(XML_LANG),
        extensions=tuple(child for child in element if child.tag not in known),
    )


def parse_roster_item_untrusted(element: ET.Element) -> RosterItem:
    """A :class:`RosterItem` from an ``<item/>`` of ``jabber:iq:roster``; total."""
    jid = _jid_attribute(element, "jid")
    if jid is None:
        raise StanzaParseError("a roster item has no 'jid'")
    try:
        subscription = RosterSubscription(element.get("subscription", "none"))
    except ValueError as exc:
        raise StanzaParseError("unknown roster subscription state") from exc
    groups = tuple(
        (group.text or "") for group in element.findall(_q("group", ROSTER_NS)) if group.text
    )
    return RosterItem(
        jid=jid,
        name=element.get("name"),
        subscription=subscription,
        ask_subscribe=element.get("ask") == "subscribe",
        approved=element.get("approved") in ("true", "1"),
        groups=groups,
    )


def parse_roster_query_untrusted(query: ET.Element) -> tuple[tuple[RosterItem, ...], str | None]:
    """The items and version of a ``<query xmlns='jabber:iq:roster'/>``; total."""
    if query.tag != _q("query", ROSTER_NS):
        raise StanzaParseError("not a roster query")
    items = tuple(
        parse_roster_item_untrusted(item) for item in query.findall(_q("item", ROSTER_NS))
    )
    return items, query.get("ver")


def _text_child(parent: ET.Element, local: str, text: str, lang: str | None = None) -> None:
    child = ET.SubElement(parent, _q(local))
    child.text = text
    if lang is not None:
        child.set(XML_LANG, lang)


def build_message(
    to: Jid,
    *,
    id: str,  # the RFC's attribute name
    body: str | None = None,
    type: MessageStanzaType = MessageStanzaType.CHAT,  # the RFC's attribute name
    bodies: Sequence[tuple[str | None, str]] = (),
    subject: str | None = None,
    thread: str | None = None,
    lang: str | None = None,
    request_receipt: bool = False,
    extensions: Iterable[ET.Element] = (),
) -> ET.Element:
    """A ``<message/>`` (RFC 6121 §5.2); ``bodies`` adds bodies in other languages (§5.2.3)."""
    message = ET.Element(_q("message"), {"to": str(to), "id": id, "type": str(type)})
    if lang is not None:
        message.set(XML_LANG, lang)
    if subject is not None:
        _text_child(message, "subject", subject)
    if body is not None:
        _text_child(message, "body", body)
    for body_lang, text in bodies:
        _text_child(message, "body", text, body_lang)
    if thread is not None:
        _text_child(message, "thread", thread)
    if request_receipt:
        ET.SubElement(message, _q("request", RECEIPTS_NS))  # XEP-0184 §5.1
    message.extend(extensions)
    return message


def build_presence(
    *,
    to: Jid | None = None,
    available: bool = True,
    show: PresenceShow | None = None,
    status: str | None = None,
    statuses: Sequence[tuple[str | None, str]] = (),
    priority: int | None = None,
    lang: str | None = None,
    extensions: Iterable[ET.Element] = (),
) -> ET.Element:
    """An available/unavailable ``<presence/>``, broadcast or directed with ``to`` (RFC 6121 §4)."""
    presence = ET.Element(_q("presence"))
    if to is not None:
        presence.set("to", str(to))
    if not available:
        presence.set("type", "unavailable")
    if lang is not None:
        presence.set(XML_LANG, lang)
    if show is not None:
        _text_child(presence, "show", str(show))
    if status is not None:
        _text_child(presence, "status", status)
    for status_lang, text in statuses:
        _text_child(presence, "status", text, status_lang)
    if priority is not None:
        if isinstance(priority, bool) or priority not in _PRIORITY_RANGE:
            raise ValueError("priority must be an int in -128..127 (RFC 6121 §4.7.2.3)")
        _text_child(presence, "priority", str(priority))
    presence.extend(extensions)
    return presence


def build_subscription(to: Jid, kind: SubscriptionKind, *, id: str | None = None) -> ET.Element:
    """A subscription ``<presence type=.../>`` to a bare JID (RFC 6121 §3.1.1, §3.2, §3.3)."""
    presence = ET.Element(_q("presence"), {"to": str(to.bare), "type": str(kind)})
    if id is not None:
        presence.set("id", id)
    return presence


def build_roster_query(item: RosterItem | None = None) -> ET.Element:
    """A roster ``<query/>``: empty for a get (RFC 6121 §2.1.3), with one item for a set (§2.3)."""
    query = ET.Element(_q("query", ROSTER_NS))
    if item is not None:
        attributes = {"jid": str(item.jid.bare)}
        if item.subscription is RosterSubscription.REMOVE:
            attributes["subscription"] = "remove"
        elif item.name is not None:
            attributes["name"] = item.name
        element = ET.SubElement(query, _q("item", ROSTER_NS), attributes)
        for group in item.groups:
            ET.SubElement(element, _q("group", ROSTER_NS)).text = group
    return query
