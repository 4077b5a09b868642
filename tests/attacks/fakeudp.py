"""An in-memory UDP network behind trio's socket factory seam, where an attacker can spoof.

``trio.socket.set_custom_socket_factory`` makes every ``trio.socket.socket()`` of the current
run a :class:`FakeUdpSocket` on one :class:`FakeUdpNetwork`, so the real ``UdpEndpoint`` and
``run_device_over_udp`` run unchanged: their receive loops, drivers, timers and queues are the
code under test, over trio's clock (the autojump clock in tests). Real loopback cannot forge a
source address; :meth:`FakeUdpNetwork.inject` can, which is what an attacker on a radio network
without source-address validation does. Delivery is lossless, after an optional fixed delay;
every datagram is recorded in ``log`` when it arrives, so tests can count bytes per address.
"""

from __future__ import annotations

import socket as stdlib_socket
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, cast

import trio

Address = tuple[str, int]
INBOX = 8192  # datagrams queued per socket before the network drops (as a full socket buffer)


@dataclass
class FakeUdpNetwork:
    """Every fake socket of one trio run, by bound address."""

    next_host: str = "198.51.100.7"  # the host the next socket binds to when it does not say
    sockets: dict[Address, FakeUdpSocket] = field(default_factory=dict)
    log: list[tuple[Address, Address, bytes]] = field(default_factory=list)
    dropped: int = 0
    delay: float = 0.0  # one-way delay of datagrams sent by sockets (not of injected ones)
    nursery: trio.Nursery | None = None  # runs delayed deliveries; needed when delay > 0
    _next_port: int = 40000

    def install(self) -> None:
        """Make this network the current trio run's socket factory."""
        trio.socket.set_custom_socket_factory(_Factory(self))

    def allocate(self, host: str) -> Address:
        """A fresh (host, port) for an unbound socket."""
        self._next_port += 1
        return (host, self._next_port)

    def inject(self, source: Address, destination: Address, data: bytes) -> None:
        """Deliver a datagram with any source address (a spoofer's)."""
        self.deliver(source, destination, data)

    def send(self, source: Address, destination: Address, data: bytes) -> None:
        """A socket's datagram: delivered after ``delay``."""
        if self.delay <= 0 or self.nursery is None:
            self.deliver(source, destination, data)
        else:
            self.nursery.start_soon(self._deliver_later, source, destination, bytes(data))

    async def _deliver_later(self, source: Address, destination: Address, data: bytes) -> None:
        await trio.sleep(self.delay)
        self.deliver(source, destination, data)

    def deliver(self, source: Address, destination: Address, data: bytes) -> None:
        """Put one datagram into the destination socket's inbox now, or drop it."""
        self.log.append((source, destination, bytes(data)))
        target = self.sockets.get(destination)
        if target is None:
            self.dropped += 1
            return
        try:
            target.inbox_send.send_nowait((bytes(data), source))
        except trio.WouldBlock:
            self.dropped += 1

    def bytes_between(self, source: Address, destination: Address) -> int:
        """Total bytes logged from ``source`` to ``destination``."""
        return sum(len(d) for s, t, d in self.log if s == source and t == destination)

    def bound_on(self, host: str) -> list[Address]:
        """Addresses of the sockets bound on ``host``."""
        return [a for a in self.sockets if a[0] == host]


class _Factory(trio.abc.SocketFactory):
    def __init__(self, network: FakeUdpNetwork) -> None:
        self.network = network

    def socket(
        self,
        family: stdlib_socket.AddressFamily | int = stdlib_socket.AF_INET,
        type: stdlib_socket.SocketKind | int = stdlib_socket.SOCK_DGRAM,
        proto: int = 0,
    ) -> trio.socket.SocketType:
        if type != stdlib_socket.SOCK_DGRAM:
            raise OSError("the fake network carries datagrams only")
        return cast(trio.socket.SocketType, FakeUdpSocket(self.network))


class FakeUdpSocket:
    """The subset of a trio UDP socket that the transports use."""

    def __init__(self, network: FakeUdpNetwork) -> None:
        self.network = network
        self.local: Address | None = None
        self.peer: Address | None = None
        self.inbox_send, self._inbox = trio.open_memory_channel[tuple[bytes, Address]](INBOX)

    def __enter__(self) -> FakeUdpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.local is not None and self.network.sockets.get(self.local) is self:
            del self.network.sockets[self.local]

    def _bind_to(self, address: Address) -> None:
        if address in self.network.sockets:
            raise OSError("address in use")
        self.local = address
        self.network.sockets[address] = self

    async def bind(self, address: Any) -> None:
        await trio.lowlevel.checkpoint()
        host, port = str(address[0]), int(address[1])
        self._bind_to(self.network.allocate(host) if port == 0 else (host, port))

    async def connect(self, address: Any) -> None:
        await trio.lowlevel.checkpoint()
        self.peer = (str(address[0]), int(address[1]))
        if self.local is None:
            self._bind_to(self.network.allocate(self.network.next_host))

    def getsockname(self) -> Address:
        if self.local is None:
            raise OSError("not bound")
        return self.local

    async def sendto(self, data: bytes, address: Hashable) -> int:
        await trio.lowlevel.checkpoint()
        if self.local is None:
            self._bind_to(self.network.allocate(self.network.next_host))
        assert self.local is not None
        if not isinstance(address, tuple):
            raise OSError("bad destination")
        self.network.send(self.local, (str(address[0]), int(address[1])), data)
        return len(data)

    async def send(self, data: bytes) -> int:
        if self.peer is None:
            raise OSError("not connected")
        return await self.sendto(data, self.peer)

    async def recvfrom(self, size: int) -> tuple[bytes, Address]:
        data, source = await self._inbox.receive()
        return data[:size], source

    async def recv(self, size: int) -> bytes:
        while True:  # a connected UDP socket only hears its peer
            data, source = await self.recvfrom(size)
            if self.peer is None or source == self.peer:
                return data
