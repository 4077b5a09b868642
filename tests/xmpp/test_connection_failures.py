"""One upstream connection against a failing server, over memory streams with virtual time.

A server that goes silent during STARTTLS, a path that stops taking our bytes, and SCRAM's key
derivation: the adapter must notice and close in bounded virtual time, whatever holds the lock.
"""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

from gateway.xmpp import events as ev
from gateway.xmpp import sasl
from gateway.xmpp.client import ConnectionLostError, XmppClient
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.connection import UpstreamConnection
from gateway.xmpp.net.tls import TrustStore, create_client_context
from tests.xmpp.fakeserver import FakeServer, account_config
from tests.xmpp.replay import CLIENT_NONCE, FEATURES_TLS, SERVER_HEADER

LIMIT = 100.0  # virtual seconds: far past every timer under test
PEER_JID = Jid("juliet", "example.net")


def connection_for(
    client: XmppClient, stream: trio.abc.Stream, seen: list[ev.Event], *, loopback: bool = True
) -> UpstreamConnection:
    async def collect(event: ev.Event) -> None:
        seen.append(event)

    return UpstreamConnection(
        client,
        stream,
        ssl_context=create_client_context(TrustStore()),
        server_hostname="example.net",
        on_event=collect,
        peer_is_loopback=loopback,
    )


async def test_starttls_proceed_then_silence_ends_at_the_negotiation_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client_end, server_end = trio.testing.memory_stream_pair()
    server = FakeServer(server_end)
    client = XmppClient(account_config(negotiation_timeout=5.0), client_nonce=CLIENT_NONCE)
    seen: list[ev.Event] = []
    connection = connection_for(client, client_end, seen, loopback=False)

    async def wedge() -> None:
        await server.header()
        await server.send(SERVER_HEADER + FEATURES_TLS)
        await server.element("starttls")
        await server.send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        # Read the ClientHello and never answer it.
        while await server_end.receive_some(65536):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wedge)
        with trio.fail_after(LIMIT):
            ended = await connection.run()
        nursery.cancel_scope.cancel()
    assert trio.current_time() == 5.0
    assert isinstance(ended.error, ConnectionLostError)
    assert "negotiation timed out" in str(ended.error)
    with pytest.raises(trio.ClosedResourceError):
        await client_end.send_all(b"x")  # the adapter closed its socket


async def test_a_write_the_peer_never_takes_ends_the_connection_within_keepalive_bounds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client_end, server_end = trio.testing.lockstep_stream_pair()
    server = FakeServer(server_end)
    client = XmppClient(
        account_config(keepalive_interval=2.0, keepalive_timeout=2.0), client_nonce=CLIENT_NONCE
    )
    seen: list[ev.Event] = []
    connection = connection_for(client, client_end, seen)
    logged_in = trio.Event()

    async def black_hole() -> None:
        await server.login()
        logged_in.set()
        await trio.sleep_forever()  # the path drops everything from now on: nothing is read

    async with trio.open_nursery() as nursery:
        nursery.start_soon(black_hole)

        async def send_after_login() -> None:
            await logged_in.wait()
            client.send_message(PEER_JID, "into the void")
            await connection.flush()

        nursery.start_soon(send_after_login)
        with trio.fail_after(LIMIT):
            ended = await connection.run()
        nursery.cancel_scope.cancel()
    assert trio.current_time() == 2.0  # the write's deadline, within interval + timeout (4 s)
    assert isinstance(ended.error, ConnectionLostError)
    assert "write did not complete" in str(ended.error)
    assert any(isinstance(e, ev.SessionEstablished) for e in seen)
    assert seen[-1] is ended


async def test_scram_key_derivation_runs_in_a_worker_thread_and_is_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Real time: an autojump clock would jump past the negotiation timeout while the worker runs.
    sasl.SALTED_PASSWORDS.clear()
    threads: list[threading.Thread] = []
    derive = sasl.KeyDerivation.derive

    def recording_derive(self: sasl.KeyDerivation) -> bytes:
        threads.append(threading.current_thread())
        return derive(self)

    monkeypatch.setattr(sasl.KeyDerivation, "derive", recording_derive)
    for _ in range(2):
        client_end, server_end = trio.testing.memory_stream_pair()
        server = FakeServer(server_end)
        client = XmppClient(account_config(), client_nonce=CLIENT_NONCE, defer_key_derivation=True)
        seen: list[ev.Event] = []
        connection = connection_for(client, client_end, seen)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.run)
            with trio.fail_after(20):
                await server.login()
                await server.stream.send_all(b"</stream:stream>")
                await connection.wait_ended()
        assert any(isinstance(e, ev.SessionEstablished) for e in seen)
    # One derivation for two log-ins, and not on the event loop's thread.
    assert len(threads) == 1
    assert threads[0] is not threading.main_thread()
    assert sasl.SALTED_PASSWORDS.hits >= 1
