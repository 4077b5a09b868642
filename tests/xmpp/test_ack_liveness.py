"""The acknowledgement liveness rule (XEP-0198 §4) and the quiet wait for ``<resumed/>`` (§5).

Sans-IO, with the replay helpers and exact virtual times: once stanzas of ours are out and our
``<r/>`` asks for them, an ``<a/>`` must come within ``ack_timeout``; other traffic from the
server does not count (a server that still writes to us may have stopped reading us, which is
what Prosody 0.12 did to a resumed stream in tests/service/test_kill.py), and past it the
connection is dead, its session resumable.  Between ``<resume/>`` and the server's answer the
client writes nothing at all, whatever the application does meanwhile.
"""

from __future__ import annotations

from gateway.xmpp import events as ev
from gateway.xmpp.client import ConnectionLostError, XmppClient
from gateway.xmpp.jid import Jid
from gateway.xmpp.stanzas import RosterItem
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
R = f"<r xmlns='{SM}'/>"
ALICE = Jid("alice", "example.org")
ALICE_PHONE = "alice@example.org/phone"


def ready(**overrides: object) -> tuple[XmppClient, ServerView]:
    client = make_client(**overrides)
    server = ServerView()
    login(client, server)
    return client, server


def test_unacknowledged_stanzas_end_the_connection_at_the_ack_timeout() -> None:
    client, server = ready(ack_timeout=30.0, keepalive_interval=240.0)
    client.send_message(ALICE, "one")
    server.parser.feed(client.data_to_send(100.0))  # the message, then <r/>, at t=100
    assert client.next_deadline() == 130.0
    # The server keeps writing (a message, a ping) but never acknowledges: that is no proof
    # that it reads us.
    feed(client, f"<message from='{ALICE_PHONE}'><body>hi</body></message>", 110.0)
    feed(client, f"<iq type='get' id='p1' from='{ALICE_PHONE}'><ping xmlns='urn:xmpp:ping'/></iq>")
    client.data_to_send(120.0)
    assert client.next_deadline() == 130.0
    assert client.handle_timer(129.5) == []
    events = client.handle_timer(130.0)
    assert len(events) == 1
    assert isinstance(events[0], ev.StreamEnded)
    assert isinstance(events[0].error, ConnectionLostError)
    token = client.resumption_token(130.0)
    assert token is not None  # the session resumes on the next connection
    bodies = [stanza.findtext("{jabber:client}body") for stanza in token.unacknowledged]
    assert bodies == ["one", None]  # the message and our answer to the ping


def test_an_ack_stops_the_clock_and_the_next_batch_starts_it_again() -> None:
    client, _ = ready(ack_timeout=30.0)
    client.send_message(ALICE, "one")
    client.data_to_send(10.0)
    feed(client, f"<a xmlns='{SM}' h='1'/>", 25.0)
    assert client.next_deadline() == 25.0 + 240.0  # only the keepalive is left
    client.send_message(ALICE, "two")
    client.data_to_send(50.0)
    assert client.next_deadline() == 80.0
    assert client.handle_timer(79.0) == []
    feed(client, f"<a xmlns='{SM}' h='2'/>", 79.5)
    assert client.handle_timer(80.0) == []
    assert client.state.name == "READY"


def test_a_partial_ack_asks_again_and_restarts_the_clock() -> None:
    client, server = ready(ack_timeout=30.0)
    client.send_message(ALICE, "one")
    client.send_message(ALICE, "two")
    server.read(client)
    client.data_to_send(0.0)
    feed(client, f"<a xmlns='{SM}' h='1'/>", 20.0)  # answers an earlier <r/>: one is left
    expect(client, server, R)
    client.data_to_send(20.0)
    assert client.next_deadline() == 50.0
    assert client.handle_timer(49.0) == []
    assert isinstance(client.handle_timer(50.0)[0], ev.StreamEnded)


def test_output_taken_without_the_time_starts_the_clock_at_the_next_time_told() -> None:
    client, _ = ready(ack_timeout=30.0)
    client.send_message(ALICE, "one")
    client.data_to_send()  # no time: the clock cannot start early, only late
    assert client.next_deadline() == 240.0  # the keepalive of login at t=0
    feed(client, f"<message from='{ALICE_PHONE}'><body>hi</body></message>", 7.0)
    assert client.next_deadline() == 37.0
    assert isinstance(client.handle_timer(37.0)[0], ev.StreamEnded)


def test_without_stream_management_there_is_no_ack_clock() -> None:
    client = make_client(ack_timeout=30.0)
    server = ServerView()
    login(client, server, sm=False)
    client.send_message(ALICE, "one")
    client.data_to_send(0.0)
    assert client.next_deadline() == 240.0


def resuming_client() -> tuple[XmppClient, ServerView]:
    """A client whose <resume/> is out, waiting for the server's answer."""
    first, _ = ready(defer_inbound_acks=True)
    feed(first, f"<message from='{ALICE_PHONE}'><body>hi</body></message>")
    first.acknowledge_inbound(1)
    first.release_inbound_acknowledgements(1, 0.0)
    checkpoint = first.resumption_checkpoint(1.0)
    assert checkpoint is not None
    client = make_client(defer_inbound_acks=True, resume=checkpoint)
    server = ServerView()
    authenticate(client, start=10.0)
    client.data_to_send()
    server.restart(mid_stream=True)
    feed(client, SERVER_HEADER + FEATURES_BOUND, 10.0)
    expect(client, server, f"<resume xmlns='{SM}' previd='sm-1' h='1'/>")
    return client, server


def test_nothing_is_written_between_resume_and_resumed() -> None:
    client, server = resuming_client()
    # Everything the gateway does while the answer is on its way: messages, presence, a roster
    # request, an archive query, acknowledgement releases, a client state, timers.
    client.send_message(ALICE, "queued")
    client.send_presence()
    client.request_roster(11.0)
    client.set_roster_item(RosterItem(jid=ALICE), 11.0)
    client.acknowledge_inbound(2)
    client.release_inbound_acknowledgements(2, 11.0)
    assert client.handle_timer(12.0) == []
    assert client.data_to_send(12.0) == b""
    # The server's answer lets it all out, in order, followed by one <r/>.
    events = feed(client, f"<resumed xmlns='{SM}' previd='sm-1' h='0'/>", 13.0)
    assert [type(e) for e in events] == [ev.SessionResumed]
    sent = server.read(client)
    tags = [item.tag.split("}")[1] for item in sent if not isinstance(item, dict)]
    assert tags == ["message", "presence", "iq", "iq", "r"]


def test_a_server_that_never_answers_resume_times_out_in_negotiation() -> None:
    client, _ = resuming_client()
    client.send_message(ALICE, "queued")
    assert client.data_to_send(11.0) == b""
    assert client.next_deadline() == 10.0 + 60.0  # negotiation_timeout from the start
    events = client.handle_timer(70.0)
    assert isinstance(events[-1], ev.StreamEnded)
