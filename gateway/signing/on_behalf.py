"""Signing on behalf of devices: the facade the relay calls (RFC 3923 §3-4, §6.9).

A device cannot afford S/MIME, so the gateway signs for it with the device identity's key from the
gateway CA (:mod:`gateway.signing.ca`). :class:`OnBehalfSigner` turns a device's Message/CPIM object
into the stanza children ``<body/>`` (plain text, for clients that ignore RFC 3923) and ``<e2e/>``
(the signed object), and a PIDF document into an ``<e2e/>`` child for directed presence.

RFC 3923 §6.9 makes the *sender* keep its timestamps increasing: the signer gives a message
without ``DateTime`` the time ``now``, and moves a ``DateTime`` that is not later than the last
one it signed for that device one microsecond past it. Presence gets the same treatment through
its tuples' ``<timestamp>``; messages and presence of one device share one increasing sequence.
The object must name the device as its sender (CPIM ``From``, PIDF ``entity``); signing for
anybody else is refused as local misuse.
Inbound checks are :class:`gateway.signing.e2e.E2eVerifier`; :func:`verify_inbound` is its shortcut.
"""

from __future__ import annotations

import dataclasses
import datetime
import xml.etree.ElementTree as ET

from gateway.impp.address import ImppAddress
from gateway.impp.cpim import CpimHeader, CpimMessage, format_rfc3339
from gateway.impp.errors import ImppError
from gateway.impp.pidf import PIDF_CONTENT_TYPE, PidfDocument
from gateway.signing.ca import DeviceCredential
from gateway.signing.cms import SignatureError
from gateway.signing.e2e import E2eVerifier, VerificationResult, build_e2e_element
from gateway.signing.smime import mime_entity, sign_multipart

__all__ = ["BODY_TAG", "OnBehalfSigner", "verify_inbound"]

BODY_TAG = "{jabber:client}body"
_ONE_MICROSECOND = datetime.timedelta(microseconds=1)  # the finest step format_rfc3339 writes


class OnBehalfSigner:
    """Signs device objects with their credentials; remembers each device's last timestamp."""

    def __init__(self) -> None:
        self._last_timestamp: dict[ImppAddress, datetime.datetime] = {}

    def sign_message(
        self, credential: DeviceCredential, message: CpimMessage, *, now: float
    ) -> tuple[ET.Element, ...]:
        """``(<body/>, <e2e/>)`` for a ``<message/>``; just ``(<e2e/>,)`` if it is not text."""
        sender = message.sender
        try:
            author = sender.address.bare if sender is not None else None
        except ImppError as exc:
            raise SignatureError("the CPIM From is not an address", remote=False) from exc
        if author != credential.address.bare:
            raise SignatureError(
                "a device may only sign messages whose From is its own address", remote=False
            )
        message = self._stamp(credential.address.bare, message, now)
        if not message.mime_headers:
            message = dataclasses.replace(message, mime_headers=(("Content-type", "Message/CPIM"),))
        signed = sign_multipart(
            message.to_bytes(),
            private_key=credential.private_key,
            certificate=credential.certificate,
            now=now,
        )
        e2e = build_e2e_element(signed)
        media_type, parameters = message.content_type
        if media_type != "text/plain" or parameters.get("charset", "utf-8").lower() not in (
            "utf-8",
            "us-ascii",
        ):
            return (e2e,)
        body = ET.Element(BODY_TAG)
        try:
            body.text = message.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SignatureError("a text/plain body must be UTF-8", remote=False) from exc
        return (body, e2e)

    def sign_presence(
        self, credential: DeviceCredential, document: PidfDocument, *, now: float
    ) -> ET.Element:
        """The ``<e2e/>`` child of a directed ``<presence/>`` (RFC 3923 §4.1)."""
        try:
            entity = document.entity_address.bare
        except ImppError as exc:
            raise SignatureError("the PIDF entity is not an address", remote=False) from exc
        if entity != credential.address.bare:
            raise SignatureError(
                "a device may only sign presence whose entity is its own address", remote=False
            )
        document = self._stamp_presence(credential.address.bare, document, now)
        signed = sign_multipart(
            mime_entity(PIDF_CONTENT_TYPE, document.to_bytes()),
            private_key=credential.private_key,
            certificate=credential.certificate,
            now=now,
        )
        return build_e2e_element(signed)

    def _next_timestamp(self, device: ImppAddress, wanted: datetime.datetime) -> datetime.datetime:
        """``wanted``, or just past the last timestamp signed for ``device`` if not later.

        Messages and presence share one sequence per device: a receiver orders them together
        (RFC 3923 §6.9 keys the check on the sender, not on the stanza kind).
        """
        last = self._last_timestamp.get(device)
        if last is not None and wanted <= last:
            wanted = last + _ONE_MICROSECOND
        self._last_timestamp[device] = wanted
        return wanted

    def _stamp_presence(
        self, device: ImppAddress, document: PidfDocument, now: float
    ) -> PidfDocument:
        """The document with its latest tuple ``<timestamp>`` later than the last one signed.

        RFC 3923 §6.9 puts the anti-replay timestamp of presence in the PIDF object, and a
        PIDF timestamp lives in a tuple (RFC 3863 §4.1.7), so a document without tuples cannot
        be signed. Tuples without a timestamp, and the one(s) holding the latest, get the new
        stamp (``now`` or later); earlier tuple timestamps are left as they are. The CMS
        signingTime cannot serve: it has whole seconds only (RFC 5652 §11.3).
        """
        if not document.tuples:
            raise SignatureError(
                "a signed PIDF document needs a tuple to carry its timestamp (RFC 3923 §6.9)",
                remote=False,
            )
        stamps = [t.timestamp for t in document.tuples if t.timestamp is not None]
        latest = max(stamps) if stamps else None
        current = datetime.datetime.fromtimestamp(now, datetime.UTC)
        # Never older than now: a receiver refuses a timestamp five minutes old (§6.9).
        wanted = self._next_timestamp(device, max(latest, current) if latest else current)
        tuples = tuple(
            dataclasses.replace(item, timestamp=wanted)
            if item.timestamp is None or item.timestamp == latest
            else item
            for item in document.tuples
        )
        return dataclasses.replace(document, tuples=tuples)

    def _stamp(self, device: ImppAddress, message: CpimMessage, now: float) -> CpimMessage:
        """The message with a DateTime later than the last one signed for ``device``."""
        current = message.date_time
        wanted = self._next_timestamp(
            device, current or datetime.datetime.fromtimestamp(now, datetime.UTC)
        )
        if current is not None and wanted == current:
            return message
        stamp = CpimHeader("DateTime", format_rfc3339(wanted))
        headers = list(message.headers)
        position = next(
            (i for i, h in enumerate(headers) if h.name == "DateTime" and h.prefix is None), None
        )
        if position is not None:
            headers[position] = stamp
        else:  # after the leading From/To/cc, before any NS that could rebind the default
            position = 0
            while position < len(headers) and headers[position].name in ("From", "To", "cc"):
                position += 1
            headers.insert(position, stamp)
        return dataclasses.replace(message, headers=tuple(headers))


def verify_inbound(
    verifier: E2eVerifier,
    stanza: ET.Element,
    *,
    now: float,
    recipient: ImppAddress | None = None,
) -> VerificationResult:
    """Check an inbound stanza's ``<e2e/>``: VERIFIED, FAILED (with a reason) or NONE."""
    return verifier.verify_stanza(stanza, now=now, recipient=recipient)
