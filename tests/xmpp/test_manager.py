"""The session's sending path across a reconnection (no server: the state is set up by hand)."""

from __future__ import annotations

import random

from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, ClientState
from gateway.xmpp.jid import Jid
from gateway.xmpp.manager import UpstreamSession, UpstreamSettings
from gateway.xmpp.resolver import ServerResolver

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
