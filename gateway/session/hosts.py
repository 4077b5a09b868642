"""Which *host* a transport address belongs to, for limits that must not be split by port.

One machine can send from any number of source ports, and one IPv6 subscriber usually holds a
whole /64 (RFC 6177 recommends at least a /64 per site), so per-address limits are per-port limits
in practice. Limits before authentication are therefore kept per host: the IPv4 address itself, or
the /64 prefix of an IPv6 address (IPv4-mapped IPv6 addresses count as IPv4). An address that is
not an IP literal (a test's name, a stream's peer object) is its own host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable

IPV6_HOST_PREFIX = 64  # bits of an IPv6 address that name one subscriber


def host_of(address: Hashable) -> Hashable:
    """The host key of ``address`` (a ``(host, port, ...)`` tuple or anything hashable)."""
    literal = address[0] if isinstance(address, tuple) and address else address
    if not isinstance(literal, str):
        return address
    try:
        ip = ipaddress.ip_address(literal.split("%", 1)[0])
    except ValueError:
        return literal
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        network = ipaddress.IPv6Network((ip, IPV6_HOST_PREFIX), strict=False)
        return str(network)
    return str(ip)
