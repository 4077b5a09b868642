"""The sans-IO client replayed against recorded server exchanges (no socket, no clock)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.xmpp import events as ev
from gateway.xmpp import sasl
from gateway.xmpp.client import (
    TRANSITIONS,
    ClientConfig,
    ClientInput,
    ClientState,
    ConnectionLostError,
    EncryptionRequiredError,
    XmppClient,
)
from gateway.xmpp.errors import (
    AuthenticationFailed,
    LocalXmppError,
    PeerStreamError,
    SaslCondition,
    StanzaErrorCondition,
    StanzaErrorType,
    StreamCondition,
    StreamError,
)
from gateway.xmpp.jid import Jid
from gateway.xmpp.stanzas import MessageStanzaType, PresenceShow, SubscriptionKind
from tests.xmpp.replay import (
    CLIENT_FINAL,
    CLIENT_NONCE,
    FEATURES_BOUND,
    FEATURES_SASL,
    FEATURES_TLS,
    SERVER_FINAL,
    SERVER_FIRST,
    SERVER_HEADER,
    ServerView,
    authenticate,
    b64,
    expect,
    feed,
    login,
    make_client,
    reach_sasl,
)

ALICE = Jid("alice", "example.org")
ALICE_PHONE = "alice@example.org/phone"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def ready(**overrides: object) -> tuple[XmppClient, ServerView]:
    client = make_client(**overrides)
    server = ServerView()
    login(client, server)
    return client, server


def test_login_starttls_scram_bind_sm() -> None:
    client = make_client()
    server = ServerView()
    events = login(client, server)
    assert events[:2] == [ev.TlsRequested(), ev.Authenticated("SCRAM-SHA-256")]
    assert events[2] == ev.SessionEstablished(Jid("user", "example.net", "gw"), True, True)
    assert client.state is ClientState.READY
    assert client.tls_active
    assert client.authenticated
    assert client.supports_preapproval


def test_login_fed_byte_by_byte_gives_the_same_events() -> None:
    # Record a whole login, then replay the server's side one byte at a time.
    lines = [
        SERVER_HEADER + FEATURES_TLS,
        "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        SERVER_HEADER + FEATURES_SASL,
        f"<challenge xmlns='{SASL}'>{b64(SERVER_FIRST)}</challenge>",
        f"<success xmlns='{SASL}'>{b64(SERVER_FINAL)}</success>",
        SERVER_HEADER + FEATURES_BOUND,
        "<iq type='result' id='c1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<jid>user@example.net/gw</jid></bind></iq>",
        "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>",
    ]
    client = make_client()
    client.start(0.0)
    events: list[ev.Event] = []
    for line in lines:
        for byte in line.encode():
            events += client.receive_data_untrusted(bytes([byte]), 0.0)
        if events and events[-1] == ev.TlsRequested() and client.state is ClientState.TLS_HANDSHAKE:
            client.tls_established()
    assert [type(e) for e in events] == [
        ev.TlsRequested,
        ev.Authenticated,
        ev.SessionEstablished,
    ]
    assert client.state is ClientState.READY


def test_server_signature_must_verify() -> None:
    client = make_client(password="not-pencil")
    reach_sasl(client)
    feed(client, f"<challenge xmlns='{SASL}'>{b64(SERVER_FIRST)}</challenge>")
    client.data_to_send()
    events = feed(client, f"<success xmlns='{SASL}'>{b64(SERVER_FINAL)}</success>")
    assert len(events) == 1
    assert isinstance(events[0], ev.StreamEnded)
    assert isinstance(events[0].error, AuthenticationFailed)
    assert client.state is ClientState.FAILED
    assert not client.authenticated
    with pytest.raises(LocalXmppError):
        feed(client, "<a/>")


def test_server_final_in_a_challenge_then_empty_success() -> None:
    client = make_client()
    reach_sasl(client)
    feed(client, f"<challenge xmlns='{SASL}'>{b64(SERVER_FIRST)}</challenge>")
    client.data_to_send()
    assert feed(client, f"<challenge xmlns='{SASL}'>{b64(SERVER_FINAL)}</challenge>") == []
    assert client.data_to_send() == f'<response xmlns="{SASL}"/>'.encode()
    assert feed(client, f"<success xmlns='{SASL}'/>") == [ev.Authenticated("SCRAM-SHA-256")]


def test_success_without_server_proof_is_refused() -> None:
    client = make_client()
    reach_sasl(client)
    feed(client, f"<challenge xmlns='{SASL}'>{b64(SERVER_FIRST)}</challenge>")
    events = feed(client, f"<success xmlns='{SASL}'/>")
    assert isinstance(events[-1], ev.StreamEnded)
    assert isinstance(events[-1].error, AuthenticationFailed)


def test_success_before_the_scram_exchange_finished_is_refused() -> None:
    # A server that says <success/> right after <auth/> never proved it knows the password, and
    # the client must say so with a StreamEnded (receive_data_untrusted is total), not raise.
    client = make_client()
    reach_sasl(client)
    events = feed(client, f"<success xmlns='{SASL}'>{b64(SERVER_FINAL)}</success>")
    assert len(events) == 1
    assert isinstance(events[0], ev.StreamEnded)
    assert isinstance(events[0].error, AuthenticationFailed)
    assert client.state is ClientState.FAILED
    assert not client.authenticated


def test_sasl_failure_is_typed() -> None:
    client = make_client()
    reach_sasl(client)
    events = feed(client, f"<failure xmlns='{SASL}'><not-authorized/></failure>")
    assert isinstance(events[-1], ev.StreamEnded)
    error = events[-1].error
    assert isinstance(error, AuthenticationFailed)
    assert error.condition is SaslCondition.NOT_AUTHORIZED


FEATURES_PLAIN_ONLY = (
    f"<stream:features><mechanisms xmlns='{SASL}'><mechanism>PLAIN</mechanism></mechanisms>"
    "</stream:features>"
)


@pytest.mark.parametrize(
    ("allow_plaintext", "loopback", "outcome"),
    [
        (False, True, EncryptionRequiredError),
        (True, False, EncryptionRequiredError),
        (True, True, "auth"),
    ],
)
def test_plaintext_only_when_allowed_and_on_loopback(
    allow_plaintext: bool, loopback: bool, outcome: object
) -> None:
    client = make_client(allow_plaintext=allow_plaintext)
    server = ServerView()
    client.start(0.0, peer_is_loopback=loopback)
    server.read(client)
    events = feed(client, SERVER_HEADER + FEATURES_SASL)
    if outcome == "auth":
        assert events == []
        sent = expect(
            client,
            server,
            f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>"
            + b64(b"n,,n=user,r=" + CLIENT_NONCE.encode())
            + "</auth>",
        )
        assert sent
    else:
        assert isinstance(events[-1], ev.StreamEnded)
        assert isinstance(events[-1].error, outcome)  # type: ignore[arg-type]


def test_plain_is_never_used_without_tls() -> None:
    client = make_client(allow_plaintext=True)
    client.start(0.0, peer_is_loopback=True)
    events = feed(client, SERVER_HEADER + FEATURES_PLAIN_ONLY)
    assert isinstance(events[-1], ev.StreamEnded)
    assert isinstance(events[-1].error, AuthenticationFailed)
    assert b"PLAIN" not in client.data_to_send()


def test_plain_over_tls() -> None:
    client = make_client()
    server = ServerView()
    client.start(0.0)
    feed(client, SERVER_HEADER + FEATURES_TLS)
    feed(client, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    client.data_to_send()
    client.tls_established()
    server.read(client)
    feed(client, SERVER_HEADER + FEATURES_PLAIN_ONLY)
    plain = b64(b"\0user\0pencil")
    expect(client, server, f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain}</auth>")
    assert feed(client, f"<success xmlns='{SASL}'/>") == [ev.Authenticated("PLAIN")]


def test_stanzas_before_ready_wait_in_the_outbox() -> None:
    client = make_client()
    server = ServerView()
    client.send_message(ALICE, "early", id="m0")
    events = login(client, server)
    assert isinstance(events[-1], ev.SessionEstablished)
    expect(
        client,
        server,
        "<message xmlns='jabber:client' to='alice@example.org' id='m0' type='chat'>"
        "<body>early</body></message>",
        "<r xmlns='urn:xmpp:sm:3'/>",
    )


def test_send_message_with_thread_subject_lang_and_receipt_request() -> None:
    client, server = ready()
    message_id = client.send_message(
        ALICE,
        "hello",
        type=MessageStanzaType.NORMAL,
        subject="greeting",
        thread="t-1",
        lang="en",
        bodies=[("de", "hallo")],
        request_receipt=True,
    )
    expect(
        client,
        server,
        f"<message xmlns='jabber:client' to='alice@example.org' id='{message_id}' type='normal' "
        "xml:lang='en'><subject>greeting</subject><body>hello</body>"
        "<body xml:lang='de'>hallo</body><thread>t-1</thread>"
        "<request xmlns='urn:xmpp:receipts'/></message>",
        "<r xmlns='urn:xmpp:sm:3'/>",
    )
    assert client.statistics().unacknowledged == 1
    events = feed(client, "<a xmlns='urn:xmpp:sm:3' h='1'/>")
    assert events == [ev.StanzasAcknowledged(1, (message_id,))]


def test_receive_message_receipt_and_error() -> None:
    client, _ = ready()
    events = feed(
        client,
        f"<message from='{ALICE_PHONE}' to='user@example.net/gw' id='x1' type='chat' "
        "xml:lang='fr'><body>salut</body><body xml:lang='en'>hi</body><thread>t9</thread>"
        "<request xmlns='urn:xmpp:receipts'/><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/>"
        "</message>"
        f"<message from='{ALICE_PHONE}' id='r1'><received xmlns='urn:xmpp:receipts' id='m7'/>"
        "</message>"
        f"<message from='{ALICE_PHONE}' id='m8' type='error'><error type='cancel'>"
        "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
    )
    received, receipt, failed = events
    assert isinstance(received, ev.MessageReceived)
    message = received.message
    assert message.from_ == Jid.parse_untrusted(ALICE_PHONE)
    assert message.type is MessageStanzaType.CHAT
    assert message.body == "salut"
    assert message.lang == "fr"
    assert message.bodies == ((None, "salut"), ("en", "hi"))
    assert message.thread == "t9"
    assert message.receipt_requested
    assert [e.tag for e in message.extensions] == ["{urn:ietf:params:xml:ns:xmpp-e2e}e2e"]
    assert received.sequence == 1
    assert receipt == ev.ReceiptReceived(Jid.parse_untrusted(ALICE_PHONE), "m7", 2)
    assert isinstance(failed, ev.MessageFailed)
    assert failed.id == "m8"
    assert failed.error.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE
    assert failed.error.type is StanzaErrorType.CANCEL


def test_send_receipt() -> None:
    client, server = ready()
    client.send_receipt(Jid.parse_untrusted(ALICE_PHONE), "x1")
    sent = server.read(client)
    assert isinstance(sent[0], ET.Element)
    received = sent[0].find("{urn:xmpp:receipts}received")
    assert received is not None
    assert received.get("id") == "x1"


def test_presence_out_and_in() -> None:
    client, server = ready()
    client.send_presence(
        show=PresenceShow.AWAY, statuses=[("en", "out"), ("de", "weg")], priority=5
    )
    client.send_presence(to=ALICE, available=False)
    expect(
        client,
        server,
        "<presence xmlns='jabber:client'><show>away</show><status xml:lang='en'>out</status>"
        "<status xml:lang='de'>weg</status><priority>5</priority></presence>",
        "<presence xmlns='jabber:client' to='alice@example.org' type='unavailable'/>",
        "<r xmlns='urn:xmpp:sm:3'/>",
    )
    events = feed(
        client,
        f"<presence from='{ALICE_PHONE}' xml:lang='en'><show>dnd</show>"
        "<status>busy</status><priority>-3</priority></presence>"
        f"<presence from='{ALICE_PHONE}' type='unavailable'/>",
    )
    first, second = events
    assert isinstance(first, ev.PresenceReceived)
    assert isinstance(second, ev.PresenceReceived)
    assert first.presence.show is PresenceShow.DND
    assert first.presence.status == "busy"
    assert first.presence.priority == -3
    assert not second.presence.available


def test_bad_priority_is_dropped_and_counted() -> None:
    client, _ = ready()
    events = feed(client, f"<presence from='{ALICE_PHONE}'><priority>500</priority></presence>")
    assert events == []
    assert client.statistics().dropped == {"malformed-presence": 1}
    assert client.state is ClientState.READY


@pytest.mark.parametrize("kind", list(SubscriptionKind))
def test_subscriptions_both_ways(kind: SubscriptionKind) -> None:
    client, server = ready()
    client.send_subscription(Jid.parse_untrusted(ALICE_PHONE), kind)
    expect(
        client,
        server,
        f"<presence xmlns='jabber:client' to='alice@example.org' type='{kind}'/>",
        "<r xmlns='urn:xmpp:sm:3'/>",
    )
    events = feed(client, f"<presence from='{ALICE_PHONE}' type='{kind}'/>")
    assert events == [ev.SubscriptionReceived(ALICE, kind, 1)]


def test_roster_get_push_and_spoofed_push() -> None:
    client, server = ready()
    roster_id = client.request_roster(10.0)
    expect(
        client,
        server,
        f"<iq xmlns='jabber:client' type='get' id='{roster_id}'>"
        "<query xmlns='jabber:iq:roster'/></iq>",
        "<r xmlns='urn:xmpp:sm:3'/>",
    )
    events = feed(
        client,
        f"<iq type='result' id='{roster_id}' to='user@example.net/gw'>"
        "<query xmlns='jabber:iq:roster' ver='v1'><item jid='alice@example.org' name='Alice' "
        "subscription='both'><group>Friends</group></item><item jid='bob@example.org' "
        "subscription='none' ask='subscribe' approved='true'/></query></iq>",
    )
    (roster,) = events
    assert isinstance(roster, ev.RosterReceived)
    assert roster.version == "v1"
    alice, bob = roster.items
    assert alice.jid == ALICE
    assert alice.name == "Alice"
    assert alice.groups == ("Friends",)
    assert bob.ask_subscribe
    assert bob.approved
    events = feed(
        client,
        "<iq type='set' id='push1' from='user@example.net'><query xmlns='jabber:iq:roster' "
        "ver='v2'><item jid='carol@example.org' subscription='to'/></query></iq>"
        "<iq type='set' id='push2' from='mallory@evil.example'><query xmlns='jabber:iq:roster'>"
        "<item jid='mallory@evil.example' subscription='both'/></query></iq>",
    )
    assert len(events) == 1
    assert isinstance(events[0], ev.RosterPushed)
    assert events[0].item.jid == Jid("carol", "example.org")
    assert events[0].version == "v2"
    expect(
        client,
        server,
        "<iq xmlns='jabber:client' type='result' id='push1' to='user@example.net'/>",
    )  # no second <r/>: the first one is still unanswered
    assert client.statistics().dropped == {"roster-push-not-from-server": 1}


def test_ping_both_ways_with_exact_round_trip_and_timeout() -> None:
    # The ack timeout is out of the way: this server answers iqs but never <r/>.
    client, server = ready(iq_timeout=30.0, ack_timeout=1000.0)
    feed(client, f"<iq type='get' id='p1' from='{ALICE_PHONE}'><ping xmlns='urn:xmpp:ping'/></iq>")
    expect(
        client,
        server,
        f"<iq xmlns='jabber:client' type='result' id='p1' to='{ALICE_PHONE}'/>",
        "<r xmlns='urn:xmpp:sm:3'/>",
    )
    ping_id = client.ping(100.0)
    assert client.next_deadline() == 130.0
    events = client.receive_data_untrusted(
        f"<iq type='result' id='{ping_id}' from='example.net'/>".encode(), 100.25
    )
    assert events == [ev.PingAnswered(ping_id, 0.25)]
    lost_id = client.ping(200.0, to=Jid.parse_untrusted(ALICE_PHONE))
    assert client.handle_timer(229.0) == []
    assert client.handle_timer(230.0) == [ev.IqTimedOut(lost_id)]


def test_iq_answer_from_someone_else_is_ignored() -> None:
    client, _ = ready()
    ping_id = client.ping(0.0, to=ALICE)
    events = feed(client, f"<iq type='result' id='{ping_id}' from='mallory@evil.example'/>")
    assert events == []
    events = feed(
        client,
        f"<iq type='error' id='{ping_id}' from='alice@example.org'><error type='cancel'>"
        "<feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
    )
    (failed,) = events
    assert isinstance(failed, ev.IqFailed)
    assert failed.error.condition is StanzaErrorCondition.FEATURE_NOT_IMPLEMENTED


def test_disco_info_and_unknown_requests() -> None:
    client, server = ready()
    feed(
        client,
        f"<iq type='get' id='d1' from='{ALICE_PHONE}'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        f"<iq type='get' id='v1' from='{ALICE_PHONE}'><query xmlns='jabber:iq:version'/></iq>",
    )
    disco, unknown, _r = server.read(client)
    assert isinstance(disco, ET.Element)
    assert isinstance(unknown, ET.Element)
    features = {f.get("var") for f in disco.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert features == {
        "http://jabber.org/protocol/disco#info",
        "urn:xmpp:ping",
        "urn:xmpp:receipts",
    }
    assert unknown.get("type") == "error"
    assert (
        unknown.find(
            "{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable"
        )
        is not None
    )


def test_client_state_indication() -> None:
    client, server = ready()
    assert client.set_client_state(False)
    assert client.set_client_state(True)
    expect(client, server, "<inactive xmlns='urn:xmpp:csi:0'/>", "<active xmlns='urn:xmpp:csi:0'/>")


def test_ack_requests_are_answered_with_the_inbound_count() -> None:
    client, server = ready()
    feed(client, f"<message from='{ALICE_PHONE}'><body>1</body></message>" * 3)
    feed(client, "<r xmlns='urn:xmpp:sm:3'/>")
    expect(client, server, "<a xmlns='urn:xmpp:sm:3' h='3'/>")


def test_handled_count_too_high_is_a_stream_error() -> None:
    client, server = ready()
    client.send_message(ALICE, "one")
    server.read(client)
    events = feed(client, "<a xmlns='urn:xmpp:sm:3' h='2'/>")
    assert isinstance(events[-1], ev.StreamEnded)
    assert isinstance(events[-1].error, StreamError)
    assert client.state is ClientState.FAILED
    assert b"<stream:error>" in client.data_to_send()


def test_resume_resends_only_unacknowledged() -> None:
    client, server = ready()
    ids = [client.send_message(ALICE, f"m{i}") for i in range(4)]
    server.read(client)
    feed(client, "<a xmlns='urn:xmpp:sm:3' h='1'/>")
    feed(client, f"<message from='{ALICE_PHONE}'><body>in</body></message>" * 2)
    client.send_message(ALICE, "while down")  # written to a dying socket
    events = client.receive_data_untrusted(b"", 50.0)
    assert isinstance(events[-1], ev.StreamEnded)
    assert isinstance(events[-1].error, ConnectionLostError)
    token = client.resumption_token(50.0)
    assert token is not None
    assert token.inbound_handled == 2
    assert token.expires_at == 350.0
    assert len(token.unacknowledged) == 4

    fresh = make_client(resume=token)
    fresh_server = ServerView()
    authenticate(fresh, start=60.0)
    fresh.data_to_send()
    fresh_server.restart(mid_stream=True)
    feed(fresh, SERVER_HEADER + FEATURES_BOUND)
    expect(fresh, fresh_server, "<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='2'/>")
    events = feed(fresh, "<resumed xmlns='urn:xmpp:sm:3' previd='sm-1' h='3'/>")
    assert events == [
        ev.StanzasAcknowledged(2, (ids[1], ids[2])),
        ev.SessionResumed(Jid("user", "example.net", "gw"), 2),
    ]
    sent = fresh_server.read(fresh)
    bodies = [e.findtext("{jabber:client}body") for e in sent if isinstance(e, ET.Element)]
    assert bodies == ["m3", "while down", None]  # the last one is the <r/>
    events = feed(fresh, f"<message from='{ALICE_PHONE}'><body>after</body></message>")
    assert isinstance(events[0], ev.MessageReceived)
    assert events[0].sequence == 3


def test_failed_resumption_hands_back_and_resends_on_a_fresh_session() -> None:
    client, server = ready()
    client.send_message(ALICE, "kept")
    server.read(client)
    client.receive_data_untrusted(b"", 5.0)
    token = client.resumption_token(5.0)
    assert token is not None
    fresh = make_client(resume=token)
    authenticate(fresh, start=6.0)
    feed(fresh, SERVER_HEADER + FEATURES_BOUND)
    fresh.data_to_send()
    events = feed(
        fresh,
        "<failed xmlns='urn:xmpp:sm:3'><item-not-found "
        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
    )
    (failed,) = events
    assert isinstance(failed, ev.ResumptionFailed)
    assert [e.findtext("{jabber:client}body") for e in failed.unacknowledged] == ["kept"]
    assert fresh.state is ClientState.AWAIT_BIND
    events = feed(
        fresh,
        "<iq type='result' id='c1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<jid>user@example.net/gw2</jid></bind></iq>",
    )
    assert b"<enable" in fresh.data_to_send()
    events = feed(fresh, "<enabled xmlns='urn:xmpp:sm:3' id='sm-2' resume='true'/>")
    assert events == [ev.SessionEstablished(Jid("user", "example.net", "gw2"), True, True)]
    assert b"<body>kept</body>" in fresh.data_to_send()


def test_resumption_when_the_new_stream_offers_no_stream_management() -> None:
    # The server came back without XEP-0198 (say, reconfigured): nothing to <resume/> to, so the
    # unacknowledged stanzas are handed back and sent on the fresh session, never dropped.
    client, server = ready()
    client.send_message(ALICE, "unacked")
    server.read(client)
    client.receive_data_untrusted(b"", 5.0)
    token = client.resumption_token(5.0)
    assert token is not None
    fresh = make_client(resume=token)
    fresh_server = ServerView()
    authenticate(fresh, start=6.0)
    fresh.data_to_send()
    fresh_server.restart(mid_stream=True)
    events = feed(
        fresh,
        SERVER_HEADER
        + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
    )
    (failed,) = events
    assert isinstance(failed, ev.ResumptionFailed)
    assert [e.findtext("{jabber:client}body") for e in failed.unacknowledged] == ["unacked"]
    assert fresh.state is ClientState.AWAIT_BIND
    assert fresh.resumption_token(7.0) is None  # the old session is gone for good
    events = feed(
        fresh,
        "<iq type='result' id='c1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<jid>user@example.net/gw2</jid></bind></iq>",
    )
    assert events == [ev.SessionEstablished(Jid("user", "example.net", "gw2"), False, False)]
    sent = fresh_server.read(fresh)
    bodies = [e.findtext("{jabber:client}body") for e in sent if isinstance(e, ET.Element)]
    assert bodies.count("unacked") == 1


def test_keepalive_probe_then_dead_peer_at_exact_times() -> None:
    client, server = ready(keepalive_interval=100.0, keepalive_timeout=20.0)
    assert client.next_deadline() == 100.0
    assert client.handle_timer(99.0) == []
    assert client.handle_timer(100.0) == []
    expect(client, server, "<r xmlns='urn:xmpp:sm:3'/>")
    assert client.next_deadline() == 120.0
    events = client.handle_timer(120.0)
    assert isinstance(events[-1], ev.StreamEnded)
    assert isinstance(events[-1].error, ConnectionLostError)


def test_keepalive_answered_resets_the_clock() -> None:
    client, _ = ready(keepalive_interval=100.0, keepalive_timeout=20.0)
    client.handle_timer(100.0)
    client.receive_data_untrusted(b"<a xmlns='urn:xmpp:sm:3' h='0'/>", 110.0)
    assert client.next_deadline() == 210.0


def test_negotiation_timeout() -> None:
    client = make_client(negotiation_timeout=30.0)
    client.start(0.0)
    assert client.next_deadline() == 30.0
    events = client.handle_timer(30.0)
    assert isinstance(events[-1], ev.StreamEnded)


def test_unexpected_element_is_a_stream_error_and_terminal() -> None:
    client = make_client()
    client.start(0.0)
    client.data_to_send()
    events = feed(client, SERVER_HEADER + "<message><body>too early</body></message>")
    assert isinstance(events[-1], ev.StreamEnded)
    error = events[-1].error
    assert isinstance(error, StreamError)
    assert error.condition is StreamCondition.UNSUPPORTED_STANZA_TYPE
    out = client.data_to_send()
    assert b"unsupported-stanza-type" in out
    assert out.endswith(b"</stream:stream>")
    with pytest.raises(LocalXmppError):
        client.send_message(ALICE, "no")


def test_peer_stream_error_is_not_answered_with_one() -> None:
    client, _ = ready()
    client.data_to_send()
    events = feed(
        client,
        "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        "</stream:error>",
    )
    assert isinstance(events[-1], ev.StreamEnded)
    assert isinstance(events[-1].error, PeerStreamError)
    assert client.data_to_send() == b"</stream:stream>"


def test_clean_close() -> None:
    client, _ = ready()
    client.close()
    assert client.data_to_send().endswith(b"</stream:stream>")
    states = [client.state]
    assert feed(client, "</stream:stream>") == [ev.StreamEnded(None)]
    states.append(client.state)
    assert states == [ClientState.CLOSING, ClientState.CLOSED]
    assert client.next_deadline() is None
    assert client.statistics().unacknowledged == 0


def test_no_starttls_failure_wrapping() -> None:
    client = make_client()
    client.start(0.0)
    feed(client, SERVER_HEADER + FEATURES_TLS)
    events = feed(client, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert isinstance(events[-1], ev.StreamEnded)
    assert isinstance(events[-1].error, EncryptionRequiredError)


def test_transition_table_is_closed_over_states() -> None:
    # Every target is a state; terminal states have no way out; every live state can fail.
    for (state, _input), target in TRANSITIONS.items():
        assert isinstance(target, ClientState)
        assert state not in (ClientState.CLOSED, ClientState.FAILED)
    for state in ClientState:
        if state not in (ClientState.CLOSED, ClientState.FAILED):
            assert TRANSITIONS[(state, ClientInput.FAILURE)] is ClientState.FAILED


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_garbage_after_login_never_raises(data: bytes) -> None:
    client, _ = ready()
    events = client.receive_data_untrusted(data, 1.0)
    for event in events[:-1]:
        assert not isinstance(event, ev.StreamEnded)
    if client.state is ClientState.FAILED:
        assert isinstance(events[-1], ev.StreamEnded)


@settings(max_examples=200)
@given(
    st.lists(
        st.sampled_from(
            [
                "<message from='a@b/c'><body>x</body></message>",
                "<presence from='a@b/c' type='subscribe'/>",
                "<presence from='a@b/c'><show>bogus</show></presence>",
                "<iq type='get' id='1' from='a@b/c'><ping xmlns='urn:xmpp:ping'/></iq>",
                "<iq type='set' id='2'><query xmlns='jabber:iq:roster'/></iq>",
                "<iq type='result' id='nope'/>",
                "<r xmlns='urn:xmpp:sm:3'/>",
                "<a xmlns='urn:xmpp:sm:3' h='0'/>",
                "<a xmlns='urn:xmpp:sm:3' h='x'/>",
                "<message from='@@'/>",
                "<foo xmlns='urn:x'/>",
                "</stream:stream>",
            ]
        ),
        max_size=8,
    )
)
def test_any_sequence_of_server_elements_ends_well(lines: list[str]) -> None:
    client, _ = ready()
    for line in lines:
        if client.state in (ClientState.CLOSED, ClientState.FAILED):
            with pytest.raises(LocalXmppError):
                feed(client, line)
            return
        feed(client, line)
        client.data_to_send()


def test_the_password_never_shows_in_reprs_events_or_the_wire() -> None:
    client = make_client(password="not-pencil")  # the server proves 'pencil': login fails
    sent = bytearray()
    reach_sasl(client)
    sent += client.data_to_send()
    feed(client, f"<challenge xmlns='{SASL}'>{b64(SERVER_FIRST)}</challenge>")
    sent += client.data_to_send()
    events = feed(client, f"<success xmlns='{SASL}'>{b64(SERVER_FINAL)}</success>")
    sent += client.data_to_send()
    assert isinstance(events[-1], ev.StreamEnded)
    texts = [repr(client.config), repr(client), repr(events), str(events[-1].error)]
    assert all("not-pencil" not in text for text in texts)
    assert b"not-pencil" not in bytes(sent)
    assert b64(b"not-pencil").encode() not in bytes(sent)


def test_a_deferred_key_derivation_is_an_event_and_the_response_waits_for_the_key() -> None:
    sasl.SALTED_PASSWORDS.clear()
    client = XmppClient(
        ClientConfig(jid=Jid("user", "example.net"), password="pencil", resource="gw"),
        defer_key_derivation=True,
        client_nonce=CLIENT_NONCE,
        id_prefix="c",
    )
    reach_sasl(client)
    client.data_to_send()
    events = feed(client, f"<challenge xmlns='{SASL}'>{b64(SERVER_FIRST)}</challenge>")
    assert events == [ev.KeyDerivationRequested(4096)]
    assert client.data_to_send() == b""  # nothing until the key arrives
    derivation = client.pending_key_derivation()
    assert derivation is not None
    client.key_derived(derivation.derive())
    assert client.pending_key_derivation() is None
    assert b64(CLIENT_FINAL).encode() in client.data_to_send()
    # The next log-in with the same salt and count finds the key cached: no event, no PBKDF2.
    again = make_client()
    login(again, ServerView())
    assert sasl.SALTED_PASSWORDS.hits >= 1
