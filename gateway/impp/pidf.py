"""PIDF presence documents (RFC 3863, ``application/pidf+xml``): build and strictly parse.

Theory of operation
-------------------
A document (RFC 3863 §4.1) is ``<presence entity='pres:...'>`` in the namespace
``urn:ietf:params:xml:ns:pidf`` holding, in this order, tuples, presentity notes and
extension elements from other namespaces. A tuple (§4.1.2) holds a mandatory ``<status>``,
extension elements, an optional ``<contact priority='q'>``, notes and an optional
``<timestamp>``. ``<status>`` (§4.1.3) holds an optional ``<basic>open|closed</basic>`` and
extension status values, at least one child in all.

The one status extension this gateway understands is the ``urn:ietf:params:xml:ns:pidf:im``
``<im:im>`` value that RFC 3922 §5.1.5 and §5.2.10 use to carry XMPP ``<show/>``
(``away``, ``busy``, ...); :attr:`PidfTuple.im_status` holds it.

Unknown extensions (§4.2.3): a processor MUST ignore an element it does not recognize, with
all its content. ``mustUnderstand='true'|'1'`` (a global attribute in the PIDF namespace,
§4.4) never rejects a document: it marks a child that must be understood for its *enclosing*
optional element to be processed. So an ``<im:im>`` that carries a child element marked
``mustUnderstand`` (which we cannot understand) is itself treated as unrecognized, and a
``mustUnderstand`` inside an element already being ignored is ignored with it. Ignored
elements are kept, opaque, in the ``extensions`` fields so :meth:`PidfDocument.to_bytes`
re-emits them in place; nothing reads their content.

Parsing goes through :mod:`gateway.impp.xmlsafe` (no DTD, no entities, no external
references, UTF-8 only, size/depth/element limits before and while parsing) and
:func:`parse_pidf_untrusted` raises only :class:`PidfError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from xml.etree.ElementTree import Element, tostring

from gateway.impp.address import ImppAddress
from gateway.impp.cpim_syntax import LANG_RE, URI_RE, format_rfc3339, parse_rfc3339
from gateway.impp.errors import AddressError, PidfError
from gateway.impp.xmlsafe import UnsafeXmlError, XmlDocument, parse_xml_untrusted

__all__ = [
    "DEFAULT_MAX_PIDF_DEPTH",
    "DEFAULT_MAX_PIDF_ELEMENTS",
    "DEFAULT_MAX_PIDF_SIZE",
    "PIDF_CONTENT_TYPE",
    "PIDF_IM_NS",
    "PIDF_NS",
    "Basic",
    "Note",
    "PidfContact",
    "PidfDocument",
    "PidfTuple",
    "Tuple",
    "parse_pidf_untrusted",
]

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
# RFC 3922 §5.1.5: extended status values for instant messaging (<im:im>away</im:im>).
PIDF_IM_NS = "urn:ietf:params:xml:ns:pidf:im"
PIDF_CONTENT_TYPE = "application/pidf+xml"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_MUST_UNDERSTAND = "{" + PIDF_NS + "}mustUnderstand"

# A presence document for one account with a handful of tuples is a few kilobytes; 64 KiB
# leaves room for notes in several languages and extensions without letting a peer make us
# build a large tree.
DEFAULT_MAX_PIDF_SIZE = 64 * 1024
# presence/tuple/status/extension/... : PIDF itself is four deep; extensions get some room.
DEFAULT_MAX_PIDF_DEPTH = 16
# Elements in the whole document (bounds tree memory independently of text size).
DEFAULT_MAX_PIDF_ELEMENTS = 1024

# RFC 3863 §4.4 qvalue: 0(.d{0,3})? or 1(.0{0,3})?
_QVALUE_RE = re.compile(r"(0(\.[0-9]{0,3})?|1(\.0{0,3})?)\Z")
# xs:ID is an NCName; we accept the practical subset that tuple ids use.
_NCNAME_RE = re.compile(r"[^\W\d][\w.\-]*\Z")
_RFC3339_UPPER_RE = re.compile(r"[0-9-]+T[0-9:.]+(Z|[+-][0-9:]+)\Z")


def _q(local: str) -> str:
    return "{" + PIDF_NS + "}" + local


class Basic(Enum):
    """The <basic> status value (RFC 3863 §4.1.4)."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Note:
    """A human-readable <note> with its optional xml:lang (RFC 3863 §4.1.6)."""

    text: str
    lang: str | None = None

    def __post_init__(self) -> None:
        _check_text(self.text, "note")
        if self.lang is not None and not LANG_RE.match(self.lang):
            raise PidfError(f"{self.lang!r} is not a language tag", remote=False)


