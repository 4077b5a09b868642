"""A scripted XMPP server over a trio stream (memory streams), for adapter and manager tests.

It logs in the RFC 7677 §3 account of :mod:`tests.xmpp.replay` in plaintext (the client is told
its peer is on loopback and allows plaintext), so the SCRAM exchange is real and no TLS is needed;
what happens after the log-in is each test's script.
"""

from __future__ import annotations

import contextlib
import random
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable

import trio
import trio.testing

from gateway.xmpp.client import ClientConfig, XmppClient
from gateway.xmpp.net.manager import Redirect, UpstreamSession, UpstreamSettings
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver
from gateway.xmpp.parser import StanzaReceived, StreamOpened, XmlStreamParser
from gateway.xmpp.sasl import ScramClient
from tests.xmpp.replay import (
    ACCOUNT,
    CLIENT_NONCE,
    FULL_JID,
    SERVER_FINAL,
    SERVER_FIRST,
    SERVER_HEADER,
    b64,
)

SASL_FEATURES = (
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>"
)
LOOPBACK = ServerAddress("127.0.0.1", 5222)


def bound_features(*, sm: bool = True, extra: str = "") -> str:
    sm_feature = "<sm xmlns='urn:xmpp:sm:3'/>" if sm else ""
    return (
        "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
        f"{sm_feature}{extra}</stream:features>"
    )


class FakeServer:
    """The server end of one connection: read the client's elements, send scripted text."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.parser = XmlStreamParser(inherit_stream_lang=False)
        self.pending: list[ET.Element | dict[str, str]] = []
        self.received: list[ET.Element] = []

    async def next(self) -> ET.Element | dict[str, str]:
        """The client's next element (a stream header is its attribute dict)."""
        while not self.pending:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("the client closed the connection")
            for event in self.parser.feed(bytes(data)):
                if isinstance(event, StreamOpened):
                    self.pending.append(event.attributes)
                elif isinstance(event, StanzaReceived):
                    self.pending.append(event.element)
                    self.received.append(event.element)
        return self.pending.pop(0)

    async def element(self, local: str) -> ET.Element:
        item = await self.next()
        assert isinstance(item, ET.Element), item
        assert item.tag.rpartition("}")[2] == local, item.tag
        return item

    async def header(self) -> None:
        item = await self.next()
        assert isinstance(item, dict), item

    async def send(self, text: str) -> None:
        await self.stream.send_all(text.encode())

    async def authenticate(self, *, features: str = SASL_FEATURES) -> None:
        """Header, SASL features and the RFC 7677 SCRAM-SHA-256 exchange."""
        await self.header()
        await self.send(SERVER_HEADER + features)
        await self.element("auth")
        await self.send(
            f"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{b64(SERVER_FIRST)}</challenge>"
        )
        await self.element("response")
        await self.send(
            f"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{b64(SERVER_FINAL)}</success>"
        )
        self.parser.reset()

    async def login(
        self, *, sm: bool = True, extra_features: str = "", session: str = "sm-1"
    ) -> None:
        """Authenticate, bind (and enable stream management): the client is READY after this."""
        await self.authenticate()
        await self.header()
        await self.send(SERVER_HEADER + bound_features(sm=sm, extra=extra_features))
        bind = await self.element("iq")
        await self.send(
            f"<iq type='result' id='{bind.get('id')}'>"
            f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>{FULL_JID}</jid></bind></iq>"
        )
        if sm:
            await self.element("enable")
            await self.send(f"<enabled xmlns='urn:xmpp:sm:3' id='{session}' resume='true'/>")

    async def stream_error(self, condition: str, text: str = "") -> None:
        body = f">{text}</{condition}>" if text else "/>"
        await self.send(
            "<stream:error><"
            f"{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'{body}</stream:error>"
            "</stream:stream>"
        )

    async def drain(self) -> None:
        """Read (and keep) whatever the client sends until it closes."""
        with contextlib.suppress(EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            while True:
                await self.next()


def make_client(config: ClientConfig, **kwargs: object) -> XmppClient:
    """The manager's client factory: deterministic SCRAM nonce (the RFC 7677 vectors)."""
    return XmppClient(config, client_nonce=CLIENT_NONCE, **kwargs)  # type: ignore[arg-type]


def account_config(**overrides: object) -> ClientConfig:
    settings: dict[str, object] = {
        "jid": ACCOUNT,
        "password": "pencil",
        "resource": "gw",
        "allow_plaintext": True,
    }
    settings.update(overrides)
    return ClientConfig(**settings)  # type: ignore[arg-type]


Script = Callable[[int, FakeServer, ServerAddress], Awaitable[None]]


class FakeNetwork:
    """Connects an UpstreamSession to ``script``: one FakeServer per connection, in a nursery.

    ``script(index, server, address)`` plays connection ``index`` (from 0) to ``address``; the
    virtual time and target of every connection attempt are recorded in ``attempts``.
    """

    def __init__(
        self, nursery: trio.Nursery, script: Script, *, origin: ServerAddress = LOOPBACK
    ) -> None:
        self._nursery = nursery
        self._script = script
        self.origin = origin
        self.attempts: list[tuple[float, ServerAddress]] = []
        self.servers: list[FakeServer] = []

    async def connect(
        self, domain: str, redirect: Redirect | None
    ) -> tuple[trio.abc.Stream, ServerAddress]:
        target = (
            self.origin if redirect is None else ServerAddress(redirect.host, redirect.port or 5222)
        )
        self.attempts.append((trio.current_time(), target))
        client_end, server_end = trio.testing.memory_stream_pair()
        server = FakeServer(server_end)
        self.servers.append(server)
        self._nursery.start_soon(self._play, len(self.servers) - 1, server, target)
        return client_end, target

    async def _play(self, index: int, server: FakeServer, address: ServerAddress) -> None:
        with contextlib.suppress(EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            await self._script(index, server, address)
            await server.drain()
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await server.stream.aclose()


def warm_salted_password_cache() -> None:
    """Derive the test account's SCRAM key once, inline: sessions then need no worker thread,
    which the autojump clock would not wait for (it would jump to the negotiation timeout)."""
    scram = ScramClient("SCRAM-SHA-256", "user", "pencil", client_nonce=CLIENT_NONCE)
    scram.client_first()
    scram.receive_server_first(SERVER_FIRST)


def fake_session(
    network: FakeNetwork,
    *,
    config: ClientConfig | None = None,
    seed: int = 7,
    **settings: object,
) -> UpstreamSession:
    warm_salted_password_cache()
    defaults: dict[str, object] = {"reconnect_initial_delay": 1.0, "reconnect_max_delay": 64.0}
    defaults.update(settings)
    return UpstreamSession(
        config or account_config(),
        UpstreamSettings(**defaults),  # type: ignore[arg-type]
        ServerResolver(static_hosts={}),
        rng=random.Random(seed),
        client_factory=make_client,
        connector=network.connect,
    )


__all__ = [
    "LOOPBACK",
    "FakeNetwork",
    "FakeServer",
    "account_config",
    "bound_features",
    "fake_session",
    "make_client",
    "warm_salted_password_cache",
]
