"""The gateway's UDP endpoint (IPv4 or IPv6): one socket, one receive loop, the session core.

Start it with ``await nursery.start(endpoint.serve)``: ``task_status.started`` reports the bound
address once the socket listens. Oversized datagrams are dropped and counted; nothing a peer sends
ends the receive loop: the core is total, a packet whose handling raises all the same is dropped
and counted as ``internal_error`` (see ``_driver.py``), and the loop survives OS errors on receive.
Outgoing datagrams wait in a bounded queue for the sender task; when it is full the datagram is
dropped and counted (the reliability layer retransmits), so a slow socket never blocks receiving.
"""

from __future__ import annotations

import socket as stdlib_socket
from collections.abc import Hashable
from typing import Any

import trio

from gateway.session import GatewaySessions
from gateway.transport._driver import SEND_FAILED, CoreDriver, DriverFacade

DEFAULT_HOST = "127.0.0.1"  # loopback unless the operator configures an address to expose
DEFAULT_MAX_DATAGRAM = 2048  # larger than any record we send (1232); more is dropped unread
DEFAULT_SEND_QUEUE = 1024  # datagrams waiting for the socket


class UdpEndpoint(DriverFacade):
    """A trio UDP server for device sessions."""

    def __init__(
        self,
        core: GatewaySessions,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        max_datagram: int = DEFAULT_MAX_DATAGRAM,
        send_queue: int = DEFAULT_SEND_QUEUE,
    ) -> None:
        self.host = host
        self.port = port
        self.max_datagram = max_datagram
        self.driver = CoreDriver(core, self._route)
        self._send_channel, self._send_receive = trio.open_memory_channel[tuple[bytes, Hashable]](
            send_queue
        )
        self._socket: trio.socket.SocketType | None = None
        self._cancel = trio.CancelScope()
        self._drained = trio.Event()
        self.local_address: Any = None

    def _route(self, datagram: bytes, destination: Hashable) -> None:
        try:
            self._send_channel.send_nowait((datagram, destination))
        except trio.WouldBlock:
            self.driver.count_drop("send_queue_full")
        except trio.ClosedResourceError:
            self.driver.count_drop("closing")

    async def serve(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the bound address, and run until :meth:`aclose`."""
        family = stdlib_socket.AF_INET6 if ":" in self.host else stdlib_socket.AF_INET
        sock = trio.socket.socket(family, stdlib_socket.SOCK_DGRAM)
        with sock:
            await sock.bind((self.host, self.port))
            self._socket = sock
            self.local_address = sock.getsockname()
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sender, sock)
                    nursery.start_soon(self.driver.run_timers)
                    task_status.started(self.local_address)
                    await self._receiver(sock)

    async def _receiver(self, sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data, address = await sock.recvfrom(self.max_datagram + 1)
            except OSError:
                self.driver.count_drop("receive_error")  # e.g. ICMP port unreachable
                continue
            if len(data) > self.max_datagram:
                self.driver.count_drop("too_large")
                continue
            await self.driver.receive(data, _normalise(address))

    async def _sender(self, sock: trio.socket.SocketType) -> None:
        async for datagram, destination in self._send_receive:
            if not isinstance(destination, tuple):
                self.driver.count_drop("bad_destination")
                continue
            try:
                await sock.sendto(datagram, destination)
            except OSError:
                self.driver.send_errors += 1
            except Exception as exc:  # e.g. a destination the socket cannot take: our bug
                self.driver.record_internal_error(SEND_FAILED, exc)
        self._drained.set()

    async def aclose(self) -> None:
        """Graceful shutdown: say goodbye to every session, let the sender drain, stop."""
        await self.driver.aclose()
        await self._send_channel.aclose()
        with trio.move_on_after(1.0):
            await self._drained.wait()
        self._cancel.cancel()


def _normalise(address: Any) -> Hashable:
    """(host, port) for both families (IPv6 addresses carry flowinfo and scope id too)."""
    if isinstance(address, tuple) and len(address) >= 2:
        return (address[0], address[1])
    return address if isinstance(address, Hashable) else repr(address)
