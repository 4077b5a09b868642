"""Where each message field lives on the wire: its key, its CBOR kind and (as declared) its default.

Every field of a message dataclass is declared once, in messages.py, as
``field(default=..., metadata=wire_field(key, Kind.X))``; the encoder (codec.py) and the decoder
(decoding.py) both compile :func:`declared_fields` once per class, at import, into a table of
(key, attribute, function for the kind, default), so a key or a default cannot differ between them
and no message pays for a metadata lookup.
The dataclass default is the protocol default (docs/protocol.md §4.5): a field without one is
required, a ``None`` default means "absent: not given", any other default is omitted when it holds
and refused as NOT_DETERMINISTIC when written out. A field's criticality follows from its key's sign
(§4.4): version 1 declares only non-negative, critical keys.
A field declared with :func:`form_choice` instead is no wire field: it records which of a message's
two encodings (SendMessage's map and compact forms, §6.4) the value was received in or is to be
sent in, so that re-encoding a received message reproduces its bytes; both tables skip it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum

__all__ = [
    "CONTENT_KEYS",
    "REQUIRED",
    "TYPE_KEY",
    "DeclaredField",
    "Kind",
    "declared_fields",
    "form_choice",
    "wire_field",
]

TYPE_KEY = 0  # key 0 of every message map holds the MessageType
# Keys shared by SendMessage and IncomingMessage for their content (docs/protocol.md, Section 5).
CONTENT_KEYS = (3, 4, 5, 6)  # text, language, content type, data

_METADATA_KEY = "wire"


class Kind(Enum):
    """The CBOR shape of a field's value."""

    UINT = "uint"
    BOOL = "bool"
    TEXT = "tstr"
    BYTES = "bstr"
    CONTACT_REF = "alias or address"  # uint alias or tstr address (docs/protocol.md §5)
    ENUM = "closed enumeration"  # a uint; an unknown value is INVALID_FIELD
    CODE = "open code"  # a uint; an unknown value is kept (error codes, failure reasons)
    CONTENT = "content"  # text (keys 3, 4) or MIME (keys 5, 6): CONTENT_KEYS
    CONTACTS = "contact entries"  # a non-empty array of contact maps, omitted when empty
    ACK_RANGES = "ack ranges"  # (gap, length) pairs relative to the cumulative ack (§6.1)


@dataclass(frozen=True)
class _WireSpec:
    key: int
    kind: Kind
    enum: type[IntEnum] | None


def wire_field(key: int, kind: Kind, enum: type[IntEnum] | None = None) -> Mapping[str, object]:
    """Dataclass field metadata placing a field at ``key`` as ``kind`` (``enum`` for ENUM)."""
    if (kind is Kind.ENUM) != (enum is not None):
        raise TypeError("an ENUM field names its enumeration, and only an ENUM field does")
    return {_METADATA_KEY: _WireSpec(key, kind, enum)}


class _FormChoice:
    """The metadata of a message's form flag (:func:`form_choice`)."""

    def __repr__(self) -> str:
        return "FORM_CHOICE"


_FORM_CHOICE = _FormChoice()


def form_choice() -> Mapping[str, object]:
    """Dataclass field metadata for the flag choosing a message's encoding form, not a field."""
    return {_METADATA_KEY: _FORM_CHOICE}


class _Required:
    """The default of a field that has none: it must be present."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


@dataclass(frozen=True)
class DeclaredField:
    """One field of a message as the wire sees it."""

    name: str
    key: int
    kind: Kind
    default: object  # REQUIRED, None (absent means not given), or the value that is never sent
    enum: type[IntEnum] | None = None

    @property
    def critical(self) -> bool:
        """Whether a receiver that does not know the key must reject the message (§4.4)."""
        return self.key >= 0


_DECLARED: dict[type, tuple[DeclaredField, ...]] = {}


def declared_fields(cls: type) -> tuple[DeclaredField, ...]:
    """The wire fields of a message (or contact) dataclass, in declaration order."""
    known = _DECLARED.get(cls)
    if known is not None:
        return known
    result: list[DeclaredField] = []
    for declared in dataclasses.fields(cls):
        spec = declared.metadata.get(_METADATA_KEY)
        if spec is _FORM_CHOICE:
            continue
        if not isinstance(spec, _WireSpec):
            raise TypeError(f"{cls.__name__}.{declared.name} has no wire key")
        default: object = REQUIRED
        if declared.default is not dataclasses.MISSING:
            default = declared.default
        result.append(DeclaredField(declared.name, spec.key, spec.kind, default, spec.enum))
    _DECLARED[cls] = tuple(result)
    return _DECLARED[cls]
