"""Deferred inbound acknowledgement (XEP-0198 §4, §5): ``h`` counts what the application finished.

Sans-IO, with the replay helpers: the server's ``<r/>`` and ``<resume/>`` hear only the stanzas
the application acknowledged and released (persisted), stanzas the client consumes itself are
counted in order, and an unasked ``<a/>`` goes out past a threshold or after a short delay.
"""

from __future__ import annotations

from gateway.xmpp import events as ev
from gateway.xmpp.client import XmppClient
from gateway.xmpp.jid import Jid
from gateway.xmpp.stream_management import (
    DEFAULT_INBOUND_ACK_DELAY,
    DEFAULT_INBOUND_ACK_THRESHOLD,
)
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

ALICE_PHONE = "alice@example.org/phone"
SM = "urn:xmpp:sm:3"
R = f"<r xmlns='{SM}'/>"


def ready(**overrides: object) -> tuple[XmppClient, ServerView]:
    client = make_client(defer_inbound_acks=True, **overrides)
    server = ServerView()
    login(client, server)
    return client, server


def messages(client: XmppClient, count: int, now: float = 0.0) -> list[int]:
    """Feed ``count`` chat messages; return their sequence numbers."""
    events = feed(client, f"<message from='{ALICE_PHONE}'><body>hi</body></message>" * count, now)
    return [e.sequence for e in events if isinstance(e, ev.MessageReceived)]


def a(handled: int) -> str:
    return f"<a xmlns='{SM}' h='{handled}'/>"


def test_r_is_answered_with_only_acknowledged_and_released_stanzas() -> None:
    client, server = ready()
    assert messages(client, 3) == [1, 2, 3]
    feed(client, R)
    expect(client, server, a(0))  # received is not handled

    client.acknowledge_inbound(1)
    client.acknowledge_inbound(3)  # out of order: h stops before 2
    assert client.inbound_acknowledged == 1
    feed(client, R)
    expect(client, server, a(0))  # acknowledged, but not released (not yet persisted)

    client.release_inbound_acknowledgements(client.inbound_acknowledged, 0.0)
    feed(client, R)
    expect(client, server, a(1))

    client.acknowledge_inbound(2)
    assert client.inbound_acknowledged == 3
    feed(client, R)
    expect(client, server, a(1))
    client.release_inbound_acknowledgements(3, 0.0)
    feed(client, R)
    expect(client, server, a(3))


def test_without_deferral_r_counts_every_received_stanza() -> None:
    client = make_client()
    server = ServerView()
    login(client, server)
    messages(client, 3)
    feed(client, R)
    expect(client, server, a(3))


def test_stanzas_the_client_consumes_are_counted_in_order() -> None:
    client, server = ready()
    feed(client, f"<message from='{ALICE_PHONE}'><body>one</body></message>")
    feed(client, "<iq type='get' id='p1' from='example.net'><ping xmlns='urn:xmpp:ping'/></iq>")
    feed(client, f"<message from='{ALICE_PHONE}'><body>three</body></message>")
    expect(client, server, "<iq xmlns='jabber:client' type='result' id='p1' to='example.net'/>", R)
    assert client.inbound_acknowledged == 0  # 1 is the application's, and comes first
    client.acknowledge_inbound(1)
    assert client.inbound_acknowledged == 2  # the ping (2) was done with by the client itself
    client.acknowledge_inbound(3)
    client.release_inbound_acknowledgements(client.inbound_acknowledged, 0.0)
    feed(client, R)
    expect(client, server, a(3))


def test_acknowledgements_never_pass_what_was_received() -> None:
    client, server = ready()
    messages(client, 1)
    for unknown in (0, 2, 7, 2**32 - 1, 2**32, -1):
        client.acknowledge_inbound(unknown)
    assert client.inbound_acknowledged == 0
    client.release_inbound_acknowledgements(5, 0.0)  # more than acknowledged: capped
    feed(client, R)
    expect(client, server, a(0))
    client.acknowledge_inbound(1)
    client.acknowledge_inbound(1)  # idempotent
    client.release_inbound_acknowledgements(1, 0.0)
    feed(client, R)
    expect(client, server, a(1))


