"""A small, total DER reader and writer: exactly what CMS SignedData needs (X.690).

The reader accepts definite lengths and, on constructed values only, the BER indefinite length
that streaming CMS encoders emit; it refuses high tag numbers and nesting deeper than a limit. It
bounds what it converts before converting: object identifiers, their arcs and INTEGERs by length,
and the values inside one constructed value by count, so that no input reaches Python's
int-to-text limit (4,300 digits) or makes work out of proportion to its size. Every
malformed input raises :class:`DerError` (a ``ValueError``), never anything else; callers wrap it in
their own protocol error. The writer produces DER: minimal lengths and sorted ``SET OF``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "MAX_DEPTH",
    "MAX_INTEGER_LENGTH",
    "MAX_ITEMS",
    "MAX_OID_ARC_LENGTH",
    "MAX_OID_LENGTH",
    "DerError",
    "Node",
    "children",
    "encode",
    "encode_integer",
    "encode_oid",
    "encode_sequence",
    "encode_set_of",
    "encode_time",
    "expect",
    "parse",
    "read_algorithm",
    "read_integer",
    "read_oid",
    "read_time",
]

MAX_DEPTH = 24  # CMS SignedData nests about 12 deep (certificates are parsed by cryptography)
MAX_OID_LENGTH = 64  # content bytes; the OIDs of CMS and S/MIME take 3-12, UUID OIDs 20
MAX_OID_ARC_LENGTH = 20  # bytes of one arc: a 128-bit UUID arc (2.25.N, X.667) takes 19
MAX_INTEGER_LENGTH = 32  # bytes; a serial number is at most 20 octets (RFC 5280 §4.1.2.2)
MAX_ITEMS = 64  # values in one SEQUENCE/SET; SignedData's largest holds a few attributes


class DerError(ValueError):
    """Malformed DER/BER input, or a value of the wrong type where a field is expected."""


# ---------------------------------------------------------------------------------------------
# Writing


def _length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, content: bytes) -> bytes:
    """One DER value: tag, minimal length, content."""
    return bytes([tag]) + _length(len(content)) + content


def encode_sequence(*parts: bytes) -> bytes:
    """A SEQUENCE of already encoded values."""
    return encode(0x30, b"".join(parts))


def encode_set_of(parts: Iterable[bytes], tag: int = 0x31) -> bytes:
    """A SET OF (or an IMPLICIT-tagged one), elements sorted as DER requires."""
    return encode(tag, b"".join(sorted(parts)))  # X.690 §11.6: SET OF sorted by encoding


def encode_integer(value: int) -> bytes:
    """An INTEGER in minimal two's complement."""
    length = value.bit_length() // 8 + 1  # room for the sign bit
    return encode(0x02, value.to_bytes(length, "big", signed=True))


