"""The binding's upstream requests time out on the XMPP client's clock (trio's), not the relay's.

The relay runs on the wall clock; the client's timers (``handle_timer``, ``next_deadline``) run
on the clock its trio adapter feeds it. A roster request stamped with the wall clock's "now"
(about 1.7e9) would wait 1.7e9 s on trio's clock and never time out.
"""

from __future__ import annotations

from pathlib import Path

import trio

from gateway import wire
from gateway.session import OperationReceived
from gateway.store import open_sqlite_store
from gateway.xmpp import ClientConfig, XmppClient
from gateway.xmpp import events as ev
from gateway.xmpp.timers import DEFAULT_IQ_TIMEOUT
from tests.service.test_durable_upstream import ACCOUNT, FakeUpstream, _running


async def test_an_unanswered_roster_request_times_out(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_sqlite_store(tmp_path / "gw.db") as store:
        upstream = FakeUpstream()
        # A started client (its session not up yet): requests wait in the outbox, timed. Its
        # negotiation never times out here: while the binding waits for the store's thread, the
        # autojump clock may run on to the binding's own timers, past any short deadline.
        upstream.client = XmppClient(
            ClientConfig(jid=ACCOUNT, password="x", negotiation_timeout=1e9)
        )
        upstream.client.start(trio.current_time())
        async with _running(store, upstream) as (binding, link, _listener):
            await binding.device_event(
                link, OperationReceived(wire.ContactListRequest(), receipt=1)
            )
            [request] = upstream.client.unsent_stanzas()
            assert request.find("{jabber:iq:roster}query") is not None
            deadline = upstream.client.next_deadline()
            assert deadline is not None
            # Stamped on trio's clock: due within the iq timeout (a wall-clock stamp, about
            # 1.7e9, would put it decades ahead).
            assert deadline <= trio.current_time() + DEFAULT_IQ_TIMEOUT
            await trio.sleep_until(deadline)
            events = upstream.client.handle_timer(trio.current_time())
            assert events == [ev.IqTimedOut(request.get("id") or "")]
