"""XML stream output: stanzas, the stream header and the closing tag (RFC 6120 §4.7, §4.8, §11).

Theory of operation.  Our stream header declares the content namespace (``jabber:client``) as the
default namespace and binds the prefix ``stream`` to the stream namespace (RFC 6120 §4.8.5), so
:func:`serialize` writes:

* elements of the content namespace with no prefix and no declaration (§4.8.5: prefixes on
  ``jabber:client``/``jabber:server`` elements are illegal);
* elements of the stream namespace as ``stream:name`` (``<stream:features/>``, ``<stream:error/>``);
* an element of any other namespace with ``xmlns='...'`` on the element that introduces it, which
  becomes the default for its descendants (``<query xmlns='jabber:iq:roster'>``); an element in no
  namespace below a default namespace gets ``xmlns=''``;
* ``xml:lang`` as is; other namespaced attributes with a generated ``nsN`` prefix declared on the
  element that carries them.

Text and attribute values are escaped (``&``, ``<``, ``>`` and, in attributes, quotes, tab, CR
and LF as character references so that attribute-value normalisation, XML 1.0 §3.3.3, gives back
the same value; CR in text likewise survives end-of-line handling, XML 1.0 §2.11).  Characters
XML 1.0 cannot carry (NUL, most C0 controls, lone surrogates, U+FFFE/U+FFFF) and names that are
not XML names make :func:`serialize` raise :class:`LocalXmppError`: that is our bug, never
something to put on the wire.  Comments and processing instructions are refused too (RFC 6120
§11.1).  Output is UTF-8 without a byte order mark (§11.6).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Final

from gateway.xmpp.errors import STREAM_NS, LocalXmppError

__all__ = ["STREAM_CLOSE", "XML_DECLARATION", "serialize", "stream_header"]

_XML_NS: Final = "http://www.w3.org/XML/1998/namespace"
_XMLNS_NS: Final = "http://www.w3.org/2000/xmlns/"
# RFC 6120 §11.5: an implementation SHOULD send an XML declaration before the stream header.
XML_DECLARATION: Final = b"<?xml version='1.0'?>"
# RFC 6120 §4.4: how a stream is closed (our header binds the 'stream' prefix).
STREAM_CLOSE: Final = b"</stream:stream>"

# XML 1.0 §2.2 Char: everything else cannot appear in a document, even as a character reference.
_INVALID_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# XML Namespaces §3 NCName (XML 1.0 5th edition name characters, without the colon).
_NAME_START: Final = (
    "A-Z_a-z\xc0-\xd6\xd8-\xf6\xf8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NCNAME: Final = re.compile(f"[{_NAME_START}][{_NAME_START}\\-.0-9\xb7\u0300-\u036f\u203f-\u2040]*")

_TEXT_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTRIBUTE_ESCAPES: Final = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&apos;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)


def serialize(element: ET.Element, *, stream_namespace: str = "jabber:client") -> bytes:
    """One first-level element as UTF-8 bytes, for a stream whose default namespace is
    ``stream_namespace`` (the content namespace our :func:`stream_header` declared).

    Raises :class:`LocalXmppError` for elements XML cannot carry.
    """
    if not isinstance(element, ET.Element):
        raise LocalXmppError(f"serialize() takes an Element, not {type(element).__name__}")
    parts: list[str] = []
    try:
        _write(element, parts, stream_namespace or None, {_XML_NS: "xml", STREAM_NS: "stream"})
    except RecursionError as exc:
        raise LocalXmppError("element nested too deeply to serialize") from exc
    return "".join(parts).encode("utf-8")


def stream_header(
    *,
    to: str | None = None,
    from_: str | None = None,
    version: str | None = "1.0",
    lang: str | None = None,
    namespace: str = "jabber:client",
    id: str | None = None,  # the RFC's attribute name (RFC 6120 §4.7.3)
    xml_declaration: bool = True,
) -> bytes:
    """Our stream header (RFC 6120 §4.7), opening the stream (no closing tag; see STREAM_CLOSE).

    A client sends ``to`` (the server's domain) and, once it is known, ``from`` (RFC 6120 §4.7.1);
    ``version='1.0'`` announces RFC 6120 support (§4.7.5); ``lang`` is the default ``xml:lang``.
    """
    if namespace == STREAM_NS:
        raise LocalXmppError("the content namespace must differ from the stream namespace")
    attributes: list[tuple[str, str]] = [
        ("xmlns", namespace),
        ("xmlns:stream", STREAM_NS),
    ]
    for name, value in (
        ("from", from_),
        ("to", to),
        ("id", id),
        ("version", version),
        ("xml:lang", lang),
    ):
        if value is not None:
            attributes.append((name, value))
    text = "<stream:stream" + "".join(f' {n}="{_attribute(v)}"' for n, v in attributes) + ">"
    return (XML_DECLARATION if xml_declaration else b"") + text.encode("utf-8")


def _write(
    element: ET.Element,
    parts: list[str],
    default_namespace: str | None,
    prefixes: dict[str, str],
) -> None:
    """Append ``element`` (and its children, not its tail) to ``parts``."""
    tag = element.tag
    if not isinstance(tag, str):
        # ET.Comment and ET.ProcessingInstruction use factory functions as tags.
        raise LocalXmppError("comments and processing instructions are not allowed (§11.1)")
    namespace, local = _split(tag)
    declarations: list[tuple[str, str]] = []
    if namespace == default_namespace:
        name = local
    elif namespace == STREAM_NS:
        name = f"stream:{local}"
    elif namespace is None:
        name = local
        declarations.append(("xmlns", ""))
        default_namespace = None
    else:
        name = local
        declarations.append(("xmlns", namespace))
        default_namespace = namespace
    attributes: list[tuple[str, str]] = []
    scope = prefixes
    for key, value in element.attrib.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise LocalXmppError(f"attribute {key!r} is not a string pair")
        attribute_namespace, attribute_local = _split(key)
        if attribute_namespace == _XMLNS_NS or (attribute_namespace, attribute_local) == (
            None,
            "xmlns",
        ):
            # Namespace declarations are generated from the Clark names, never copied.
            raise LocalXmppError("set namespaces with Clark names, not xmlns attributes")
        if attribute_namespace is None:
            attributes.append((attribute_local, value))
            continue
        prefix = scope.get(attribute_namespace)
        if prefix is None:
            if scope is prefixes:
                scope = dict(prefixes)  # copy on write: declarations are scoped to this element
            prefix = f"ns{len(scope)}"
            while prefix in scope.values():
                prefix += "_"
            scope[attribute_namespace] = prefix
            declarations.append((f"xmlns:{prefix}", attribute_namespace))
        attributes.append((f"{prefix}:{attribute_local}", value))
    parts.append("<" + name)
    for key, value in (*declarations, *attributes):
        parts.append(f' {key}="{_attribute(value)}"')
    children = list(element)
    text = element.text
    if not children and not text:
        parts.append("/>")
        return
    parts.append(">")
    if text:
        parts.append(_text(text))
    for child in children:
        _write(child, parts, default_namespace, scope)
        if child.tail:
            parts.append(_text(child.tail))
    parts.append(f"</{name}>")


def _split(name: str) -> tuple[str | None, str]:
    """(namespace or None, local) from a Clark name, checking both can be written."""
    namespace: str | None = None
    local = name
    if name.startswith("{"):
        namespace, closed, local = name[1:].partition("}")
        if not closed or "{" in namespace or "}" in local:
            raise LocalXmppError(f"malformed Clark name {name!r}")
        _check_characters(namespace)
        namespace = namespace or None
    if _NCNAME.fullmatch(local) is None:
        raise LocalXmppError(f"{local!r} is not an XML name")
    return namespace, local


def _check_characters(value: str) -> None:
    match = _INVALID_CHAR.search(value)
    if match is not None:
        raise LocalXmppError(f"character U+{ord(match.group()):04X} cannot appear in XML")


def _text(value: str) -> str:
    if not isinstance(value, str):
        raise LocalXmppError(f"element text must be str, not {type(value).__name__}")
    _check_characters(value)
    return value.translate(_TEXT_ESCAPES)


def _attribute(value: str) -> str:
    if not isinstance(value, str):
        raise LocalXmppError(f"attribute value must be str, not {type(value).__name__}")
    _check_characters(value)
    return value.translate(_ATTRIBUTE_ESCAPES)
