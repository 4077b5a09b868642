"""Device-side sockets over the seeded fake network, for runners in virtual time."""

from __future__ import annotations

from collections.abc import Hashable

import trio

from device_sim.client.runner import IPV4_UDP_HEADER, DatagramSocket
from tests.session.fakenet import FakeNetwork


class FakeSocket:
    """One bound address on the fake network that talks to the gateway only."""

    def __init__(self, net: FakeNetwork, address: Hashable, gateway: Hashable) -> None:
        self.net = net
        self.address = address
        self.gateway = gateway
        self._inbox = net.bind(address, capacity=4096)

    async def send(self, datagram: bytes) -> None:
        """Hand the datagram to the network (never blocks)."""
        self.net.send(self.address, self.gateway, datagram)
        await trio.lowlevel.checkpoint()

    async def receive(self) -> bytes:
        """The next datagram from the gateway; wake-ups and strangers are skipped."""
        while True:
            data, source = await self._inbox.receive()
            if source == self.gateway:
                return data

    def close(self) -> None:
        """Nothing to release: the network forgets nobody, the inbox is just unread."""


class FakeSockets:
    """Opens sockets at fresh addresses ``(host, port)``, ports counting up from ``first_port``."""

    header_bytes = IPV4_UDP_HEADER

    def __init__(
        self,
        net: FakeNetwork,
        gateway: Hashable,
        *,
        host: str = "198.51.100.9",
        first_port: int = 41000,
    ) -> None:
        self.net = net
        self.gateway = gateway
        self.host = host
        self._next_port = first_port
        self.opened: list[FakeSocket] = []

    async def open(self) -> DatagramSocket:
        """A socket at the next free address."""
        sock = FakeSocket(self.net, (self.host, self._next_port), self.gateway)
        self._next_port += 1
        self.opened.append(sock)
        return sock