@dataclass(frozen=True)
class PidfContact:
    """A <contact> URI with its optional priority in [0, 1], three decimals (§4.1.5)."""

    uri: str
    priority: Decimal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not URI_RE.match(self.uri):
            raise PidfError(f"contact {str(self.uri)[:60]!r} is not a URI", remote=False)
        if self.priority is not None and not _QVALUE_RE.match(_format_priority(self.priority)):
            raise PidfError(
                f"priority {self.priority} is not in [0, 1] with 3 decimals", remote=False
            )


def _format_priority(priority: Decimal) -> str:
    if not isinstance(priority, Decimal) or not priority.is_finite():
        return "invalid"
    text = format(priority.normalize(), "f")
    return text


@dataclass(frozen=True)
class PidfTuple:
    """A presence tuple (RFC 3863 §4.1.2).

    ``basic`` and ``im_status`` are the status values we understand; ``status_extensions``
    and ``extensions`` are ignored elements (serialized XML) re-emitted as they were.
    """

    id: str
    basic: Basic | None = None
    im_status: str | None = None
    contact: PidfContact | None = None
    notes: tuple[Note, ...] = ()
    timestamp: datetime | None = None
    status_extensions: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _NCNAME_RE.match(self.id):
            raise PidfError(f"tuple id {str(self.id)[:40]!r} is not an XML NCName", remote=False)
        if self.basic is not None and not isinstance(self.basic, Basic):
            raise PidfError("basic must be a Basic value", remote=False)
        if self.im_status is not None:
            _check_text(self.im_status, "im status")
            if not self.im_status or self.im_status != self.im_status.strip():
                raise PidfError("an im status is a non-empty word", remote=False)
        if self.basic is None and self.im_status is None and not self.status_extensions:
            raise PidfError("a <status> needs at least one value (RFC 3863 §4.1.3)", remote=False)
        if self.timestamp is not None and self.timestamp.utcoffset() is None:
            raise PidfError("a timestamp needs a time zone", remote=False)


Tuple = PidfTuple
"""The name the IMPP contract uses for :class:`PidfTuple`."""


@dataclass(frozen=True)
class PidfDocument:
    """A PIDF document: the presentity's ``pres:`` URI, its tuples and its notes."""

    entity: str
    tuples: tuple[PidfTuple, ...] = ()
    notes: tuple[Note, ...] = ()
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.entity, str) or not URI_RE.match(self.entity):
            raise PidfError(f"entity {str(self.entity)[:60]!r} is not a URI", remote=False)
        ids = [t.id for t in self.tuples]
        if len(set(ids)) != len(ids):
            raise PidfError("tuple ids must be unique (RFC 3863 §4.1.2)", remote=False)

    @property
    def entity_address(self) -> ImppAddress:
        """The presentity as an IMPP address (raises AddressError if not pres:/im:)."""
        return ImppAddress.from_uri(self.entity)

    def to_bytes(self) -> bytes:
        """The document as UTF-8 XML with its XML declaration (RFC 3863 §4.1)."""
        uses_im = any(t.im_status is not None for t in self.tuples)
        out = ["<?xml version='1.0' encoding='UTF-8'?>\n"]
        im_decl = f" xmlns:im='{PIDF_IM_NS}'" if uses_im else ""
        out.append(f"<presence xmlns='{PIDF_NS}'{im_decl} entity='{_escape_attr(self.entity)}'>\n")
        for item in self.tuples:
            out.extend(_tuple_lines(item))
        out.extend(f"  {_note_xml(note)}\n" for note in self.notes)
        out.extend(f"  {ext}\n" for ext in self.extensions)
        out.append("</presence>\n")
        return "".join(out).encode("utf-8")


def _tuple_lines(item: PidfTuple) -> Iterator[str]:
    yield f"  <tuple id='{_escape_attr(item.id)}'>\n"
    yield "    <status>\n"
    if item.basic is not None:
        yield f"      <basic>{item.basic.value}</basic>\n"
    if item.im_status is not None:
        yield f"      <im:im>{_escape_text(item.im_status)}</im:im>\n"
    for ext in item.status_extensions:
        yield f"      {ext}\n"
    yield "    </status>\n"
    for ext in item.extensions:
        yield f"    {ext}\n"
    if item.contact is not None:
        priority = ""
        if item.contact.priority is not None:
            priority = f" priority='{_format_priority(item.contact.priority)}'"
        yield f"    <contact{priority}>{_escape_text(item.contact.uri)}</contact>\n"
    for note in item.notes:
        yield f"    {_note_xml(note)}\n"
    if item.timestamp is not None:
        yield f"    <timestamp>{format_rfc3339(item.timestamp)}</timestamp>\n"
    yield "  </tuple>\n"


