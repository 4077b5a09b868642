"""The upstream client against the real Prosody, with slixmpp people on the other side."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest
import trio

from gateway.xmpp import events as ev
from gateway.xmpp.client import XmppClient
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.connection import TlsHandshakeError, UpstreamConnection
from gateway.xmpp.net.manager import open_upstream_manager
from gateway.xmpp.net.resolver import ServerAddress
from gateway.xmpp.net.tls import TrustStore, create_client_context
from gateway.xmpp.stanzas import (
    MessageStanzaType,
    PresenceShow,
    RosterSubscription,
    SubscriptionKind,
)
from tests.conftest import MakePerson
from tests.support.prosody import ProsodyServer
from tests.xmpp.proxy import CuttableProxy
from tests.xmpp.upstream import TIMEOUT, EventLog, config_for, manager_for, settings_for

pytestmark = pytest.mark.prosody


async def test_scram_login_over_starttls(running_prosody: ProsodyServer) -> None:
    account = running_prosody.create_user()
    async with manager_for(running_prosody) as manager:
        session = await manager.open_session(config_for(account, resource="gw"))
        log = EventLog(session.events)
        authenticated = await log.wait_for(ev.Authenticated)
        assert isinstance(authenticated, ev.Authenticated)
        assert authenticated.mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-1")
        established = await log.wait_for(ev.SessionEstablished)
        assert isinstance(established, ev.SessionEstablished)
        assert established.jid == Jid.parse_untrusted(account.jid).with_resource("gw")
        assert established.stream_management
        assert established.resumable
        assert session.client.tls_active
        assert isinstance(session.connection.stream, trio.SSLStream)  # type: ignore[union-attr]


async def test_wrong_password_stops_the_session(running_prosody: ProsodyServer) -> None:
    account = running_prosody.create_user()
    async with manager_for(running_prosody) as manager:
        config = config_for(account)
        config = type(config)(jid=config.jid, password="wrong-password")
        session = await manager.open_session(config)
        log = EventLog(session.events)
        closed = await log.wait_for(ev.ConnectionClosed)
        assert isinstance(closed, ev.ConnectionClosed)
        assert closed.reconnect_delay is None  # retrying cannot fix a refused password


async def test_messages_both_ways(running_prosody: ProsodyServer, make_person: MakePerson) -> None:
    account = running_prosody.create_user()
    person = await make_person()
    async with manager_for(running_prosody) as manager:
        session = await manager.open_session(config_for(account))
        log = EventLog(session.events)
        await log.wait_for(ev.SessionEstablished)
        await session.send_presence()
        person_jid = Jid.parse_untrusted(person.jid)
        await session.send_message(
            person_jid, "héllo from the gateway", thread="t-1", subject="s", lang="fr"
        )
        got = await person.next_message(sender=account.jid)
        assert got.body == "héllo from the gateway"
        assert got.thread == "t-1"
        assert got.subject == "s"
        await session.send_message(person_jid, "normal one", type=MessageStanzaType.NORMAL)
        assert (await person.next_message(sender=account.jid)).type == "normal"

        sent_id = await person.send_message(account.jid, "hello gateway", thread="t-2")
        received = await log.wait_for(ev.MessageReceived)
        assert isinstance(received, ev.MessageReceived)
        assert received.message.body == "hello gateway"
        assert received.message.id == sent_id
        assert received.message.thread == "t-2"
        assert received.message.from_ is not None
        assert received.message.from_.bare == person_jid.bare


async def test_presence_subscription_handshake(
    running_prosody: ProsodyServer, make_person: MakePerson
) -> None:
    account = running_prosody.create_user()
    person = await make_person()
    latecomer_account = running_prosody.create_user()
    async with manager_for(running_prosody) as manager:
        session = await manager.open_session(config_for(account))
        log = EventLog(session.events)
        await log.wait_for(ev.SessionEstablished)
        person_jid = Jid.parse_untrusted(person.jid)
        await session.use(lambda c: c.request_roster(trio.current_time()))
        roster = await log.wait_for(ev.RosterReceived)
        assert isinstance(roster, ev.RosterReceived)
        assert roster.items == ()
        await session.send_presence(show=PresenceShow.CHAT, status="here", priority=3)

        # We subscribe to the person, who approves (RFC 6121 §3.1).
        await session.use(lambda c: c.send_subscription(person_jid, SubscriptionKind.SUBSCRIBE))
        await person.next_presence(sender=account.jid, type="subscribe")
        await person.approve(account.jid)
        approved = await log.wait_for(ev.SubscriptionReceived)
        assert isinstance(approved, ev.SubscriptionReceived)
        assert approved.from_ == person_jid.bare
        assert approved.kind is SubscriptionKind.SUBSCRIBED
        while True:
            push = await log.wait_for(ev.RosterPushed)
            assert isinstance(push, ev.RosterPushed)
            if push.item.subscription is RosterSubscription.TO:
                break
        while True:  # our own broadcast comes back to us too (RFC 6121 §4.4.2)
            presence = await log.wait_for(ev.PresenceReceived)
            assert isinstance(presence, ev.PresenceReceived)
            assert presence.presence.from_ is not None
            if presence.presence.from_.bare == person_jid.bare:
                break

        # The person subscribes to us and we approve: presence flows to them with show and status.
        await person.subscribe(account.jid)
        request = await log.wait_for(ev.SubscriptionReceived)
        assert isinstance(request, ev.SubscriptionReceived)
        assert request.kind is SubscriptionKind.SUBSCRIBE
        await session.use(lambda c: c.send_subscription(person_jid, SubscriptionKind.SUBSCRIBED))
        await session.send_presence(show=PresenceShow.AWAY, status="away for now", lang="en")
        while True:
            seen = await person.next_presence(sender=account.jid)
            if seen.show == "away":
                assert seen.status == "away for now"
                break

        # Pre-approval (RFC 6121 §3.4): approve before the request; the server answers for us.
        assert session.client.supports_preapproval
        latecomer_jid = Jid.parse_untrusted(latecomer_account.jid)
        await session.use(lambda c: c.send_subscription(latecomer_jid, SubscriptionKind.SUBSCRIBED))
        await session.use(lambda c: c.ping(trio.current_time()))  # a round trip: now stored
        await log.wait_for(ev.PingAnswered)
        latecomer = await make_person(latecomer_account)
        await latecomer.subscribe(account.jid)
        answer = await latecomer.next_presence(sender=account.jid, type="subscribed")
        assert answer.type == "subscribed"


async def test_receipts_both_ways(running_prosody: ProsodyServer, make_person: MakePerson) -> None:
    account = running_prosody.create_user()
    person = await make_person()
    async with manager_for(running_prosody) as manager:
        session = await manager.open_session(config_for(account))
        log = EventLog(session.events)
        await log.wait_for(ev.SessionEstablished)
        await session.send_presence()
        # Receipts go to a full JID (XEP-0184 §5.1): the person's available resource.
        await person.send_message(account.jid, "ping me")
        first = await log.wait_for(ev.MessageReceived)
        assert isinstance(first, ev.MessageReceived)
        assert first.message.from_ is not None
        person_full = first.message.from_
        message_id = await session.send_message(person_full, "confirm this", request_receipt=True)
        receipt = await log.wait_for(ev.ReceiptReceived)
        assert isinstance(receipt, ev.ReceiptReceived)
        assert receipt.message_id == message_id

        their_id = await person.send_message(account.jid, "confirm mine", request_receipt=True)
        incoming = await log.wait_for(ev.MessageReceived)
        assert isinstance(incoming, ev.MessageReceived)
        assert incoming.message.receipt_requested
        assert incoming.message.id == their_id
        await session.use(lambda c: c.send_receipt(person_full, their_id))
        got = await person.next_message(sender=account.jid, receipt=True)
        assert got.receipt_for == their_id


async def test_ping_csi_and_disco(running_prosody: ProsodyServer, make_person: MakePerson) -> None:
    account = running_prosody.create_user()
    async with manager_for(running_prosody) as manager:
        session = await manager.open_session(config_for(account, resource="gw"))
        log = EventLog(session.events)
        await log.wait_for(ev.SessionEstablished)
        ping_id = await session.use(lambda c: c.ping(trio.current_time()))
        answered = await log.wait_for(ev.PingAnswered)
        assert isinstance(answered, ev.PingAnswered)
        assert answered.id == ping_id
        assert await session.use(lambda c: c.set_client_state(False))
        assert await session.use(lambda c: c.set_client_state(True))
        # An unknown request to the server is a typed stanza error, not a stream failure.
        bogus = ET.Element("{urn:example:nothing}query")
        await session.use(lambda c: c.send_iq("get", bogus, trio.current_time()))
        failed = await log.wait_for(ev.IqFailed)
        assert isinstance(failed, ev.IqFailed)
        assert failed.error.condition in ("service-unavailable", "feature-not-implemented")


async def test_stream_management_resume_after_the_connection_is_cut(
    running_prosody: ProsodyServer, make_person: MakePerson
) -> None:
    account = running_prosody.create_user()
    person = await make_person()
    person_jid = Jid.parse_untrusted(person.jid)
    proxy = CuttableProxy(running_prosody.host, running_prosody.c2s_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        async with manager_for(running_prosody, proxy.port) as manager:
            session = await manager.open_session(config_for(account))
            log = EventLog(session.events)
            await log.wait_for(ev.SessionEstablished)
            await session.send_presence()
            for index in range(3):
                await person.send_message(account.jid, f"in-{index}")
            for index in range(3):
                await session.send_message(person_jid, f"out-{index}")
            received: list[str] = []
            while len(received) < 3:
                event = await log.wait_for(ev.MessageReceived)
                assert isinstance(event, ev.MessageReceived)
                received.append(event.message.body or "")

            proxy.cut()
            for index in range(3, 6):
                await person.send_message(account.jid, f"in-{index}")
                await session.send_message(person_jid, f"out-{index}")
            resumed = await log.wait_for(ev.SessionResumed)
            assert isinstance(resumed, ev.SessionResumed)
            assert log.of(ev.ResumptionFailed) == []
            await session.send_message(person_jid, "out-last")
            await person.send_message(account.jid, "in-last")
            while received[-1:] != ["in-last"]:
                event = await log.wait_for(ev.MessageReceived)
                assert isinstance(event, ev.MessageReceived)
                received.append(event.message.body or "")
            assert received == [f"in-{i}" for i in range(6)] + ["in-last"]
            got: list[str] = []
            while got[-1:] != ["out-last"]:
                got.append((await person.next_message(sender=account.jid)).body)
            assert got == [f"out-{i}" for i in range(6)] + ["out-last"]
            assert proxy.connections_accepted == 2
        nursery.cancel_scope.cancel()


async def test_prosody_restart_reconnects_without_losing_stanzas(
    running_prosody: ProsodyServer, make_person: MakePerson
) -> None:
    account = running_prosody.create_user()
    other = running_prosody.create_user()
    async with manager_for(running_prosody) as manager:
        session = await manager.open_session(config_for(account))
        log = EventLog(session.events)
        await log.wait_for(ev.SessionEstablished)
        await trio.to_thread.run_sync(running_prosody.restart)
        closed = await log.wait_for(ev.ConnectionClosed)
        assert isinstance(closed, ev.ConnectionClosed)
        assert closed.reconnect_delay is not None
        # Sent while the server is away: queued, then delivered by the next session.
        await session.send_message(Jid.parse_untrusted(other.jid), "sent during the restart")
        again = await log.wait_for(ev.SessionEstablished, timeout=TIMEOUT * 2)
        assert isinstance(again, ev.SessionEstablished)
        await session.send_presence()
        person = await make_person(other)
        got = await person.next_message(sender=account.jid)
        assert got.body == "sent during the restart"
        await person.send_message(account.jid, "welcome back")
        received = await log.wait_for(ev.MessageReceived)
        assert isinstance(received, ev.MessageReceived)
        assert received.message.body == "welcome back"


async def test_untrusted_certificate_is_refused(running_prosody: ProsodyServer) -> None:
    account = running_prosody.create_user()
    settings = dataclasses.replace(
        settings_for(running_prosody), trust=TrustStore(ca_file=None, use_system_store=True)
    )
    async with open_upstream_manager(settings) as manager:
        session = await manager.open_session(config_for(account))
        log = EventLog(session.events)
        closed = await log.wait_for(ev.ConnectionClosed)
        assert isinstance(closed, ev.ConnectionClosed)
        assert isinstance(closed.error, TlsHandshakeError)
        assert "certificate verify failed" in str(closed.error).lower()
        assert log.of(ev.Authenticated) == []  # the password never left the gateway


async def test_scram_sha1_login(running_prosody: ProsodyServer) -> None:
    # The second virtual host stores SHA-1 SCRAM credentials, so only SCRAM-SHA-1 can succeed.
    domain = running_prosody.sha1_domain
    account = running_prosody.create_user(domain=domain)
    settings = dataclasses.replace(
        settings_for(running_prosody),
        static_hosts={domain: [ServerAddress(running_prosody.host, running_prosody.c2s_port)]},
    )
    async with open_upstream_manager(settings) as manager:
        session = await manager.open_session(config_for(account))
        log = EventLog(session.events)
        authenticated = await log.wait_for(ev.Authenticated)
        assert authenticated == ev.Authenticated("SCRAM-SHA-1")
        established = await log.wait_for(ev.SessionEstablished)
        assert isinstance(established, ev.SessionEstablished)
        assert established.jid.bare == Jid.parse_untrusted(account.jid)


async def test_certificate_for_another_name_is_refused(running_prosody: ProsodyServer) -> None:
    # The CA is trusted, but the certificate does not name the domain we verify against: the
    # hostname check (RFC 6120 §13.7.2.1) must refuse it before any credential is sent.
    account = running_prosody.create_user()
    client = XmppClient(config_for(account))
    stream = await trio.open_tcp_stream(running_prosody.host, running_prosody.c2s_port)
    seen: list[ev.Event] = []

    async def on_event(event: ev.Event) -> None:
        seen.append(event)

    connection = UpstreamConnection(
        client,
        stream,
        ssl_context=create_client_context(
            TrustStore(ca_file=running_prosody.ca_file, use_system_store=False)
        ),
        server_hostname="not-the-server.example",
        on_event=on_event,
    )
    with trio.fail_after(TIMEOUT):
        ended = await connection.run()
    assert isinstance(ended.error, TlsHandshakeError)
    assert "hostname" in str(ended.error).lower()
    assert not client.authenticated
    assert not any(isinstance(event, ev.Authenticated) for event in seen)


async def test_many_sessions_in_one_manager_then_clean_shutdown(
    running_prosody: ProsodyServer,
) -> None:
    # Several accounts live side by side in one process; each sends to the next one round the
    # ring, and leaving the manager closes every stream with </stream:stream> (no error).
    accounts = [running_prosody.create_user() for _ in range(4)]
    logs: list[EventLog] = []
    async with manager_for(running_prosody) as manager:
        sessions = [await manager.open_session(config_for(account)) for account in accounts]
        logs = [EventLog(session.events) for session in sessions]
        for log in logs:
            await log.wait_for(ev.SessionEstablished)
        for index, session in enumerate(sessions):
            await session.send_presence()
            target = Jid.parse_untrusted(accounts[(index + 1) % len(accounts)].jid)
            await session.send_message(target, f"ring {index}")
        for index, log in enumerate(logs):
            received = await log.wait_for(ev.MessageReceived)
            assert isinstance(received, ev.MessageReceived)
            assert received.message.body == f"ring {(index - 1) % len(accounts)}"
    for log in logs:
        ended = await log.wait_for(ev.StreamEnded)
        assert ended == ev.StreamEnded(None)
