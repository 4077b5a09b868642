"""UpstreamSession against scripted failing servers, over memory streams with the autojump clock.

The reconnect schedule (full-jitter back-off, reset only after a long-lived session), redirects,
temporary refusals, stanzas the server will not take, and what a fresh session restores: every
assertion is on exact virtual times and on what the fake server received.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from gateway.xmpp import events as ev
from gateway.xmpp.errors import AuthenticationFailed, SaslCondition, StanzaTooLargeError
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.manager import (
    Redirect,
    UpstreamSession,
    UpstreamSettings,
    backoff_delay,
    open_upstream_manager,
    parse_see_other_host_untrusted,
)
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver
from gateway.xmpp.serializer import serialize
from tests.xmpp.fakeserver import (
    LOOPBACK,
    SASL_FEATURES,
    FakeNetwork,
    FakeServer,
    account_config,
    fake_session,
    make_client,
)
from tests.xmpp.replay import SERVER_HEADER

PEER = Jid("juliet", "example.net")
LIMIT = 10_000.0  # virtual seconds


async def events_until(
    session: UpstreamSession, done: Callable[[list[ev.UpstreamSessionEvent]], bool]
) -> list[ev.UpstreamSessionEvent]:
    seen: list[ev.UpstreamSessionEvent] = []
    with trio.fail_after(LIMIT):
        async for event in session.events:
            seen.append(event)
            if done(seen):
                return seen
    return seen


def count(kind: type, seen: list[ev.UpstreamSessionEvent]) -> int:
    return sum(isinstance(event, kind) for event in seen)


Script = Callable[[int, FakeServer, ServerAddress], Awaitable[None]]


async def run_session(
    script: Script,
    done: Callable[[list[ev.UpstreamSessionEvent]], bool],
    *,
    before: Callable[[UpstreamSession], Awaitable[None]] | None = None,
    until: trio.Event | None = None,
    **options: object,
) -> tuple[list[ev.UpstreamSessionEvent], FakeNetwork]:
    """Run a session over ``script`` until ``done(events)`` (and ``until`` is set)."""
    async with trio.open_nursery() as nursery:
        network = FakeNetwork(nursery, script)
        session = fake_session(network, **options)  # type: ignore[arg-type]
        if before is not None:
            await before(session)
        await nursery.start(session.run)
        seen = await events_until(session, done)
        if until is not None:
            with trio.fail_after(LIMIT):
                await until.wait()
        nursery.cancel_scope.cancel()
    return seen, network


# -- the reconnect schedule ---------------------------------------------------------------------


async def conflict_after(index: int, server: FakeServer, address: ServerAddress) -> None:
    """Log in, then be kicked at once by another instance binding the same resource."""
    await server.login(sm=False)
    await server.stream_error("conflict")


def expected_schedule(seed: int, attempts: list[int], settings: UpstreamSettings) -> list[float]:
    """Connection times for back-off ``attempts`` drawn from the session's seeded rng."""
    rng = random.Random(seed)
    times = [0.0]
    for attempt in attempts:
        times.append(times[-1] + backoff_delay(attempt, settings, rng))
    return times


async def test_a_session_kicked_at_once_keeps_backing_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    settings = UpstreamSettings(reconnect_initial_delay=1.0, reconnect_max_delay=64.0)
    seen, network = await run_session(
        conflict_after, lambda seen: count(ev.ConnectionOpened, seen) == 9
    )
    # Each session lived 0 s (< reconnect_reset_after), so the ceiling doubles every time:
    # 1, 2, 4, ... 64 s, capped; no two instances kicking each other every second.
    expected = expected_schedule(7, list(range(8)), settings)
    assert [time for time, _ in network.attempts] == expected
    assert count(ev.SessionEstablished, seen) == 8
    always_reset = expected_schedule(7, [0] * 8, settings)
    assert expected[-1] > 10 * always_reset[-1]  # 60 s for 8 rounds, not 2.7 s


