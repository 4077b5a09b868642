"""A fake server on loopback sends hostile streams: each ends in a stream error and a disconnect,
with bounded memory (the client never buffers more than its stanza cap)."""

from __future__ import annotations

import contextlib
import functools
import tracemalloc
from collections.abc import Iterator

import pytest
import trio

from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, XmppClient
from gateway.xmpp.errors import StreamCondition, StreamError
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.connection import UpstreamConnection
from gateway.xmpp.net.tls import TrustStore, create_client_context

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' from='example.net' id='h' version='1.0'>"
)
CHUNK = 64 * 1024
TEN_MB = 10 * 1024 * 1024


def billion_laughs() -> Iterator[bytes]:
    lol = b"<!ENTITY lol 'lol'>" + b"".join(
        b"<!ENTITY lol%d '%s'>" % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10)
        for i in range(1, 10)
    )
    yield b"<?xml version='1.0'?><!DOCTYPE stream:stream [" + lol + b"]>" + HEADER[21:]
    yield b"<message><body>&lol9;</body></message>"


def doctype() -> Iterator[bytes]:
    yield b"<?xml version='1.0'?><!DOCTYPE stream:stream SYSTEM 'file:///etc/passwd'>" + HEADER[21:]


def ten_megabyte_stanza() -> Iterator[bytes]:
    yield HEADER + b"<message><body>"
    chunk = b"A" * CHUNK
    for _ in range(TEN_MB // CHUNK):
        yield chunk
    yield b"</body></message>"


def invalid_utf8() -> Iterator[bytes]:
    yield HEADER + b"<message><body>\xff\xfe\xc3\x28</body></message>"


def deep_nesting() -> Iterator[bytes]:
    yield HEADER + b"<message>"
    for _ in range(1000):
        yield b"<a>" * 100


CASES = {
    "billion-laughs": (billion_laughs, {StreamCondition.RESTRICTED_XML}),
    "doctype": (doctype, {StreamCondition.RESTRICTED_XML}),
    "10MB-stanza": (ten_megabyte_stanza, {StreamCondition.POLICY_VIOLATION}),
    "invalid-utf8": (
        invalid_utf8,
        {StreamCondition.UNSUPPORTED_ENCODING, StreamCondition.NOT_WELL_FORMED},
    ),
    "deep-nesting": (deep_nesting, {StreamCondition.POLICY_VIOLATION}),
}
# The client may hold its stanza cap (256 KiB), a read buffer and the parser's slices; a few MB
# leaves room for the interpreter's own noise while being far below the 10 MB sent.
MEMORY_BOUND = 4 * 1024 * 1024


@pytest.mark.parametrize("case", list(CASES))
async def test_hostile_stream_ends_in_stream_error(case: str) -> None:
    produce, conditions = CASES[case]
    received_by_server = bytearray()

    async def fake_server(stream: trio.SocketStream) -> None:
        async def read_all() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while data := await stream.receive_some(4096):
                    received_by_server.extend(data)

        async with trio.open_nursery() as server_nursery:
            server_nursery.start_soon(read_all)  # reads what the client says while we send
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                for piece in produce():
                    await stream.send_all(piece)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, host="127.0.0.1"), fake_server, 0
        )
        port = listeners[0].socket.getsockname()[1]
        config = ClientConfig(jid=Jid("user", "example.net"), password="pw", allow_plaintext=True)
        client = XmppClient(config)
        seen: list[ev.Event] = []

        async def collect(event: ev.Event) -> None:
            seen.append(event)

        stream = await trio.open_tcp_stream("127.0.0.1", port)
        connection = UpstreamConnection(
            client,
            stream,
            ssl_context=create_client_context(TrustStore()),
            server_hostname="example.net",
            on_event=collect,
            peer_is_loopback=True,
        )
        tracemalloc.start()
        try:
            with trio.fail_after(30):
                ended = await connection.run()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        nursery.cancel_scope.cancel()
    assert isinstance(ended.error, StreamError)
    assert ended.error.condition in conditions
    assert seen[-1] is ended
    assert b"<stream:error>" in received_by_server
    assert received_by_server.endswith(b"</stream:stream>")
    assert peak < MEMORY_BOUND
