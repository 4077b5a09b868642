"""Many upstream XMPP sessions in one trio process, each kept up across failures.

Theory of operation.  An :class:`UpstreamSession` is one account's session *over time*: it
connects (server selection, TCP, :class:`~gateway.xmpp.connection.UpstreamConnection`), and when
the connection ends it builds the next :class:`~gateway.xmpp.client.XmppClient` at once, so that
stanzas submitted while offline queue in that client's outbox, then waits a back-off and
reconnects.  The back-off is exponential with full jitter (delay drawn uniformly from
``[0, min(max_delay, initial_delay * 2**attempt)]``), so that thousands of sessions dropped by one
server restart do not come back in lockstep.  It restarts from zero only after a session that
lived at least ``reconnect_reset_after`` seconds: a session that is established and then at once
kicked (two gateways binding one resource, RFC 6120 §7.7.2.2 ``<conflict/>``) keeps backing off
instead of fighting its twin forever.

A ``<see-other-host/>`` stream error (RFC 6120 §4.9.3.19) sends the next attempt, at once, to the
host it names (a ``host:port`` or ``[v6]:port`` is connected to directly, a bare name is resolved as
in §3.2), at most ``max_redirects`` times in a row.  It is followed only from a server that has
proved, by its TLS certificate, that it serves the account's domain (the RFC allows this policy,
and it keeps a man-in-the-middle before STARTTLS from steering the gateway to arbitrary hosts);
TLS on the new connection still verifies the *account's* domain, and plaintext stays refused
unless both the original and the new peer are on loopback, so a redirect can send us nowhere we
would not trust without it.  ``temporary-auth-failure`` (RFC 6120
§6.5.11) and an empty features element are retried with back-off, not treated as refusals.

No stanza is lost across a reconnection (XEP-0198): if the old session was resumable the new client
carries its :class:`~gateway.xmpp.stream_management.ResumptionToken` and ``<resume/>`` resends only
what the server did not acknowledge; otherwise (or if the server refuses to resume) the stanzas not
known to have arrived are sent again on the fresh session.  A failure that retrying cannot fix (the
server refused the password, or the policy refused plaintext) stops the session instead.

With ``defer_inbound_acks`` the application acknowledges inbound stanzas through
:meth:`UpstreamSession.acknowledge_inbound`, naming the *stream generation* it saw them in (the
number of fresh sessions it has read from :attr:`UpstreamSession.events`, counted the same way as
:attr:`UpstreamSession.stream_generation`): a resumed stream keeps its numbers, a fresh one
starts again from 1, and an acknowledgement from an older stream must not count on the new one.
A session can start from a persisted token (``resume=``, e.g. after a restart), and
:meth:`UpstreamSession.inbound_checkpoint` / :meth:`UpstreamSession.release_inbound` let the
application persist the counters before the server hears them.

A planned restart keeps the streams resumable: :meth:`UpstreamManager.hibernate` (and
:meth:`UpstreamSession.hibernate`) write what the clients hold (a pending ``<a h/>``, an ``<r/>``),
wait a bounded time for the server to acknowledge what we sent, then drop the TCP connections
*without* ``</stream:stream>``; the server keeps each session for resumption (XEP-0198 §5,
Prosody's ``smacks_hibernation_time``), and the next process resumes it from the persisted
token, so the server redelivers what it sent meanwhile. Events that arrive during that wait are
discarded: they were never acknowledged, so the server sends them again on the resumed stream.

Counters survive reconnections and closed sessions: :meth:`UpstreamSession.statistics` adds the
counts of the clients it replaced to its current client's, and the manager keeps the totals of
the sessions it closed (:attr:`UpstreamManager.retired`), so the metrics built on them never
go down.

Events of every connection flow into one bounded channel per session
(:attr:`UpstreamSession.events`, back-pressure on reading when the consumer is slow), except
:class:`~gateway.xmpp.events.KeyDerivationRequested`, which the connection itself answers, with
:class:`~gateway.xmpp.events.ConnectionOpened` and :class:`~gateway.xmpp.events.ConnectionClosed`
in between.  :func:`open_upstream_manager` runs
sessions in one nursery and closes them all cleanly (``</stream:stream>``, bounded wait) on exit.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

import trio

from gateway.xmpp import events as ev
from gateway.xmpp.client import (
    ClientConfig,
    ClientState,
    ClientStatistics,
    EncryptionRequiredError,
    XmppClient,
)
from gateway.xmpp.errors import (
    AuthenticationFailed,
    LocalXmppError,
    PeerStreamError,
    SaslCondition,
    StreamCondition,
)
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.connection import (
    DEFAULT_CONNECT_TIMEOUT,
    UpstreamConnection,
    UpstreamUnreachableError,
    connect_tcp,
    is_loopback,
)
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver
from gateway.xmpp.net.tls import SharedClientContext, TrustStore
from gateway.xmpp.stanzas import MessageStanzaType, PresenceShow
from gateway.xmpp.stream_management import ResumptionToken

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_EVENT_QUEUE",
    "DEFAULT_HIBERNATE_ACK_TIMEOUT",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_RECONNECT_INITIAL_DELAY",
    "DEFAULT_RECONNECT_MAX_DELAY",
    "DEFAULT_RECONNECT_RESET_AFTER",
    "Connector",
    "Redirect",
    "UpstreamManager",
    "UpstreamSession",
    "UpstreamSettings",
    "add_statistics",
    "backoff_delay",
    "open_upstream_manager",
    "parse_see_other_host_untrusted",
]

DEFAULT_RECONNECT_INITIAL_DELAY: Final = 1.0  # seconds: the ceiling of the first back-off draw
DEFAULT_RECONNECT_MAX_DELAY: Final = 300.0  # seconds: never wait longer than five minutes
DEFAULT_CLOSE_TIMEOUT: Final = 5.0  # seconds to wait for the server's </stream:stream>
DEFAULT_EVENT_QUEUE: Final = 256  # events buffered per session before reading pauses
# Seconds a hibernating session waits for the server to acknowledge the stanzas it sent: one
# round trip and a busy server's pause, short against a drain's budget.
DEFAULT_HIBERNATE_ACK_TIMEOUT: Final = 2.0
# A session must live this long before the back-off starts again from zero: longer than a log-in
# and its immediate rejection take, short against the minutes of a healthy session.
DEFAULT_RECONNECT_RESET_AFTER: Final = 60.0
# RFC 6120 §4.9.3.19: give up following redirects after "at least 2 but no more than 5" in a row.
DEFAULT_MAX_REDIRECTS: Final = 5
_DEFAULT_PORT: Final = 5222  # RFC 6120 §3.2.1 fallback
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")

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
    reconnect_reset_after: float = DEFAULT_RECONNECT_RESET_AFTER
    max_redirects: int = DEFAULT_MAX_REDIRECTS


@dataclasses.dataclass(frozen=True)
class Redirect:
    """Where a ``<see-other-host/>`` sends the next connection; ``port`` None: resolve ``host``."""

    host: str
    port: int | None


# (account domain, redirect or None) -> connected stream and the address it reached.
Connector = Callable[[str, Redirect | None], Awaitable[tuple[trio.abc.Stream, ServerAddress]]]


def parse_see_other_host_untrusted(value: str | None) -> Redirect | None:
    """The target of a ``<see-other-host/>`` (RFC 6120 §4.9.3.19), or None if it is not valid.

    ``domainpart``, ``domainpart:port`` or ``[IPv6]`` with an optional ``:port``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > 300:
        return None
    port: int | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            return None
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
        if rest:
            if not rest.startswith(":"):
                return None
            port = _port_untrusted(rest[1:])
            if port is None:
                return None
        return Redirect(host, port)
    host, colon, port_text = text.partition(":")
    if colon:
        port = _port_untrusted(port_text)
        if port is None:
            return None
    if _HOSTNAME.fullmatch(host) is None:
        return None
    return Redirect(host.lower(), port)


