"""Message/CPIM (RFC 3862): build and strictly parse.

Theory of operation
-------------------
A Message/CPIM object (RFC 3862 §2) is three blocks separated by empty lines, every line
ending in CRLF::

    Content-type: Message/CPIM              <- MIME headers of the object   (m:)
                                            <- separator                    (s:)
    From: Juliet <im:juliet@example.com>    <- message headers              (h:)
    DateTime: 2003-12-09T11:45:36.66Z
                                            <- separator                    (s:)
    Content-type: text/plain; charset=utf-8 <- encapsulated MIME headers    (e:)
                                            <- end of the MIME headers
    Wherefore art thou, Romeo?              <- content bytes, to the end of the object

Message headers MUST NOT be changed or reordered in transit (§2.2, §6) because signatures
cover them, so :class:`CpimMessage` keeps them as an ordered tuple of :class:`CpimHeader`
holding the *wire* spelling of each value; ``parse(x).to_bytes() == x`` for every message
this module accepts whose encapsulated headers are unfolded. Typed views (``sender``,
``recipients``, ``date_time``, ``subjects``, ``namespaces``, ``required``, ``extensions``) are
computed from that list with the namespace rules of §3.4: a header belongs to
``urn:ietf:params:cpim-headers:`` unless an earlier ``NS`` header re-declared the default or
the header name carries a declared ``prefix.``.

Header syntax is the ABNF of §3.6: ``Name[;param=value...]: value`` with exactly one SP after
the colon (the parameters sit between colon and SP: ``Subject:;lang=fr Objet``), no control
characters, no whitespace at either end of a line, UTF-8 throughout. Values escape control
characters and backslashes with the Java-like sequences of §2.3 (:func:`escape_header_text`,
:func:`unescape_header_text`); formal names that are not plain tokens are quoted strings.

:func:`parse_cpim_untrusted` enforces the size limit before looking at the bytes, the line
length and header-count limits while scanning, and raises only :class:`CpimError`.
DateTime values use RFC 3339 (:func:`format_rfc3339`, :func:`parse_rfc3339`); the builder
always writes UTC with ``Z``, as RFC 3923 §6.9 asks of timestamps that get signed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.impp.address import ImppAddress
from gateway.impp.cpim_syntax import (
    CRLF,
    LANG_RE,
    MIME_CONTROL_RE,
    MIME_NAME_RE,
    URI_RE,
    check_name,
    check_param_value,
    check_value,
    escape_header_text,
    format_rfc3339,
    is_tokenchar,
    parse_ns,
    parse_rfc3339,
    read_string,
    unescape_header_text,
)
from gateway.impp.errors import AddressError, CpimError

__all__ = [
    "CPIM_HEADERS_NS",
    "DEFAULT_MAX_CPIM_HEADERS",
    "DEFAULT_MAX_CPIM_LINE",
    "DEFAULT_MAX_CPIM_SIZE",
    "CpimAddress",
    "CpimHeader",
    "CpimMessage",
    "Subject",
    "escape_header_text",
    "format_rfc3339",
    "parse_cpim_untrusted",
    "parse_rfc3339",
    "unescape_header_text",
]

# RFC 3862 §4: namespace of From, To, cc, DateTime, Subject, NS and Require.
CPIM_HEADERS_NS = "urn:ietf:params:cpim-headers:"

# Whole object: a photo-sized MIME payload, the device wire protocol's own message limit.
DEFAULT_MAX_CPIM_SIZE = 256 * 1024
# Headers in all three header blocks together; a real message has a dozen.
DEFAULT_MAX_CPIM_HEADERS = 128
# One header line, CRLF excluded. RFC 3862 §2.2 asks processors not to limit line length;
# this bound only stops a single line from being a denial of service and is far above any
# address, subject or extension value a person writes.
DEFAULT_MAX_CPIM_LINE = 8 * 1024


@dataclass(frozen=True)
class CpimAddress:
    """``[ Formal-name ] "<" URI ">"`` of From, To and cc (RFC 3862 §4.1-4.3)."""

    uri: str
    formal_name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not URI_RE.match(self.uri):
            raise CpimError(f"{str(self.uri)[:60]!r} is not an absolute URI", remote=False)
        if self.formal_name is not None and (
            not isinstance(self.formal_name, str) or not self.formal_name
        ):
            raise CpimError("a formal name must be non-empty text", remote=False)

    @classmethod
    def of(cls, address: ImppAddress, formal_name: str | None = None) -> CpimAddress:
        """The ``im:`` address of an identity, resource dropped (RFC 3922 §4.1.1)."""
        return cls(address.im_uri, formal_name)

    def to_value(self) -> str:
        """The header value: tokens as they are, anything else as a quoted string."""
        if self.formal_name is None:
            return f"<{self.uri}>"
        tokens = self.formal_name.split(" ")
        if all(tok and all(is_tokenchar(c) for c in tok) for tok in tokens):
            return f"{self.formal_name} <{self.uri}>"
        return '"' + escape_header_text(self.formal_name, quote='"') + f'"<{self.uri}>'

    @classmethod
    def from_value(cls, value: str) -> CpimAddress:
        """Parse a From/To/cc value; raises ValueError."""
        if not value.endswith(">") or "<" not in value:
            raise ValueError("an address value is [formal-name] <URI>")
        start = value.rindex("<")
        uri = value[start + 1 : -1]
        head = value[:start]
        formal_name: str | None = None
        if head.startswith('"'):
            text, end = read_string(head, 0)
            if head[end:] not in ("", " "):
                raise ValueError("text after the quoted formal name")
            formal_name = text
        elif head:
            if not head.endswith(" "):
                raise ValueError("the formal name must be followed by a space")
            tokens = head[:-1].split(" ")
            if not all(tok and all(is_tokenchar(c) for c in tok) for tok in tokens):
                raise ValueError("an unquoted formal name is tokens separated by single spaces")
            formal_name = head[:-1]
        if not URI_RE.match(uri):
            raise ValueError(f"{uri[:60]!r} is not an absolute URI")
        return cls(uri, formal_name)

    @property
    def address(self) -> ImppAddress:
        """The IMPP identity of an ``im:``/``pres:`` URI (raises AddressError otherwise)."""
        return ImppAddress.from_uri(self.uri)


@dataclass(frozen=True)
class Subject:
    """A Subject header's text and its ``;lang=`` tag (None means i-default, §3.3)."""

    text: str
    lang: str | None = None


