"""An incremental, bounded, namespace-aware XML stream parser for XMPP (RFC 6120 §4, §11).

Theory of operation.  An XMPP session is two long-lived XML documents, one per direction (RFC 6120
§4.1): a root ``<stream:stream>`` whose first-level children are stanzas and negotiation elements.
:class:`XmlStreamParser` reads the peer's document as bytes arrive and turns it into one event per
first-level unit: :class:`StreamOpened` for the stream header (RFC 6120 §4.7),
:class:`StanzaReceived` with a complete :class:`xml.etree.ElementTree.Element` (names in
Clark notation, ``{jabber:client}message``) for each first-level child, :class:`StreamClosed`
for ``</stream:stream>`` (RFC 6120 §4.4).  After STARTTLS (§5.3.4) and SASL success (§6.4.6) the
stream restarts: call :meth:`XmlStreamParser.reset` and feed the new stream from its header.

It is built on expat (``xml.parsers.expat``) in namespace mode, and is hardened for hostile peers:

* Restricted XML (RFC 6120 §11.1): a DOCTYPE, any markup declaration (so entity declarations and the
  "billion laughs" expansion can never start), processing instructions, comments and references to
  entities other than the five predefined ones are refused with ``<restricted-xml/>``.  An XML
  declaration with a standalone declaration is refused the same way (§11.5).
* Encoding (RFC 6120 §11.6): every byte is checked as UTF-8 before expat sees it; invalid UTF-8 (or
  an XML declaration naming another encoding) is ``<unsupported-encoding/>`` (§4.9.3.22).
* Limits (RFC 6120 §13.12 point 4 has servers cap stanza size; a client guards itself the same
  way): the bytes of the unit being parsed (a stanza from its first '<', or a start tag still
  incomplete) are capped at ``max_stanza_size``.  Input
  is handed to expat in slices of at most :data:`FEED_SLICE` bytes and the cap is checked after each
  slice, so at most ``max_stanza_size + FEED_SLICE`` bytes of one unit are ever held, however large
  the chunk given to :meth:`~XmlStreamParser.feed`.  Element depth, attribute count and attribute
  length are capped too.  Exceeding a cap is ``<policy-violation/>`` (the RFC's example, §4.9.3.14).
* Work per byte: expat re-scans an incomplete token (a start tag, say) from its beginning on every
  ``Parse`` call, and expat before 2.6 cannot defer that, so a peer that sends one long start tag a
  byte per TLS record would cost quadratic CPU.  The parser therefore never hands expat an
  incomplete tag: a small lexer (:meth:`XmlStreamParser._scan_held`, C-speed ``find`` over the new
  bytes only) tracks whether the bytes received end inside ``<...>`` (quotes and CDATA sections
  included), hands expat everything before the tag that is still open, and holds that tag (within
  the size cap) until its ``>`` arrives.  Each byte is then scanned a bounded number of times,
  whatever the peer's feed sizes; :meth:`~XmlStreamParser.statistics` counts the bytes and calls.
* Namespaces (RFC 6120 §4.8): the root must be ``stream`` in the stream namespace, with a prefix
  (§4.8.5 point 2); the default (content) namespace, if declared, must be one of
  ``content_namespaces``; a first-level element without a namespace is ``<invalid-namespace/>``;
  a prefix on an element of the ``jabber:client`` or ``jabber:server`` namespace is
  ``<bad-namespace-prefix/>`` (§4.8.5).
* ``xml:lang`` (RFC 6120 §4.7.4, §8.1.5): a stanza without ``xml:lang`` is in the stream's language,
  so the stream header's ``xml:lang`` is copied onto it (turn off with ``inherit_stream_lang``).

:meth:`XmlStreamParser.feed` is total: it returns events or raises :class:`StreamError`, whose
``condition`` is the stream error to send before closing; expat's own errors are mapped (RFC 6120
§11.3: ill-formed XML is ``<not-well-formed/>``).  After a StreamError the parser refuses further
input (a :class:`LocalXmppError`) until :meth:`~XmlStreamParser.reset`.
"""

from __future__ import annotations

import codecs
import dataclasses
import enum
import re
import xml.etree.ElementTree as ET
from typing import Final, TypeAlias
from xml.parsers import expat

from gateway.xmpp.errors import (
    STREAM_NS,
    XML_LANG,
    LocalXmppError,
    StreamCondition,
    StreamError,
)

