"""The seam between the session layer and the wire codec (gateway.wire), plus session control items.

The session layer only needs four things from the wire protocol: encode one message, decode a CBOR
sequence of them, build the Ack message and recognise one. :class:`MessageCodec` names them;
:class:`WireCodec` is the production implementation over ``gateway.wire`` (contracts.md).

Session control items (content type CONTROL, packets.py) are the session's own CBOR arrays:
``[1, ticket, resumption_secret, lifetime]`` NewTicket, ``[2, data]`` PathChallenge,
``[3, data]`` PathResponse, ``[4]`` KeepAlive, ``[5, reason]`` Close.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Protocol

import cbor2

from gateway.session.errors import PacketError

MAX_CONTROL_ITEMS = 8  # control items per record; more is never legitimate


class MessageCodec(Protocol):
    """What the session layer needs from the wire codec."""

    def encode(self, message: object) -> bytes:
        """Encode one wire message."""
        ...

    def decode_sequence_untrusted(self, data: bytes) -> list[object]:
        """Decode a CBOR sequence of wire messages; raise the codec's own error on bad input."""
        ...

    def make_ack(self, cumulative: int, selective: tuple[tuple[int, int], ...]) -> object:
        """Build the wire Ack message."""
        ...

    def ack_fields(self, message: object) -> tuple[int, tuple[tuple[int, int], ...]] | None:
        """``(cumulative, selective)`` if ``message`` is an Ack, else None."""
        ...

    def is_codec_error(self, exc: Exception) -> bool:
        """True if ``exc`` is the codec's protocol error (the peer's fault)."""
        ...


class WireCodec:
    """:class:`MessageCodec` over ``gateway.wire`` (imported on first use)."""

    def __init__(self) -> None:
        import gateway.wire as wire  # the wire package is a sibling work stream

        self._wire: Any = wire

    def encode(self, message: object) -> bytes:
        """Encode one wire message."""
        data: bytes = self._wire.encode(message)
        return data

    def decode_sequence_untrusted(self, data: bytes) -> list[object]:
        """Decode a CBOR sequence of wire messages."""
        messages: list[object] = self._wire.decode_sequence_untrusted(data)
        return messages

    def make_ack(self, cumulative: int, selective: tuple[tuple[int, int], ...]) -> object:
        """Build ``gateway.wire.Ack``."""
        ack: object = self._wire.Ack(cumulative=cumulative, selective=selective)
        return ack

    def ack_fields(self, message: object) -> tuple[int, tuple[tuple[int, int], ...]] | None:
        """The fields of a ``gateway.wire.Ack``."""
        if isinstance(message, self._wire.Ack):
            return message.cumulative, tuple(message.selective)
        return None

    def is_codec_error(self, exc: Exception) -> bool:
        """True for ``gateway.wire.WireError``."""
        return isinstance(exc, self._wire.WireError)


@dataclass(frozen=True)
class NewTicket:
    """Gateway -> device: a resumption ticket and the secret that goes with it."""

    ticket: bytes
    resumption_secret: bytes = field(repr=False)  # a secret: never in a repr or a log line
    lifetime: int


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
CONTROL_TYPES = (NewTicket, PathChallenge, PathResponse, KeepAlive, Close)


def encode_control(items: list[ControlItem]) -> bytes:
    """Encode control items as a CBOR sequence."""
    out = bytearray()
    for item in items:
        value: list[object]
        if isinstance(item, NewTicket):
            value = [1, item.ticket, item.resumption_secret, item.lifetime]
        elif isinstance(item, PathChallenge):
            value = [2, item.data]
        elif isinstance(item, PathResponse):
            value = [3, item.data]
        elif isinstance(item, KeepAlive):
            value = [4]
        else:
            value = [5, item.reason]
        out += cbor2.dumps(value)
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
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        if len(items) >= MAX_CONTROL_ITEMS:
            raise PacketError("too many control items")
        try:
            value = cbor2.CBORDecoder(stream).decode()
        except (  # cbor2 semantic tags can raise any of these on crafted input
            cbor2.CBORDecodeError,
            ValueError,
            TypeError,
            RecursionError,
            ArithmeticError,
            LookupError,
            AttributeError,
        ) as exc:
            raise PacketError("control items are not CBOR") from exc
        if not isinstance(value, list) or not value:
            raise PacketError("control item is not a non-empty array")
        kind = value[0]
        if kind == 1 and len(value) == 4 and not isinstance(kind, bool):
            items.append(NewTicket(_bytes(value[1], 64), _bytes(value[2], 64), _uint(value[3])))
        elif kind == 2 and len(value) == 2 and not isinstance(kind, bool):
            items.append(PathChallenge(_bytes(value[1], 8)))
        elif kind == 3 and len(value) == 2 and not isinstance(kind, bool):
            items.append(PathResponse(_bytes(value[1], 8)))
        elif kind == 4 and len(value) == 1 and not isinstance(kind, bool):
            items.append(KeepAlive())
        elif kind == 5 and len(value) == 2 and not isinstance(kind, bool):
            items.append(Close(_uint(value[1])))
        else:
            raise PacketError("unknown control item")
    return items
