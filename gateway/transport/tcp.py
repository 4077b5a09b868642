"""The gateway's TCP listener: length-prefixed session packets, many operations per connection.

Each connection is an address for the session core (``("tcp", n)``), validated at once (the TCP
handshake proved it), with the core in stream mode (``ChannelConfig(stream=True)``: no
retransmission; cumulative acks that say what each end made durable, docs/protocol.md §3.2).
:func:`serve_stream` runs one connection over any trio stream, so tests drive it over
``trio.testing.memory_stream_pair`` exactly as over a socket. A malformed length prefix ends
that connection only (the stream has lost its framing) and is counted; other connections go on.
A packet whose handling raises is dropped and counted (``internal_error``) and the connection
goes on; anything else that raises in a connection's reader ends that connection only and is
counted (``internal_error_connection``): the listener never dies of one connection.
A connection whose write queue is full is closed, not thinned: records on a stream are never
retransmitted, so a dropped one would leave a gap that silently stalls the session; a closed
connection tells the device to reconnect and resume.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Any

import trio

from gateway.session import GatewaySessions, PacketError, StreamDeframer, frame
from gateway.transport._driver import CONNECTION_FAILED, CoreDriver, DriverFacade
from gateway.transport._stream import receive_packets
from gateway.transport.udp import DEFAULT_HOST

DEFAULT_CONNECTION_QUEUE = 256  # packets waiting to be written to one connection
DEFAULT_MAX_CONNECTIONS = 10000  # open connections; more are closed at once


class StreamGateway(DriverFacade):
    """Routes session packets to stream connections; shared by every connection of a listener."""

    def __init__(
        self,
        core: GatewaySessions,
        *,
        connection_queue: int = DEFAULT_CONNECTION_QUEUE,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if not core.config.channel.stream:
            raise ValueError("a stream gateway needs a core with ChannelConfig(stream=True)")
        self.driver = CoreDriver(core, self._route)
        self.connection_queue = connection_queue
        self.max_connections = max_connections
        self._connections: dict[Hashable, trio.MemorySendChannel[bytes]] = {}
        self._scopes: dict[Hashable, trio.CancelScope] = {}
        self._numbers = itertools.count()

    def _route(self, packet: bytes, destination: Hashable) -> None:
        channel = self._connections.get(destination)
        if channel is None:
            self.driver.count_drop("connection_gone")
            return
        try:
            channel.send_nowait(frame(packet))
        except trio.WouldBlock:
            self.driver.count_drop("connection_queue_full")
            channel.close()  # later packets to this connection count as connection_gone
            scope = self._scopes.get(destination)
            if scope is not None:
                scope.cancel()
        except trio.ClosedResourceError:
            self.driver.count_drop("connection_gone")

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Run one connection until the peer closes it or breaks the framing."""
        if len(self._connections) >= self.max_connections:
            self.driver.count_drop("too_many_connections")
            await stream.aclose()
            return
        address = ("tcp", next(self._numbers))
        send, receive = trio.open_memory_channel[bytes](self.connection_queue)
        self._connections[address] = send
        self.driver.core.mark_validated(address)
        deframer = StreamDeframer()
        try:
            async with trio.open_nursery() as nursery:
                self._scopes[address] = nursery.cancel_scope
                nursery.start_soon(_writer, stream, receive)
                try:
                    while (packets := await receive_packets(stream, deframer)) is not None:
                        for packet in packets:
                            await self.driver.receive(packet, address)
                except PacketError:
                    self.driver.count_drop("bad_framing")
                except trio.BrokenResourceError:
                    self.driver.count_drop("connection_reset")
                nursery.cancel_scope.cancel()
        except Exception as exc:  # our bug, in the reader or the writer: end this one only
            self.driver.record_internal_error(CONNECTION_FAILED, exc)
        finally:
            del self._connections[address]
            self._scopes.pop(address, None)
            with trio.CancelScope(shield=True):
                await stream.aclose()


async def _writer(stream: trio.abc.Stream, packets: trio.MemoryReceiveChannel[bytes]) -> None:
    try:
        async for data in packets:
            await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


class TcpListener(DriverFacade):
    """A trio TCP server for device sessions (IPv4 or IPv6)."""

    def __init__(self, core: GatewaySessions, *, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.gateway = StreamGateway(core)
        self.driver = self.gateway.driver
        self.host = host
        self.port = port
        self._cancel = trio.CancelScope()
        self.local_address: Any = None

    async def serve(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, report the bound address, and serve until :meth:`aclose`."""
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.local_address = listeners[0].socket.getsockname()
        with self._cancel:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.driver.run_timers)
                await nursery.start(trio.serve_listeners, self.gateway.serve_stream, listeners)
                task_status.started(self.local_address)

    async def aclose(self) -> None:
        """Graceful shutdown: goodbye to every session, then stop listening."""
        await self.driver.aclose()
        await trio.lowlevel.checkpoint()
        self._cancel.cancel()
