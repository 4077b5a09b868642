"""The baseline of ``air-bytes``: a device speaking XMPP itself, measured on its TCP link.

* :func:`read_tcp_info`: the kernel's own counters of one TCP socket (``getsockopt(IPPROTO_TCP,
  TCP_INFO)``, ``struct tcp_info`` of linux/tcp.h): segments in and out (every segment, pure
  ACKs, SYN and FIN included), bytes acknowledged and received, and whether TCP timestamps are
  on (12 more header bytes per segment).
* :class:`CountingProxy`: a loopback TCP proxy between the device and the real Prosody that
  counts the payload it forwards each way, keeps the order of the chunks (to count the device's
  waits) and reads TCP_INFO on its device-side socket, so a :class:`LinkMark` taken before an
  operation and :meth:`CountingProxy.since` after it give the operation's bytes on the link.
  The proxy's listener caps the segment size at an Ethernet path's MSS (:data:`ETHERNET_MSS`):
  loopback's 64 KiB MTU would otherwise fold a whole TLS flight into one segment.
* :class:`DirectDevice`: slixmpp (not this project's client) as the device: STARTTLS trusting the
  private Prosody's CA, SCRAM, XEP-0198 with resumption, an ack request after every stanza;
  its own asyncio loop in a thread, driven from trio.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import slixmpp
import trio

T = TypeVar("T")

IPV4_HEADER = 20  # RFC 791, no options
TCP_HEADER = 20  # RFC 9293 §3.1, no options
TCP_TIMESTAMP_OPTION = 12  # RFC 7323 §3: 10-byte option padded to 12 with two NOPs
ETHERNET_MSS = 1460  # 1500-byte Ethernet MTU minus IPv4 and TCP headers
TCPI_OPT_TIMESTAMPS = 1  # linux/tcp.h
# struct tcp_info (linux/tcp.h): 8 one-byte fields, 24 u32 (rto .. total_retrans), then u64
# pacing_rate, max_pacing_rate, bytes_acked, bytes_received, then u32 segs_out, segs_in.
_TCP_INFO = struct.Struct("=8B24I4Q2I")
_OPTIONS_INDEX = 5
_BYTES_ACKED_INDEX, _BYTES_RECEIVED_INDEX = 8 + 24 + 2, 8 + 24 + 3
_SEGS_OUT_INDEX, _SEGS_IN_INDEX = 8 + 24 + 4, 8 + 24 + 5
CHUNK = 65536
WAIT = 30.0  # seconds of real time one XMPP exchange may take


@dataclass(frozen=True)
class TcpInfo:
    """The kernel's counters of one TCP socket."""

    segments_out: int
    segments_in: int
    bytes_acked: int
    bytes_received: int
    timestamps: bool

    @property
    def header_bytes(self) -> int:
        """IP and TCP header bytes of each segment of this connection."""
        return IPV4_HEADER + TCP_HEADER + (TCP_TIMESTAMP_OPTION if self.timestamps else 0)


ZERO_INFO = TcpInfo(0, 0, 0, 0, timestamps=False)


def read_tcp_info(sock: socket.socket | trio.socket.SocketType) -> TcpInfo:
    """Read ``TCP_INFO`` of a connected TCP socket (Linux)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
    if len(raw) < _TCP_INFO.size:
        raise OSError(f"TCP_INFO returned {len(raw)} bytes, fewer than {_TCP_INFO.size}")
    fields = _TCP_INFO.unpack_from(raw)
    return TcpInfo(
        segments_out=fields[_SEGS_OUT_INDEX],
        segments_in=fields[_SEGS_IN_INDEX],
        bytes_acked=fields[_BYTES_ACKED_INDEX],
        bytes_received=fields[_BYTES_RECEIVED_INDEX],
        timestamps=bool(fields[_OPTIONS_INDEX] & TCPI_OPT_TIMESTAMPS),
    )


@dataclass(frozen=True)
class LinkUse:
    """What one operation put on the device's TCP link, both directions."""

    payload_up: int
    payload_down: int
    segments_up: int
    segments_down: int
    link_up: int
    link_down: int
    round_trips: int
    connections: int  # TCP connections opened during the operation


@dataclass(frozen=True)
class LinkMark:
    """Where the proxy's counters stood when an operation began."""

    chunks: int
    infos: dict[int, TcpInfo]


@dataclass
class _Connection:
    number: int
    device: trio.socket.SocketType
    final: TcpInfo | None = None

    def info(self) -> TcpInfo:
        return self.final if self.final is not None else read_tcp_info(self.device)


