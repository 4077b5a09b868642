"""Server selection: RFC 2782 ordering, fallback to domain:5222, static overrides."""

from __future__ import annotations

import collections
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.xmpp.net.connection import is_loopback
from gateway.xmpp.net.manager import UpstreamSettings, backoff_delay
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver, SrvRecord, order_srv_records


def test_priority_first_then_weight() -> None:
    records = [
        SrvRecord(20, 0, 5222, "backup.example.net."),
        SrvRecord(10, 60, 5222, "a.example.net."),
        SrvRecord(10, 40, 5223, "b.example.net."),
    ]
    ordered = order_srv_records(records, random.Random(1))
    assert ordered[-1] == ServerAddress("backup.example.net", 5222)
    assert {a.host for a in ordered[:2]} == {"a.example.net", "b.example.net"}


def test_weights_share_the_first_pick_proportionally() -> None:
    records = [SrvRecord(0, 90, 1, "heavy."), SrvRecord(0, 10, 2, "light.")]
    rng = random.Random(7)
    firsts = collections.Counter(order_srv_records(records, rng)[0].host for _ in range(2000))
    assert 0.85 < firsts["heavy"] / 2000 < 0.95


def test_dot_target_means_no_service() -> None:
    assert order_srv_records([SrvRecord(0, 0, 0, ".")], random.Random(0)) == []


@settings(max_examples=200)
@given(
    st.lists(
        st.builds(
            SrvRecord,
            st.integers(0, 3),
            st.integers(0, 100),
            st.integers(1, 65535),
            st.sampled_from(["a.", "b.", "c.", "d.", "e.", "f."]),
        ),
        min_size=2,
        max_size=6,
        unique_by=lambda record: record.target,
    ),
    st.integers(),
)
def test_ordering_is_a_priority_sorted_permutation(records: list[SrvRecord], seed: int) -> None:
    ordered = order_srv_records(records, random.Random(seed))
    assert sorted(a.host for a in ordered) == sorted(r.target.rstrip(".") for r in records)
    priority = {r.target.rstrip("."): r.priority for r in records}
    assert [priority[a.host] for a in ordered] == sorted(priority[a.host] for a in ordered)


async def test_static_override_wins_and_skips_dns() -> None:
    async def no_dns(name: str) -> Sequence[SrvRecord] | None:
        raise AssertionError("DNS must not be asked")

    resolver = ServerResolver(
        static_hosts={"Impp.Test": [ServerAddress("127.0.0.1", 15222)]}, srv_lookup=no_dns
    )
    assert await resolver.resolve("impp.test.") == [ServerAddress("127.0.0.1", 15222)]


async def test_srv_lookup_name_and_fallback() -> None:
    asked: list[str] = []

    async def lookup(name: str) -> Sequence[SrvRecord] | None:
        asked.append(name)
        if name.endswith("with-srv.example."):
            return [SrvRecord(5, 0, 5269, "xmpp.with-srv.example.")]
        return None

    resolver = ServerResolver(srv_lookup=lookup)
    assert await resolver.resolve("with-srv.example") == [
        ServerAddress("xmpp.with-srv.example", 5269)
    ]
    assert await resolver.resolve("plain.example") == [ServerAddress("plain.example", 5222)]
    assert asked == ["_xmpp-client._tcp.with-srv.example.", "_xmpp-client._tcp.plain.example."]


async def test_a_long_answer_keeps_the_most_preferred_targets() -> None:
    # DNS answers come in any order: the cut to max_targets must not drop the best priority.
    async def lookup(name: str) -> Sequence[SrvRecord] | None:
        worse = [SrvRecord(20, 10, 5222, f"backup{i}.example.") for i in range(20)]
        return [*worse, SrvRecord(1, 0, 5222, "primary.example.")]

    resolver = ServerResolver(srv_lookup=lookup, max_targets=4, rng=random.Random(7))
    addresses = await resolver.resolve("many.example")
    assert len(addresses) == 4
    assert addresses[0] == ServerAddress("primary.example", 5222)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", False),
        ("10.0.0.1", False),
    ],
)
def test_only_loopback_literals_count_as_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    settings_ = UpstreamSettings(reconnect_initial_delay=1.0, reconnect_max_delay=30.0)
    rng = random.Random(3)
    for attempt in range(10):
        ceiling = min(30.0, 2.0**attempt)
        draws = [backoff_delay(attempt, settings_, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8  # jitter spreads over the whole range