@dataclass(frozen=True)
class CpimHeader:
    """One message header as on the wire: name, ``;name=value`` parameters, raw value.

    ``value`` keeps escape sequences exactly as sent (signatures cover them); use
    :attr:`text` for the unescaped text and :meth:`text_header` to build from plain text.
    """

    name: str
    value: str
    params: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        try:
            _check_header(self)
        except ValueError as exc:
            raise CpimError(str(exc), remote=False) from None

    @classmethod
    def text_header(cls, name: str, text: str, *, lang: str | None = None) -> CpimHeader:
        """A header whose value is free text, escaped per RFC 3862 §2.3.1."""
        params = (("lang", lang),) if lang is not None else ()
        return cls(name, escape_header_text(text), params)

    @property
    def text(self) -> str:
        """The value with escape sequences resolved."""
        return unescape_header_text(self.value)

    @property
    def lang(self) -> str | None:
        """The ``;lang=`` parameter, if any (RFC 3862 §3.3)."""
        for pname, pvalue in self.params:
            if pname == "lang":
                return pvalue
        return None

    @property
    def prefix(self) -> str | None:
        """The namespace prefix of the name, or None for the default namespace."""
        prefix, dot, _ = self.name.partition(".")
        return prefix if dot else None

    @property
    def local_name(self) -> str:
        """The name without its namespace prefix."""
        return self.name.rpartition(".")[2]

    def to_line(self) -> str:
        """The header line without its CRLF."""
        params = "".join(f";{pname}={pvalue}" for pname, pvalue in self.params)
        return f"{self.name}:{params} {self.value}"


def _check_header(header: CpimHeader) -> None:
    check_name(header.name, "header name")
    check_value(header.value, f"header {header.name!r}")
    for pname, pvalue in header.params:
        check_name(pname, "parameter name")
        if "." in pname:
            raise ValueError(f"parameter name {pname!r} contains '.'")
        check_param_value(pvalue)
        if pname == "lang" and not LANG_RE.match(pvalue):
            raise ValueError(f"{pvalue!r} is not a language tag")


