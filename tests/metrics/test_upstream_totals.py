"""Upstream counters never go down: a reconnection adds the old stream's counts to the session's."""

from __future__ import annotations

import trio

from gateway.xmpp import Jid
from gateway.xmpp import events as ev
from tests.support.prosody import ProsodyServer
from tests.xmpp.upstream import TIMEOUT, config_for, manager_for


async def test_session_statistics_survive_a_reconnection(running_prosody: ProsodyServer) -> None:
    account = running_prosody.create_user()
    async with manager_for(running_prosody) as manager:
        session = await manager.open_session(config_for(account))
        with trio.fail_after(TIMEOUT):
            await session.established.wait()
        await session.send_message(Jid.parse_untrusted(account.jid), "a note to self")
        before = session.statistics()
        assert before.stanzas_sent >= 1
        assert before.bytes_received > 0
        connections = session.connections
        assert session.connection is not None
        await trio.aclose_forcefully(session.connection.stream)  # the link drops under it
        with trio.fail_after(TIMEOUT):
            async for event in session.events:
                up = isinstance(event, ev.SessionEstablished | ev.SessionResumed)
                if up and session.connections > connections:
                    break
        after = session.statistics()
        current = session.client.statistics()
        # The current stream's own counters started again from zero...
        assert current.bytes_received < after.bytes_received
        # ...but the session's totals (what the metrics read) only grew.
        assert after.stanzas_sent >= before.stanzas_sent
        assert after.stanzas_received >= before.stanzas_received
        assert after.bytes_received > before.bytes_received
        await manager.close_session(session.jid)
        retired = manager.retired
        assert retired is not None
        assert retired.bytes_received >= after.bytes_received
        assert retired.unacknowledged == 0
        assert manager.retired_connections == session.connections >= 2
