"""Inbound IM stanzas of an established session turned into events (RFC 6120 §8, RFC 6121).

Theory of operation.  :class:`StanzaDispatcher` reads one ``<message/>``, ``<presence/>`` or
``<iq/>`` the server sent and returns what it means as :mod:`gateway.xmpp.events`: messages,
receipts (XEP-0184) and their errors; results of our archive queries (XEP-0313), accepted
only from our own account; presence, its errors and subscription requests
(RFC 6121 §3-§4); roster pushes, accepted only from our own account (RFC 6121 §2.1.6); the
answers to our requests, accepted only from whom we asked (RFC 6120 §8.1.2.1).  It answers
requests itself: pings (XEP-0199), disco#info (XEP-0030) and ``service-unavailable`` for any
other request (RFC 6120 §8.4).  A stanza that is malformed or not for us is dropped and counted
by a :class:`~gateway.xmpp.events.StanzaDropReason`; the stream goes on (STYLE rule 8).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Final

from gateway.xmpp import events as ev
from gateway.xmpp.archive import ArchiveParseError, parse_archive_result_untrusted
from gateway.xmpp.errors import StanzaError, StanzaErrorCondition, StanzaErrorType
from gateway.xmpp.events import StanzaDropReason
from gateway.xmpp.jid import Jid, JidError
from gateway.xmpp.stanzas import (
    CLIENT_NS,
    DISCO_INFO_NS,
    PING_NS,
    RECEIPTS_NS,
    ROSTER_NS,
    MessageStanzaType,
    StanzaParseError,
    SubscriptionKind,
    parse_message_untrusted,
    parse_presence_untrusted,
    parse_roster_query_untrusted,
)
from gateway.xmpp.timers import ClientTimers, IqKind

__all__ = ["StanzaDispatcher"]

_SUBSCRIPTION_TYPES: Final = frozenset(str(kind) for kind in SubscriptionKind)
_MALFORMED: Final = {
    "message": StanzaDropReason.MALFORMED_MESSAGE,
    "presence": StanzaDropReason.MALFORMED_PRESENCE,
    "iq": StanzaDropReason.MALFORMED_IQ,
}


def _q(local: str, namespace: str = CLIENT_NS) -> str:
    return f"{{{namespace}}}{local}"


class StanzaDispatcher:
    """Turns received stanzas into events and answers requests; see the module docstring.

    ``write`` sends a reply stanza in the session, ``drop`` counts a dropped stanza, and the
    answers to our requests are matched against ``timers.pending``.
    """

    def __init__(
        self,
        *,
        timers: ClientTimers,
        write: Callable[[ET.Element], None],
        drop: Callable[[StanzaDropReason], None],
        disco_identity: tuple[str, str, str],
    ) -> None:
        self._timers = timers
        self._write = write
        self._drop = drop
        self._disco_identity = disco_identity

    def dispatch_untrusted(
        self, stanza: ET.Element, sequence: int, own_jid: Jid, now: float
    ) -> list[ev.Event]:
        """The events of one received stanza (XEP-0198 ``sequence``) for the account ``own_jid``."""
        events: list[ev.Event] = []
        local_name = stanza.tag.rpartition("}")[2]
        try:
            if local_name == "message":
                if not self._on_archive_result(stanza, own_jid, events):
                    self._on_message(stanza, sequence, events)
            elif local_name == "presence":
                self._on_presence(stanza, sequence, events)
            else:
                self._on_iq(stanza, own_jid, now, events)
        except (StanzaParseError, JidError):
            self._drop(_MALFORMED[local_name])
        return events

    def _on_archive_result(self, element: ET.Element, own_jid: Jid, events: list[ev.Event]) -> bool:
        """A result of our archive query (XEP-0313 §4.2): True if ``element`` was one.

        Accepted only from the account's own archive (its bare address, or no ``from``).
        """
        try:
            result = parse_archive_result_untrusted(element)
        except ArchiveParseError:
            self._drop(StanzaDropReason.MALFORMED_ARCHIVE_RESULT)
            return True
        if result is None:
            return False
        sender = element.get("from")
        if sender is not None and Jid.parse_untrusted(sender) != own_jid.bare:
            self._drop(StanzaDropReason.ARCHIVE_RESULT_FROM_ELSEWHERE)
            return True
        events.append(ev.ArchiveResultReceived(result))
        return True

    def _on_message(self, element: ET.Element, sequence: int, events: list[ev.Event]) -> None:
        message = parse_message_untrusted(element)
        if message.type is MessageStanzaType.ERROR:
            error = StanzaError.from_element_untrusted(element)
            events.append(ev.MessageFailed(message.id, message.from_, error))
            return
        received = element.find(_q("received", RECEIPTS_NS))
        if received is not None and message.body is None:
            receipt_id = received.get("id")
            if receipt_id:
                events.append(ev.ReceiptReceived(message.from_, receipt_id, sequence))
            else:
                self._drop(StanzaDropReason.RECEIPT_WITHOUT_ID)
            return
        events.append(ev.MessageReceived(message, sequence))

    def _on_presence(self, element: ET.Element, sequence: int, events: list[ev.Event]) -> None:
        presence_type = element.get("type")
        if presence_type == "error":
            error = StanzaError.from_element_untrusted(element)
            sender = element.get("from")
            from_ = Jid.parse_untrusted(sender) if sender is not None else None
            events.append(ev.PresenceFailed(from_, error))
        elif presence_type in (None, "unavailable"):
            events.append(ev.PresenceReceived(parse_presence_untrusted(element), sequence))
        elif presence_type in _SUBSCRIPTION_TYPES:
            sender = element.get("from")
            if sender is None:
                self._drop(StanzaDropReason.SUBSCRIPTION_WITHOUT_FROM)
                return
            from_jid = Jid.parse_untrusted(sender).bare
            events.append(
                ev.SubscriptionReceived(from_jid, SubscriptionKind(presence_type), sequence)
            )
        else:
            self._drop(StanzaDropReason.PRESENCE_TYPE)  # probes are the server's (RFC 6121 §4.3)

    def _on_iq(self, iq: ET.Element, own_jid: Jid, now: float, events: list[ev.Event]) -> None:
        iq_type = iq.get("type")
        iq_id = iq.get("id")
        if iq_id is None:
            self._drop(StanzaDropReason.IQ_WITHOUT_ID)
            return
        if iq_type in ("result", "error"):
            self._on_iq_answer(iq, iq_id, iq_type == "error", own_jid, now, events)
            return
        if iq_type not in ("get", "set") or len(iq) != 1:
            self._reply_error(iq, StanzaErrorType.MODIFY, StanzaErrorCondition.BAD_REQUEST)
            return
        payload = iq[0]
        sender = iq.get("from")
        if iq_type == "set" and payload.tag == _q("query", ROSTER_NS):
            if not _is_from_server_or_self(sender, own_jid):
                self._drop(StanzaDropReason.ROSTER_PUSH_NOT_FROM_SERVER)  # RFC 6121 §2.1.6
                return
            items, version = parse_roster_query_untrusted(payload)
            if len(items) != 1:
                self._reply_error(iq, StanzaErrorType.MODIFY, StanzaErrorCondition.BAD_REQUEST)
                return
            self._reply_result(iq)
            events.append(ev.RosterPushed(items[0], version))
        elif iq_type == "get" and payload.tag == _q("ping", PING_NS):
            self._reply_result(iq)  # XEP-0199 §4.1, §4.2
        elif iq_type == "get" and payload.tag == _q("query", DISCO_INFO_NS):
            if payload.get("node") is not None:
                self._reply_error(iq, StanzaErrorType.CANCEL, StanzaErrorCondition.ITEM_NOT_FOUND)
            else:
                self._reply_result(iq, self._disco_info())
        else:
            # RFC 6120 §8.4: a request we do not understand gets service-unavailable.
            self._reply_error(iq, StanzaErrorType.CANCEL, StanzaErrorCondition.SERVICE_UNAVAILABLE)

    def _on_iq_answer(
        self,
        iq: ET.Element,
        iq_id: str,
        is_error: bool,
        own_jid: Jid,
        now: float,
        events: list[ev.Event],
    ) -> None:
        pending = self._timers.pending.get(iq_id)
        if pending is None:
            self._drop(StanzaDropReason.UNEXPECTED_IQ_ANSWER)
            return
        sender = iq.get("from")
        if pending.to is None:
            expected = _is_from_server_or_self(sender, own_jid)
        else:
            expected = sender is not None and Jid.parse_untrusted(sender) == pending.to
        if not expected:
            self._drop(StanzaDropReason.IQ_ANSWER_FROM_ELSEWHERE)  # RFC 6120 §8.1.2.1: spoofing
            return
        del self._timers.pending[iq_id]
        from_ = Jid.parse_untrusted(sender) if sender is not None else None
        if is_error:
            events.append(ev.IqFailed(iq_id, from_, StanzaError.from_element_untrusted(iq)))
            return
        payload = iq[0] if len(iq) else None
        if pending.kind is IqKind.ROSTER_GET:
            if payload is None:
                # RFC 6121 §2.6.3: an empty result means "your cached roster is current".
                events.append(ev.RosterReceived((), None))
            else:
                items, version = parse_roster_query_untrusted(payload)
                events.append(ev.RosterReceived(items, version))
        elif pending.kind is IqKind.PING:
            events.append(ev.PingAnswered(iq_id, now - pending.sent_at))
        elif pending.kind is not IqKind.KEEPALIVE:
            events.append(ev.IqResultReceived(iq_id, from_, payload))

    def _disco_info(self) -> ET.Element:
        """What we support, for XEP-0030 §3.1."""
        query = ET.Element(_q("query", DISCO_INFO_NS))
        category, kind, name = self._disco_identity
        ET.SubElement(
            query, _q("identity", DISCO_INFO_NS), {"category": category, "type": kind, "name": name}
        )
        for feature in sorted((DISCO_INFO_NS, PING_NS, RECEIPTS_NS)):
            ET.SubElement(query, _q("feature", DISCO_INFO_NS), {"var": feature})
        return query

    def _reply_result(self, request: ET.Element, payload: ET.Element | None = None) -> None:
        reply = ET.Element(_q("iq"), {"type": "result", "id": request.get("id", "")})
        sender = request.get("from")
        if sender is not None:
            reply.set("to", sender)
        if payload is not None:
            reply.append(payload)
        self._write(reply)

    def _reply_error(
        self,
        request: ET.Element,
        error_type: StanzaErrorType,
        condition: StanzaErrorCondition,
    ) -> None:
        """RFC 6120 §8.3.1: an error reply carries the request's id, to the sender."""
        reply = ET.Element(_q("iq"), {"type": "error", "id": request.get("id", "")})
        sender = request.get("from")
        if sender is not None:
            reply.set("to", sender)
        reply.append(StanzaError(error_type, condition).to_element())
        self._write(reply)


def _is_from_server_or_self(sender: str | None, own_jid: Jid) -> bool:
    if sender is None:
        return True
    jid = Jid.parse_untrusted(sender)
    return jid in (own_jid, own_jid.bare, Jid(None, own_jid.domain))
