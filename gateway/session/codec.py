"""The session layer's use of the wire codec (gateway.wire), and the session's own control items.

The session layer needs four things from the wire protocol: encode one message, decode a CBOR
sequence of them (raising :class:`~gateway.wire.RemoteWireError` on the peer's bad bytes), build the
Ack message and recognise one. :class:`MessageCodec` names them; :class:`WireCodec` is the
production implementation over ``gateway.wire``.

Session control items (content type CONTROL, packets.py) are the session's own CBOR arrays:
``[1, ticket, resumption_secret, lifetime, reset_token]`` NewTicket (the reset token of the
connection id the record travels on, resets.py), ``[2, data]`` PathChallenge,
``[3, data]`` PathResponse, ``[4]`` KeepAlive, ``[5, reason]`` Close. They travel inside
authenticated records, so they are read with the project's strict CBOR core (gateway/cbor.py):
shortest heads, definite lengths, no tags or floats, one level of nesting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gateway import wire
from gateway.cbor import CborDecoder, CborError, CborValue, encode
from gateway.session.errors import PacketError
from gateway.session.resets import RESET_TOKEN_LENGTH

MAX_CONTROL_ITEMS = 8  # control items per record; more is never legitimate
_MAX_CONTROL_FIELDS = 5  # the longest control item, NewTicket: kind and four fields
_CONTROL_DEPTH = 1  # a control item is one array of scalars


class MessageCodec(Protocol):
    """What the session layer needs from the wire codec."""

    def encode(self, message: wire.Message) -> bytes:
        """Encode one wire message."""
        ...

    def decode_sequence_untrusted(self, data: bytes) -> list[wire.Message]:
        """Decode a CBOR sequence of wire messages; raises only :class:`~gateway.wire.WireError`."""
        ...

    def make_ack(self, cumulative: int, selective: tuple[tuple[int, int], ...]) -> wire.Ack:
        """Build the wire Ack message."""
        ...


class WireCodec:
    """:class:`MessageCodec` over ``gateway.wire`` with its default limits."""

    def encode(self, message: wire.Message) -> bytes:
        """Encode one wire message."""
        return wire.encode(message)

    def decode_sequence_untrusted(self, data: bytes) -> list[wire.Message]:
        """Decode a CBOR sequence of wire messages."""
        return wire.decode_sequence_untrusted(data)

    def make_ack(self, cumulative: int, selective: tuple[tuple[int, int], ...]) -> wire.Ack:
        """Build ``gateway.wire.Ack``."""
        return wire.Ack(cumulative=cumulative, selective=selective)


def ack_fields(message: wire.Message) -> tuple[int, tuple[tuple[int, int], ...]] | None:
    """``(cumulative, selective)`` if ``message`` is a wire Ack, else None."""
    if isinstance(message, wire.Ack):
        return message.cumulative, tuple(message.selective)
    return None


@dataclass(frozen=True)
class NewTicket:
    """Gateway -> device: a resumption ticket and the secret that goes with it."""

    ticket: bytes
    resumption_secret: bytes = field(repr=False)  # a secret: never in a repr or a log line
    lifetime: int  # seconds the ticket stays valid from issue
    reset_token: bytes = field(default=b"", repr=False)  # this connection id's (resets.py)


@dataclass(frozen=True)
class PathChallenge:
    """Ask the peer to echo ``data`` (RFC 9000 §8.2.1)."""

    data: bytes


@dataclass(frozen=True)
class PathResponse:
    """Echo of a PathChallenge (RFC 9000 §8.2.2)."""

    data: bytes


@dataclass(frozen=True)
class KeepAlive:
    """Keeps NAT bindings open; carries nothing."""


@dataclass(frozen=True)
class Close:
    """The sender ends the session."""

    reason: int


ControlItem = NewTicket | PathChallenge | PathResponse | KeepAlive | Close


def encode_control(items: list[ControlItem]) -> bytes:
    """Encode control items as a CBOR sequence."""
    out = bytearray()
    for item in items:
        value: list[int | bytes]
        if isinstance(item, NewTicket):
            value = [1, item.ticket, item.resumption_secret, item.lifetime, item.reset_token]
        elif isinstance(item, PathChallenge):
            value = [2, item.data]
        elif isinstance(item, PathResponse):
            value = [3, item.data]
        elif isinstance(item, KeepAlive):
            value = [4]
        else:
            value = [5, item.reason]
        out += encode(value)
    return bytes(out)


def _bytes(value: object, limit: int) -> bytes:
    if not isinstance(value, bytes) or len(value) > limit:
        raise PacketError("control field is not a byte string of allowed size")
    return value


def _uint(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise PacketError("control field is not a 32-bit unsigned integer")
    return value


def decode_control_untrusted(data: bytes) -> list[ControlItem]:
    """Decode a CBOR sequence of control items; raises only :class:`PacketError`."""
    items: list[ControlItem] = []
    decoder = CborDecoder(data, max_depth=_CONTROL_DEPTH)
    while not decoder.at_end:
        if len(items) >= MAX_CONTROL_ITEMS:
            raise PacketError("too many control items")
        decoder.items_left = 1 + _MAX_CONTROL_FIELDS
        try:
            value = decoder.read()
        except CborError as exc:
            raise PacketError(f"control items are not strict CBOR: {exc.reason.value}") from exc
        items.append(_control_item(value))
    return items


def _control_item(value: CborValue) -> ControlItem:
    if not isinstance(value, list) or not value:
        raise PacketError("control item is not a non-empty array")
    kind = value[0]
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise PacketError("control item kind is not an integer")
    if kind == 1 and len(value) == 5:
        return NewTicket(
            _bytes(value[1], 64),
            _bytes(value[2], 64),
            _uint(value[3]),
            _bytes(value[4], RESET_TOKEN_LENGTH),
        )
    if kind == 2 and len(value) == 2:
        return PathChallenge(_bytes(value[1], 8))
    if kind == 3 and len(value) == 2:
        return PathResponse(_bytes(value[1], 8))
    if kind == 4 and len(value) == 1:
        return KeepAlive()
    if kind == 5 and len(value) == 2:
        return Close(_uint(value[1]))
    raise PacketError("unknown control item")