def _note_xml(note: Note) -> str:
    lang = f" xml:lang='{_escape_attr(note.lang)}'" if note.lang is not None else ""
    return f"<note{lang}>{_escape_text(note.text)}</note>"


def _check_text(text: str, what: str) -> None:
    """XML 1.0 §2.2 Char: no C0 controls but TAB, LF, CR; no surrogates, no U+FFFE/FFFF."""
    if not isinstance(text, str):
        raise PidfError(f"{what} must be text", remote=False)
    for ch in text:
        code = ord(ch)
        if (
            (code < 0x20 and ch not in "\t\n\r")
            or 0xD800 <= code <= 0xDFFF
            or code
            in (
                0xFFFE,
                0xFFFF,
            )
        ):
            raise PidfError(f"{what} contains U+{code:04X}, which XML cannot carry", remote=False)


def _escape_text(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _escape_attr(text: str) -> str:
    return (
        _escape_text(text)
        .replace("'", "&apos;")
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\t", "&#9;")
    )


# -- parsing -----------------------------------------------------------------------------


def _opaque(element: Element) -> str:
    """An ignored element, serialized for re-emission (its tail is not part of it)."""
    copy = Element(element.tag, element.attrib)
    copy.text = element.text
    copy.extend(list(element))
    return tostring(copy, encoding="unicode")


def _must_understand(element: Element) -> bool:
    return element.get(_MUST_UNDERSTAND, "").strip() in ("true", "1")


def _no_pidf_children(element: Element, what: str) -> None:
    for child in element:
        raise PidfError(f"<{what}> has an unexpected child {child.tag}")


def _parse_note(element: Element, inherited_lang: str | None) -> Note:
    _no_pidf_children(element, "note")
    lang = element.get(_XML_LANG, inherited_lang)
    if lang is not None and not LANG_RE.match(lang):
        raise PidfError(f"note xml:lang {lang[:20]!r} is not a language tag")
    return Note(element.text or "", lang)


def _parse_status(element: Element) -> tuple[Basic | None, str | None, tuple[str, ...]]:
    basic: Basic | None = None
    im_status: str | None = None
    ignored: list[str] = []
    children = list(element)
    if not children:
        raise PidfError("<status> has no status value (RFC 3863 §4.1.3)")
    for index, child in enumerate(children):
        if child.tag == _q("basic"):
            if index != 0:
                raise PidfError("<basic> must be the first child of <status>")
            _no_pidf_children(child, "basic")
            value = (child.text or "").strip()
            try:
                basic = Basic(value)
            except ValueError as exc:
                raise PidfError(f"<basic> is {value[:20]!r}, not open or closed") from exc
        elif child.tag.startswith("{" + PIDF_NS + "}"):
            raise PidfError(f"{child.tag} may not appear inside <status>")
        elif child.tag == "{" + PIDF_IM_NS + "}im" and im_status is None:
            grandchildren = list(child)
            value = (child.text or "").strip()
            if any(_must_understand(g) for g in grandchildren) or not value:
                ignored.append(_opaque(child))  # RFC 3863 §4.2.3: not understood, ignored
            else:
                im_status = value
        else:
            ignored.append(_opaque(child))
    return basic, im_status, tuple(ignored)


def _parse_contact(element: Element) -> PidfContact:
    _no_pidf_children(element, "contact")
    uri = (element.text or "").strip()
    if not URI_RE.match(uri):
        raise PidfError(f"<contact> {uri[:60]!r} is not a URI")
    raw = element.get("priority")
    priority: Decimal | None = None
    if raw is not None and _QVALUE_RE.match(raw.strip()):
        try:
            priority = Decimal(raw.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            priority = None
    # §4.1.5: a priority out of range is ignored as if it were absent.
    return PidfContact(uri, priority)


def _parse_timestamp(element: Element) -> datetime:
    _no_pidf_children(element, "timestamp")
    text = (element.text or "").strip()
    if not _RFC3339_UPPER_RE.match(text):
        raise PidfError(f"<timestamp> {text[:40]!r} is not an RFC 3339 time with capital T/Z")
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise PidfError(f"<timestamp>: {exc}") from exc


def _parse_tuple(element: Element, inherited_lang: str | None) -> PidfTuple:
    tuple_id = element.get("id")
    if tuple_id is None or not _NCNAME_RE.match(tuple_id):
        raise PidfError("a <tuple> needs an 'id' that is an XML name")
    children = list(element)
    if not children or children[0].tag != _q("status"):
        raise PidfError(f"tuple {tuple_id!r}: <status> must come first")
    basic, im_status, status_ext = _parse_status(children[0])
    # §4.1.2 order: status, extensions*, contact?, note*, timestamp?  (stage numbers)
    stage = 1
    extensions: list[str] = []
    contact: PidfContact | None = None
    notes: list[Note] = []
    timestamp: datetime | None = None
    for child in children[1:]:
        if not child.tag.startswith("{" + PIDF_NS + "}"):
            new_stage = 1
            extensions.append(_opaque(child))
        elif child.tag == _q("contact"):
            new_stage = 2
            if contact is not None:
                raise PidfError(f"tuple {tuple_id!r} has two <contact> elements")
            contact = _parse_contact(child)
        elif child.tag == _q("note"):
            new_stage = 3
            notes.append(_parse_note(child, element.get(_XML_LANG, inherited_lang)))
        elif child.tag == _q("timestamp"):
            new_stage = 4
            if timestamp is not None:
                raise PidfError(f"tuple {tuple_id!r} has two <timestamp> elements")
            timestamp = _parse_timestamp(child)
        else:
            raise PidfError(f"{child.tag} may not appear inside <tuple>")
        if new_stage < stage or (new_stage == stage == 2):
            raise PidfError(f"tuple {tuple_id!r}: {child.tag} is out of order (RFC 3863 §4.1.2)")
        stage = new_stage
    try:
        return PidfTuple(
            id=tuple_id,
            basic=basic,
            im_status=im_status,
            contact=contact,
            notes=tuple(notes),
            timestamp=timestamp,
            status_extensions=status_ext,
            extensions=tuple(extensions),
        )
    except PidfError as exc:
        raise PidfError(str(exc)) from exc


def _parse_document(document: XmlDocument, require_declaration: bool) -> PidfDocument:
    if require_declaration and not document.has_declaration:
        raise PidfError("a PIDF document must start with an XML declaration (RFC 3863 §4.1)")
    root = document.root
    if root.tag != _q("presence"):
        raise PidfError(f"the root element is {root.tag[:80]}, not a PIDF <presence>")
    entity = root.get("entity")
    if entity is None or not URI_RE.match(entity.strip()):
        raise PidfError("<presence> needs an 'entity' attribute holding a URI")
    stage = 0
    tuples: list[PidfTuple] = []
    notes: list[Note] = []
    extensions: list[str] = []
    for child in root:
        if child.tag == _q("tuple"):
            new_stage = 0
            tuples.append(_parse_tuple(child, root.get(_XML_LANG)))
        elif child.tag == _q("note"):
            new_stage = 1
            notes.append(_parse_note(child, root.get(_XML_LANG)))
        elif child.tag.startswith("{" + PIDF_NS + "}"):
            raise PidfError(f"{child.tag} may not appear inside <presence>")
        else:
            new_stage = 2
            extensions.append(_opaque(child))
        if new_stage < stage:
            raise PidfError(f"{child.tag} is out of order in <presence> (RFC 3863 §4.1.1)")
        stage = new_stage
    try:
        return PidfDocument(entity.strip(), tuple(tuples), tuple(notes), tuple(extensions))
    except PidfError as exc:
        raise PidfError(str(exc)) from exc


def parse_pidf_untrusted(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_PIDF_SIZE,
    max_depth: int = DEFAULT_MAX_PIDF_DEPTH,
    max_elements: int = DEFAULT_MAX_PIDF_ELEMENTS,
    require_declaration: bool = True,
) -> PidfDocument:
    """Parse a PIDF document received from a peer. Total: raises only PidfError.

    RFC 3863 §4.1 says a document MUST have the XML declaration; ``require_declaration``
    can relax that for documents embedded in another XML stream.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PidfError("a PIDF document must be bytes")
    if len(data) > max_size:
        raise PidfError(f"the PIDF document is larger than {max_size} bytes")
    try:
        document = parse_xml_untrusted(
            bytes(data), max_size=max_size, max_depth=max_depth, max_elements=max_elements
        )
        return _parse_document(document, require_declaration)
    except PidfError:
        raise
    except UnsafeXmlError as exc:
        raise PidfError(f"unacceptable XML: {exc}") from exc
    except (ValueError, IndexError, KeyError, TypeError, UnicodeError, AddressError) as exc:
        raise PidfError(f"malformed PIDF document: {exc}") from exc