def _check_mime_header(name: str, value: str) -> None:
    if not MIME_NAME_RE.match(name):
        raise ValueError(f"{name[:40]!r} is not a MIME header name")
    if MIME_CONTROL_RE.search(value):
        raise ValueError(f"MIME header {name!r} contains a control character")


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type/subtype; name=value`` (lower-cased type and parameter names)."""
    main, *raw_params = value.split(";")
    params: dict[str, str] = {}
    for raw in raw_params:
        pname, eq, pvalue = raw.strip().partition("=")
        if eq:
            params[pname.strip().lower()] = pvalue.strip().strip('"')
    return main.strip().lower(), params


@dataclass(frozen=True)
class CpimMessage:
    """A Message/CPIM object: MIME headers, message headers, encapsulated MIME entity.

    ``mime_headers`` are the object's own MIME headers (``Content-type: Message/CPIM``);
    empty when the object travels in a protocol whose own headers say so (a SIP MESSAGE).
    ``content_headers`` and ``body`` are the encapsulated MIME entity (§2.4); it MUST have
    a Content-Type.
    """

    headers: tuple[CpimHeader, ...]
    content_headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)  # message text never goes to logs through repr()
    mime_headers: tuple[tuple[str, str], ...] = (("Content-type", "Message/CPIM"),)

    def __post_init__(self) -> None:
        try:
            self._validate()
        except (ValueError, TypeError) as exc:
            raise CpimError(str(exc), remote=False) from None

    def _validate(self) -> None:
        if not isinstance(self.body, bytes):
            raise TypeError("body must be bytes")
        for header in self.headers:
            if not isinstance(header, CpimHeader):
                raise TypeError("headers must be CpimHeader values")
        for name, value in (*self.mime_headers, *self.content_headers):
            _check_mime_header(name, value)
        if self.mime_headers:
            kind = self._find(self.mime_headers, "content-type")
            if kind is None or _media_type(kind)[0] != "message/cpim":
                raise ValueError("the MIME headers must say Content-Type: Message/CPIM")
        if self._find(self.content_headers, "content-type") is None:
            raise ValueError("the encapsulated MIME entity has no Content-Type (RFC 3862 §2.4)")
        # Resolved once (namespace declarations must precede their use), then checked.
        core = [(n, h) for ns, n, h in self._resolved() if ns == CPIM_HEADERS_NS]
        counts: dict[str, int] = {}
        for name, _ in core:
            counts[name] = counts.get(name, 0) + 1
        for single in ("From", "DateTime"):
            if counts.get(single, 0) > 1:
                raise ValueError(f"more than one {single} header")
        for kinds, check in (
            (("From", "To", "cc"), CpimAddress.from_value),
            (("DateTime",), parse_rfc3339),
            (("NS",), parse_ns),
        ):
            for name, header in core:
                if name in kinds:
                    check(header.value)
        self.required  # noqa: B018 - validates Require values

    @staticmethod
    def _find(headers: Sequence[tuple[str, str]], name: str) -> str | None:
        for hname, hvalue in headers:
            if hname.lower() == name:
                return hvalue
        return None

    def _resolved(self) -> Iterator[tuple[str, str, CpimHeader]]:
        """(namespace URI, local name, header) for every header, per RFC 3862 §3.4."""
        prefixes: dict[str | None, str] = {None: CPIM_HEADERS_NS}
        for header in self.headers:
            prefix = header.prefix
            if prefix not in prefixes:
                raise ValueError(f"namespace prefix {prefix!r} is used before its NS header")
            namespace = prefixes[prefix]
            if namespace == CPIM_HEADERS_NS and header.local_name == "NS":
                declared, uri = parse_ns(header.value)
                prefixes[declared] = uri
            yield namespace, header.local_name, header

    def _core(self, *names: str) -> Iterator[CpimHeader]:
        for namespace, name, header in self._resolved():
            if namespace == CPIM_HEADERS_NS and name in names:
                yield header

    # -- typed views -------------------------------------------------------------------

    @property
    def sender(self) -> CpimAddress | None:
        """The From header (RFC 3862 §4.1), or None."""
        for header in self._core("From"):
            return CpimAddress.from_value(header.value)
        return None

    @property
    def recipients(self) -> tuple[CpimAddress, ...]:
        """Every To header, in order (RFC 3862 §4.2)."""
        return tuple(CpimAddress.from_value(h.value) for h in self._core("To"))

    @property
    def cc(self) -> tuple[CpimAddress, ...]:
        """Every cc header, in order (RFC 3862 §4.3)."""
        return tuple(CpimAddress.from_value(h.value) for h in self._core("cc"))

    @property
    def date_time(self) -> datetime | None:
        """The DateTime header as an aware datetime (RFC 3862 §4.4), or None."""
        for header in self._core("DateTime"):
            return parse_rfc3339(header.value)
        return None

    @property
    def subjects(self) -> tuple[Subject, ...]:
        """Every Subject with its language (RFC 3862 §4.5)."""
        return tuple(Subject(h.text, h.lang) for h in self._core("Subject"))

    @property
    def namespaces(self) -> Mapping[str | None, str]:
        """Prefix -> namespace URI after all NS headers (None is the default namespace)."""
        prefixes: dict[str | None, str] = {None: CPIM_HEADERS_NS}
        for header in self._core("NS"):
            prefix, uri = parse_ns(header.value)
            prefixes[prefix] = uri
        return prefixes

    @property
    def required(self) -> tuple[tuple[str, str], ...]:
        """(namespace URI, name) of every feature listed in Require headers (§3.5, §4.7)."""
        result: list[tuple[str, str]] = []
        prefixes: dict[str | None, str] = {None: CPIM_HEADERS_NS}
        for namespace, name, header in self._resolved():
            if namespace != CPIM_HEADERS_NS:
                continue
            if name == "NS":
                prefix, uri = parse_ns(header.value)
                prefixes[prefix] = uri
            elif name == "Require":
                for item in header.value.split(","):
                    check_name(item, "required name")
                    prefix, dot, local = item.rpartition(".")
                    key = prefix if dot else None
                    if key not in prefixes:
                        raise ValueError(f"Require names undeclared prefix {prefix!r}")
                    result.append((prefixes[key], local))
        return tuple(result)

    @property
    def extensions(self) -> tuple[tuple[str, str, CpimHeader], ...]:
        """(namespace URI, name, header) of every header outside the core CPIM set."""
        core = {"From", "To", "cc", "DateTime", "Subject", "NS", "Require"}
        return tuple(
            (ns, name, header)
            for ns, name, header in self._resolved()
            if ns != CPIM_HEADERS_NS or name not in core
        )

    def content_header(self, name: str) -> str | None:
        """The first encapsulated MIME header of that name (case-insensitive)."""
        return self._find(self.content_headers, name.lower())

    @property
    def content_type(self) -> tuple[str, dict[str, str]]:
        """The encapsulated media type (lower case) and its parameters."""
        value = self.content_header("Content-Type")
        return _media_type(value or "text/plain")

    @property
    def content_id(self) -> str | None:
        """The encapsulated Content-ID without its angle brackets."""
        value = self.content_header("Content-ID")
        if value is None:
            return None
        return value.strip().removeprefix("<").removesuffix(">")

    # -- building ----------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        *,
        sender: CpimAddress | None,
        recipients: Sequence[CpimAddress] = (),
        cc: Sequence[CpimAddress] = (),
        date_time: datetime | None = None,
        subjects: Sequence[Subject] = (),
        namespaces: Sequence[tuple[str | None, str]] = (),
        required: Sequence[str] = (),
        extensions: Sequence[CpimHeader] = (),
        content_type: str = "text/plain; charset=utf-8",
        content_id: str | None = None,
        content_headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        mime_headers: bool = True,
    ) -> CpimMessage:
        """Build a message with the headers in the order RFC 3862 §5.1 shows them.

        ``namespaces`` are (prefix or None, URI) NS declarations, ``required`` header names
        for Require, ``extensions`` headers under declared prefixes.
        """
        headers: list[CpimHeader] = []
        if sender is not None:
            headers.append(CpimHeader("From", sender.to_value()))
        headers += [CpimHeader("To", a.to_value()) for a in recipients]
        headers += [CpimHeader("cc", a.to_value()) for a in cc]
        if date_time is not None:
            try:
                headers.append(CpimHeader("DateTime", format_rfc3339(date_time)))
            except ValueError as exc:
                raise CpimError(str(exc), remote=False) from None
        headers += [CpimHeader.text_header("Subject", s.text, lang=s.lang) for s in subjects]
        for prefix, uri in namespaces:
            value = f"<{uri}>" if prefix is None else f"{prefix} <{uri}>"
            headers.append(CpimHeader("NS", value))
        if required:
            headers.append(CpimHeader("Require", ",".join(required)))
        headers += extensions
        encapsulated = [("Content-type", content_type)]
        if content_id is not None:
            encapsulated.append(("Content-ID", f"<{content_id}>"))
        encapsulated += content_headers
        return cls(
            headers=tuple(headers),
            content_headers=tuple(encapsulated),
            body=body,
            mime_headers=(("Content-type", "Message/CPIM"),) if mime_headers else (),
        )

    def to_bytes(self) -> bytes:
        """The object as octets, CRLF line ends (RFC 3862 §2.2)."""
        lines: list[str] = []
        if self.mime_headers:
            lines += [f"{name}: {value}" for name, value in self.mime_headers]
            lines.append("")
        lines += [header.to_line() for header in self.headers]
        lines.append("")
        lines += [f"{name}: {value}" for name, value in self.content_headers]
        lines.append("")
        return "\r\n".join(lines).encode("utf-8") + b"\r\n" + self.body


def _split_lines(
    data: bytes, start: int, max_line: int, max_lines: int, what: str
) -> tuple[list[bytes], int]:
    """Lines of a header block from ``start`` to the empty line; return them and the offset
    just after the empty line. Every line must end in CRLF; no bare CR or LF."""
    lines: list[bytes] = []
    position = start
    while True:
        end = data.find(CRLF, position, position + max_line + 2)
        if end < 0:
            if len(data) - position > max_line:
                raise CpimError(f"a line in the {what} is longer than {max_line} bytes")
            raise CpimError(f"the {what} does not end with an empty line")
        line = data[position:end]
        if b"\r" in line or b"\n" in line:
            raise CpimError(f"a line in the {what} contains a bare CR or LF")
        position = end + 2
        if not line:
            return lines, position
        if len(lines) >= max_lines:
            raise CpimError("the Message/CPIM object has too many header lines")
        lines.append(line)


def _parse_message_header(line: str) -> CpimHeader:
    """Header = Header-name ":" *( ";" Parameter ) SP Header-value (RFC 3862 §3.6)."""
    colon = line.find(":")
    if colon <= 0:
        raise ValueError("a header line has no name and colon")
    name = line[:colon]
    check_name(name, "header name")
    index = colon + 1
    params: list[tuple[str, str]] = []
    while index < len(line) and line[index] == ";":
        eq = line.find("=", index)
        if eq < 0:
            raise ValueError("a header parameter has no '='")
        pname = line[index + 1 : eq]
        index = eq + 1
        if index < len(line) and line[index] == '"':
            _, end = read_string(line, index)
        else:
            end = index
            while end < len(line) and is_tokenchar(line[end]):
                end += 1
        params.append((pname, line[index:end]))
        index = end
    if index >= len(line) or line[index] != " ":
        raise ValueError(f"header {name!r}: a single space must follow the colon")
    value = line[index + 1 :]
    return CpimHeader(name, value, tuple(params))


def _parse_mime_block(lines: list[bytes], what: str) -> tuple[tuple[str, str], ...]:
    """RFC 2045 header fields; folded continuation lines are unfolded."""
    fields: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.decode("utf-8")
        if line[:1] in (" ", "\t"):
            if not fields:
                raise CpimError(f"the {what} starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, value + line)
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise CpimError(f"a line in the {what} is not 'Name: value'")
        fields.append((name, value.strip(" \t")))
    for name, value in fields:
        try:
            _check_mime_header(name, value)
        except ValueError as exc:
            raise CpimError(f"{what}: {exc}") from exc
    return tuple(fields)


def parse_cpim_untrusted(
    data: bytes,
    *,
    with_mime_headers: bool = True,
    max_size: int = DEFAULT_MAX_CPIM_SIZE,
    max_headers: int = DEFAULT_MAX_CPIM_HEADERS,
    max_line: int = DEFAULT_MAX_CPIM_LINE,
) -> CpimMessage:
    """Parse a Message/CPIM object received from a peer. Total: raises only CpimError.

    ``with_mime_headers`` says whether the object starts with its own MIME headers
    (``Content-type: Message/CPIM`` and an empty line), as inside multipart/signed.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CpimError("a Message/CPIM object must be bytes")
    if len(data) > max_size:
        raise CpimError(f"the Message/CPIM object is larger than {max_size} bytes")
    try:
        return _parse_cpim(bytes(data), with_mime_headers, max_headers, max_line)
    except CpimError as exc:
        if exc.remote:
            raise
        raise CpimError(str(exc)) from exc
    except (ValueError, IndexError, KeyError, TypeError, UnicodeError, AddressError) as exc:
        raise CpimError(f"malformed Message/CPIM: {exc}") from exc


def _parse_cpim(
    data: bytes, with_mime_headers: bool, max_headers: int, max_line: int
) -> CpimMessage:
    position = 0
    budget = max_headers
    mime_headers: tuple[tuple[str, str], ...] = ()
    if with_mime_headers:
        lines, position = _split_lines(data, 0, max_line, budget, "MIME headers")
        budget -= len(lines)
        mime_headers = _parse_mime_block(lines, "MIME headers")
    lines, position = _split_lines(data, position, max_line, budget, "message headers")
    budget -= len(lines)
    headers: list[CpimHeader] = []
    for raw in lines:
        line = raw.decode("utf-8")
        try:
            headers.append(_parse_message_header(line))
        except (ValueError, CpimError) as exc:
            raise CpimError(f"bad message header: {exc}") from exc
    lines, position = _split_lines(data, position, max_line, budget, "encapsulated MIME headers")
    content_headers = _parse_mime_block(lines, "encapsulated MIME headers")
    return CpimMessage(
        headers=tuple(headers),
        content_headers=content_headers,
        body=data[position:],
        mime_headers=mime_headers,
    )
