"""The session's sending path across a reconnection (no server: the state is set up by hand)."""

from __future__ import annotations

import random

import trio

from gateway.xmpp import events as ev
from gateway.xmpp import sasl
from gateway.xmpp.client import ClientConfig, ClientState
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.manager import UpstreamSession, UpstreamSettings
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver
from tests.xmpp.fakeserver import (
    FakeNetwork,
    FakeServer,
    account_config,
    make_client,
    warm_salted_password_cache,
)

ACCOUNT = Jid("dev1", "impp.test")
PEER = Jid("alice", "impp.test")


async def test_a_stanza_sent_as_the_connection_ends_is_queued_not_refused() -> None:
    # Between the client seeing the end of its connection and run() building the next client,
    # run() is still delivering events; a send in that window must queue for the next connection.
    session = UpstreamSession(
        ClientConfig(jid=ACCOUNT, password="secret"),
        UpstreamSettings(),
        ServerResolver(static_hosts={}),
        rng=random.Random(1),
    )
    old = session.client
    old.start(0.0)
    (ended,) = old.receive_data_untrusted(b"", 1.0)
    assert isinstance(ended, ev.StreamEnded)
    assert old.state is ClientState.CLOSED

    message_id = await session.send_message(PEER, "during the reconnection")

    assert session.client is not old
    assert session.client.state is ClientState.IDLE
    (queued,) = session.client.unsent_stanzas()
    assert queued.get("id") == message_id
    assert queued.findtext("{jabber:client}body") == "during the reconnection"


async def test_the_key_derivation_request_is_not_handed_to_the_application() -> None:
    # KeyDerivationRequested is for the connection (it runs PBKDF2 in a worker thread); the
    # session's event channel must not carry it.  Real clock: the autojump clock would not
    # wait for the worker thread.  An empty cache makes the derivation necessary.
    async def log_in(index: int, server: FakeServer, address: ServerAddress) -> None:
        await server.login()

    seen: list[ev.UpstreamSessionEvent] = []
    sasl.SALTED_PASSWORDS.clear()
    try:
        async with trio.open_nursery() as nursery:
            network = FakeNetwork(nursery, log_in)
            session = UpstreamSession(
                account_config(),
                UpstreamSettings(),
                ServerResolver(static_hosts={}),
                rng=random.Random(1),
                client_factory=make_client,
                connector=network.connect,
            )
            await nursery.start(session.run)
            with trio.fail_after(30):
                async for event in session.events:
                    seen.append(event)
                    if isinstance(event, ev.SessionEstablished):
                        break
            nursery.cancel_scope.cancel()
        assert len(sasl.SALTED_PASSWORDS) == 1  # the derivation did run, off the event channel
    finally:
        warm_salted_password_cache()
    assert [type(event) for event in seen] == [
        ev.ConnectionOpened,
        ev.Authenticated,
        ev.SessionEstablished,
    ]
