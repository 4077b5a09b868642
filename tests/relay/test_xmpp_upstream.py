"""The XMPP adapter against a real sans-IO XmppClient driven to an established session."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gateway.impp import ImppAddress
from gateway.relay import DeviceRelay, OnBehalfDeviceSigner
from gateway.relay import commands as cmd
from gateway.relay.xmpp_upstream import XmppUpstream, stanza_verifier
from gateway.signing import CertificateAuthority, E2eVerifier, OnBehalfSigner, SignerTrustStore
from gateway.signing.e2e import E2E_TAG
from gateway.wire import FailureReason, SendMessage, SetPresence, Show, SignatureStatus, TextContent
from gateway.xmpp import Jid
from gateway.xmpp import events as ev
from gateway.xmpp.stanzas import parse_message_untrusted
from tests.relay.helpers import NOW, ready_relay
from tests.xmpp.replay import ACCOUNT, ServerView, login, make_client

ROMEO = Jid.parse_untrusted("romeo@example.org")
RECEIPTS_REQUEST = "{urn:xmpp:receipts}request"


def _ready() -> tuple[XmppUpstream, ServerView]:
    client = make_client()
    server = ServerView()
    login(client, server)
    server.read(client)  # what the client sends by itself once bound
    return XmppUpstream(client), server


def _sent(upstream: XmppUpstream, server: ServerView) -> list[ET.Element]:
    """Stanzas and nonzas the client sent, without its XEP-0198 ack requests."""
    return [
        item
        for item in server.read(upstream.client)
        if isinstance(item, ET.Element) and not item.tag.startswith("{urn:xmpp:sm:3}")
    ]


def test_signed_message_stanza_has_body_receipt_request_and_e2e() -> None:
    upstream, server = _ready()
    ca = CertificateAuthority.create(now=NOW - 86_400)
    credential = ca.enroll(ImppAddress.of(ACCOUNT), now=NOW - 86_400)
    relay = DeviceRelay(
        ACCOUNT,
        signer=OnBehalfDeviceSigner(OnBehalfSigner(), credential),
        upstream_ready=True,
    )
    commands = relay.device_operation(
        SendMessage(id=1, to=str(ROMEO), content=TextContent("wherefore")), NOW
    )
    (send,) = [c for c in commands if isinstance(c, cmd.UpstreamSendMessage)]
    assert upstream.execute(send, NOW) == []
    (stanza,) = _sent(upstream, server)
    assert stanza.tag == "{jabber:client}message"
    assert (stanza.get("to"), stanza.get("type"), stanza.get("id")) == (
        "romeo@example.org",
        "chat",
        send.message_id,
    )
    assert stanza.findtext("{jabber:client}body") == "wherefore"
    assert stanza.find(RECEIPTS_REQUEST) is not None
    e2e = stanza.find(E2E_TAG)
    assert e2e is not None
    assert "Message/CPIM" in (e2e.text or "")
    # The signature verifies as the recipient's gateway would check it.
    verifier = E2eVerifier(SignerTrustStore((ca.certificate,)))
    stanza.set("from", str(ACCOUNT))
    check = stanza_verifier(verifier, ROMEO)
    assert check(parse_message_untrusted(stanza), NOW) is SignatureStatus.VERIFIED


def test_presence_subscription_receipt_block_and_csi_stanzas() -> None:
    upstream, server = _ready()
    upstream.execute(cmd.UpstreamSendPresence(available=True, show=Show.AWAY, status="out"), NOW)
    upstream.execute(cmd.UpstreamSubscription(ROMEO, cmd.SubscriptionVerb.APPROVE), NOW)
    upstream.execute(cmd.UpstreamSendReceipt(ROMEO, "abc"), NOW)
    upstream.execute(cmd.UpstreamBlock(ROMEO), NOW)
    upstream.execute(cmd.UpstreamSetActive(False), NOW)
    presence, subscribed, receipt, block, inactive = _sent(upstream, server)
    assert presence.findtext("{jabber:client}show") == "away"
    assert presence.findtext("{jabber:client}status") == "out"
    assert (subscribed.get("to"), subscribed.get("type")) == ("romeo@example.org", "subscribed")
    received = receipt.find("{urn:xmpp:receipts}received")
    assert received is not None
    assert received.get("id") == "abc"
    item = block.find("{urn:xmpp:blocking}block/{urn:xmpp:blocking}item")
    assert item is not None
    assert item.get("jid") == "romeo@example.org"
    assert inactive.tag == "{urn:xmpp:csi:0}inactive"


def test_expired_message_is_reported_to_its_sender_as_a_stanza_error() -> None:
    upstream, server = _ready()
    upstream.execute(cmd.UpstreamDeliveryFailed(ROMEO, "m1", FailureReason.EXPIRED), NOW)
    (stanza,) = _sent(upstream, server)
    assert (stanza.get("type"), stanza.get("id")) == ("error", "m1")
    condition = "{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}recipient-unavailable"
    assert stanza.find(condition) is not None


def test_overflow_is_reported_to_its_sender_as_resource_constraint() -> None:
    upstream, server = _ready()
    report = cmd.UpstreamDeliveryFailed(ROMEO, "m2", FailureReason.RESOURCE_CONSTRAINT)
    upstream.execute(report, NOW)
    (stanza,) = _sent(upstream, server)
    assert (stanza.get("type"), stanza.get("id"), stanza.get("to")) == ("error", "m2", str(ROMEO))
    error = stanza.find("{jabber:client}error")
    assert error is not None
    assert error.get("type") == "wait"  # RFC 6120 §8.3.3.18
    assert error.find("{urn:ietf:params:xml:ns:xmpp-stanzas}resource-constraint") is not None


def test_a_blocked_sender_is_told_service_unavailable_as_the_server_tells_it() -> None:
    upstream, server = _ready()
    upstream.execute(cmd.UpstreamDeliveryFailed(ROMEO, "m3", FailureReason.REJECTED), NOW)
    (stanza,) = _sent(upstream, server)
    assert (stanza.get("type"), stanza.get("id"), stanza.get("to")) == ("error", "m3", str(ROMEO))
    error = stanza.find("{jabber:client}error")
    assert error is not None
    assert error.get("type") == "cancel"  # XEP-0191 §3.5, RFC 6120 §8.3.3.19
    assert error.find("{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable") is not None


def test_a_full_session_feeds_back_through_the_relay() -> None:
    upstream, _server = _ready()
    relay = ready_relay()
    relay.device_operation(SetPresence(open=True), NOW)
    events = upstream.client.receive_data_untrusted(
        b"<message from='alice@example.org/p' to='user@example.net/gw' id='x' type='chat'>"
        b"<body>hi</body></message>",
        NOW,
    )
    commands = [c for e in events for c in relay.upstream_event(e, NOW)]
    assert [type(c) for c in commands] == [cmd.SendToDevice]
    assert isinstance(events[0], ev.MessageReceived)
