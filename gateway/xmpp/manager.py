"""Many upstream XMPP sessions in one trio process, each kept up across failures.

Theory of operation.  An :class:`UpstreamSession` is one account's session *over time*: it
connects (server selection, TCP, :class:`~gateway.xmpp.connection.UpstreamConnection`), and when
the connection ends it builds the next :class:`~gateway.xmpp.client.XmppClient` at once, so that
stanzas submitted while offline queue in that client's outbox, then waits a back-off and
reconnects.  The back-off is exponential with full jitter (delay drawn uniformly from
``[0, min(max_delay, initial_delay * 2**attempt)]``), so that thousands of sessions dropped by one
server restart do not come back in lockstep; it restarts from zero once a session is established.

No stanza is lost across a reconnection (XEP-0198): if the old session was resumable the new client
carries its :class:`~gateway.xmpp.stream_management.ResumptionToken` and ``<resume/>`` resends only
what the server did not acknowledge; otherwise (or if the server refuses to resume) the stanzas not
known to have arrived are sent again on the fresh session.  A failure that retrying cannot fix (the
server refused the password, or the policy refused plaintext) stops the session instead.

Events of every connection flow into one bounded channel per session
(:attr:`UpstreamSession.events`, back-pressure on reading when the consumer is slow), with
:class:`~gateway.xmpp.events.ConnectionOpened` and :class:`~gateway.xmpp.events.ConnectionClosed`
in between.  :func:`open_upstream_manager` runs
sessions in one nursery and closes them all cleanly (``</stream:stream>``, bounded wait) on exit.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Final, TypeVar

import trio

from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, ClientState, EncryptionRequiredError, XmppClient
from gateway.xmpp.connection import (
    DEFAULT_CONNECT_TIMEOUT,
    UpstreamConnection,
    UpstreamUnreachableError,
    connect_tcp,
    is_loopback,
)
from gateway.xmpp.errors import AuthenticationFailed, LocalProtocolError
from gateway.xmpp.jid import Jid
from gateway.xmpp.resolver import ServerAddress, ServerResolver
from gateway.xmpp.stanzas import MessageType, PresenceShow
from gateway.xmpp.tls import TrustStore, create_client_context

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_EVENT_QUEUE",
    "DEFAULT_RECONNECT_INITIAL_DELAY",
    "DEFAULT_RECONNECT_MAX_DELAY",
    "UpstreamManager",
    "UpstreamSession",
    "UpstreamSettings",
    "backoff_delay",
    "open_upstream_manager",
]

DEFAULT_RECONNECT_INITIAL_DELAY: Final = 1.0  # seconds: the ceiling of the first back-off draw
DEFAULT_RECONNECT_MAX_DELAY: Final = 300.0  # seconds: never wait longer than five minutes
DEFAULT_CLOSE_TIMEOUT: Final = 5.0  # seconds to wait for the server's </stream:stream>
DEFAULT_EVENT_QUEUE: Final = 256  # events buffered per session before reading pauses

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class UpstreamSettings:
    """Process-wide settings of upstream connections (one per gateway configuration)."""

    trust: TrustStore = dataclasses.field(default_factory=TrustStore)
    static_hosts: Mapping[str, Sequence[ServerAddress]] = dataclasses.field(default_factory=dict)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    reconnect_initial_delay: float = DEFAULT_RECONNECT_INITIAL_DELAY
    reconnect_max_delay: float = DEFAULT_RECONNECT_MAX_DELAY
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    event_queue: int = DEFAULT_EVENT_QUEUE


def backoff_delay(attempt: int, settings: UpstreamSettings, rng: random.Random) -> float:
    """Full-jitter exponential back-off for the ``attempt``-th consecutive failure (from 0)."""
    ceiling = min(
        settings.reconnect_max_delay, settings.reconnect_initial_delay * 2 ** min(attempt, 32)
    )
    return rng.uniform(0.0, ceiling)


def _permanent(error: Exception | None) -> bool:
    """Failures that reconnecting cannot fix: wrong credentials, refused plaintext."""
    return isinstance(error, AuthenticationFailed | EncryptionRequiredError)


class UpstreamSession:
    """One account's upstream session, reconnected and resumed as needed."""

    def __init__(
        self,
        config: ClientConfig,
        settings: UpstreamSettings,
        resolver: ServerResolver,
        *,
        rng: random.Random | None = None,
        client_factory: Callable[..., XmppClient] = XmppClient,
    ) -> None:
        self.config = config
        self.settings = settings
        self._resolver = resolver
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter only
        self._client_factory = client_factory
        self._ssl_context = create_client_context(settings.trust)
        self.client: XmppClient = client_factory(config)
        self.connection: UpstreamConnection | None = None
        self._send_events, self.events = trio.open_memory_channel[ev.SessionEvent](
            settings.event_queue
        )
        self._closing = False
        self._stopped = trio.Event()
        self._cancel_scope: trio.CancelScope | None = None
        self.connections = 0  # connections established so far
        self.established = trio.Event()  # set when the first session is up

    @property
    def jid(self) -> Jid:
        """The account (bare JID)."""
        return self.config.jid.bare

    # -- sending ---------------------------------------------------------------------------------

    async def use(self, action: Callable[[XmppClient], T]) -> T:
        """Run ``action`` on the current client (queueing if offline) and write its output."""
        if self._closing:
            raise LocalProtocolError("the session is closing")
        if self._client_is_over() and not self._stopped.is_set():
            # The connection just ended and run() has not yet built the next client (it is still
            # delivering the end events): build it now, so this stanza queues instead of failing.
            self._prepare_next_client()
        result = action(self.client)
        if self.connection is not None and self.connection.client is self.client:
            await self.connection.flush()
        return result

    async def send_message(
        self,
        to: Jid,
        body: str | None = None,
        *,
        type: MessageType = MessageType.CHAT,  # the RFC's attribute name
        id: str | None = None,  # the RFC's attribute name
        thread: str | None = None,
        subject: str | None = None,
        lang: str | None = None,
        request_receipt: bool = False,
    ) -> str:
        """Send a message (queued while offline); returns its id."""
        return await self.use(
            lambda client: client.send_message(
                to,
                body,
                type=type,
                id=id,
                thread=thread,
                subject=subject,
                lang=lang,
                request_receipt=request_receipt,
            )
        )

    async def send_presence(
        self,
        *,
        to: Jid | None = None,
        available: bool = True,
        show: PresenceShow | None = None,
        status: str | None = None,
        priority: int | None = None,
        lang: str | None = None,
    ) -> None:
        """Send our presence (queued while offline)."""
        await self.use(
            lambda client: client.send_presence(
                to=to, available=available, show=show, status=status, priority=priority, lang=lang
            )
        )

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, and reconnect after failures, until :meth:`aclose` (or a permanent failure)."""
        task_status.started()
        attempt = 0
        try:
            with trio.CancelScope() as self._cancel_scope:
                while not self._closing:
                    error, was_up = await self._connect_once()
                    if was_up:
                        attempt = 0
                    if self._is_closing():
                        break
                    if _permanent(error):
                        await self._send_events.send(ev.ConnectionClosed(error, None))
                        break
                    if self._client_is_over():  # else use() already built the next one
                        self._prepare_next_client()
                    delay = backoff_delay(attempt, self.settings, self._rng)
                    attempt += 1
                    await self._send_events.send(ev.ConnectionClosed(error, delay))
                    await trio.sleep(delay)
        finally:
            self._stopped.set()
            self._send_events.close()

    def _is_closing(self) -> bool:
        return self._closing  # a method: the flag changes while run() awaits

    async def _connect_once(self) -> tuple[Exception | None, bool]:
        """One connection attempt; returns its final error and whether a session came up."""
        try:
            stream, address = await connect_tcp(
                self.config.jid.domain,
                self._resolver,
                connect_timeout=self.settings.connect_timeout,
            )
        except UpstreamUnreachableError as error:
            return error, False
        await self._send_events.send(ev.ConnectionOpened(address.host, address.port))
        was_up = False

        async def on_event(event: ev.Event) -> None:
            nonlocal was_up
            if isinstance(event, ev.SessionEstablished | ev.SessionResumed):
                was_up = True
                self.connections += 1
                self.established.set()
            await self._send_events.send(event)

        self.connection = UpstreamConnection(
            self.client,
            stream,
            ssl_context=self._ssl_context,
            server_hostname=self.config.jid.domain,
            on_event=on_event,
            peer_is_loopback=is_loopback(address.host),
        )
        ended = await self.connection.run()
        return ended.error, was_up

    def _client_is_over(self) -> bool:
        return self.client.state in (ClientState.CLOSED, ClientState.FAILED)

    def _prepare_next_client(self) -> None:
        """The client of the next connection: resuming if possible, else re-sending."""
        old = self.client
        now = trio.current_time()
        token = old.resumption_token(now)
        if token is not None and (token.expires_at is None or now < token.expires_at):
            new = self._client_factory(self.config, resume=token)
            carried = old.unsent_stanzas()
        else:
            new = self._client_factory(self.config)
            carried = old.pending_stanzas()
        for stanza in carried:
            new.send_stanza(stanza)
        self.client = new

    async def aclose(self) -> None:
        """Close the stream cleanly (bounded wait) and stop reconnecting."""
        if self._closing:
            await self._stopped.wait()
            return
        self._closing = True
        connection = self.connection
        if connection is not None and connection.ended is None:
            self.client.close()
            await connection.flush()
            with trio.move_on_after(self.settings.close_timeout):
                await connection.wait_ended()
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
        await self._stopped.wait()


class UpstreamManager:
    """Runs many :class:`UpstreamSession` s in one nursery; see :func:`open_upstream_manager`."""

    def __init__(
        self,
        nursery: trio.Nursery,
        settings: UpstreamSettings,
        resolver: ServerResolver,
        rng: random.Random,
    ) -> None:
        self._nursery = nursery
        self.settings = settings
        self.resolver = resolver
        self._rng = rng
        self.sessions: dict[Jid, UpstreamSession] = {}

    async def open_session(self, config: ClientConfig) -> UpstreamSession:
        """Start (or return the running) session of ``config.jid``'s account."""
        key = config.jid.bare
        existing = self.sessions.get(key)
        if existing is not None:
            return existing
        session = UpstreamSession(
            config,
            self.settings,
            self.resolver,
            rng=random.Random(self._rng.random()),  # noqa: S311
        )
        self.sessions[key] = session
        await self._nursery.start(session.run)
        return session

    async def close_session(self, jid: Jid) -> None:
        """Close one account's session cleanly."""
        session = self.sessions.pop(jid.bare, None)
        if session is not None:
            await session.aclose()

    async def aclose(self) -> None:
        """Close every session concurrently, each with its bounded wait."""
        sessions, self.sessions = list(self.sessions.values()), {}
        async with trio.open_nursery() as nursery:
            for session in sessions:
                nursery.start_soon(session.aclose)


@asynccontextmanager
async def open_upstream_manager(
    settings: UpstreamSettings,
    *,
    resolver: ServerResolver | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[UpstreamManager]:
    """``async with open_upstream_manager(settings) as manager:``; all sessions close on exit."""
    if resolver is None:
        resolver = ServerResolver(static_hosts=settings.static_hosts)
    async with trio.open_nursery() as nursery:
        manager = UpstreamManager(nursery, settings, resolver, rng or random.Random())  # noqa: S311
        try:
            yield manager
        finally:
            with trio.CancelScope(shield=True):
                await manager.aclose()
            nursery.cancel_scope.cancel()