def _port_untrusted(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def backoff_delay(attempt: int, settings: UpstreamSettings, rng: random.Random) -> float:
    """Full-jitter exponential back-off for the ``attempt``-th consecutive failure (from 0)."""
    ceiling = min(
        settings.reconnect_max_delay, settings.reconnect_initial_delay * 2 ** min(attempt, 32)
    )
    return rng.uniform(0.0, ceiling)


_GAUGE_FIELDS: Final = frozenset({"unacknowledged"})  # ClientStatistics fields that are levels


def add_statistics(total: ClientStatistics | None, more: ClientStatistics) -> ClientStatistics:
    """``total`` plus ``more``, field by field: counts added, per-reason counts merged, and the
    levels (``unacknowledged``) taken from ``more`` (the newer stream holds what is pending)."""
    if total is None:
        return more
    values: dict[str, Any] = {}
    for item in dataclasses.fields(ClientStatistics):
        if item.name in _GAUGE_FIELDS:
            continue
        mine, theirs = getattr(total, item.name), getattr(more, item.name)
        if isinstance(mine, dict):
            merged = dict(mine)
            for key, count in theirs.items():
                merged[key] = merged.get(key, 0) + count
            values[item.name] = merged
        else:
            values[item.name] = mine + theirs
    return dataclasses.replace(more, **values)


def _retired(statistics: ClientStatistics) -> ClientStatistics:
    """The counts of a stream that is over: its levels are zero."""
    levels: dict[str, Any] = dict.fromkeys(_GAUGE_FIELDS, 0)
    return dataclasses.replace(statistics, **levels)


def _permanent(error: Exception | None) -> bool:
    """Failures that reconnecting cannot fix: wrong credentials, refused plaintext.

    ``temporary-auth-failure`` is the server saying "try again later" (RFC 6120 §6.5.11).
    """
    if isinstance(error, AuthenticationFailed):
        return error.condition is not SaslCondition.TEMPORARY_AUTH_FAILURE
    return isinstance(error, EncryptionRequiredError)


def _redirect_of(error: Exception | None) -> Redirect | None:
    if isinstance(error, PeerStreamError) and error.condition is StreamCondition.SEE_OTHER_HOST:
        return parse_see_other_host_untrusted(error.see_other_host)
    return None


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
        connector: Connector | None = None,
        resume: ResumptionToken | None = None,
        tls: SharedClientContext | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self._resolver = resolver
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter only
        self._client_factory = client_factory
        self._connector = connector if connector is not None else self._connect
        # The manager's context, shared by its sessions; fetched again at each connection.
        self._tls = tls if tls is not None else SharedClientContext(settings.trust)
        self._tls.get()  # a trust store that cannot be read fails here, as the session starts
        if resume is not None:
            self.client: XmppClient = client_factory(
                config, resume=resume, defer_key_derivation=True
            )
        else:
            self.client = client_factory(config, defer_key_derivation=True)
        self.stream_generation = 0  # fresh sessions delivered to the events channel so far
        self._redirect: Redirect | None = None
        self._origin_is_loopback = False
        self._peer_authenticated = False
        self.connection: UpstreamConnection | None = None
        self._send_events, self.events = trio.open_memory_channel[ev.UpstreamSessionEvent](
            settings.event_queue
        )
        self._closing = False
        self._stopped = trio.Event()
        self._cancel_scope: trio.CancelScope | None = None
        self.connections = 0  # connections established so far
        self.established = trio.Event()  # set when the first session is up
        self.hibernated = False  # dropped without closing its stream (see hibernate)
        self._replaced: ClientStatistics | None = None  # the clients before this one, summed
        self._acknowledged = trio.Event()  # set (and renewed) at each StanzasAcknowledged

    @property
    def stopped(self) -> bool:
        """Whether :meth:`run` has ended (closed, or stopped by a permanent failure)."""
        return self._stopped.is_set()

    async def wait_stopped(self) -> None:
        """Wait until :meth:`run` has ended."""
        await self._stopped.wait()

    @property
    def jid(self) -> Jid:
        """The account (bare JID)."""
        return self.config.jid.bare

    def statistics(self) -> ClientStatistics:
        """The counters of every stream this session ran, summed (they never go down), with
        the current stream's levels."""
        return add_statistics(self._replaced, self.client.statistics())

    # -- sending ---------------------------------------------------------------------------------

    async def use(self, action: Callable[[XmppClient], T]) -> T:
        """Run ``action`` on the current client (queueing if offline) and write its output."""
        if self._closing:
            raise LocalXmppError("the session is closing")
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
        type: MessageStanzaType = MessageStanzaType.CHAT,  # the RFC's attribute name
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

    # -- deferred inbound acknowledgement ---------------------------------------------------------

    async def acknowledge_inbound(self, sequence: int, generation: int) -> None:
        """The application is done with inbound stanza ``sequence`` of stream ``generation``."""
        if generation == self.stream_generation:
            self.client.acknowledge_inbound(sequence)

    def inbound_checkpoint(self, generation: int) -> ResumptionToken | None:
        """What to persist to resume stream ``generation`` after a restart, if it is current."""
        if generation != self.stream_generation:
            return None
        return self.client.resumption_checkpoint(trio.current_time())

    async def release_inbound(self, checkpoint: ResumptionToken) -> None:
        """``checkpoint`` is persisted: the server may now hear its inbound count."""
        client = self.client
        if client.resumption_checkpoint(trio.current_time()) is None:
            return
        current = client.resumption_token(trio.current_time())
        if current is None or current.session_id != checkpoint.session_id:
            return
        client.release_inbound_acknowledgements(checkpoint.inbound_handled, trio.current_time())
        if self.connection is not None and self.connection.client is client:
            await self.connection.flush()

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, and reconnect after failures, until :meth:`aclose` (or a permanent failure)."""
        task_status.started()
        attempt = 0
        redirects = 0
        try:
            with trio.CancelScope() as self._cancel_scope:
                while not self._closing:
                    error, up_since = await self._connect_once()
                    lived = None if up_since is None else trio.current_time() - up_since
                    if lived is not None and lived >= self.settings.reconnect_reset_after:
                        attempt = redirects = 0
                    if self._is_closing():
                        break
                    if _permanent(error):
                        await self._send_events.send(ev.ConnectionClosed(error, None))
                        break
                    if self._client_is_over():  # else use() already built the next one
                        self._prepare_next_client()
                    self._redirect = _redirect_of(error) if self._peer_authenticated else None
                    if self._redirect is not None and redirects < self.settings.max_redirects:
                        redirects += 1
                        await self._send_events.send(ev.ConnectionClosed(error, 0.0))
                        continue  # RFC 6120 §4.9.3.19: reconnect there at once
                    self._redirect = None
                    delay = backoff_delay(attempt, self.settings, self._rng)
                    attempt += 1
                    await self._send_events.send(ev.ConnectionClosed(error, delay))
                    await trio.sleep(delay)
        finally:
            self._stopped.set()
            self._send_events.close()

    def _is_closing(self) -> bool:
        return self._closing  # a method: the flag changes while run() awaits

    async def _connect(
        self, domain: str, redirect: Redirect | None
    ) -> tuple[trio.abc.Stream, ServerAddress]:
        """The default connector: server selection for ``domain``, or the redirect's target."""
        timeout = self.settings.connect_timeout
        if redirect is None:
            return await connect_tcp(domain, self._resolver, connect_timeout=timeout)
        if redirect.port is None:
            return await connect_tcp(redirect.host, self._resolver, connect_timeout=timeout)
        with trio.move_on_after(timeout):
            try:
                stream = await trio.open_tcp_stream(redirect.host, redirect.port)
            except OSError as exc:
                raise UpstreamUnreachableError(f"redirect target: {exc.strerror or exc}") from exc
            return stream, ServerAddress(redirect.host, redirect.port)
        raise UpstreamUnreachableError("redirect target: timed out")

    async def _connect_once(self) -> tuple[Exception | None, float | None]:
        """One connection attempt; returns its final error and when a session came up, if it did."""
        redirect, self._redirect = self._redirect, None
        try:
            stream, address = await self._connector(self.config.jid.domain, redirect)
        except UpstreamUnreachableError as error:
            return error, None
        peer_is_loopback = is_loopback(address.host)
        if redirect is None:
            self._origin_is_loopback = peer_is_loopback
        else:
            peer_is_loopback = peer_is_loopback and self._origin_is_loopback
        await self._send_events.send(ev.ConnectionOpened(address.host, address.port))
        up_since: float | None = None

        async def on_event(event: ev.Event) -> None:
            nonlocal up_since
            if isinstance(event, ev.KeyDerivationRequested):
                return  # the connection runs the derivation; it is not the application's business
            if isinstance(event, ev.StanzasAcknowledged):
                self._acknowledged.set()
                self._acknowledged = trio.Event()
            if self.hibernated:
                return  # never acknowledged: the server sends it again on the resumed stream
            if isinstance(event, ev.SessionEstablished):
                self.stream_generation += 1
            if isinstance(event, ev.SessionEstablished | ev.SessionResumed):
                up_since = trio.current_time()
                self.connections += 1
                self.established.set()
            await self._send_events.send(event)

        self.connection = UpstreamConnection(
            self.client,
            stream,
            ssl_context=self._tls.get(),
            server_hostname=self.config.jid.domain,
            on_event=on_event,
            peer_is_loopback=peer_is_loopback,
        )
        ended = await self.connection.run()
        # Whether the server proved it is the account's domain (TLS verified), or is the loopback
        # test server: only then is its <see-other-host/> followed (RFC 6120 §4.9.3.19 (b)).
        self._peer_authenticated = self.connection.client.tls_active or (
            peer_is_loopback and self.config.allow_plaintext
        )
        return ended.error, up_since

    def _client_is_over(self) -> bool:
        return self.client.state in (ClientState.CLOSED, ClientState.FAILED)

    def _prepare_next_client(self) -> None:
        """The client of the next connection: resuming if possible, else re-sending."""
        old = self.client
        now = trio.current_time()
        token = old.resumption_token(now)
        restore = old.restorable_state()
        if token is not None and (token.expires_at is None or now < token.expires_at):
            new = self._client_factory(
                self.config, resume=token, restore=restore, defer_key_derivation=True
            )
            carried = old.unsent_stanzas()
        else:
            new = self._client_factory(self.config, restore=restore, defer_key_derivation=True)
            carried = old.pending_stanzas()
        for stanza in carried:
            new.send_stanza(stanza)
        self._replaced = add_statistics(self._replaced, _retired(old.statistics()))
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

    async def hibernate(self, ack_timeout: float = DEFAULT_HIBERNATE_ACK_TIMEOUT) -> None:
        """Stop reconnecting and drop the connection *without* closing the stream.

        What the client holds is written first (a released ``<a h/>``, an ``<r/>`` for our
        unacknowledged stanzas), and the server's acknowledgement of them awaited for at most
        ``ack_timeout`` seconds; then the socket is closed under the stream, so the server keeps
        the session for resumption (XEP-0198 §5) and a restarted gateway resumes it with the
        token it persisted. Inbound events from then on are discarded (see the module docstring).
        """
        if self._closing:
            await self._stopped.wait()
            return
        self._closing = True
        self.hibernated = True
        connection = self.connection
        if connection is not None and connection.ended is None:
            await connection.flush()
            with trio.move_on_after(ack_timeout):
                async with trio.open_nursery() as race:

                    async def until_ended() -> None:
                        await connection.wait_ended()
                        race.cancel_scope.cancel()  # nothing more can be acknowledged

                    race.start_soon(until_ended)
                    while self.client.statistics().unacknowledged:
                        await self._acknowledged.wait()
                    race.cancel_scope.cancel()
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
        *,
        client_factory: Callable[..., XmppClient] = XmppClient,
        connector: Connector | None = None,
    ) -> None:
        self._nursery = nursery
        self._client_factory = client_factory
        self._connector = connector
        self.settings = settings
        self.resolver = resolver
        self._rng = rng
        self.sessions: dict[Jid, UpstreamSession] = {}
        self.tls = SharedClientContext(settings.trust)  # one TLS context for all its sessions
        # The counters of the sessions closed or replaced so far, and their connections: what
        # the metrics add to the live sessions' so that their totals never go down.
        self.retired: ClientStatistics | None = None
        self.retired_connections = 0
        self.retired_reconnections = 0  # connections after each retired session's first

    async def open_session(
        self, config: ClientConfig, *, resume: ResumptionToken | None = None
    ) -> UpstreamSession:
        """Start (or return the running) session of ``config.jid``'s account.

        ``resume`` (a persisted token) makes a new session's first connection ``<resume/>``.
        """
        key = config.jid.bare
        existing = self.sessions.get(key)
        if existing is not None and not existing.stopped:
            return existing
        if existing is not None:
            self._retire(existing)
        # A stopped session (closed, or refused for good, e.g. a wrong password) is replaced by a
        # fresh one with the config given now, perhaps new credentials.
        session = UpstreamSession(
            config,
            self.settings,
            self.resolver,
            rng=random.Random(self._rng.random()),  # noqa: S311 - jitter only
            client_factory=self._client_factory,
            connector=self._connector,
            resume=resume,
            tls=self.tls,
        )
        self.sessions[key] = session
        await self._nursery.start(session.run)
        return session

    async def close_session(self, jid: Jid) -> None:
        """Close one account's session cleanly."""
        session = self.sessions.pop(jid.bare, None)
        if session is not None:
            await session.aclose()
            self._retire(session)

    def _retire(self, session: UpstreamSession) -> None:
        self.retired = add_statistics(self.retired, _retired(session.statistics()))
        self.retired_connections += session.connections
        self.retired_reconnections += max(session.connections - 1, 0)

    async def aclose(self) -> None:
        """Close every session concurrently, each with its bounded wait."""
        sessions, self.sessions = list(self.sessions.values()), {}
        async with trio.open_nursery() as nursery:
            for session in sessions:
                nursery.start_soon(session.aclose)
        for session in sessions:
            self._retire(session)

    async def hibernate(self, ack_timeout: float = DEFAULT_HIBERNATE_ACK_TIMEOUT) -> int:
        """Drop every session's connection without closing its stream (a planned restart; see
        :meth:`UpstreamSession.hibernate`), concurrently; returns how many were connected."""
        sessions, self.sessions = list(self.sessions.values()), {}
        connected = sum(
            1 for s in sessions if s.connection is not None and s.connection.ended is None
        )
        async with trio.open_nursery() as nursery:
            for session in sessions:
                nursery.start_soon(session.hibernate, ack_timeout)
        for session in sessions:
            self._retire(session)
        return connected


@asynccontextmanager
async def open_upstream_manager(
    settings: UpstreamSettings,
    *,
    resolver: ServerResolver | None = None,
    rng: random.Random | None = None,
    client_factory: Callable[..., XmppClient] = XmppClient,
    connector: Connector | None = None,
) -> AsyncIterator[UpstreamManager]:
    """``async with open_upstream_manager(settings) as manager:``; all sessions close on exit.

    ``client_factory`` and ``connector`` replace the client class and the TCP connection step
    (tests run sessions over memory streams with them).
    """
    if resolver is None:
        resolver = ServerResolver(static_hosts=settings.static_hosts)
    async with trio.open_nursery() as nursery:
        manager = UpstreamManager(
            nursery,
            settings,
            resolver,
            rng or random.Random(),  # noqa: S311 - jitter only
            client_factory=client_factory,
            connector=connector,
        )
        try:
            yield manager
        finally:
            with trio.CancelScope(shield=True):
                await manager.aclose()
            nursery.cancel_scope.cancel()