def test_an_ack_goes_out_unasked_past_the_threshold() -> None:
    client, server = ready()
    sequences = messages(client, DEFAULT_INBOUND_ACK_THRESHOLD)
    for sequence in sequences[:-1]:
        client.acknowledge_inbound(sequence)
    client.release_inbound_acknowledgements(client.inbound_acknowledged, 5.0)
    expect(client, server)  # below the threshold: waits for the timer
    client.acknowledge_inbound(sequences[-1])
    client.release_inbound_acknowledgements(client.inbound_acknowledged, 5.5)
    expect(client, server, a(DEFAULT_INBOUND_ACK_THRESHOLD))
    feed(client, R)  # the answer to <r/> repeats the count
    expect(client, server, a(DEFAULT_INBOUND_ACK_THRESHOLD))


def test_a_trickle_is_acknowledged_after_the_delay() -> None:
    client, server = ready()
    messages(client, 1, now=10.0)
    client.acknowledge_inbound(1)
    client.release_inbound_acknowledgements(1, 10.0)
    expect(client, server)
    assert client.next_deadline() == 10.0 + DEFAULT_INBOUND_ACK_DELAY
    assert client.handle_timer(10.0 + DEFAULT_INBOUND_ACK_DELAY - 0.001) == []
    expect(client, server)
    client.handle_timer(10.0 + DEFAULT_INBOUND_ACK_DELAY)
    expect(client, server, a(1))
    assert client.next_deadline() != 10.0 + DEFAULT_INBOUND_ACK_DELAY  # nothing more to report


def test_resumption_reports_only_the_released_count_and_the_server_redelivers() -> None:
    client, _ = ready()
    messages(client, 3)
    client.acknowledge_inbound(1)
    client.acknowledge_inbound(2)
    client.release_inbound_acknowledgements(2, 0.0)
    client.acknowledge_inbound(3)  # done, but the count 3 was never persisted: not reported
    client.receive_data_untrusted(b"", 50.0)
    token = client.resumption_token(50.0)
    assert token is not None
    assert token.inbound_handled == 2

    fresh = make_client(defer_inbound_acks=True, resume=token)
    fresh_server = ServerView()
    authenticate(fresh, start=60.0)
    fresh.data_to_send()
    fresh_server.restart(mid_stream=True)
    feed(fresh, SERVER_HEADER + FEATURES_BOUND)
    expect(fresh, fresh_server, f"<resume xmlns='{SM}' previd='sm-1' h='2'/>")
    feed(fresh, f"<resumed xmlns='{SM}' previd='sm-1' h='0'/>")
    assert messages(fresh, 1) == [3]  # the server resent what we did not report, same number
    fresh.acknowledge_inbound(3)
    fresh.release_inbound_acknowledgements(3, 61.0)
    feed(fresh, R)
    expect(fresh, fresh_server, a(3))


def test_a_persisted_checkpoint_resumes_in_a_new_process() -> None:
    client, server = ready()
    client.send_message(Jid("alice", "example.org"), "out")
    server.read(client)
    messages(client, 2)
    client.acknowledge_inbound(1)
    client.acknowledge_inbound(2)
    checkpoint = client.resumption_checkpoint(5.0)
    assert checkpoint is not None
    assert (checkpoint.session_id, checkpoint.inbound_handled) == ("sm-1", 2)
    assert checkpoint.unacknowledged == ()
    assert checkpoint.outbound_unknown
    feed(client, R)
    expect(client, server, a(0))  # the checkpoint is not a release

    # The process dies; the next one knows only what was persisted, not the stanza it sent.
    fresh = make_client(defer_inbound_acks=True, resume=checkpoint)
    fresh_server = ServerView()
    authenticate(fresh)
    fresh.data_to_send()
    fresh_server.restart(mid_stream=True)
    feed(fresh, SERVER_HEADER + FEATURES_BOUND)
    expect(fresh, fresh_server, f"<resume xmlns='{SM}' previd='sm-1' h='2'/>")
    events = feed(fresh, f"<resumed xmlns='{SM}' previd='sm-1' h='1'/>")
    assert events == [ev.SessionResumed(Jid("user", "example.net", "gw"), 0)]
    fresh.send_message(Jid("alice", "example.org"), "next")
    fresh_server.read(fresh)
    events = feed(fresh, f"<a xmlns='{SM}' h='2'/>")  # counted on from the server's h
    assert [type(e) for e in events] == [ev.StanzasAcknowledged]


def test_received_stanza_elements_are_left_alone() -> None:
    # The deferral changes only counting: the events are those of an undeferred client.
    deferred, _ = ready()
    plain = make_client()
    login(plain, ServerView())
    text = f"<message from='{ALICE_PHONE}' id='x'><body>hi</body></message>"
    assert feed(deferred, text) == feed(plain, text)