__all__ = [
    "CONTENT_NAMESPACES",
    "DEFAULT_MAX_ATTRIBUTES",
    "DEFAULT_MAX_ATTRIBUTE_LENGTH",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_STANZA_SIZE",
    "FEED_SLICE",
    "ParserStatistics",
    "StanzaReceived",
    "StreamClosed",
    "StreamEvent",
    "StreamOpened",
    "XmlStreamParser",
]

# RFC 6120 §13.12 asks for a stanza size limit of at least 10000 bytes; 256 KiB carries a
# photo-sized S/MIME or CPIM payload (the device side's own cap, gateway/wire) with room for
# base64 and framing.
DEFAULT_MAX_STANZA_SIZE: Final = 256 * 1024
# Element nesting inside one stanza (the stanza is depth 1).  Carbons + MAM + forwarded + XHTML-IM
# nest about a dozen deep; 32 leaves room and keeps a hostile document shallow.
DEFAULT_MAX_DEPTH: Final = 32
# Attributes (plus namespace declarations) on one element; stanzas carry fewer than ten.
DEFAULT_MAX_ATTRIBUTES: Final = 32
# One attribute value, in characters; a JID is at most 3071 bytes (RFC 7622 §3.1).
DEFAULT_MAX_ATTRIBUTE_LENGTH: Final = 8 * 1024
# Input is handed to expat at most this many bytes at a time, so the size cap is checked at least
# that often; it bounds the overshoot past max_stanza_size.
FEED_SLICE: Final = 4096

# RFC 6120 §4.8.2 and XEP-0114: the namespaces a stream may declare as its content namespace.
CONTENT_NAMESPACES: Final = frozenset({"jabber:client", "jabber:server", "jabber:component:accept"})
# RFC 6120 §4.8.5: elements of these content namespaces must not be prefixed.
_UNPREFIXED_NAMESPACES: Final = frozenset({"jabber:client", "jabber:server"})
# The three stanza kinds (RFC 6120 §8); only these inherit the stream's xml:lang.
_STANZA_NAMES: Final = frozenset({"message", "presence", "iq"})

# expat reports qualified names as "uri<SEP>local<SEP>prefix".  U+0001 is not an XML 1.0 character,
# so it cannot occur in a namespace name, a local name or a prefix.
_SEPARATOR: Final = "\x01"


@dataclasses.dataclass(frozen=True)
class StreamOpened:
    """The peer's stream header arrived (RFC 6120 §4.7).

    ``attributes`` has Clark-notation names (``xml:lang`` is ``{http://www.w3.org/XML/1998/
    namespace}lang``, see :attr:`lang`); ``content_namespace`` is the default namespace the header
    declared (``jabber:client``), or ``None`` if the peer qualifies each element instead (§4.8.2).
    """

    attributes: dict[str, str]
    content_namespace: str | None = None

    @property
    def to(self) -> str | None:
        """The 'to' attribute (RFC 6120 §4.7.2)."""
        return self.attributes.get("to")

    @property
    def from_(self) -> str | None:
        """The 'from' attribute (RFC 6120 §4.7.1)."""
        return self.attributes.get("from")

    @property
    def id(self) -> str | None:
        """The stream id (RFC 6120 §4.7.3)."""
        return self.attributes.get("id")

    @property
    def version(self) -> str | None:
        """The 'version' attribute (RFC 6120 §4.7.5); ``None`` means a pre-1.0 peer."""
        return self.attributes.get("version")

    @property
    def lang(self) -> str | None:
        """The stream's default language, 'xml:lang' (RFC 6120 §4.7.4)."""
        return self.attributes.get(XML_LANG)


@dataclasses.dataclass(frozen=True, eq=False)
class StanzaReceived:
    """One complete first-level element: a stanza or a negotiation element (RFC 6120 §4.1).

    Compared by identity, as Elements are.
    """

    element: ET.Element


@dataclasses.dataclass(frozen=True)
class StreamClosed:
    """The peer closed its stream with ``</stream:stream>`` (RFC 6120 §4.4)."""


StreamEvent: TypeAlias = StreamOpened | StanzaReceived | StreamClosed


@dataclasses.dataclass(frozen=True)
class ParserStatistics:
    """Work done since the last reset: bytes handed to expat, ``Parse`` calls, bytes held back."""

    bytes_parsed: int
    parse_calls: int
    held: int


