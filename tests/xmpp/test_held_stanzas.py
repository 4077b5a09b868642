"""Stanzas the application resends itself (``resent_by_application``): carried by XEP-0198
resumption, never sent again by the client on a fresh session, where the application first asks
the archive what the server already has (a resend there would duplicate the message)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gateway.xmpp import events as ev
from gateway.xmpp.client import XmppClient, resent_by_application
from gateway.xmpp.jid import Jid
from gateway.xmpp.stanzas import build_message
from tests.xmpp.replay import (
    FEATURES_BOUND,
    SERVER_HEADER,
    ServerView,
    authenticate,
    expect,
    feed,
    login,
    make_client,
)

SM = "urn:xmpp:sm:3"
ALICE = Jid("alice", "example.org")


def _ids(elements: list[ET.Element | dict[str, str]]) -> list[str | None]:
    """The ids of the messages among what the client wrote."""
    return [
        e.get("id")
        for e in elements
        if isinstance(e, ET.Element) and e.tag == "{jabber:client}message"
    ]


def test_a_fresh_session_leaves_held_stanzas_to_the_application() -> None:
    client = make_client()
    held = build_message(ALICE, id="held", body="once")
    client.send_stanza(held, resent_by_application=True)
    client.send_stanza(build_message(ALICE, id="plain", body="any"))
    assert resent_by_application(held)
    server = ServerView()
    events = login(client, server)
    assert any(isinstance(e, ev.SessionEstablished) for e in events)
    assert _ids(server.read(client)) == ["plain"]  # the outbox, without the held one


def test_resumption_carries_held_stanzas_a_failed_one_does_not() -> None:
    client = make_client()
    server = ServerView()
    login(client, server)
    held = build_message(ALICE, id="held", body="once")
    client.send_stanza(held, resent_by_application=True)
    client.send_stanza(build_message(ALICE, id="plain", body="any"))
    assert _ids(server.read(client)) == ["held", "plain"]
    assert [s.get("id") for s in client.pending_stanzas()] == ["plain"]
    client.receive_data_untrusted(b"", 10.0)
    token = client.resumption_token(10.0)
    assert token is not None
    assert [s.get("id") for s in token.unacknowledged] == ["held", "plain"]

    resumed = make_client(resume=token)
    resumed_server = ServerView()
    authenticate(resumed, start=20.0)
    resumed.data_to_send()
    resumed_server.restart(mid_stream=True)
    feed(resumed, SERVER_HEADER + FEATURES_BOUND)
    expect(resumed, resumed_server, f"<resume xmlns='{SM}' previd='sm-1' h='0'/>")
    feed(resumed, f"<resumed xmlns='{SM}' previd='sm-1' h='0'/>")
    assert _ids(resumed_server.read(resumed)) == ["held", "plain"]  # XEP-0198 §5 resends both

    failed = make_client(resume=token)
    failed_server = ServerView()
    authenticate(failed, start=20.0)
    failed.data_to_send()
    failed_server.restart(mid_stream=True)
    feed(failed, SERVER_HEADER + FEATURES_BOUND)
    failed_server.read(failed)
    events = feed(failed, f"<failed xmlns='{SM}'/>")
    assert [type(e) for e in events] == [ev.ResumptionFailed]
    written = failed_server.read(failed)  # the bind request
    written += feed_and_read(
        failed,
        failed_server,
        "<iq type='result' id='c1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<jid>user@example.net/gw</jid></bind></iq>",
    )
    written += feed_and_read(failed, failed_server, f"<enabled xmlns='{SM}' id='sm-2'/>")
    assert [i for i in _ids(written) if i in ("held", "plain")] == ["plain"]


def feed_and_read(
    client: XmppClient, server: ServerView, xml: str
) -> list[ET.Element | dict[str, str]]:
    feed(client, xml)
    return server.read(client)
