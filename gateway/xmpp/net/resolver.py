"""Server selection for a client-to-server stream (RFC 6120 §3.2, RFC 2782).

Theory of operation.  The domain of the account's JID names the service, not a host: look up
``_xmpp-client._tcp.<domain>`` SRV records (RFC 6120 §3.2.1) and try their targets in the order
RFC 2782 prescribes: ascending priority, and within one priority a weighted random order (the
"running sum" selection of RFC 2782 page 3, with zero-weight records first so they keep a small
chance).  A single record whose target is ``.`` means the service is decidedly not offered
(RFC 2782, RFC 6120 §3.2.1 point 5).  With no SRV records (or no usable answer) the fallback is the
domain itself on port 5222 (RFC 6120 §3.2.2).  A static override map, consulted first, pins domains
to addresses: tests point the private Prosody's virtual host at 127.0.0.1 this way, and operators
may pin a server whose DNS they do not trust.

The ordering is a pure function (:func:`order_srv_records`, given a random source); the lookup is
dnspython's asynchronous resolver, which runs on trio's event loop (dnspython picks its trio
backend through sniffio).  The resolver is created lazily, so hosts without ``/etc/resolv.conf``
can still use the static map.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Final

__all__ = [
    "DEFAULT_CLIENT_PORT",
    "SRV_SERVICE",
    "ServerAddress",
    "ServerResolver",
    "SrvRecord",
    "order_srv_records",
]

DEFAULT_CLIENT_PORT: Final = 5222  # RFC 6120 §3.2.2 (IANA "xmpp-client")
SRV_SERVICE: Final = "_xmpp-client._tcp"  # RFC 6120 §3.2.1
# Answers bigger than this are cut: a hostile zone must not make us try thousands of targets.
DEFAULT_MAX_TARGETS: Final = 16
# Seconds for one SRV lookup before falling back to the domain itself.
DEFAULT_DNS_TIMEOUT: Final = 5.0


@dataclasses.dataclass(frozen=True)
class ServerAddress:
    """A host name or address and a TCP port to try."""

    host: str
    port: int


@dataclasses.dataclass(frozen=True)
class SrvRecord:
    """One SRV answer (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


SrvLookup = Callable[[str], Awaitable[Sequence[SrvRecord] | None]]


def order_srv_records(records: Iterable[SrvRecord], rng: random.Random) -> list[ServerAddress]:
    """The targets in RFC 2782 order: priority ascending, weighted random within a priority.

    A lone ``.`` target (service not offered) yields an empty list.
    """
    records = list(records)
    if len(records) == 1 and records[0].target.rstrip(".") == "":
        return []
    ordered: list[ServerAddress] = []
    for priority in sorted({record.priority for record in records}):
        # RFC 2782: zero-weight records first, then the running-sum draw.
        group = sorted(
            (r for r in records if r.priority == priority and r.target.rstrip(".")),
            key=lambda r: r.weight != 0,
        )
        while group:
            total = sum(record.weight for record in group)
            draw = rng.randint(0, total)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= draw:
                    chosen = group.pop(index)
                    ordered.append(ServerAddress(chosen.target.rstrip("."), chosen.port))
                    break
    return ordered


async def dns_srv_lookup(name: str) -> Sequence[SrvRecord] | None:
    """Look ``name`` up with dnspython's async resolver; None when there is no SRV answer."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    try:
        resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = DEFAULT_DNS_TIMEOUT
        answer = await resolver.resolve(name, "SRV")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return None
    except (dns.exception.DNSException, OSError):
        return None  # RFC 6120 §3.2.1 point 4 / §3.2.2: fall back to the domain itself
    return [
        SrvRecord(int(r.priority), int(r.weight), int(r.port), r.target.to_text()) for r in answer
    ]


class ServerResolver:
    """Where to connect for a domain: static overrides, then SRV, then ``domain:5222``."""

    def __init__(
        self,
        *,
        static_hosts: Mapping[str, Sequence[ServerAddress]] | None = None,
        srv_lookup: SrvLookup = dns_srv_lookup,
        rng: random.Random | None = None,
        max_targets: int = DEFAULT_MAX_TARGETS,
    ) -> None:
        self.static_hosts = {
            domain.casefold(): list(v) for domain, v in (static_hosts or {}).items()
        }
        self._srv_lookup = srv_lookup
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - load spreading
        self.max_targets = max_targets

    async def resolve(self, domain: str) -> list[ServerAddress]:
        """The addresses to try for ``domain``, in order (possibly empty: no service)."""
        domain = domain.casefold().rstrip(".")
        static = self.static_hosts.get(domain)
        if static is not None:
            return list(static)
        records = await self._srv_lookup(f"{SRV_SERVICE}.{domain}.")
        if not records:
            return [ServerAddress(domain, DEFAULT_CLIENT_PORT)]
        # Keep the most preferred targets (RFC 2782: lowest priority first), not the first ones
        # the answer happened to list: DNS answers come in any order.
        kept = heapq.nsmallest(self.max_targets, records, key=lambda record: record.priority)
        return order_srv_records(kept, self._rng)
