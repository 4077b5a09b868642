"""Deferred inbound acks through an UpstreamSession: an acknowledgement names its stream.

A fresh stream numbers its inbound stanzas from 1 again, so an acknowledgement the application
makes late, for a stanza of the previous stream, must not count on the new one (it would tell
the server that a stanza not yet committed was handled).
"""

from __future__ import annotations

import trio

from gateway.xmpp import events as ev
from gateway.xmpp.net.resolver import ServerAddress
from tests.xmpp.fakeserver import FakeNetwork, FakeServer, account_config, fake_session

ALICE_PHONE = "alice@example.org/phone"
SM = "urn:xmpp:sm:3"


async def test_an_acknowledgement_from_an_older_stream_does_not_count_on_a_fresh_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cut = trio.Event()
    answers: list[str | None] = []
    asked = trio.Event()
    answered = [trio.Event(), trio.Event()]

    async def script(index: int, server: FakeServer, address: ServerAddress) -> None:
        if index == 0:
            await server.login(session="sm-1")
            await server.send(f"<message from='{ALICE_PHONE}' id='m1'><body>1</body></message>")
            await server.send(f"<message from='{ALICE_PHONE}' id='m2'><body>2</body></message>")
            await cut.wait()
            await server.stream.aclose()
            return
        await server.authenticate()
        await server.header()
        await server.send(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' from='example.net' id='s2' "
            "version='1.0'><stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
            f"<sm xmlns='{SM}'/></stream:features>"
        )
        resume = await server.element("resume")
        answers.append(resume.get("h"))  # nothing was released on the first stream
        await server.send(f"<failed xmlns='{SM}'/>")  # the server forgot: a fresh session
        bind = await server.element("iq")
        await server.send(
            f"<iq type='result' id='{bind.get('id')}'><bind xmlns='urn:ietf:params:xml:ns:"
            "xmpp-bind'><jid>user@example.net/gw</jid></bind></iq>"
        )
        await server.element("enable")
        await server.send(f"<enabled xmlns='{SM}' id='sm-2' resume='true'/>")
        await server.send(f"<message from='{ALICE_PHONE}' id='m3'><body>3</body></message>")
        for answer in answered:
            await asked.wait()
            await server.send(f"<r xmlns='{SM}'/>")
            while (item := await server.next()) is not None:
                if isinstance(item, dict) or item.tag != f"{{{SM}}}a":
                    continue
                answers.append(item.get("h"))
                break
            answer.set()

    async with trio.open_nursery() as nursery:
        network = FakeNetwork(nursery, script)
        session = fake_session(network, config=account_config(defer_inbound_acks=True))
        await nursery.start(session.run)
        generation = 0
        first_stream: list[int] = []
        with trio.fail_after(30):
            async for event in session.events:
                if isinstance(event, ev.SessionEstablished):
                    generation += 1
                if isinstance(event, ev.MessageReceived):
                    if generation == 1:
                        first_stream.append(event.sequence)
                        if len(first_stream) == 2:
                            cut.set()
                    else:
                        assert event.sequence == 1
                        break
        assert first_stream == [1, 2]
        assert session.stream_generation == generation == 2
        # Late acknowledgements of the first stream's stanzas: ignored on the fresh stream.
        for sequence in first_stream:
            await session.acknowledge_inbound(sequence, 1)
        assert session.inbound_checkpoint(1) is None
        checkpoint = session.inbound_checkpoint(2)
        assert checkpoint is not None
        assert (checkpoint.session_id, checkpoint.inbound_handled) == ("sm-2", 0)
        asked.set()
        with trio.fail_after(30):
            await answered[0].wait()
        # The fresh stream's own stanza, acknowledged, persisted (here: nowhere) and released.
        asked = trio.Event()
        await session.acknowledge_inbound(1, 2)
        checkpoint = session.inbound_checkpoint(2)
        assert checkpoint is not None
        assert checkpoint.inbound_handled == 1
        await session.release_inbound(checkpoint)
        asked.set()
        with trio.fail_after(30):
            await answered[1].wait()
        nursery.cancel_scope.cancel()
    assert answers == ["0", "0", "1"]
