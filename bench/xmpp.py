"""What the upstream XMPP leg costs: bytes on the wire, stanza rate, memory per idle session.

Runs a private Prosody (device_sim.domain_server) and the gateway's own upstream client against
it.  Bytes are counted on the TCP socket *below* TLS (a CountingStream under trio.SSLStream), so
they include the TLS handshake, certificates and record overhead: this is what a device would pay
per login, message and presence update if it spoke XMPP itself, the baseline the compact device
protocol is measured against.  Stanza rate is measured through one session (send, wait for the
server's XEP-0198 acknowledgement of all of them) against a baseline in the same run through the
same server: the same serialized stanzas written straight to a logged-in TLS socket, so the ratio
is what our client and adapter cost on top of TLS + Prosody.  Prosody's CPU per stanza (from
/proc) shows where the time goes: on this fixture the server, not the client, bounds the rate.
Memory per idle session is tracemalloc's growth over N established, idle sessions.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path

import trio

from bench._framework import Report, Table
from device_sim.domain_server import Account, ProsodyServer, running_prosody
from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, XmppClient
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.connection import (
    RECEIVE_SIZE,
    CountingStream,
    UpstreamConnection,
    connect_tcp,
)
from gateway.xmpp.net.manager import UpstreamSettings, open_upstream_manager
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver
from gateway.xmpp.net.tls import TrustStore, create_client_context
from gateway.xmpp.parser import XmlStreamParser
from gateway.xmpp.serializer import serialize
from gateway.xmpp.stanzas import PresenceShow, build_message, build_presence
from gateway.xmpp.stream_management import SM_NS

DESCRIPTION = "XMPP upstream: bytes per login/message/presence (TLS incl.), stanzas/s, memory"

MESSAGE_BODY = "See you at 6?"  # a typical short IM


class _Probe:
    """One measured upstream connection: a client over a CountingStream, events in a channel."""

    def __init__(self, prosody: ProsodyServer, account: Account) -> None:
        self.prosody = prosody
        self.config = ClientConfig(jid=Jid.parse_untrusted(account.jid), password=account.password)
        self.client = XmppClient(self.config)
        self.send, self.receive = trio.open_memory_channel[ev.Event](1000)
        self.counter: CountingStream | None = None
        self.connection: UpstreamConnection | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        resolver = ServerResolver(
            static_hosts={
                self.prosody.domain: [ServerAddress(self.prosody.host, self.prosody.c2s_port)]
            }
        )
        stream, _ = await connect_tcp(self.prosody.domain, resolver)
        self.counter = CountingStream(stream)
        context = create_client_context(TrustStore(self.prosody.ca_file, use_system_store=False))
        self.connection = UpstreamConnection(
            self.client,
            self.counter,
            ssl_context=context,
            server_hostname=self.prosody.domain,
            on_event=self.send.send,
        )
        task_status.started()
        await self.connection.run()

    async def wait_for(self, kind: type) -> ev.Event:
        with trio.fail_after(30):
            while True:
                event = await self.receive.receive()
                if isinstance(event, kind):
                    return event

    async def wait_for_all(self, *kinds: type) -> None:
        """Wait until one event of each kind has arrived, in any order."""
        missing = list(kinds)
        with trio.fail_after(30):
            while missing:
                event = await self.receive.receive()
                missing = [kind for kind in missing if not isinstance(event, kind)]

    def wire_bytes(self) -> int:
        assert self.counter is not None
        return self.counter.bytes_sent + self.counter.bytes_received


async def _bytes_on_the_wire(prosody: ProsodyServer) -> dict[str, int]:
    sender, peer = prosody.create_user(), prosody.create_user()
    probe = _Probe(prosody, sender)
    results: dict[str, int] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.run)
        assert probe.connection is not None
        await probe.wait_for(ev.SessionEstablished)
        results["login_wire_bytes"] = probe.wire_bytes()
        probe.client.request_roster(trio.current_time())
        probe.client.send_presence()
        await probe.connection.flush()
        await probe.wait_for(ev.RosterReceived)
        results["login_with_roster_and_presence_wire_bytes"] = probe.wire_bytes()
        # Let the server's own presence echo arrive, then settle any outstanding ack.
        await probe.wait_for_all(ev.PresenceReceived, ev.StanzasAcknowledged)

        before = probe.wire_bytes()
        message_id = probe.client.send_message(Jid.parse_untrusted(peer.jid), MESSAGE_BODY)
        await probe.connection.flush()
        await probe.wait_for(ev.StanzasAcknowledged)
        results["message_wire_bytes"] = probe.wire_bytes() - before
        results["message_xml_bytes"] = len(
            serialize(
                build_message(Jid.parse_untrusted(peer.jid), id=message_id, body=MESSAGE_BODY)
            )
        )

        before = probe.wire_bytes()
        probe.client.send_presence(show=PresenceShow.AWAY, status="in a meeting")
        await probe.connection.flush()
        await probe.wait_for_all(ev.StanzasAcknowledged, ev.PresenceReceived)  # echo to us
        results["presence_wire_bytes"] = probe.wire_bytes() - before
        results["presence_xml_bytes"] = len(
            serialize(build_presence(show=PresenceShow.AWAY, status="in a meeting"))
        )
        results["message_body_bytes"] = len(MESSAGE_BODY.encode())
        probe.client.close()
        await probe.connection.flush()
        nursery.cancel_scope.cancel()
    return results


RATE_BATCH = 50  # stanzas submitted between two flushes, in both the measured run and baseline
# XEP-0198 §4: what the server says once it has handled ``count`` stanzas, e.g. <a h='300'/>.
_ACK = re.compile(rb"<a\s[^>]*h=['\"](\d+)['\"]")


def _cpu_seconds(pid: int | None) -> float | None:
    """user+system CPU seconds of process ``pid`` from /proc (None where there is no /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _CpuMeter:
    """CPU seconds used by Prosody and by this process between start() and stop()."""

    def __init__(self, prosody: ProsodyServer) -> None:
        self.prosody = prosody
        self.server = 0.0
        self.ours = 0.0
        self._server_start: float | None = None
        self._ours_start = 0.0

    def start(self) -> None:
        self._server_start = _cpu_seconds(self.prosody.pid)
        self._ours_start = time.process_time()

    def stop(self) -> None:
        self.ours = time.process_time() - self._ours_start
        end = _cpu_seconds(self.prosody.pid)
        if end is not None and self._server_start is not None:
            self.server = end - self._server_start


def _rate_messages(peer_jid: Jid, count: int, prefix: str) -> list[ET.Element]:
    return [
        build_message(peer_jid, id=f"{prefix}{index}", body=f"message {index}")
        for index in range(count)
    ]


async def _stanza_rate(prosody: ProsodyServer, count: int) -> dict[str, float]:
    """Stanzas/s through the gateway's own upstream session (client + connection adapter)."""
    sender, peer = prosody.create_user(), prosody.create_user()
    peer_jid = Jid.parse_untrusted(peer.jid)
    probe = _Probe(prosody, sender)
    meter = _CpuMeter(prosody)
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.run)
        assert probe.connection is not None
        await probe.wait_for(ev.SessionEstablished)
        meter.start()
        started = time.perf_counter()
        acknowledged = 0
        for offset in range(0, count, RATE_BATCH):
            for index in range(offset, min(count, offset + RATE_BATCH)):
                probe.client.send_message(peer_jid, f"message {index}")
            await probe.connection.flush()
        with trio.fail_after(120):
            while acknowledged < count:
                event = await probe.receive.receive()
                if isinstance(event, ev.StanzasAcknowledged):
                    acknowledged += event.count
        elapsed = time.perf_counter() - started
        meter.stop()
        probe.client.close()
        await probe.connection.flush()
        nursery.cancel_scope.cancel()
    return {
        "stanzas": count,
        "stanzas_per_second": count / elapsed,
        "prosody_cpu_ms_per_stanza": 1000 * meter.server / count,
        "client_cpu_ms_per_stanza": 1000 * meter.ours / count,
    }