async def test_back_off_restarts_after_a_session_that_lived_long_enough(
    autojump_clock: trio.testing.MockClock,
) -> None:
    settings = UpstreamSettings(reconnect_initial_delay=1.0, reconnect_max_delay=64.0)

    async def long_lived(index: int, server: FakeServer, address: ServerAddress) -> None:
        await server.login(sm=False)
        await trio.sleep(settings.reconnect_reset_after + 1.0)
        await server.stream_error("conflict")

    _, network = await run_session(long_lived, lambda seen: count(ev.ConnectionOpened, seen) == 4)
    lived = settings.reconnect_reset_after + 1.0
    rng = random.Random(7)
    times, now = [], 0.0
    for _ in range(4):
        times.append(now)
        now = now + lived + backoff_delay(0, settings, rng)
    assert [time for time, _ in network.attempts] == pytest.approx(times, abs=1e-9)


async def test_first_reconnects_of_many_sessions_spread_over_the_initial_window() -> None:
    # Full jitter: 200 sessions dropped together draw their first delay uniformly from
    # [0, initial]; none of them waits the whole ceiling in lockstep.
    settings = UpstreamSettings(reconnect_initial_delay=1.0)
    master = random.Random(3)
    delays = sorted(backoff_delay(0, settings, random.Random(master.random())) for _ in range(200))
    assert delays[0] >= 0.0
    assert delays[-1] <= 1.0
    buckets = [sum(k / 10 <= d < (k + 1) / 10 for d in delays) for k in range(10)]
    assert max(buckets) < 40  # about 20 per tenth of a second, never a stampede in one slot


# -- refusals that are temporary, and ones that are not -----------------------------------------


async def test_temporary_auth_failure_is_retried_with_back_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(index: int, server: FakeServer, address: ServerAddress) -> None:
        if index == 0:
            await server.header()
            await server.send(SERVER_HEADER + SASL_FEATURES)
            await server.element("auth")
            await server.send(
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><temporary-auth-failure/>"
                "</failure></stream:stream>"
            )
            return
        await server.login()

    seen, _ = await run_session(script, lambda seen: count(ev.SessionEstablished, seen) == 1)
    (closed,) = [e for e in seen if isinstance(e, ev.ConnectionClosed)]
    assert isinstance(closed.error, AuthenticationFailed)
    assert closed.error.condition is SaslCondition.TEMPORARY_AUTH_FAILURE
    assert closed.reconnect_delay is not None


async def test_an_empty_features_element_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(index: int, server: FakeServer, address: ServerAddress) -> None:
        if index == 0:
            await server.header()
            await server.send(SERVER_HEADER + "<stream:features/>")
            return
        await server.login()

    seen, _ = await run_session(script, lambda seen: count(ev.SessionEstablished, seen) == 1)
    (closed,) = [e for e in seen if isinstance(e, ev.ConnectionClosed)]
    assert closed.reconnect_delay is not None
    assert "no stream features" in str(closed.error)


