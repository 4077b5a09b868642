"""gateway_side's remembered host keys (``host_of``): the answers of hosts.host_of, bounded."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from gateway.session import gateway_side, hosts


@pytest.mark.parametrize(
    "address",
    [
        ("192.0.2.7", 5683),
        ("2001:db8:1:2:3:4:5:6", 5683),
        ("2001:db8:1:2::9%eth0", 1),
        ("::ffff:192.0.2.7", 5683),
        ("not-an-ip", 7),
        "a test's name",
        ("tcp", 3),
    ],
)
def test_remembered_host_is_the_parsed_one(address: Hashable) -> None:
    for _ in range(2):  # the second answer comes from the cache
        assert gateway_side.host_of(address) == hosts.host_of(address)


def test_the_cache_is_bounded() -> None:
    assert gateway_side.host_of.cache_info().maxsize == gateway_side.HOST_CACHE_SIZE
    for index in range(gateway_side.HOST_CACHE_SIZE + 10):
        gateway_side.host_of((f"10.{index // 65536}.{index // 256 % 256}.{index % 256}", 1))
    assert gateway_side.host_of.cache_info().currsize <= gateway_side.HOST_CACHE_SIZE