class _Lex(enum.Enum):
    """Where the bytes received so far end, lexically (enough to know whether a tag is open)."""

    TEXT = enum.auto()  # character data: expat may have it at once
    TAG = enum.auto()  # after '<', before its '>'
    QUOTE = enum.auto()  # inside a quoted attribute value of a tag
    CDATA = enum.auto()  # inside <![CDATA[ ... ]]>


_CDATA_OPEN: Final = b"<![CDATA["
_CDATA_CLOSE: Final = b"]]>"
_TAG_SPECIAL: Final = re.compile(rb"['\">]")
# Character data and complete tags, each '<' followed by a name character (never '!': CDATA,
# comments and declarations take the step-by-step path), quoted values skipped whole.  What it
# matches, the step-by-step lexer would walk through to the same TEXT state, one regex call
# instead of a Python loop turn per tag and per attribute value.  Each alternative starts with
# a different byte, so a failed attempt backtracks in linear time.
_COMPLETE_MARKUP: Final = re.compile(
    rb"""(?:[^<]*<[^!"'>][^"'>]*(?:(?:"[^"]*"|'[^']*')[^"'>]*)*>)*"""
)


class _State(enum.Enum):
    """Where the parser is in the peer's document."""

    AWAITING_HEADER = enum.auto()  # before <stream:stream>
    OPEN = enum.auto()  # between first-level elements
    IN_STANZA = enum.auto()  # inside a first-level element
    CLOSED = enum.auto()  # after </stream:stream>
    FAILED = enum.auto()  # a StreamError was raised; only reset() helps


# expat error codes that mean something more specific than <not-well-formed/> (RFC 6120 §11.3).
_EXPAT_CONDITIONS: Final = {
    expat.errors.codes[expat.errors.XML_ERROR_UNBOUND_PREFIX]: StreamCondition.BAD_NAMESPACE_PREFIX,
    expat.errors.codes[expat.errors.XML_ERROR_UNDECLARING_PREFIX]: (
        StreamCondition.BAD_NAMESPACE_PREFIX
    ),
    expat.errors.codes[expat.errors.XML_ERROR_RESERVED_PREFIX_XML]: (
        StreamCondition.BAD_NAMESPACE_PREFIX
    ),
    expat.errors.codes[expat.errors.XML_ERROR_RESERVED_PREFIX_XMLNS]: (
        StreamCondition.BAD_NAMESPACE_PREFIX
    ),
    expat.errors.codes[expat.errors.XML_ERROR_RESERVED_NAMESPACE_URI]: (
        StreamCondition.BAD_NAMESPACE_PREFIX
    ),
    # §11.1: only the predefined entities may be referenced.
    expat.errors.codes[expat.errors.XML_ERROR_UNDEFINED_ENTITY]: StreamCondition.RESTRICTED_XML,
    expat.errors.codes[expat.errors.XML_ERROR_EXTERNAL_ENTITY_HANDLING]: (
        StreamCondition.RESTRICTED_XML
    ),
    expat.errors.codes[expat.errors.XML_ERROR_UNKNOWN_ENCODING]: (
        StreamCondition.UNSUPPORTED_ENCODING
    ),
    expat.errors.codes[expat.errors.XML_ERROR_INCORRECT_ENCODING]: (
        StreamCondition.UNSUPPORTED_ENCODING
    ),
}


