"""Safe parsing of small XML documents received from peers (PIDF, RFC 3863).

expat drives an :class:`xml.etree.ElementTree.TreeBuilder` directly, so the tree has the same
Clark-notation names (``{urn:ietf:params:xml:ns:pidf}presence``) as the XMPP layer's
elements. Refused outright, before any expansion can happen: a document type declaration
(and with it every entity declaration, internal or external: no "billion laughs", no
external references), entity references other than the five predefined ones, any declared
encoding but UTF-8. The size limit is checked before expat sees a byte; depth and element
count while it parses. Every failure is an :class:`UnsafeXmlError` (a ValueError) that the
caller turns into its own protocol error.
"""

from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass
from typing import NoReturn
from xml.etree.ElementTree import Element, TreeBuilder

__all__ = ["UnsafeXmlError", "XmlDocument", "parse_xml_untrusted"]


class UnsafeXmlError(ValueError):
    """The bytes are not a well-formed, safe XML document within the limits."""


@dataclass(frozen=True)
class XmlDocument:
    """A parsed document: its root element and what its XML declaration said."""

    root: Element
    has_declaration: bool
    encoding: str | None


def _refuse(what: str) -> NoReturn:
    raise UnsafeXmlError(what)


def parse_xml_untrusted(
    data: bytes, *, max_size: int, max_depth: int, max_elements: int
) -> XmlDocument:
    """Parse ``data`` as UTF-8 XML with namespaces; raise UnsafeXmlError on anything unsafe."""
    if len(data) > max_size:
        raise UnsafeXmlError(f"the document is larger than {max_size} bytes")
    builder = TreeBuilder()
    parser = xml.parsers.expat.ParserCreate("UTF-8", namespace_separator="}")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0
    elements = 0
    declaration: list[str | None] = []

    def clark(name: str) -> str:
        return "{" + name if "}" in name else name

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth, elements
        depth += 1
        elements += 1
        if depth > max_depth:
            _refuse(f"the document is nested deeper than {max_depth} elements")
        if elements > max_elements:
            _refuse(f"the document has more than {max_elements} elements")
        builder.start(clark(name), {clark(k): v for k, v in attributes.items()})

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(clark(name))

    def xml_decl(version: str | None, encoding: str | None, standalone: int) -> None:
        if encoding is not None and encoding.upper().replace("_", "-") not in ("UTF-8", "UTF8"):
            _refuse(f"declared encoding {encoding!r} is not UTF-8")
        declaration.append(encoding)

    def doctype(*_: object) -> None:
        _refuse("document type declarations are not allowed")

    def entity_decl(*_: object) -> None:
        _refuse("entity declarations are not allowed")

    def external_entity(*_: object) -> int:
        _refuse("external entity references are not allowed")

    def undeclared_entity(name: str, *_: object) -> None:
        _refuse(f"entity reference &{name}; is not allowed")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.XmlDeclHandler = xml_decl
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity_decl
    parser.UnparsedEntityDeclHandler = entity_decl
    parser.ExternalEntityRefHandler = external_entity
    parser.SkippedEntityHandler = undeclared_entity
    parser.DefaultHandler = lambda text: None  # comments, PIs: dropped, never expanded
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise UnsafeXmlError(f"not well-formed XML: {exc}") from exc
    except RecursionError as exc:  # pragma: no cover - depth is limited above
        raise UnsafeXmlError("the document is nested too deeply") from exc
    try:
        root = builder.close()
    except AssertionError as exc:  # pragma: no cover - expat already checked balance
        raise UnsafeXmlError("the document has no root element") from exc
    return XmlDocument(
        root=root,
        has_declaration=bool(declaration),
        encoding=declaration[0] if declaration else None,
    )
