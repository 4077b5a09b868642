"""XMPP ``<message/>`` <-> Message/CPIM with text/plain content (RFC 3922 §4).

Theory of operation
-------------------
XMPP -> CPIM (:func:`message_to_cpim`, RFC 3922 §4.1):

* ``from``/``to`` -> ``From``/``To`` with the resource removed and ``im:`` prepended, an
  optional formal name (§4.1.1, §4.1.2); addresses are mapped per §3.2.
* ``id`` -> ``Content-ID`` only when the caller knows it is unique (§4.1.3).
* ``type`` and ``<thread/>`` are ignored (§4.1.4, §4.1.5); ``type='error'`` stanzas are
  refused because they report a failure rather than carry a message.
* each ``<subject/>`` -> ``Subject`` with ``;lang=`` from its ``xml:lang`` (§4.1.6).
* ``<body/>`` -> the encapsulated ``text/plain; charset=utf-8`` content (§4.1, §4.1.7). XMPP
  allows one body per language and MIME text/plain carries one: we map the body in the
  stanza's default language (or the first one) and record its language, when known, in a
  ``Content-Language`` header (RFC 3282).
* other extensions are not passed through (§4.1.8); ``<e2e/>`` is the signing layer's.
* ``DateTime`` is gateway-generated when the caller passes the reception time (§4.1.9).

CPIM -> XMPP (:func:`cpim_to_messages`, RFC 3922 §4.2): one stanza per ``To`` header; the
``im:`` scheme and formal names are removed (§4.2.1, §4.2.2), a known resource may be added;
``cc``, ``DateTime`` and ``NS`` are not passed on (§4.2.3, §4.2.4, §4.2.6); ``Subject`` ->
``<subject xml:lang=...>`` (§4.2.5); a ``Require`` naming features the caller does not list
as understood is refused so the gateway can report it to the sender (§4.2.7);
``Content-ID`` may become the stanza ``id`` (§4.2.8); only ``text/plain`` in US-ASCII or
UTF-8 becomes ``<body/>`` (§4.2.9); ``type`` is set only if the caller chooses one (§4.2.10).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from xml.etree.ElementTree import Element, SubElement

from gateway.impp.address import ImppAddress
from gateway.impp.cpim import CpimAddress, CpimMessage, Subject
from gateway.impp.errors import AddressError, CpimError, MappingError

__all__ = [
    "JABBER_CLIENT_NS",
    "XML_LANG",
    "cpim_to_messages",
    "message_to_cpim",
]

JABBER_CLIENT_NS = "jabber:client"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_STANZA_NAMESPACES = ("jabber:client", "jabber:server", "jabber:component:accept")


def split_stanza_tag(stanza: Element, expected: str) -> str:
    """Return the stanza's namespace after checking it is ``{ns}expected``."""
    if not isinstance(stanza, Element):
        raise MappingError("a stanza must be an ElementTree Element", remote=False)
    for namespace in _STANZA_NAMESPACES:
        if stanza.tag == "{" + namespace + "}" + expected:
            return namespace
    raise MappingError(f"expected an XMPP <{expected}/> stanza, got {stanza.tag[:80]}")


def stanza_address(stanza: Element, attribute: str) -> ImppAddress:
    """Parse the stanza's ``from`` or ``to`` attribute as an IMPP address."""
    value = stanza.get(attribute)
    if value is None:
        raise MappingError(f"the stanza has no '{attribute}' attribute to map")
    try:
        return ImppAddress.from_jid(value)
    except AddressError as exc:
        raise MappingError(f"the stanza's '{attribute}' cannot be mapped: {exc}") from exc


def check_xml_text(text: str, what: str) -> str:
    """Refuse text XML 1.0 cannot carry (C0 controls but TAB/LF/CR, U+FFFE/FFFF)."""
    for ch in text:
        code = ord(ch)
        if (code < 0x20 and ch not in "\t\n\r") or code in (0xFFFE, 0xFFFF):
            raise MappingError(f"{what} contains U+{code:04X}, which XMPP cannot carry")
    return text