class XmlStreamParser:
    """Incremental parser of one direction of an XML stream; see the module docstring.

    ``content_namespaces`` lists the default namespaces a header may declare (a client expects
    ``{"jabber:client"}``).  ``max_stanza_size`` caps the bytes of one first-level element (and of
    the stream header); ``max_depth`` the nesting inside a stanza; ``max_attributes`` and
    ``max_attribute_length`` each element's attributes.
    """

    def __init__(
        self,
        *,
        max_stanza_size: int = DEFAULT_MAX_STANZA_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_attributes: int = DEFAULT_MAX_ATTRIBUTES,
        max_attribute_length: int = DEFAULT_MAX_ATTRIBUTE_LENGTH,
        content_namespaces: frozenset[str] = CONTENT_NAMESPACES,
        inherit_stream_lang: bool = True,
    ) -> None:
        for name, value in (
            ("max_stanza_size", max_stanza_size),
            ("max_depth", max_depth),
            ("max_attributes", max_attributes),
            ("max_attribute_length", max_attribute_length),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LocalXmppError(f"{name} must be a positive int, not {value!r}")
        if STREAM_NS in content_namespaces:
            raise LocalXmppError("the content namespace must differ from the stream namespace")
        self.max_stanza_size = max_stanza_size
        self.max_depth = max_depth
        self.max_attributes = max_attributes
        self.max_attribute_length = max_attribute_length
        self.content_namespaces = content_namespaces
        self.inherit_stream_lang = inherit_stream_lang
        self.reset()

    # -- public API ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the current stream and expect a new header (RFC 6120 §5.3.4, §6.4.6).

        Also the way out of the failed state after a :class:`StreamError`.
        """
        self._expat = self._new_expat()
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._state = _State.AWAITING_HEADER
        self._events: list[StreamEvent] = []
        self._builder: ET.TreeBuilder | None = None
        self._depth = 0  # element depth inside the current stanza (the stanza is 1)
        self._pending_declarations = 0  # namespace declarations for the next start tag
        self._stream_lang: str | None = None
        self._content_namespace: str | None = None
        self._bytes_fed = 0  # bytes handed to this expat parser
        self._unit_start = 0  # expat byte index where the unit now being parsed began
        self._parse_calls = 0
        self._held = bytearray()  # received, not yet handed to expat: an incomplete tag
        self._scanned = 0  # how far into _held the lexer has looked
        self._lex = _Lex.TEXT
        self._quote = 0  # the quote byte that opened the attribute value (in _Lex.QUOTE)
        self._token_start = 0  # in _held, the '<' of the open tag or CDATA section

    @property
    def buffered_size(self) -> int:
        """Bytes of the unit being parsed (stanza or incomplete tag) that the parser may hold."""
        return self._bytes_fed - self._unit_start + len(self._held)

    def statistics(self) -> ParserStatistics:
        """A snapshot of the work counters (see the module docstring, "work per byte")."""
        return ParserStatistics(self._bytes_fed, self._parse_calls, len(self._held))

    @property
    def closed(self) -> bool:
        """Whether the peer has closed its stream."""
        return self._state is _State.CLOSED

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Parse the next bytes from the peer; return the events they complete, in order.

        Raises :class:`StreamError` (the peer's fault; send ``error.to_element()`` and close) and
        nothing else for any input; :class:`LocalXmppError` if called after a failure.
        """
        if self._state is _State.FAILED:
            raise LocalXmppError("the stream already failed; reset() before feeding more")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise LocalXmppError(f"feed() takes bytes, not {type(data).__name__}")
        data = bytes(data)
        self._events = []
        try:
            for offset in range(0, len(data), FEED_SLICE):
                self._feed_slice(data[offset : offset + FEED_SLICE])
        except StreamError:
            self._fail()
            raise
        except expat.ExpatError as exc:
            self._fail()
            condition = _EXPAT_CONDITIONS.get(exc.code, StreamCondition.NOT_WELL_FORMED)
            raise StreamError(condition, f"XML error: {expat.errors.messages[exc.code]}") from exc
        except UnicodeDecodeError as exc:
            self._fail()
            raise StreamError(
                StreamCondition.UNSUPPORTED_ENCODING, "the stream is not valid UTF-8"
            ) from exc
        except (ValueError, TypeError, RecursionError) as exc:
            # Defensive: expat or the tree builder refusing something not covered above.
            self._fail()
            raise StreamError(StreamCondition.BAD_FORMAT, "unprocessable XML") from exc
        events, self._events = self._events, []
        return events

    # -- internals ----------------------------------------------------------------------------

    def _fail(self) -> None:
        self._state = _State.FAILED
        self._builder = None
        self._events = []

    def _feed_slice(self, piece: bytes) -> None:
        self._utf8.decode(piece, False)  # RFC 6120 §11.6: UTF-8 only, checked before parsing
        self._held += piece
        ready = self._scan_held()
        if ready:
            complete = bytes(self._held[:ready])
            del self._held[:ready]
            self._scanned -= ready
            self._token_start -= ready
            self._bytes_fed += len(complete)
            self._parse_calls += 1
            self._expat.Parse(complete, False)
        if self.buffered_size > self.max_stanza_size:
            what = "stanza" if self._state is _State.IN_STANZA else "unit of XML"
            raise StreamError(
                StreamCondition.POLICY_VIOLATION,
                f"{what} larger than {self.max_stanza_size} bytes",
            )

    def _scan_held(self) -> int:
        """Advance the lexer over the new bytes of ``_held``; return how many may go to expat.

        Everything before an open tag (or CDATA section) is complete markup or text; the open
        tag itself waits for its '>'.
        """
        held = self._held
        position = self._scanned
        end = len(held)
        while position < end:
            if self._lex is _Lex.TEXT:
                run = _COMPLETE_MARKUP.match(held, position)
                if run is not None:  # it always matches, perhaps nothing
                    position = run.end()
                found = held.find(b"<", position)
                if found < 0:
                    position = end
                    break
                self._lex = _Lex.TAG
                self._token_start = found
                position = found + 1
            elif self._lex is _Lex.TAG:
                opening = bytes(held[self._token_start : self._token_start + len(_CDATA_OPEN)])
                if opening == _CDATA_OPEN:
                    self._lex = _Lex.CDATA
                    position = max(position, self._token_start + len(_CDATA_OPEN))
                    continue
                if _CDATA_OPEN.startswith(opening) and len(opening) < len(_CDATA_OPEN):
                    position = end  # perhaps a CDATA opener: wait for more bytes
                    break
                if opening.startswith(b"<!"):
                    # RFC 6120 §11.1: a DOCTYPE, comment or declaration; refused as it starts
                    # (not when it ends, which a slow peer could put off at our expense).
                    raise StreamError(
                        StreamCondition.RESTRICTED_XML, "comment or markup declaration"
                    )
                match = _TAG_SPECIAL.search(held, position)
                if match is None:
                    position = end
                    break
                position = match.end()
                if held[match.start()] == ord(">"):
                    self._lex = _Lex.TEXT
                else:
                    self._lex = _Lex.QUOTE
                    self._quote = held[match.start()]
            elif self._lex is _Lex.QUOTE:
                found = held.find(bytes((self._quote,)), position)
                if found < 0:
                    position = end
                    break
                self._lex = _Lex.TAG
                position = found + 1
            else:  # _Lex.CDATA
                start = max(position - len(_CDATA_CLOSE) + 1, self._token_start + len(_CDATA_OPEN))
                found = held.find(_CDATA_CLOSE, start)
                if found < 0:
                    position = end
                    break
                self._lex = _Lex.TEXT
                position = found + len(_CDATA_CLOSE)
        self._scanned = position
        return len(held) if self._lex is _Lex.TEXT else self._token_start

    def _new_expat(self) -> expat.XMLParserType:
        parser = expat.ParserCreate("UTF-8", _SEPARATOR)
        parser.namespace_prefixes = True
        parser.ordered_attributes = True
        parser.buffer_text = False
        # expat >= 2.6 may defer re-parsing a large token until more data arrives, which would
        # hold back a complete stanza; XMPP needs each stanza as soon as its end tag is in.  The
        # quadratic re-scan deferral avoids cannot happen here: expat never gets an open tag.
        set_deferral = getattr(parser, "SetReparseDeferralEnabled", None)
        if set_deferral is not None:
            set_deferral(False)
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.XmlDeclHandler = self._on_xml_declaration
        parser.StartNamespaceDeclHandler = self._on_namespace_declaration
        parser.StartElementHandler = self._on_start
        parser.EndElementHandler = self._on_end
        parser.CharacterDataHandler = self._on_text
        # RFC 6120 §11.1: everything below is refused; the DOCTYPE handler fires before any
        # declaration inside it, so no entity is ever defined, let alone expanded.
        parser.StartDoctypeDeclHandler = self._on_doctype
        parser.EntityDeclHandler = self._on_entity_declaration
        parser.UnparsedEntityDeclHandler = self._on_entity_declaration
        parser.NotationDeclHandler = self._on_markup_declaration
        parser.ElementDeclHandler = self._on_markup_declaration
        parser.AttlistDeclHandler = self._on_markup_declaration
        parser.ExternalEntityRefHandler = self._on_entity_reference
        parser.SkippedEntityHandler = self._on_entity_reference
        parser.ProcessingInstructionHandler = self._on_processing_instruction
        parser.CommentHandler = self._on_comment
        return parser

    # expat handlers.  Each may raise StreamError, which expat propagates out of Parse().

    def _on_xml_declaration(
        self, version: str | None, encoding: str | None, standalone: int
    ) -> None:
        if encoding is not None and encoding.lower().replace("-", "") != "utf8":
            raise StreamError(
                StreamCondition.UNSUPPORTED_ENCODING, "XML declaration names an encoding not UTF-8"
            )
        if standalone != -1:
            raise StreamError(
                StreamCondition.RESTRICTED_XML, "standalone declaration in the XML declaration"
            )
        if version != "1.0":  # RFC 6120 §11.8: XML 1.0 only
            raise StreamError(StreamCondition.UNSUPPORTED_VERSION, "XML version other than 1.0")
        self._unit_start = self._expat.CurrentByteIndex

    def _on_doctype(self, *_args: object) -> None:
        raise StreamError(StreamCondition.RESTRICTED_XML, "document type declaration")

    def _on_entity_declaration(self, *_args: object) -> None:
        raise StreamError(StreamCondition.RESTRICTED_XML, "entity declaration")

    def _on_markup_declaration(self, *_args: object) -> None:
        raise StreamError(StreamCondition.RESTRICTED_XML, "markup declaration")

    def _on_entity_reference(self, *_args: object) -> int:
        raise StreamError(StreamCondition.RESTRICTED_XML, "reference to a non-predefined entity")

    def _on_processing_instruction(self, _target: str, _data: str) -> None:
        raise StreamError(StreamCondition.RESTRICTED_XML, "processing instruction")

    def _on_comment(self, _data: str) -> None:
        raise StreamError(StreamCondition.RESTRICTED_XML, "comment")

    def _on_namespace_declaration(self, prefix: str | None, uri: str | None) -> None:
        self._pending_declarations += 1
        if uri is not None and len(uri) > self.max_attribute_length:
            raise StreamError(StreamCondition.POLICY_VIOLATION, "namespace name too long")
        if self._state is _State.AWAITING_HEADER and prefix is None:
            self._content_namespace = uri or None

    def _on_start(self, name: str, attribute_list: list[str]) -> None:
        declarations, self._pending_declarations = self._pending_declarations, 0
        if len(attribute_list) // 2 + declarations > self.max_attributes:
            raise StreamError(StreamCondition.POLICY_VIOLATION, "too many attributes")
        tag, prefix = _clark(name)
        attributes: dict[str, str] = {}
        for index in range(0, len(attribute_list), 2):
            value = attribute_list[index + 1]
            if len(value) > self.max_attribute_length:
                raise StreamError(StreamCondition.POLICY_VIOLATION, "attribute value too long")
            attributes[_clark(attribute_list[index])[0]] = value
        if self._state is _State.AWAITING_HEADER:
            self._open_stream(tag, prefix, attributes)
            return
        if self._state is _State.OPEN:
            self._start_stanza(tag, prefix, attributes)
            return
        # Inside a stanza.
        assert self._builder is not None
        self._depth += 1
        if self._depth > self.max_depth:
            raise StreamError(StreamCondition.POLICY_VIOLATION, "elements nested too deeply")
        self._check_prefix(tag, prefix)
        self._builder.start(tag, attributes)

    def _open_stream(self, tag: str, prefix: str | None, attributes: dict[str, str]) -> None:
        # RFC 6120 §4.8.1: the root is <stream/> in the stream namespace.
        if tag != f"{{{STREAM_NS}}}stream":
            namespace = _namespace(tag)
            if namespace != STREAM_NS:
                raise StreamError(
                    StreamCondition.INVALID_NAMESPACE, "root not in the stream namespace"
                )
            raise StreamError(StreamCondition.BAD_FORMAT, "root element is not <stream>")
        # RFC 6120 §4.8.5 point 2: the stream namespace is declared with a prefix.
        if prefix is None:
            raise StreamError(
                StreamCondition.BAD_NAMESPACE_PREFIX, "stream namespace declared without a prefix"
            )
        content = self._content_namespace
        if content is not None and content not in self.content_namespaces:
            raise StreamError(
                StreamCondition.INVALID_NAMESPACE, f"unsupported content namespace {content!r}"
            )
        self._stream_lang = attributes.get(XML_LANG)
        self._state = _State.OPEN
        self._unit_start = self._expat.CurrentByteIndex
        self._events.append(StreamOpened(attributes, content))

    def _start_stanza(self, tag: str, prefix: str | None, attributes: dict[str, str]) -> None:
        namespace = _namespace(tag)
        if namespace is None:
            raise StreamError(
                StreamCondition.INVALID_NAMESPACE, "first-level element without a namespace"
            )
        if namespace in CONTENT_NAMESPACES and namespace not in self._allowed_content():
            raise StreamError(
                StreamCondition.INVALID_NAMESPACE, f"stanza in the wrong namespace {namespace!r}"
            )
        self._check_prefix(tag, prefix)
        if (
            self.inherit_stream_lang
            and self._stream_lang is not None
            and XML_LANG not in attributes
            and namespace in CONTENT_NAMESPACES
            and _local(tag) in _STANZA_NAMES
        ):
            # RFC 6120 §4.7.4: a stanza without xml:lang is in the stream's language.
            attributes[XML_LANG] = self._stream_lang
        self._state = _State.IN_STANZA
        self._depth = 1
        self._unit_start = self._expat.CurrentByteIndex
        self._builder = ET.TreeBuilder()
        self._builder.start(tag, attributes)

    def _allowed_content(self) -> frozenset[str]:
        """Content namespaces a stanza may use on this stream (RFC 6120 §4.8.2)."""
        if self._content_namespace is not None:
            return frozenset({self._content_namespace})
        return self.content_namespaces

    @staticmethod
    def _check_prefix(tag: str, prefix: str | None) -> None:
        if prefix is not None and _namespace(tag) in _UNPREFIXED_NAMESPACES:
            raise StreamError(
                StreamCondition.BAD_NAMESPACE_PREFIX,
                "prefix on an element of the content namespace",
            )

    def _on_end(self, name: str) -> None:
        if self._state is _State.OPEN:
            # The only element that can end at stream level is the root itself.
            self._state = _State.CLOSED
            self._unit_start = self._expat.CurrentByteIndex
            self._events.append(StreamClosed())
            return
        assert self._builder is not None
        tag = _clark(name)[0]
        self._builder.end(tag)
        self._depth -= 1
        if self._depth > 0:
            return
        # The stanza is complete.  Its size is checked here too, so a whole oversized stanza
        # inside one slice is refused like one that spans slices.  expat gives the position of
        # the end tag's '<', so the closing tag itself (RFC 6120 §13.12 counts to its '>') is
        # not counted: the cap is a memory bound, exact to within one end tag.
        if self._expat.CurrentByteIndex - self._unit_start > self.max_stanza_size:
            raise StreamError(
                StreamCondition.POLICY_VIOLATION,
                f"stanza larger than {self.max_stanza_size} bytes",
            )
        element = self._builder.close()
        self._builder = None
        self._state = _State.OPEN
        self._unit_start = self._expat.CurrentByteIndex
        self._events.append(StanzaReceived(element))

    def _on_text(self, text: str) -> None:
        if self._state is _State.IN_STANZA:
            assert self._builder is not None
            self._builder.data(text)
            return
        # Between first-level elements only whitespace is allowed (RFC 6120 §11.7); it is dropped.
        if text.strip(" \t\r\n"):
            raise StreamError(StreamCondition.BAD_FORMAT, "text between first-level elements")
        self._unit_start = self._expat.CurrentByteIndex


def _clark(expat_name: str) -> tuple[str, str | None]:
    """('{namespace}local' or 'local', prefix) from expat's 'namespace<SEP>local<SEP>prefix'."""
    parts = expat_name.split(_SEPARATOR)
    if len(parts) == 1:
        return parts[0], None
    namespace, local = parts[0], parts[1]
    if "}" in namespace or "{" in namespace:
        # Clark notation cannot carry such a namespace name unambiguously.
        raise StreamError(StreamCondition.BAD_FORMAT, "namespace name containing a brace")
    prefix = parts[2] if len(parts) > 2 else None
    return f"{{{namespace}}}{local}", prefix


def _namespace(tag: str) -> str | None:
    """The namespace of a Clark name, or None."""
    if tag.startswith("{"):
        return tag[1:].partition("}")[0]
    return None


def _local(tag: str) -> str:
    """The local part of a Clark name."""
    return tag.rpartition("}")[2]