async def test_open_session_after_a_refused_password_starts_afresh(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(index: int, server: FakeServer, address: ServerAddress) -> None:
        if index == 0:
            await server.header()
            await server.send(SERVER_HEADER + SASL_FEATURES)
            await server.element("auth")
            await server.send(
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
                "</stream:stream>"
            )
            return
        await server.login()

    async with trio.open_nursery() as nursery:
        network = FakeNetwork(nursery, script)
        async with open_upstream_manager(
            UpstreamSettings(), client_factory=make_client, connector=network.connect
        ) as manager:
            first = await manager.open_session(account_config(password="wrong"))
            seen = await events_until(first, lambda s: count(ev.ConnectionClosed, s) == 1)
            assert seen[-1] == ev.ConnectionClosed(seen[-1].error, None)  # type: ignore[union-attr]
            with trio.fail_after(LIMIT):
                await first.wait_stopped()
            second = await manager.open_session(account_config(password="pencil"))
            assert second is not first
            await events_until(second, lambda s: count(ev.SessionEstablished, s) == 1)
        nursery.cancel_scope.cancel()


# -- see-other-host -------------------------------------------------------------------------------


def test_see_other_host_values() -> None:
    parse = parse_see_other_host_untrusted
    assert parse(" [2001:41D0:1:A49b::1]:9222 ") == Redirect("2001:41D0:1:A49b::1", 9222)
    assert parse("[::1]") == Redirect("::1", None)
    assert parse("Other.Example.NET") == Redirect("other.example.net", None)
    assert parse("127.0.0.2:5223") == Redirect("127.0.0.2", 5223)
    fullwidth_digits = "host:\uff11\uff12"  # str.isdigit() accepts them; int() would not do
    for bad in (None, "", "host:0", "host:99999", "host:", "[::1", "[nope]:1", "a b", "x" * 400,
                fullwidth_digits, "-bad"):  # fmt: skip
        assert parse(bad) is None, bad


async def test_see_other_host_reconnects_there_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(index: int, server: FakeServer, address: ServerAddress) -> None:
        if index == 0:
            await server.header()
            await server.send(SERVER_HEADER)
            await server.stream_error("see-other-host", "127.0.0.2:5223")
            return
        await server.login()

    seen, network = await run_session(script, lambda s: count(ev.SessionEstablished, s) == 1)
    assert network.attempts == [(0.0, LOOPBACK), (0.0, ServerAddress("127.0.0.2", 5223))]
    assert next(e for e in seen if isinstance(e, ev.ConnectionClosed)).reconnect_delay == 0.0


async def test_redirects_are_bounded_then_back_off_to_the_original_address(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def always_elsewhere(index: int, server: FakeServer, address: ServerAddress) -> None:
        await server.header()
        await server.send(SERVER_HEADER)
        await server.stream_error("see-other-host", f"127.0.0.{index + 2}:5222")

    _, network = await run_session(
        always_elsewhere, lambda s: count(ev.ConnectionOpened, s) == 8, max_redirects=5
    )
    times = [time for time, _ in network.attempts]
    assert times[:6] == [0.0] * 6  # the original attempt and 5 redirects
    assert times[6] > 0.0  # then the back-off
    assert network.attempts[6][1] == LOOPBACK  # and server selection again, not the redirect


async def test_a_redirect_from_an_unauthenticated_server_is_not_followed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Before TLS anyone on the path can speak for the server: following its <see-other-host/>
    # would let it steer the gateway to any host (and, to a loopback one, into plaintext).
    async def script(index: int, server: FakeServer, address: ServerAddress) -> None:
        await server.header()
        await server.send(SERVER_HEADER)
        await server.stream_error("see-other-host", "127.0.0.2:5222")

    remote = ServerAddress("192.0.2.1", 5222)
    async with trio.open_nursery() as nursery:
        network = FakeNetwork(nursery, script, origin=remote)
        session = fake_session(network)
        await nursery.start(session.run)
        seen = await events_until(session, lambda s: count(ev.ConnectionOpened, s) == 2)
        nursery.cancel_scope.cancel()
    (closed,) = [e for e in seen if isinstance(e, ev.ConnectionClosed)]
    assert closed.reconnect_delay is not None
    assert closed.reconnect_delay > 0.0
    assert network.attempts == [(0.0, remote), (closed.reconnect_delay, remote)]


# -- stanzas the server will not take ------------------------------------------------------------


async def test_a_stanza_over_the_advertised_limit_is_refused_and_the_rest_delivered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>2000</max-bytes></limits>"
    delivered: list[str | None] = []
    both_delivered = trio.Event()

    async def script(index: int, server: FakeServer, address: ServerAddress) -> None:
        await server.login(extra_features=limits)
        while True:
            element = await server.next()
            if isinstance(element, ET.Element) and element.tag == "{jabber:client}message":
                delivered.append(element.findtext("{jabber:client}body"))
                if len(delivered) == 2:
                    both_delivered.set()

    async def queue_before_login(session: UpstreamSession) -> None:
        await session.send_message(PEER, "first")
        await session.send_message(PEER, "x" * 3000, id="too-big")
        await session.send_message(PEER, "behind it")

    seen, _ = await run_session(
        script,
        lambda s: count(ev.StanzaDropped, s) == 1,
        before=queue_before_login,
        until=both_delivered,
    )
    (dropped,) = [e for e in seen if isinstance(e, ev.StanzaDropped)]
    assert dropped.id == "too-big"
    assert dropped.reason is ev.StanzaDropReason.TOO_LARGE
    assert dropped.size > 2000
    assert delivered == ["first", "behind it"]


async def test_a_stanza_over_our_configured_limit_is_refused_at_submission() -> None:
    session = UpstreamSession(
        account_config(max_outbound_stanza_size=1000),
        UpstreamSettings(),
        ServerResolver(static_hosts={}),
    )
    with pytest.raises(StanzaTooLargeError) as raised:
        await session.send_message(PEER, "x" * 1000)
    assert raised.value.limit == 1000
    assert session.client.unsent_stanzas() == ()


async def test_the_stanza_that_drew_policy_violation_is_not_resent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bodies_per_connection: list[list[str | None]] = []
    second_has_two = trio.Event()

    async def script(index: int, server: FakeServer, address: ServerAddress) -> None:
        await server.login(session=f"sm-{index}")
        bodies: list[str | None] = []
        bodies_per_connection.append(bodies)
        while True:
            element = await server.next()
            if not isinstance(element, ET.Element) or element.tag != "{jabber:client}message":
                continue
            if len(serialize(element)) > 1000:  # this server's limit, not advertised
                await server.stream_error("policy-violation")
                return
            bodies.append(element.findtext("{jabber:client}body"))
            if index == 1 and len(bodies) == 2:
                second_has_two.set()

    async def queue_before_login(session: UpstreamSession) -> None:
        await session.send_message(PEER, "first")
        await session.send_message(PEER, "x" * 2000, id="poison")
        await session.send_message(PEER, "behind it")

    seen, network = await run_session(
        script,
        lambda s: count(ev.SessionEstablished, s) == 2,
        before=queue_before_login,
        until=second_has_two,
    )
    (dropped,) = [e for e in seen if isinstance(e, ev.StanzaDropped)]
    assert dropped.id == "poison"
    assert dropped.reason is ev.StanzaDropReason.POLICY_VIOLATION
    assert bodies_per_connection[0] == ["first"]
    # "first" was handled but never acknowledged, so it comes again (at-least-once); the poison
    # does not, and what was queued behind it arrives.
    assert bodies_per_connection[1] == ["first", "behind it"]
    assert len(network.attempts) == 2


# -- a fresh session restores presence and roster ------------------------------------------------


async def test_a_fresh_session_restores_presence_and_roster(
    autojump_clock: trio.testing.MockClock,
) -> None:
    after_login: list[list[ET.Element]] = []
    restored = trio.Event()

    async def script(index: int, server: FakeServer, address: ServerAddress) -> None:
        await server.login(sm=False)
        received: list[ET.Element] = []
        after_login.append(received)
        if index == 0:
            for _ in range(2):  # the application's roster request and presence
                element = await server.next()
                assert isinstance(element, ET.Element)
                received.append(element)
            await server.send("</stream:stream>")  # the server goes away; no resumption
            return
        for _ in range(2):
            element = await server.next()
            assert isinstance(element, ET.Element)
            received.append(element)
        restored.set()

    async def announce(session: UpstreamSession) -> None:
        await session.use(lambda client: client.request_roster(0.0))
        await session.send_presence(status="on the bus")

    _, _ = await run_session(
        script,
        lambda s: count(ev.SessionEstablished, s) == 2,
        before=announce,
        until=restored,
    )
    roster, presence = after_login[1]
    assert roster.tag == "{jabber:client}iq"
    assert roster.get("type") == "get"
    assert roster.find("{jabber:iq:roster}query") is not None
    assert presence.tag == "{jabber:client}presence"
    assert presence.get("type") is None
    assert presence.findtext("{jabber:client}status") == "on the bus"
