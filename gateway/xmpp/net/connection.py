"""The trio adapter of one upstream connection: a socket, STARTTLS, timers, and an XmppClient.

Theory of operation.  :class:`UpstreamConnection` owns one TCP stream and runs one sans-IO
:class:`~gateway.xmpp.client.XmppClient` over it, and nothing protocol-specific: a reader task
feeds received bytes to the client, a timer task calls ``handle_timer`` at ``next_deadline``
(:class:`~gateway.deadlines.DeadlineTimer`, rescheduled by every flush, since every input to the
client is followed by one), and :meth:`UpstreamConnection.flush` writes ``data_to_send`` under a
lock (an SSLStream allows one writer).  On :class:`~gateway.xmpp.events.TlsRequested` the raw
stream is wrapped in :class:`trio.SSLStream` with the trust store's context and the account's
*domain* as the name to verify (RFC 6120 §13.7.2.1), the handshake is run, and the client
restarts its stream.  A TLS failure (certificate not trusted, wrong name) ends the connection
with :class:`TlsHandshakeError`.

Dead connections are found without help from the peer.  Every write has a deadline
(``send_timeout``, by default the client's keepalive timeout): a write that cannot complete in
time means the path is black-holed, and the connection is declared lost.  When the client gives
up (negotiation timeout, unanswered keepalive) the timer task closes the socket itself, without
waiting for the send lock, so a write or a TLS handshake blocked on a silent peer cannot keep the
connection alive: closing the socket wakes them.  A SCRAM key derivation the client asks for
(:class:`~gateway.xmpp.events.KeyDerivationRequested`) runs in a worker thread, so a log-in never
stalls the other sessions' event loop.

:func:`connect_tcp` tries the resolver's addresses in order (RFC 6120 §3.2.1 point 4: the next
target after a connection failure) and reports whether the peer is on loopback, the only place
where the client may agree to plaintext.  :class:`CountingStream` counts bytes on the wire below
TLS, for metrics and for the benchmark.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Awaitable, Callable

import trio

from gateway.deadlines import DeadlineTimer
from gateway.xmpp import events as ev
from gateway.xmpp.client import ConnectionLostError, XmppClient
from gateway.xmpp.errors import RemoteXmppError
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "MAX_WRITE",
    "RECEIVE_SIZE",
    "CountingStream",
    "TlsHandshakeError",
    "UpstreamConnection",
    "UpstreamUnreachableError",
    "connect_tcp",
    "is_loopback",
]

# Bytes asked of the socket per read; the parser caps what it buffers independently.
RECEIVE_SIZE = 64 * 1024
# The most written at once: the TLS plaintext record limit (RFC 8446 §5.1), so that the client's
# pieces, cut between elements, each travel in one record.
MAX_WRITE = 16384
# Seconds for one TCP connect before the next address is tried.
DEFAULT_CONNECT_TIMEOUT = 10.0


class TlsHandshakeError(RemoteXmppError):
    """TLS could not be established (untrusted certificate, wrong name, broken handshake)."""


class UpstreamUnreachableError(RemoteXmppError):
    """No address of the domain accepted a TCP connection (or DNS said there is no service)."""


class CountingStream(trio.abc.Stream):
    """A stream that counts the bytes passing through it (below TLS when wrapped by it)."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.bytes_sent = 0
        self.bytes_received = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)
        self.bytes_sent += len(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.bytes_received += len(data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address literal (names are never trusted to be local)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def connect_tcp(
    domain: str,
    resolver: ServerResolver,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> tuple[trio.SocketStream, ServerAddress]:
    """Connect to the first reachable address of ``domain`` (RFC 6120 §3.2)."""
    addresses = await resolver.resolve(domain)
    if not addresses:
        raise UpstreamUnreachableError(f"{domain} offers no XMPP client service")
    failures: list[str] = []
    for address in addresses:
        with trio.move_on_after(connect_timeout):
            try:
                stream = await trio.open_tcp_stream(address.host, address.port)
            except OSError as exc:
                failures.append(f"{address.host}:{address.port}: {exc.strerror or exc}")
                continue
            return stream, address
        failures.append(f"{address.host}:{address.port}: timed out")
    raise UpstreamUnreachableError("; ".join(failures))


EventSink = Callable[[ev.Event], Awaitable[None]]


class UpstreamConnection:
    """Runs ``client`` over ``stream`` until the stream ends; see the module docstring."""

    def __init__(
        self,
        client: XmppClient,
        stream: trio.abc.Stream,
        *,
        ssl_context: ssl.SSLContext,
        server_hostname: str,
        on_event: EventSink,
        peer_is_loopback: bool = False,
        receive_size: int = RECEIVE_SIZE,
        send_timeout: float | None = None,
    ) -> None:
        self.client = client
        self.stream: trio.abc.Stream = stream
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._on_event = on_event
        self._peer_is_loopback = peer_is_loopback
        self._receive_size = receive_size
        self._send_timeout = (
            client.config.keepalive_timeout if send_timeout is None else send_timeout
        )
        self._send_lock = trio.Lock()
        self._timer = DeadlineTimer(self.client.next_deadline)
        self._ended: ev.StreamEnded | None = None
        self._done = trio.Event()

    @property
    def ended(self) -> ev.StreamEnded | None:
        """The final event once the connection is over."""
        return self._ended

    async def run(self) -> ev.StreamEnded:
        """Open the stream, run until it ends, close the socket; return the final event."""
        self.client.start(trio.current_time(), peer_is_loopback=self._peer_is_loopback)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._timer_loop)
                await self.flush()
                await self._read_loop()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                await trio.aclose_forcefully(self.stream)
            if self._ended is None:
                self._ended = ev.StreamEnded(ConnectionLostError("cancelled"))
            self._done.set()
        return self._ended

    async def flush(self) -> None:
        """Write whatever the client has to send; a broken socket ends the connection."""
        async with self._send_lock:
            pieces = self.client.data_to_send_pieces(trio.current_time(), MAX_WRITE)
            self._timer.reschedule()
            if not pieces:
                return
            with trio.move_on_after(self._send_timeout) as write:
                try:
                    for piece in pieces:  # one TLS record each: see data_to_send_pieces
                        await self.stream.send_all(piece)
                except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError):
                    await self._deliver(self._lost())
                    return
        if write.cancelled_caught:
            # The peer has not taken our bytes for send_timeout seconds: a dead path.
            await self._deliver(
                self.client.connection_lost(f"a write did not complete in {self._send_timeout} s")
            )
            await self._close_stream()

    async def wait_ended(self) -> None:
        """Wait until :meth:`run` has finished."""
        await self._done.wait()

    def _over(self) -> bool:
        return self._ended is not None

    def _lost(self) -> list[ev.Event]:
        if self._ended is not None or self.client.state.name in ("CLOSED", "FAILED"):
            return []
        return self.client.receive_data_untrusted(b"", trio.current_time())

    async def _deliver(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.StreamEnded):
                self._ended = event
            await self._on_event(event)

    async def _read_loop(self) -> None:
        while not self._over():
            try:
                data = await self.stream.receive_some(self._receive_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError):
                data = b""
            if self._over():
                break
            if not data:
                await self._deliver(self._lost())
                break
            events = self.client.receive_data_untrusted(bytes(data), trio.current_time())
            for event in events:
                if isinstance(event, ev.TlsRequested):
                    await self._start_tls()
                    if self._over():
                        return
            await self._deliver(events)
            for event in events:
                if isinstance(event, ev.KeyDerivationRequested):
                    await self._derive_key()
            await self.flush()

    async def _derive_key(self) -> None:
        """Run the client's PBKDF2 in a worker thread (abandoned if the connection ends)."""
        derivation = self.client.pending_key_derivation()
        if derivation is None:
            return
        key = await trio.to_thread.run_sync(derivation.derive, abandon_on_cancel=True)
        self.client.key_derived(key)

    async def _start_tls(self) -> None:
        async with self._send_lock:
            tls_stream = trio.SSLStream(
                self.stream, self._ssl_context, server_hostname=self._server_hostname
            )
            try:
                await tls_stream.do_handshake()
            except (
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                ssl.SSLError,
                OSError,
            ) as exc:
                if self._over():
                    return  # the timer gave up and closed the socket under the handshake
                # trio wraps the ssl error (which says *why*: untrusted, wrong name) as the cause.
                reason = exc.__cause__ if exc.__cause__ is not None else exc
                error = TlsHandshakeError(f"TLS failed: {reason or type(reason).__name__}")
                error.__cause__ = exc
                self._ended = ev.StreamEnded(error)
                await self._on_event(self._ended)
                return
            self.stream = tls_stream
            self.client.tls_established()

    async def _timer_loop(self) -> None:
        while not self._over():
            await self._timer.wait()
            await self._deliver(self.client.handle_timer(trio.current_time()))
            if self._over():
                # The client gave up (keepalive, negotiation timeout).  A write or a TLS handshake
                # may hold the send lock, blocked on the silent peer: send the goodbye only if the
                # lock is free, then close the socket, which wakes whatever is blocked on it.
                if not self._send_lock.locked():
                    await self.flush()
                await self._close_stream()
                return
            await self.flush()

    async def _close_stream(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            await trio.aclose_forcefully(self.stream)
