"""A seeded fake datagram network for trio tests: drop, duplicate, reorder, delay, corrupt, rebind.

Every random choice comes from one ``random.Random(seed)``, and time is trio's (the autojump clock
in tests), so a run is reproducible. Delivery is by destination address into a bounded inbox;
``rebind`` moves an endpoint to a new address as a NAT would (the old address stops receiving).
An ``observer`` sees every datagram handed to the network, before any loss.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import trio

Address = Hashable


@dataclass
class LinkModel:
    """Impairments applied to each datagram."""

    loss: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.05  # seconds, one way
    jitter: float = 0.0  # uniform extra delay: reorders when larger than send spacing


@dataclass
class Counters:
    """What the network did."""

    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    corrupted: int = 0
    undeliverable: int = 0
    by_source: dict[Address, int] = field(default_factory=dict)


class FakeNetwork:
    """Datagram delivery between named endpoints under a seeded impairment model."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        seed: int,
        link: LinkModel | None = None,
        observer: Callable[[Address, Address, bytes], None] | None = None,
    ) -> None:
        self._nursery = nursery
        self.rng = random.Random(seed)
        self.link = link or LinkModel()
        self.observer = observer
        self.counters = Counters()
        self._inboxes: dict[Address, trio.MemorySendChannel[tuple[bytes, Address]]] = {}

    def bind(
        self, address: Address, capacity: int = 1024
    ) -> trio.MemoryReceiveChannel[tuple[bytes, Address]]:
        """Attach an endpoint at ``address``; returns its inbox of ``(data, source)``."""
        send, receive = trio.open_memory_channel[tuple[bytes, Address]](capacity)
        self._inboxes[address] = send
        return receive

    def rebind(self, old: Address, new: Address) -> None:
        """The endpoint at ``old`` now appears (and receives) at ``new``."""
        self._inboxes[new] = self._inboxes.pop(old)

    def send(self, source: Address, destination: Address, data: bytes) -> None:
        """Hand a datagram to the network."""
        self.counters.sent += 1
        self.counters.by_source[source] = self.counters.by_source.get(source, 0) + 1
        if self.observer is not None:
            self.observer(source, destination, data)
        link = self.link
        if self.rng.random() < link.loss:
            self.counters.dropped += 1
            return
        copies = 1
        if self.rng.random() < link.duplicate:
            copies = 2
            self.counters.duplicated += 1
        for _ in range(copies):
            payload = data
            if data and self.rng.random() < link.corrupt:
                index = self.rng.randrange(len(data))
                payload = (
                    data[:index]
                    + bytes([data[index] ^ (1 + self.rng.randrange(255))])
                    + data[index + 1 :]
                )
                self.counters.corrupted += 1
            delay = link.delay + self.rng.uniform(0, link.jitter)
            self._nursery.start_soon(self._deliver, delay, source, destination, payload)

    def notify(self, address: Address) -> None:
        """Wake the endpoint at ``address`` with an empty, sourceless item (not a datagram)."""
        inbox = self._inboxes.get(address)
        if inbox is not None:
            with contextlib.suppress(trio.WouldBlock):
                inbox.send_nowait((b"", None))

    def inject(self, source: Address, destination: Address, data: bytes) -> None:
        """Deliver a datagram now, unimpaired (an attacker's packet)."""
        self._nursery.start_soon(self._deliver, 0.0, source, destination, data)

    async def _deliver(
        self, delay: float, source: Address, destination: Address, data: bytes
    ) -> None:
        await trio.sleep(delay)
        inbox = self._inboxes.get(destination)
        if inbox is None:
            self.counters.undeliverable += 1
            return
        try:
            inbox.send_nowait((data, source))
            self.counters.delivered += 1
        except trio.WouldBlock:
            self.counters.dropped += 1