@dataclass
class CountingProxy:
    """A TCP proxy from a loopback port to ``upstream``; see the module docstring."""

    upstream: tuple[str, int]
    # (connection, direction, bytes, the device-side socket's counters just after)
    chunks: list[tuple[int, str, int, TcpInfo]] = field(default_factory=list)
    connections: dict[int, _Connection] = field(default_factory=dict)
    port: int = 0
    last_activity: float = 0.0  # trio time of the last chunk or connection change
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: trio.Event = field(default_factory=trio.Event)

    def _touch(self) -> None:
        self.last_activity = trio.current_time()
        self._changed.set()
        self._changed = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept device connections until cancelled; each is forwarded to ``upstream``."""
        listener = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with listener:
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, ETHERNET_MSS)
            await listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            self.port = int(listener.getsockname()[1])
            task_status.started(self.port)
            async with trio.open_nursery() as nursery:
                while True:
                    device, _ = await listener.accept()
                    nursery.start_soon(self._forward, device)

    async def _forward(self, device: trio.socket.SocketType) -> None:
        connection = _Connection(next(self._numbers), device)
        self.connections[connection.number] = connection
        self._touch()
        server = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with device, server:
            await server.connect(self.upstream)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, connection, device, server, "up", nursery)
                nursery.start_soon(self._pump, connection, server, device, "down", nursery)
            connection.final = read_tcp_info(device)
            self._touch()

    async def _pump(
        self,
        connection: _Connection,
        source: trio.socket.SocketType,
        sink: trio.socket.SocketType,
        direction: str,
        nursery: trio.Nursery,
    ) -> None:
        try:
            while data := await source.recv(CHUNK):
                view = memoryview(data)
                while view:
                    view = view[await sink.send(view) :]
                info = read_tcp_info(connection.device)
                self.chunks.append((connection.number, direction, len(data), info))
                self._touch()
        except OSError:
            pass  # a reset: the device vanished (its radio went off), or the server closed
        # Either side gone: the whole connection goes, as a NAT or a dead radio would end it.
        if connection.final is None:
            connection.final = read_tcp_info(connection.device)
        nursery.cancel_scope.cancel()

    async def idle(self) -> None:
        """Wait (bounded) until every connection so far has ended."""
        with trio.fail_after(WAIT):
            while any(c.final is None for c in self.connections.values()):
                await self._changed.wait()

    def mark(self) -> LinkMark:
        """The counters now (call before an operation)."""
        return LinkMark(len(self.chunks), {n: c.info() for n, c in self.connections.items()})

    def since(self, mark: LinkMark) -> LinkUse:
        """What the link carried since ``mark``."""
        return self._use(
            mark, self.chunks[mark.chunks :], {n: c.info() for n, c in self.connections.items()}
        )

    def prefix(self, mark: LinkMark, count: int) -> LinkUse:
        """What the link carried in the first ``count`` chunks after ``mark`` (segments as the
        kernel had counted them just after the last of those chunks)."""
        chunks = self.chunks[mark.chunks : mark.chunks + count]
        infos = dict(mark.infos)
        for number, _direction, _size, info in chunks:
            infos[number] = info
        return self._use(mark, chunks, infos)

    def _use(
        self,
        mark: LinkMark,
        chunks: list[tuple[int, str, int, TcpInfo]],
        infos: dict[int, TcpInfo],
    ) -> LinkUse:
        up = sum(size for _, direction, size, _ in chunks if direction == "up")
        down = sum(size for _, direction, size, _ in chunks if direction == "down")
        segments_up = segments_down = headers_up = headers_down = opened = 0
        for number, now in infos.items():
            before = mark.infos.get(number)
            if before is None:
                before, opened = ZERO_INFO, opened + 1
            seg_in = now.segments_in - before.segments_in
            seg_out = now.segments_out - before.segments_out
            segments_up += seg_in
            segments_down += seg_out
            headers_up += seg_in * now.header_bytes
            headers_down += seg_out * now.header_bytes
        return LinkUse(
            payload_up=up,
            payload_down=down,
            segments_up=segments_up,
            segments_down=segments_down,
            link_up=up + headers_up,
            link_down=down + headers_down,
            round_trips=opened + count_waits([d for _, d, _, _ in chunks]),
            connections=opened,
        )


def count_waits(directions: list[str]) -> int:
    """The device's waits in a sequence of "up"/"down" sends: each up followed by a down."""
    return sum(1 for a, b in itertools.pairwise(directions) if a == "up" and b == "down")


class DirectDeviceError(RuntimeError):
    """The XMPP-direct device could not log in, or an awaited stanza did not come in time."""


@dataclass
class _Seen:
    messages: list[tuple[str, str]] = field(default_factory=list)  # (from, body)
    receipts: list[str] = field(default_factory=list)
    presences: list[tuple[str, str, str]] = field(default_factory=list)  # (from, type, show)
    acked: int = 0
    enabled: int = 0
    resumed: int = 0
    sessions: int = 0
    tls: str = ""  # the TLS version and cipher suite the connection negotiated


