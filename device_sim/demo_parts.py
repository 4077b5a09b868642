"""Instruments and glue for the demo (``impp-devices demo``): taps that count bytes, and the
translations a relay will own once it exists.

Nothing here changes what the gateway's pieces do. :class:`TappedDeviceSession` is a
:class:`~gateway.session.DeviceSession` that records the size and kind of every datagram it sends
and receives; :class:`RecordingInitiator` / :class:`RecordingResponder` wrap the session layer's
EDHOC adapters to record the size of each EDHOC message and the exporter output both sides derive
(compared, never printed). The ``*_element`` helpers re-create a received stanza from the fields our
XMPP client parsed, so that the ``<e2e/>`` verifier and the size figures see it; the ``wire_*``
helpers are the hand-written translations that ``gateway/relay`` (not built yet) will own.
"""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from gateway import wire
from gateway.session import (
    DeviceSession,
    EdhocInitiator,
    EdhocResponder,
    HandshakeKind,
    MessageCodec,
)
from gateway.session.handshake import HandshakeStep, InitiatorHandshake
from gateway.session.record import AeadAlgorithm
from gateway.xmpp import MessageStanza, PresenceShow, PresenceStanza
from gateway.xmpp.serializer import serialize

CLIENT_NS = "jabber:client"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# The device protocol's Show (docs/protocol.md) and XMPP's <show/> (RFC 6121 §4.7.2.1).
SHOW_TO_XMPP: dict[wire.Show, PresenceShow | None] = {
    wire.Show.AVAILABLE: None,
    wire.Show.CHAT: PresenceShow.CHAT,
    wire.Show.AWAY: PresenceShow.AWAY,
    wire.Show.EXTENDED_AWAY: PresenceShow.XA,
    wire.Show.DO_NOT_DISTURB: PresenceShow.DND,
}


def new_p256_private_key() -> bytes:
    """A fresh P-256 private scalar, 32 bytes big-endian (the form EDHOC credentials take)."""
    value = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return value.to_bytes(32, "big")


def packet_kind(datagram: bytes) -> str:
    """A short label for a session-layer packet, from its header byte (docs/protocol.md)."""
    if not datagram:
        return "empty"
    header = datagram[0]
    if header & 0x80:
        unreliable = bool(header & 0x20)
        control = (header & 0x03) == 1
        what = "control" if control else "ack/probe" if unreliable else "operation"
        return f"record ({what})"
    try:
        return HandshakeKind((header >> 4) & 0x07).name
    except ValueError:
        return f"unknown 0x{header:02x}"


@dataclass
class Tap:
    """Datagrams seen by the device: (direction, size, kind), in order."""

    entries: list[tuple[str, int, str]] = field(default_factory=list)

    def mark(self) -> int:
        """A position to measure from."""
        return len(self.entries)

    def since(self, mark: int, direction: str) -> list[tuple[int, str]]:
        """(size, kind) of the datagrams in ``direction`` since ``mark``."""
        return [(size, kind) for d, size, kind in self.entries[mark:] if d == direction]


class TappedDeviceSession(DeviceSession):
    """A device session that records every datagram it sends and receives (sizes only)."""

    def __init__(
        self,
        *,
        tap: Tap,
        handshake_factory: Callable[[], InitiatorHandshake],
        codec: MessageCodec,
    ) -> None:
        super().__init__(handshake_factory=handshake_factory, codec=codec)
        self.tap = tap

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """As the parent, recording each datagram."""
        out = super().datagrams_to_send(now)
        for datagram in out:
            self.tap.entries.append(("sent", len(datagram), packet_kind(datagram)))
        return out

    def receive_datagram(self, data: bytes, now: float) -> None:
        """As the parent, recording the datagram first."""
        self.tap.entries.append(("received", len(data), packet_kind(data)))
        super().receive_datagram(data, now)


@dataclass
class HandshakeRecord:
    """EDHOC message sizes and both sides' exporter output (kept only to compare them)."""

    sizes: dict[str, int] = field(default_factory=dict)
    device_secret: bytes | None = field(default=None, repr=False)
    gateway_secret: bytes | None = field(default=None, repr=False)

    def secrets_match(self) -> bool:
        """True when both sides derived the same session master secret (constant time)."""
        if self.device_secret is None or self.gateway_secret is None:
            return False
        return hmac.compare_digest(self.device_secret, self.gateway_secret)

    def forget_secrets(self) -> None:
        """Drop the copies once compared."""
        self.device_secret = None
        self.gateway_secret = None