async def _raw_rate(prosody: ProsodyServer, count: int) -> dict[str, float]:
    """The baseline: the same serialized stanzas written straight to a TLS socket.

    Our client only logs in (STARTTLS, SCRAM, bind, XEP-0198 enable); from then on nothing of
    ours runs per stanza: pre-serialized bytes go to the SSLStream in the same batches, with one
    ``<r/>`` at the end, and the clock stops at the server's ``<a h='count'/>``.  What remains is
    TLS, the kernel and Prosody, i.e. the best any client could do through this server.
    """
    sender, peer = prosody.create_user(), prosody.create_user()
    client = XmppClient(ClientConfig(jid=Jid.parse_untrusted(sender.jid), password=sender.password))
    resolver = ServerResolver(
        static_hosts={prosody.domain: [ServerAddress(prosody.host, prosody.c2s_port)]}
    )
    tcp, _ = await connect_tcp(prosody.domain, resolver)
    stream: trio.abc.Stream = tcp
    context = create_client_context(TrustStore(prosody.ca_file, use_system_store=False))
    client.start(trio.current_time())
    await stream.send_all(client.data_to_send())
    with trio.fail_after(30):
        established = False
        ended: ev.StreamEnded | None = None
        while not established:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise RuntimeError("prosody closed the baseline connection during login")
            for event in client.receive_data_untrusted(bytes(data), trio.current_time()):
                if isinstance(event, ev.TlsRequested):
                    stream = trio.SSLStream(stream, context, server_hostname=prosody.domain)
                    await stream.do_handshake()
                    client.tls_established()
                elif isinstance(event, ev.SessionEstablished):
                    established = True
                elif isinstance(event, ev.StreamEnded):
                    ended = event
            if ended is not None:
                raise RuntimeError(f"baseline login failed: {ended.error}")
            output = client.data_to_send()
            if output:
                await stream.send_all(output)
    wire = [serialize(m) for m in _rate_messages(Jid.parse_untrusted(peer.jid), count, "raw")]
    batches = [b"".join(wire[i : i + RATE_BATCH]) for i in range(0, count, RATE_BATCH)]
    batches[-1] += serialize(ET.Element(f"{{{SM_NS}}}r"))

    async def await_final_ack() -> None:
        tail = b""
        while True:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise RuntimeError("prosody closed the baseline connection")
            tail += data
            if any(int(h) >= count for h in _ACK.findall(tail)):
                return
            tail = tail[-64:]  # an <a/> cut between two reads stays whole

    meter = _CpuMeter(prosody)
    meter.start()
    started = time.perf_counter()
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(await_final_ack)
            for batch in batches:
                await stream.send_all(batch)
    elapsed = time.perf_counter() - started
    meter.stop()
    await trio.aclose_forcefully(stream)
    return {
        "raw_stanzas_per_second": count / elapsed,
        "raw_prosody_cpu_ms_per_stanza": 1000 * meter.server / count,
    }