def encode_oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER from its dotted form."""
    arcs = [int(arc) for arc in dotted.split(".")]
    numbers = [arcs[0] * 40 + arcs[1], *arcs[2:]]
    body = bytearray()
    for number in numbers:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        body.extend(reversed(chunk))
    return encode(0x06, bytes(body))


def encode_time(moment: datetime.datetime) -> bytes:
    """A Time (UTC), the way RFC 5652 §11.3 encodes signingTime."""
    # RFC 5652 §11.3: UTCTime for 1950-2049, GeneralizedTime otherwise.
    if 1950 <= moment.year <= 2049:
        return encode(0x17, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return encode(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class Node:
    """One decoded value: its tag and where its bytes lie in ``data``."""

    tag: int
    data: bytes = field(repr=False)
    start: int  # first byte of the tag
    content_start: int
    content_end: int
    end: int  # one past the last byte (after the end-of-contents octets if indefinite)

    @property
    def content(self) -> bytes:
        return self.data[self.content_start : self.content_end]

    @property
    def encoded(self) -> bytes:
        return self.data[self.start : self.end]

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)


def _read_node(data: bytes, position: int, limit: int, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise DerError("DER nesting is too deep")
    if position + 2 > limit:
        raise DerError("DER value truncated")
    tag = data[position]
    if tag & 0x1F == 0x1F:
        raise DerError("DER high-tag-number form is not used by CMS SignedData")
    first = data[position + 1]
    cursor = position + 2
    if first == 0x80:
        if not tag & 0x20:
            raise DerError("indefinite length on a primitive DER value")
        while True:
            if cursor + 2 <= limit and data[cursor] == 0 and data[cursor + 1] == 0:
                return Node(tag, data, position, position + 2, cursor, cursor + 2)
            cursor = _read_node(data, cursor, limit, depth + 1).end
    if first & 0x80:
        count = first & 0x7F
        if count > 4 or cursor + count > limit:
            raise DerError("DER length is too long or truncated")
        length = int.from_bytes(data[cursor : cursor + count], "big")
        cursor += count
    else:
        length = first
    if cursor + length > limit:
        raise DerError("DER value runs past its container")
    return Node(tag, data, position, cursor, cursor + length, cursor + length)


def parse(data: bytes) -> Node:
    """The one DER value that is all of ``data`` (no trailing bytes)."""
    node = _read_node(data, 0, len(data), 0)
    if node.end != len(data):
        raise DerError("trailing bytes after the DER value")
    return node


def children(node: Node, depth: int, *, max_items: int = MAX_ITEMS) -> list[Node]:
    """The values inside a constructed ``node`` (``depth`` is the node's own nesting).

    Refuses more than ``max_items`` values before reading the one past the limit.
    """
    if not node.constructed:
        raise DerError(f"expected a constructed DER value, found tag 0x{node.tag:02x}")
    found: list[Node] = []
    cursor = node.content_start
    while cursor < node.content_end:
        if len(found) >= max_items:
            raise DerError(f"more than {max_items} values in one constructed DER value")
        child = _read_node(node.data, cursor, node.content_end, depth + 1)
        found.append(child)
        cursor = child.end
    return found


def expect(node: Node, tag: int, what: str) -> Node:
    """``node`` if it has ``tag``; ``what`` names the field in the error."""
    if node.tag != tag:
        raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{node.tag:02x}")
    return node


def read_oid(node: Node, what: str) -> str:
    """The dotted form of an OBJECT IDENTIFIER (arcs minimally encoded, lengths bounded)."""
    body = expect(node, 0x06, what).content
    if not body or body[-1] & 0x80:
        raise DerError(f"{what}: malformed object identifier")
    if len(body) > MAX_OID_LENGTH:
        raise DerError(f"{what}: object identifier longer than {MAX_OID_LENGTH} bytes")
    numbers: list[int] = []
    value = 0
    arc_length = 0
    for byte in body:
        if arc_length == 0 and byte == 0x80:
            raise DerError(f"{what}: object identifier arc is not minimally encoded")
        arc_length += 1
        if arc_length > MAX_OID_ARC_LENGTH:
            raise DerError(f"{what}: object identifier arc longer than {MAX_OID_ARC_LENGTH} bytes")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(value)
            value = 0
            arc_length = 0
    first = numbers[0]
    arcs = [min(first // 40, 2), first - 40 * min(first // 40, 2), *numbers[1:]]
    return ".".join(str(arc) for arc in arcs)


def read_integer(node: Node, what: str, *, max_length: int = MAX_INTEGER_LENGTH) -> int:
    """The value of an INTEGER of at most ``max_length`` content bytes."""
    body = expect(node, 0x02, what).content
    if not body:
        raise DerError(f"{what}: empty INTEGER")
    if len(body) > max_length:
        raise DerError(f"{what}: INTEGER longer than {max_length} bytes")
    return int.from_bytes(body, "big", signed=True)


def read_algorithm(node: Node, depth: int, what: str) -> str:
    """The OID of an AlgorithmIdentifier (parameters, if any, are not read)."""
    parts = children(expect(node, 0x30, what), depth)
    if not 1 <= len(parts) <= 2:
        raise DerError(f"{what}: malformed AlgorithmIdentifier")
    return read_oid(parts[0], what)


def read_time(node: Node) -> float:
    """A UTCTime or GeneralizedTime in Zulu form, as seconds since the epoch."""
    try:
        text = node.content.decode("ascii")
        if node.tag == 0x17 and re.fullmatch(r"\d{12}Z", text):
            moment = datetime.datetime.strptime(text, "%y%m%d%H%M%SZ")
            if moment.year >= 2050:  # RFC 5280 §4.1.2.5.1 two-digit years
                moment = moment.replace(year=moment.year - 100)
        elif node.tag == 0x18 and re.fullmatch(r"\d{14}Z", text):
            moment = datetime.datetime.strptime(text, "%Y%m%d%H%M%SZ")
        else:
            raise DerError("signingTime is not a UTCTime or GeneralizedTime in Zulu form")
    except (UnicodeDecodeError, ValueError) as exc:
        raise DerError("signingTime is not a valid time") from exc
    return moment.replace(tzinfo=datetime.UTC).timestamp()
