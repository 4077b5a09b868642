"""The gateway's UDP endpoint (IPv4 or IPv6): one socket, one receive loop, the session core.

Start it with ``await nursery.start(endpoint.serve)``: ``task_status.started`` reports the bound
address once the socket listens. Oversized datagrams are dropped and counted; nothing a peer sends
ends the receive loop: the core is total, a packet whose handling raises all the same is dropped
and counted as ``internal_error`` (see ``_driver.py``), and the loop survives OS errors on receive.
The receive loop reads the socket directly (non-blocking, through a duplicate of its descriptor)
and waits for readability only when it is empty: a datagram already there costs no scheduler
pass, and after :data:`RECEIVE_BATCH` datagrams in a row the loop checkpoints, so a burst cannot
starve the timer task or the application, and cancellation is seen. Outgoing datagrams go to the
socket at once, from whichever task produced them (a non-blocking ``sendto``: no task switch, no
scheduler pass per datagram). Only when the socket's buffer is full (``BlockingIOError``) do they
wait, in order, in a bounded queue for the sender task, which waits until the socket is writable;
while anything waits there, later datagrams queue behind it. When the queue is full the datagram
is dropped and counted (the reliability layer retransmits), so a slow socket never blocks
receiving. A socket without a descriptor (from a custom trio socket factory: the tests' fake
networks) is read and written through trio alone, a datagram at a time.
"""

from __future__ import annotations

import os
import socket as stdlib_socket
from collections.abc import Hashable
from typing import Any

import trio

from gateway.session import GatewaySessions
from gateway.transport._driver import SEND_FAILED, CoreDriver, DriverFacade

DEFAULT_HOST = "127.0.0.1"  # loopback unless the operator configures an address to expose
DEFAULT_MAX_DATAGRAM = 2048  # larger than any record we send (1232); more is dropped unread
DEFAULT_SEND_QUEUE = 1024  # datagrams waiting for the socket
# Datagrams read back to back (each handled in full) before the receive loop lets other tasks run.
RECEIVE_BATCH = 16


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
        self._raw: stdlib_socket.socket | None = None  # the same socket, for direct sends
        self._queued = 0  # datagrams in the queue or being sent by the sender task
        self._closing = False
        self._cancel = trio.CancelScope()
        self._drained = trio.Event()
        self.local_address: Any = None

    def _route(self, datagram: bytes, destination: Hashable) -> None:
        if self._closing:
            self.driver.count_drop("closing")
            return
        if (
            self._queued == 0
            and self._raw is not None
            and self._send_now(self._raw, datagram, destination)
        ):
            return
        try:
            self._send_channel.send_nowait((datagram, destination))
        except trio.WouldBlock:
            self.driver.count_drop("send_queue_full")
            return
        except trio.ClosedResourceError:
            self.driver.count_drop("closing")
            return
        self._queued += 1

    def _send_now(self, raw: stdlib_socket.socket, datagram: bytes, destination: Hashable) -> bool:
        """Hand ``datagram`` to the socket without waiting; False if it must wait its turn."""
        if not isinstance(destination, tuple):
            self.driver.count_drop("bad_destination")
            return True
        try:
            raw.sendto(datagram, destination)
        except BlockingIOError:
            return False  # the socket's buffer is full: the sender task waits until writable
        except OSError:
            self.driver.send_errors += 1
        except Exception as exc:  # e.g. a destination the socket cannot take: our bug
            self.driver.record_internal_error(SEND_FAILED, exc)
        return True

    async def serve(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the bound address, and run until :meth:`aclose`."""
        family = stdlib_socket.AF_INET6 if ":" in self.host else stdlib_socket.AF_INET
        sock = trio.socket.socket(family, stdlib_socket.SOCK_DGRAM)
        with sock:
            await sock.bind((self.host, self.port))
            self._socket = sock
            self.local_address = sock.getsockname()
            raw = _direct_socket(sock)
            self._raw = raw
            try:
                with self._cancel:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._sender, sock)
                        nursery.start_soon(self.driver.run_timers)
                        task_status.started(self.local_address)
                        if raw is not None:
                            await self._receiver(raw)
                        else:
                            await self._receiver_via_trio(sock)
            finally:
                self._raw = None
                if raw is not None:
                    raw.close()  # the duplicate descriptor; ``sock`` closes its own

    async def _receiver(self, raw: stdlib_socket.socket) -> None:
        """Read datagrams until cancelled; see the module for the checkpoints it makes."""
        budget = RECEIVE_BATCH
        while True:
            if budget == 0:
                budget = RECEIVE_BATCH
                await trio.lowlevel.checkpoint()  # a burst does not starve the other tasks
            try:
                data, address = raw.recvfrom(self.max_datagram + 1)
            except BlockingIOError:
                budget = RECEIVE_BATCH
                await trio.lowlevel.wait_readable(raw)
                continue
            except OSError:
                budget -= 1
                self.driver.count_drop("receive_error")  # e.g. ICMP port unreachable
                continue
            budget -= 1
            if len(data) > self.max_datagram:
                self.driver.count_drop("too_large")
                continue
            await self.driver.receive(data, _normalise(address))

    async def _receiver_via_trio(self, sock: trio.socket.SocketType) -> None:
        """The receive loop over a socket without a descriptor (a custom socket factory's)."""
        while True:
            try:
                data, address = await sock.recvfrom(self.max_datagram + 1)
            except OSError:
                self.driver.count_drop("receive_error")
                continue
            if len(data) > self.max_datagram:
                self.driver.count_drop("too_large")
                continue
            await self.driver.receive(data, _normalise(address))

    async def _sender(self, sock: trio.socket.SocketType) -> None:
        """Send what waits in the queue (the socket was full), in order; see the module."""
        async for datagram, destination in self._send_receive:
            try:
                if not isinstance(destination, tuple):
                    self.driver.count_drop("bad_destination")
                    continue
                try:
                    await sock.sendto(datagram, destination)
                except OSError:
                    self.driver.send_errors += 1
                except Exception as exc:  # e.g. a destination the socket cannot take: our bug
                    self.driver.record_internal_error(SEND_FAILED, exc)
            finally:
                self._queued -= 1
        self._drained.set()

    async def aclose(self) -> None:
        """Graceful shutdown: say goodbye to every session, let the sender drain, stop."""
        await self.driver.aclose()
        self._closing = True
        await self._send_channel.aclose()
        with trio.move_on_after(1.0):
            await self._drained.wait()
        self._cancel.cancel()


def _direct_socket(sock: trio.socket.SocketType) -> stdlib_socket.socket | None:
    """A non-blocking stdlib socket on a duplicate of ``sock``'s descriptor, for the calls that
    need no wait; ``None`` for a socket without a descriptor (one from a custom socket factory,
    ``trio.socket.set_custom_socket_factory``, as the tests' fake networks are), which is then
    read and written through trio alone."""
    fileno = getattr(sock, "fileno", None)
    if fileno is None:
        return None
    raw = stdlib_socket.socket(fileno=os.dup(fileno()))
    raw.setblocking(False)
    return raw


def _normalise(address: Any) -> Hashable:
    """(host, port) for both families (IPv6 addresses carry flowinfo and scope id too)."""
    if isinstance(address, tuple) and len(address) >= 2:
        return (address[0], address[1])
    return address if isinstance(address, Hashable) else repr(address)