def _serialize_rate(count: int) -> float:
    """Building + serializing the same stanzas in-process: our client's CPU ceiling, no I/O."""
    peer_jid = Jid.parse_untrusted("peer@impp.test")
    started = time.perf_counter()
    for message in _rate_messages(peer_jid, count, "b"):
        serialize(message)
    return count / (time.perf_counter() - started)


async def _idle_memory(prosody: ProsodyServer, sessions: int) -> dict[str, float]:
    accounts = [prosody.create_user() for _ in range(sessions)]
    settings = UpstreamSettings(
        trust=TrustStore(prosody.ca_file, use_system_store=False),
        static_hosts={prosody.domain: [ServerAddress(prosody.host, prosody.c2s_port)]},
    )
    async with open_upstream_manager(settings) as manager:
        # Warm up imports, the SSL context and caches with one session outside the measurement.
        warm = await manager.open_session(
            ClientConfig(jid=Jid.parse_untrusted(accounts[0].jid), password=accounts[0].password)
        )
        with trio.fail_after(30):
            await warm.established.wait()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        opened = []
        for account in accounts[1:]:
            config = ClientConfig(jid=Jid.parse_untrusted(account.jid), password=account.password)
            opened.append(await manager.open_session(config))
        with trio.fail_after(60):
            for session in opened:
                await session.established.wait()
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    measured = len(accounts) - 1
    return {"idle_sessions": measured, "bytes_per_idle_session": (current - base) / measured}


def _slow_feed(size: int) -> dict[str, float]:
    """One open start tag of ``size`` bytes fed a byte per feed(), against 4 KiB feeds of it."""
    header = (
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        b" version='1.0'>"
    )
    data = b"<message to='" + b"a" * size + b"'/>"
    timings = {}
    for chunk in (4096, 1):
        parser = XmlStreamParser(max_stanza_size=2 * size, max_attribute_length=2 * size)
        parser.feed(header)
        started = time.perf_counter()
        for offset in range(0, len(data), chunk):
            parser.feed(data[offset : offset + chunk])
        timings[chunk] = time.perf_counter() - started
    return {
        "slow_feed_bytes": len(data),
        "slow_feed_one_byte_seconds": timings[1],
        "slow_feed_4k_seconds": timings[4096],
    }


