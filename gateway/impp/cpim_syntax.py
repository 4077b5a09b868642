"""Lexical syntax shared by Message/CPIM headers (RFC 3862 §2.3, §3.6) and RFC 3339 times.

Kept apart from :mod:`gateway.impp.cpim` so that module holds the message model and its
parser; PIDF timestamps use the same RFC 3339 functions. Functions here raise ValueError;
their callers turn it into their own protocol error.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = [
    "escape_header_text",
    "format_rfc3339",
    "parse_rfc3339",
    "unescape_header_text",
]

CRLF = b"\r\n"
_SEPARATORS = set('()<>@,;:\\"/[]?={} ')
# NAMECHAR (§3.6): US-ASCII except ".", CTLs and SEPARATORS.
NAMECHARS = frozenset(chr(c) for c in range(0x21, 0x7F) if chr(c) not in _SEPARATORS | {"."})
# RFC 3066 language tag.
LANG_RE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*\Z")
# absolute-URI (RFC 2396 §3): scheme ":" then URI characters, no fragment.
URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-_.!~*'();/?:@&=+$,%\[\]]*\Z")
# RFC 2045 / RFC 5322 field-name: printable US-ASCII except ":".
MIME_NAME_RE = re.compile(r"[!-9;-~]+\Z")
# RFC 3339 §5.6 date-time.
_RFC3339_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)

_ESCAPE_OUT = {"\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_ESCAPE_IN = {"b": "\b", "t": "\t", "n": "\n", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


CONTROL_RE = re.compile("[\x00-\x1f\x7f]")  # what is_ctl is true of, found in one pass
MIME_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")  # the same, less HTAB


def is_ctl(ch: str) -> bool:
    return ord(ch) < 0x20 or ord(ch) == 0x7F


def is_tokenchar(ch: str) -> bool:
    return ch in NAMECHARS or ch == "." or ord(ch) >= 0x80


def escape_header_text(text: str, *, quote: str | None = None) -> str:
    """Escape ``text`` for a CPIM header (RFC 3862 §2.3.1).

    Backslash, backspace, tab, LF and CR use their special sequences, other control
    characters ``\\uXXXX``; ``quote`` (``'"'`` or ``"'"``) is escaped when the text sits in
    a string delimited by it. Nothing else is escaped.
    """
    out: list[str] = []
    for ch in text:
        if ch in _ESCAPE_OUT:
            out.append(_ESCAPE_OUT[ch])
        elif is_ctl(ch):
            out.append(f"\\u{ord(ch):04x}")
        elif quote is not None and ch == quote:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def unescape_header_text(text: str) -> str:
    """Resolve the escape sequences of RFC 3862 §2.3 (total; the SHOULD rules of §2.3.1).

    An unknown ``\\x`` is ``x``; a lone backslash at the end is dropped; ``\\u`` must be
    followed by four hex digits, otherwise it is the letter ``u``.
    """
    out: list[str] = []
    index = 0
    while index < len(text):
        ch = text[index]
        if ch != "\\":
            out.append(ch)
            index += 1
            continue
        if index + 1 >= len(text):
            break  # isolated final backslash: ignored
        nxt = text[index + 1]
        if nxt == "u":
            digits = text[index + 2 : index + 6]
            if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
                out.append(chr(int(digits, 16)))
                index += 6
                continue
        out.append(_ESCAPE_IN.get(nxt, nxt))
        index += 2
    return "".join(out)


def format_rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC timestamp with ``Z`` and only the fraction digits needed.

    Naive datetimes are refused: a timestamp that will be signed must say its zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timestamp needs a time zone (use an aware datetime)")
    utc = moment.astimezone(UTC)
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 §5.6 date-time into an aware datetime.

    Fractions beyond microseconds are truncated; a leap second (``:60``) becomes
    ``:59.999999`` because :class:`datetime` cannot hold it. Raises ValueError.
    """
    match = _RFC3339_RE.match(text)
    if match is None:
        raise ValueError(f"{text[:40]!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7)
    microsecond = int((fraction[1:] + "000000")[:6]) if fraction else 0
    zone = match.group(8)
    if zone in ("Z", "z"):
        tz = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        off_hours, off_minutes = int(zone[1:3]), int(zone[4:6])
        if off_hours > 23 or off_minutes > 59:
            raise ValueError(f"time zone offset {zone!r} out of range")
        tz = timezone(sign * timedelta(hours=off_hours, minutes=off_minutes))
    if second == 60:
        second, microsecond = 59, 999999
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)


def check_name(name: str, what: str) -> None:
    """Header-name = [ Name-prefix "." ] Name (RFC 3862 §3.6)."""
    parts = name.split(".")
    if len(parts) > 2 or not all(parts) or not all(c in NAMECHARS for p in parts for c in p):
        raise ValueError(f"{what} {name[:40]!r} is not a CPIM header name")


def check_value(value: str, what: str) -> None:
    if CONTROL_RE.search(value):
        raise ValueError(f"{what} contains a control character (escape it)")
    if not value:
        raise ValueError(f"{what} is empty, but a CPIM line may not end with its space")
    if value != value.strip(" "):
        raise ValueError(f"{what} starts or ends with a space, which a CPIM line may not")


def read_string(text: str, start: int) -> tuple[str, int]:
    """Read a quoted String at ``text[start]``; return (unescaped text, index after it)."""
    if text[start] != '"':
        raise ValueError("expected a quoted string")
    index = start + 1
    while index < len(text):
        ch = text[index]
        if ch == "\\":
            index += 2
            continue
        if ch == '"':
            return unescape_header_text(text[start + 1 : index]), index + 1
        index += 1
    raise ValueError("unterminated quoted string")


def check_param_value(value: str) -> None:
    """Param-value = Token / Number / String (RFC 3862 §3.6)."""
    if value.startswith('"'):
        _, end = read_string(value, 0)
        if end != len(value):
            raise ValueError("text after a quoted parameter value")
        if any(is_ctl(ch) for ch in value):
            raise ValueError("a parameter value contains a control character")
    elif not value or not all(is_tokenchar(c) for c in value):
        raise ValueError(f"parameter value {value[:40]!r} is not a token, number or string")


def parse_ns(value: str) -> tuple[str | None, str]:
    """NS-header value: [ Name-prefix ] "<" URI ">" (RFC 3862 §4.6)."""
    if not value.endswith(">") or "<" not in value:
        raise ValueError("an NS value is [prefix] <URI>")
    head, _, uri = value[:-1].partition("<")
    if not URI_RE.match(uri) or "#" in uri:
        raise ValueError(f"NS URI {uri[:60]!r} is not an absolute URI")
    if not head:
        return None, uri
    if not head.endswith(" ") or not head[:-1] or not all(c in NAMECHARS for c in head[:-1]):
        raise ValueError("an NS prefix is a name followed by one space")
    return head[:-1], uri