class DirectDevice:
    """slixmpp as a device (see the module docstring): every call waits, bounded, on the result."""

    def __init__(self, jid: str, password: str, port: int, ca_file: Path) -> None:
        self.jid = jid
        self._password = password
        self._port = port
        self._ca_file = ca_file
        self._seen = _Seen()
        self._condition = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="air-bytes-xmpp-device")
        self._client: slixmpp.ClientXMPP | None = None

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
            pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            self._loop.close()

    def _note(self, change: Callable[[_Seen], None]) -> None:
        with self._condition:
            change(self._seen)
            self._condition.notify_all()

    async def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return await trio.to_thread.run_sync(future.result, WAIT, abandon_on_cancel=True)

    async def _do(self, action: Callable[[slixmpp.ClientXMPP], T]) -> T:
        async def run() -> T:
            assert self._client is not None
            return action(self._client)

        return await self._call(run())

    async def until(self, ready: Callable[[_Seen], bool], what: str) -> None:
        """Wait (at most :data:`WAIT` seconds) until ``ready`` holds of what was seen."""

        def wait() -> None:
            with self._condition:
                if not self._condition.wait_for(lambda: ready(self._seen), WAIT):
                    raise DirectDeviceError(
                        f"the XMPP-direct device never saw {what}"
                        f" (presences from: {sorted({p[0] for p in self._seen.presences})},"
                        f" {len(self._seen.messages)} messages)"
                    )

        await trio.to_thread.run_sync(wait, abandon_on_cancel=True)

    def seen(self) -> _Seen:
        """What the device has seen so far (a live view: read it, do not keep it)."""
        return self._seen

    async def start(self) -> None:
        """Log in: STARTTLS, SCRAM, bind, XEP-0198 enabled with resumption, initial presence."""
        self._thread.start()
        await self._call(self._connect())
        await self.until(lambda s: s.sessions >= 1 and s.enabled >= 1, "its session start")

    async def _connect(self) -> None:
        client = slixmpp.ClientXMPP(self.jid, self._password)
        client.ca_certs = self._ca_file
        client.enable_direct_tls = False  # the private Prosody offers STARTTLS on c2s only
        client.auto_authorize = None
        client.auto_subscribe = False
        for plugin in ("xep_0030", "xep_0184", "xep_0198"):
            client.register_plugin(plugin)
        client.plugin["xep_0184"].auto_ack = True
        client.plugin["xep_0184"].auto_request = True
        stream_management = client.plugin["xep_0198"]
        stream_management.window = stream_management.window_counter = 1  # ack every stanza

        def on_session_start(_event: object) -> None:
            client.send_presence()
            ssl_object = client.transport.get_extra_info("ssl_object") if client.transport else None
            tls = f"{ssl_object.version()} {ssl_object.cipher()[0]}" if ssl_object else "none"

            def started(seen: _Seen) -> None:
                seen.sessions += 1
                seen.tls = tls

            self._note(started)

        def on_message(msg: Any) -> None:
            body = str(msg["body"])
            if body:
                self._note(lambda s: s.messages.append((str(msg["from"]), body)))

        def on_presence(pres: Any) -> None:
            entry = (str(pres["from"]), str(pres["type"]), str(pres["show"]))
            self._note(lambda s: s.presences.append(entry))

        client.add_event_handler("session_start", on_session_start)
        client.add_event_handler(
            "sm_enabled", lambda _e: self._note(lambda s: setattr(s, "enabled", s.enabled + 1))
        )
        client.add_event_handler(
            "session_resumed",
            lambda _e: self._note(lambda s: setattr(s, "resumed", s.resumed + 1)),
        )
        client.add_event_handler(
            "stanza_acked", lambda _e: self._note(lambda s: setattr(s, "acked", s.acked + 1))
        )
        client.add_event_handler(
            "receipt_received",
            lambda msg: self._note(lambda s: s.receipts.append(str(msg["receipt"]))),
        )
        client.add_event_handler("message", on_message)
        client.add_event_handler("presence", on_presence)
        self._client = client
        client.connect("127.0.0.1", self._port)

    async def send_message(self, to: str, text: str) -> str:
        """A chat message with a XEP-0184 receipt request; returns its id."""

        def send(client: slixmpp.ClientXMPP) -> str:
            message = client.make_message(mto=to, mbody=text, mtype="chat")
            message.send()
            return str(message["id"])

        return await self._do(send)

    async def send_presence(self, show: str) -> None:
        """Broadcast our presence with ``show``."""
        await self._do(lambda client: client.send_presence(pshow=show))

    async def subscribe(self, to: str) -> None:
        """Ask ``to`` for a presence subscription."""
        await self._do(lambda client: client.send_presence(pto=to, ptype="subscribe"))

    async def vanish(self) -> None:
        """The radio goes off: the TCP connection is reset, no ``</stream>`` (the server
        hibernates the XEP-0198 session)."""

        def abort(client: slixmpp.ClientXMPP) -> None:
            transport = client.transport
            if transport is not None:
                transport.abort()

        await self._do(abort)

    async def reconnect(self) -> None:
        """A new TCP connection: STARTTLS, SCRAM and XEP-0198 resumption of the old session."""
        before = self._seen.resumed
        await self._do(lambda client: client.connect("127.0.0.1", self._port))
        await self.until(lambda s: s.resumed > before, "its session resumed")

    async def close(self) -> None:
        """Log out and stop the device's loop."""
        if self._client is not None and self._thread.is_alive():
            client = self._client

            async def end() -> None:
                client.disconnect(wait=1.0)

            try:
                await self._call(end())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                await trio.to_thread.run_sync(self._thread.join, WAIT)