def run(quick: bool) -> Report:
    """Measure against a private Prosody started for this run."""
    stanza_count = 300 if quick else 3000
    idle_sessions = 4 if quick else 51
    with (
        tempfile.TemporaryDirectory(prefix="bench-xmpp-") as directory,
        running_prosody(Path(directory)) as prosody,
    ):
        wire = trio.run(_bytes_on_the_wire, prosody)
        # Baseline and measurement through the same server, fresh accounts each (Prosody's cost
        # grows with the archive): raw first, ours second, so warm-up favours neither.
        raw = trio.run(_raw_rate, prosody, stanza_count)
        rate = trio.run(_stanza_rate, prosody, stanza_count)
        memory = trio.run(_idle_memory, prosody, idle_sessions)
    serialize_rate = _serialize_rate(stanza_count)
    slow = _slow_feed(64 * 1024)
    results: dict[str, float | int] = {
        **slow,
        **wire,
        **rate,
        **raw,
        "serialize_stanzas_per_second": serialize_rate,
        **memory,
    }
    tables = [
        Table(
            "Bytes on the TCP socket (TLS included), both directions",
            ["exchange", "wire bytes", "stanza XML bytes", "wire / XML", "wire / payload"],
            [
                ["login (STARTTLS, SCRAM, bind, SM)", wire["login_wire_bytes"], "", "", ""],
                [
                    "login + roster + initial presence",
                    wire["login_with_roster_and_presence_wire_bytes"],
                    "",
                    "",
                    "",
                ],
                [
                    "one message (+ SM ack)",
                    wire["message_wire_bytes"],
                    wire["message_xml_bytes"],
                    wire["message_wire_bytes"] / wire["message_xml_bytes"],
                    wire["message_wire_bytes"] / wire["message_body_bytes"],
                ],
                [
                    "one presence update (+ SM ack, echo)",
                    wire["presence_wire_bytes"],
                    wire["presence_xml_bytes"],
                    wire["presence_wire_bytes"] / wire["presence_xml_bytes"],
                    "",
                ],
            ],
        ),
        Table(
            "Throughput and memory",
            ["measure", "value", "baseline", "ratio"],
            [
                [
                    f"stanzas/s through one session (until acked, {stanza_count:,})",
                    rate["stanzas_per_second"],
                    raw["raw_stanzas_per_second"],
                    rate["stanzas_per_second"] / raw["raw_stanzas_per_second"],
                ],
                [
                    "Prosody CPU ms per stanza",
                    rate["prosody_cpu_ms_per_stanza"],
                    raw["raw_prosody_cpu_ms_per_stanza"],
                    "",
                ],
                [
                    "our CPU ms per stanza (client, TLS, trio)",
                    rate["client_cpu_ms_per_stanza"],
                    "",
                    "",
                ],
                ["stanzas/s built + serialized, no I/O", serialize_rate, "", ""],
                [
                    "s to parse a 64 KiB open tag fed 1 byte per feed (baseline: 4 KiB feeds)",
                    slow["slow_feed_one_byte_seconds"],
                    slow["slow_feed_4k_seconds"],
                    slow["slow_feed_one_byte_seconds"] / slow["slow_feed_4k_seconds"],
                ],
                [
                    f"bytes per idle session (over {memory['idle_sessions']:.0f})",
                    memory["bytes_per_idle_session"],
                    "",
                    "",
                ],
            ],
        ),
    ]
    notes = [
        "baseline of the rate and Prosody CPU: the same serialized stanzas written straight to"
        " a logged-in TLS socket, same batches, same server, same run (no client code per stanza)",
        "the rate is bounded by Prosody (mod_mam + mod_offline file storage, debug log per"
        " stanza); compare Prosody CPU per stanza with ours",
        "wire / payload: wire bytes per byte of message body (the device's view of overhead)",
        "Prosody runs on the same machine and shares its cores",
    ]
    return Report(results=results, tables=tables, notes=notes)