class RecordingInitiator:
    """The device's EDHOC (``InitiatorHandshake``), recording sizes and the exporter output."""

    def __init__(self, inner: EdhocInitiator, record: HandshakeRecord) -> None:
        self._inner = inner
        self._record = record

    def start(self) -> bytes:
        """message_1."""
        message_1 = self._inner.start()
        self._record.sizes["message_1"] = len(message_1)
        return message_1

    def receive(self, message: bytes) -> HandshakeStep:
        """message_2 in, message_3 out."""
        self._record.sizes["message_2"] = len(message)
        step = self._inner.receive(message)
        if step.complete and step.reply is not None:
            self._record.sizes["message_3"] = len(step.reply)
        return step

    def master_secret(self) -> bytes:
        """EDHOC_Exporter output the session keys come from."""
        secret = self._inner.master_secret()
        self._record.device_secret = secret
        return secret

    @property
    def aead(self) -> AeadAlgorithm:
        """The records' AEAD."""
        return self._inner.aead

    @property
    def peer_connection_id(self) -> bytes | None:
        """C_R from message_2, as the wrapped initiator learned it."""
        return self._inner.peer_connection_id


class RecordingResponder:
    """The gateway's EDHOC (``ResponderHandshake``), recording the exporter output."""

    def __init__(self, inner: EdhocResponder, record: HandshakeRecord) -> None:
        self._inner = inner
        self._record = record

    def receive(self, message: bytes) -> HandshakeStep:
        """message_1 -> message_2; message_3 -> complete."""
        return self._inner.receive(message)

    def master_secret(self) -> bytes:
        """EDHOC_Exporter output the session keys come from."""
        secret = self._inner.master_secret()
        self._record.gateway_secret = secret
        return secret

    @property
    def aead(self) -> AeadAlgorithm:
        """The records' AEAD."""
        return self._inner.aead

    @property
    def suite(self) -> int:
        """The negotiated cipher suite."""
        return self._inner.suite

    @property
    def peer_identity(self) -> bytes:
        """The device's short identity (its credential's kid)."""
        return self._inner.peer_identity


def _q(local: str) -> str:
    return f"{{{CLIENT_NS}}}{local}"


def message_element(message: MessageStanza) -> ET.Element:
    """A received ``<message/>`` re-created from what the client parsed (extensions included)."""
    element = ET.Element(_q("message"))
    for name, value in (
        ("from", message.from_),
        ("to", message.to),
        ("id", message.id),
        ("type", str(message.type)),
    ):
        if value is not None:
            element.set(name, str(value))
    if message.lang is not None:
        element.set(XML_LANG, message.lang)
    for lang, text in message.bodies:
        body = ET.SubElement(element, _q("body"))
        body.text = text
        if lang is not None:
            body.set(XML_LANG, lang)
    element.extend(message.extensions)
    return element


def presence_element(presence: PresenceStanza) -> ET.Element:
    """A received ``<presence/>`` re-created from what the client parsed (extensions included)."""
    element = ET.Element(_q("presence"))
    for name, value in (("from", presence.from_), ("to", presence.to)):
        if value is not None:
            element.set(name, str(value))
    if not presence.available:
        element.set("type", "unavailable")
    if presence.lang is not None:
        element.set(XML_LANG, presence.lang)
    if presence.show is not None:
        ET.SubElement(element, _q("show")).text = str(presence.show)
    for lang, text in presence.statuses:
        status = ET.SubElement(element, _q("status"))
        status.text = text
        if lang is not None:
            status.set(XML_LANG, lang)
    if presence.priority:
        ET.SubElement(element, _q("priority")).text = str(presence.priority)
    element.extend(presence.extensions)
    return element


def outbound_message(sender: str, recipient: str, text: str) -> ET.Element:
    """The plain XMPP form of a device's SendMessage, input of the CPIM mapping (RFC 3922 §4.1)."""
    element = ET.Element(_q("message"), {"from": sender, "to": recipient, "type": "chat"})
    ET.SubElement(element, _q("body")).text = text
    return element


def outbound_presence(sender: str, recipient: str, update: wire.SetPresence) -> ET.Element:
    """The plain XMPP form of a device's SetPresence, input of the PIDF mapping (RFC 3922 §5.1)."""
    element = ET.Element(_q("presence"), {"from": sender, "to": recipient})
    if update.open is False:
        element.set("type", "unavailable")
    show = SHOW_TO_XMPP.get(update.show) if update.show is not None else None
    if show is not None:
        ET.SubElement(element, _q("show")).text = str(show)
    if update.note:
        ET.SubElement(element, _q("status")).text = update.note
    return element


def stanza_size(element: ET.Element) -> int:
    """Bytes of ``element`` as our serializer writes it on a c2s stream (before TLS)."""
    return len(serialize(element))


def text_of(content: wire.Content) -> str:
    """The text of a TextContent (the demo sends only text)."""
    if not isinstance(content, wire.TextContent):
        raise TypeError("the demo sends text content only")
    return content.text
