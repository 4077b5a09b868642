"""The XMPP upstream: the relay's upstream commands as calls on the sans-IO :class:`XmppClient`.

The relay core names no protocol; this adapter is the one place that knows how each upstream
command looks in XMPP (RFC 6120/6121): a chat ``<message/>`` with ``<body/>``, the XEP-0184
``<request/>`` and the RFC 3923 ``<e2e/>`` child carrying the signed entity; presence with
``<show/>``, ``<status/>`` and ``<e2e/>``; subscription presence types (RFC 6121 §3); XEP-0191
block and unblock; XEP-0352 client state; the XEP-0199 ping of a sync; receipts; and an error
``<message/>`` telling a sender that its message expired (RFC 6120 §8.3). It uses only the
client's public methods.

A device's message can also be built without sending it (:func:`message_stanza`, with an
XEP-0359 origin-id) and sent later as a stanza its caller holds durably
(:meth:`XmppUpstream.send_held_message`): the service's durable to-upstream queue does so.

:func:`stanza_verifier` is the inbound half of RFC 3923: an :data:`InboundVerifier` over
:class:`gateway.signing.E2eVerifier`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gateway.impp import ImppAddress
from gateway.relay import commands as cmd
from gateway.relay.relay import InboundVerifier
from gateway.relay.signing import SHOW_TO_XMPP
from gateway.signing import E2eVerifier
from gateway.signing.e2e import build_e2e_element
from gateway.wire import FailureReason, SignatureStatus, TextContent
from gateway.xmpp import (
    Jid,
    LocalXmppError,
    MessageStanza,
    PresenceShow,
    PresenceStanza,
    StanzaError,
    StanzaErrorCondition,
    StanzaErrorType,
    SubscriptionKind,
    XmppClient,
)
from gateway.xmpp import events as ev
from gateway.xmpp.archive import origin_id_element
from gateway.xmpp.stanzas import build_message, build_presence

__all__ = ["BLOCKING_NS", "XmppUpstream", "drop_reason", "message_stanza", "stanza_verifier"]

BLOCKING_NS = "urn:xmpp:blocking"  # XEP-0191 §3
_CLIENT = "{jabber:client}"

_SUBSCRIPTION_KINDS = {
    cmd.SubscriptionVerb.SUBSCRIBE: SubscriptionKind.SUBSCRIBE,
    cmd.SubscriptionVerb.UNSUBSCRIBE: SubscriptionKind.UNSUBSCRIBE,
    cmd.SubscriptionVerb.APPROVE: SubscriptionKind.SUBSCRIBED,
    cmd.SubscriptionVerb.DENY: SubscriptionKind.UNSUBSCRIBED,
}

# FailureReason -> the stanza error a sender gets (RFC 6120 §8.3.3).
_FAILURE_CONDITIONS = {
    FailureReason.EXPIRED: (StanzaErrorType.WAIT, StanzaErrorCondition.RECIPIENT_UNAVAILABLE),
    FailureReason.RECIPIENT_UNAVAILABLE: (
        StanzaErrorType.WAIT,
        StanzaErrorCondition.RECIPIENT_UNAVAILABLE,
    ),
    FailureReason.RESOURCE_CONSTRAINT: (
        StanzaErrorType.WAIT,
        StanzaErrorCondition.RESOURCE_CONSTRAINT,
    ),
    # A blocked sender (XEP-0191 §3.5), told what the server would tell it.
    FailureReason.REJECTED: (StanzaErrorType.CANCEL, StanzaErrorCondition.SERVICE_UNAVAILABLE),
}


class XmppUpstream:
    """Carries out :data:`~gateway.relay.commands.UpstreamCommand` values on one client."""

    def __init__(self, client: XmppClient) -> None:
        self.client = client

    def execute(self, command: cmd.UpstreamCommand, client_now: float) -> list[ev.Event]:
        """Carry out ``command``; events to feed back to the relay (a stanza that cannot go).

        ``client_now`` is the time on the client's own clock, the one its adapter feeds to
        ``handle_timer`` (trio's, in :mod:`gateway.xmpp.net`), not the relay's wall clock:
        the requests sent here (roster, block, ping) time out on it.  A message the client
        refuses (too large, session over) comes back as
        :class:`~gateway.xmpp.events.StanzaDropped`, which the relay reports as FAILED.
        """
        now = client_now
        client = self.client
        if isinstance(command, cmd.UpstreamSendMessage):
            return self._send_message(command)
        if isinstance(command, cmd.UpstreamSendPresence):
            show_text = SHOW_TO_XMPP[command.show] if command.available else None
            client.send_presence(
                to=command.to,
                available=command.available,
                show=PresenceShow(show_text) if show_text else None,
                statuses=(((command.status_language, command.status),) if command.status else ()),
                extensions=_e2e(command.signed),
            )
        elif isinstance(command, cmd.UpstreamSubscription):
            client.send_subscription(command.to.bare, _SUBSCRIPTION_KINDS[command.verb])
        elif isinstance(command, cmd.UpstreamRosterRequest):
            client.request_roster(now)
        elif isinstance(command, cmd.UpstreamBlock | cmd.UpstreamUnblock):
            verb = "block" if isinstance(command, cmd.UpstreamBlock) else "unblock"
            payload = ET.Element(f"{{{BLOCKING_NS}}}{verb}")
            ET.SubElement(payload, f"{{{BLOCKING_NS}}}item", {"jid": str(command.contact.bare)})
            client.send_iq("set", payload, now)
        elif isinstance(command, cmd.UpstreamSetActive):
            client.set_client_state(command.active)
        elif isinstance(command, cmd.UpstreamSync):
            client.ping(now)  # answered after all the server sent before it: PingAnswered
        elif isinstance(command, cmd.UpstreamSendReceipt):
            client.send_receipt(command.to, command.message_id)
        elif isinstance(command, cmd.UpstreamDeliveryFailed):
            kind, condition = _FAILURE_CONDITIONS.get(
                command.reason, (StanzaErrorType.CANCEL, StanzaErrorCondition.UNDEFINED_CONDITION)
            )
            attributes = {"to": str(command.to), "type": "error"}
            if command.message_id is not None:
                attributes["id"] = command.message_id
            stanza = ET.Element(f"{_CLIENT}message", attributes)
            stanza.append(StanzaError(kind, condition).to_element())
            client.send_stanza(stanza)
        return []

    def _send_message(self, command: cmd.UpstreamSendMessage) -> list[ev.Event]:
        stanza = message_stanza(command)
        try:
            self.client.send_stanza(stanza)
        except LocalXmppError as error:
            return [ev.StanzaDropped(command.message_id, drop_reason(error), 0, stanza)]
        return []

    def send_held_message(self, stanza: ET.Element) -> None:
        """Send a message its caller holds durably and resends itself after a fresh session.

        Raises :class:`~gateway.xmpp.LocalXmppError` if the client refuses it (see
        :func:`drop_reason`).
        """
        self.client.send_stanza(stanza, resent_by_application=True)


def message_stanza(command: cmd.UpstreamSendMessage, *, stanza_id: str | None = None) -> ET.Element:
    """The chat ``<message/>`` of ``command``; with ``stanza_id``, that is its ``id`` and its
    XEP-0359 origin-id, so the account's archive can later say whether the server has it."""
    content = command.content
    text = content.text if isinstance(content, TextContent) else None
    lang = content.language if isinstance(content, TextContent) else None
    extensions = _e2e(command.signed)
    if stanza_id is not None:
        extensions = (*extensions, origin_id_element(stanza_id))
    return build_message(
        command.to,
        id=stanza_id if stanza_id is not None else command.message_id,
        body=text,
        lang=lang,
        request_receipt=command.request_receipt,
        extensions=extensions,
    )


def drop_reason(error: LocalXmppError) -> ev.StanzaDropReason:
    """How a message the client refused is reported: too large, or refused."""
    if "large" in type(error).__name__.lower():
        return ev.StanzaDropReason.TOO_LARGE
    return ev.StanzaDropReason.REFUSED


def _e2e(signed: bytes | None) -> tuple[ET.Element, ...]:
    return () if signed is None else (build_e2e_element(signed),)


def stanza_verifier(verifier: E2eVerifier, recipient: Jid) -> InboundVerifier:
    """An :data:`InboundVerifier` checking ``<e2e/>`` of stanzas addressed to ``recipient``."""
    recipient_address = ImppAddress.of(recipient.bare)

    def verify(stanza: MessageStanza | PresenceStanza, now: float) -> SignatureStatus:
        if isinstance(stanza, MessageStanza):
            element = build_message(
                stanza.to or recipient,
                id=stanza.id or "",
                type=stanza.type,
                bodies=stanza.bodies,
                lang=stanza.lang,
                extensions=stanza.extensions,
            )
        else:
            element = build_presence(
                to=stanza.to,
                available=stanza.available,
                show=stanza.show,
                statuses=stanza.statuses,
                lang=stanza.lang,
                extensions=stanza.extensions,
            )
        if stanza.from_ is not None:
            element.set("from", str(stanza.from_))
        result = verifier.verify_stanza(element, now=now, recipient=recipient_address)
        return result.status

    return verify