def message_to_cpim(
    stanza: Element,
    *,
    date_time: datetime | None = None,
    sender_name: str | None = None,
    recipient_name: str | None = None,
    stanza_id_is_unique: bool = False,
) -> CpimMessage:
    """Map an XMPP message stanza to a Message/CPIM object (RFC 3922 §4.1)."""
    namespace = split_stanza_tag(stanza, "message")
    if stanza.get("type") == "error":
        raise MappingError("an error message stanza has no CPIM mapping")
    sender = stanza_address(stanza, "from")
    recipient = stanza_address(stanza, "to")
    default_lang = stanza.get(XML_LANG)
    subjects: list[Subject] = []
    for element in stanza.findall("{" + namespace + "}subject"):
        text = (element.text or "").strip()
        if text:
            subjects.append(Subject(text, element.get(XML_LANG, default_lang)))
    bodies = stanza.findall("{" + namespace + "}body")
    if not bodies and not subjects:
        raise MappingError("the message has neither body nor subject to map")
    content_headers: list[tuple[str, str]] = []
    body_text = ""
    if bodies:
        chosen = next(
            (b for b in bodies if b.get(XML_LANG, default_lang) == default_lang), bodies[0]
        )
        body_text = chosen.text or ""
        lang = chosen.get(XML_LANG, default_lang)
        if lang is not None:
            content_headers.append(("Content-Language", lang))
    content_id = stanza.get("id") if stanza_id_is_unique else None
    try:
        return CpimMessage.build(
            sender=CpimAddress.of(sender, sender_name),
            recipients=[CpimAddress.of(recipient, recipient_name)],
            date_time=date_time,
            subjects=subjects,
            content_type="text/plain; charset=utf-8",
            content_id=content_id,
            content_headers=content_headers,
            body=body_text.encode("utf-8"),
        )
    except CpimError as exc:
        raise MappingError(f"the message cannot be expressed in CPIM: {exc}") from exc


def _im_address(address: CpimAddress, what: str) -> ImppAddress:
    if not address.uri.lower().startswith("im:"):
        raise MappingError(f"the {what} address {address.uri[:60]!r} is not an im: URI")
    try:
        return address.address
    except AddressError as exc:
        raise MappingError(f"the {what} address cannot be mapped to XMPP: {exc}") from exc


def check_required(message: CpimMessage, understood: Collection[tuple[str, str]]) -> None:
    """Refuse a message whose Require lists features the recipient may not know (§4.2.7)."""
    missing = [item for item in message.required if item not in understood]
    if missing:
        namespace, name = missing[0]
        raise MappingError(
            f"the message requires feature {name!r} of <{namespace}>, which cannot be "
            "guaranteed to the XMPP recipient"
        )


def cpim_to_messages(
    message: CpimMessage,
    *,
    recipient_resource: str | None = None,
    message_type: str | None = None,
    content_id_as_id: bool = False,
    understood: Collection[tuple[str, str]] = (),
    namespace: str = JABBER_CLIENT_NS,
) -> list[Element]:
    """Map a Message/CPIM object to one XMPP message stanza per ``To`` (RFC 3922 §4.2)."""
    check_required(message, understood)
    sender = message.sender
    if sender is None:
        raise MappingError("the CPIM message has no From header")
    sender_address = _im_address(sender, "From")
    recipients = message.recipients
    if not recipients:
        raise MappingError("the CPIM message has no To header")
    media_type, params = message.content_type
    if media_type != "text/plain":
        raise MappingError(f"content of type {media_type!r} cannot become an XMPP <body/>")
    charset = params.get("charset", "us-ascii").lower()
    if charset not in ("utf-8", "us-ascii"):
        raise MappingError(f"charset {charset!r} is neither UTF-8 nor US-ASCII (§4.2.9)")
    try:
        body = message.body.decode("ascii" if charset == "us-ascii" else "utf-8")
    except UnicodeDecodeError as exc:
        raise MappingError(f"the text content is not valid {charset}") from exc
    check_xml_text(body, "the message body")
    for subject in message.subjects:
        check_xml_text(subject.text, "a subject")
    body_lang = message.content_header("Content-Language")
    stanzas: list[Element] = []
    for recipient in recipients:
        target = _im_address(recipient, "To")
        if recipient_resource is not None:
            try:
                target = target.with_resource(recipient_resource)
            except AddressError as exc:
                raise MappingError(f"bad recipient resource: {exc}") from exc
        stanza = Element("{" + namespace + "}message")
        stanza.set("from", sender_address.bare_jid)
        stanza.set("to", target.jid)
        if message_type is not None:
            stanza.set("type", message_type)
        if content_id_as_id and message.content_id:
            stanza.set("id", message.content_id)
        for subject in message.subjects:
            element = SubElement(stanza, "{" + namespace + "}subject")
            element.text = subject.text
            if subject.lang is not None:
                element.set(XML_LANG, subject.lang)
        element = SubElement(stanza, "{" + namespace + "}body")
        element.text = body
        if body_lang:
            element.set(XML_LANG, body_lang.strip())
        stanzas.append(stanza)
    return stanzas
