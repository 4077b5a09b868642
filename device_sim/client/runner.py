"""The trio adapter that runs one :class:`DeviceClient` over datagrams, maybe through a radio link.

Theory of operation. A :class:`DeviceRunner` owns one client and one task loop: it hands the
client's datagrams to the radio model (a seeded :class:`~device_sim.radio.DuplexLink`) or, without
one, straight to a socket; what the link delivers toward the gateway goes out on the socket of its
NAT mapping; what the gateway answers on a mapping's socket crosses the NAT check and the downlink
model back to the client. The client's timers, the link's deliveries and the sockets' arrivals all
wake the same loop, so there is one ordering of everything a device does. Time is
``trio.current_time()`` (the autojump clock in tests).

Sockets. Each device has its own socket (one per NAT mapping when a link rebinds it): the gateway
keys sessions, path validation and its per-host limits on the source address, every device's
initiator uses the same connection id (``core.INITIATOR_CONNECTION_ID``), and a real device is
behind its own NAT mapping. A socket is one file descriptor and no thread, so a swarm of
thousands needs only the file-descriptor limit raised (the swarm command does). What a socket is
is a :class:`DatagramSockets` factory: :class:`UdpSockets` for real UDP (a connected socket, so the
kernel drops datagrams from anyone but the gateway), or any in-memory fake with the same shape.

Counters. :class:`TrafficCounters` counts what crosses the device's radio: datagrams and UDP
payload bytes the client sent (lost on the air or not) and received, and, for "bytes on the link",
the same plus the header bytes each datagram carries (the link preset's ``overhead_bytes``, else
IPv4+UDP 28 or IPv6+UDP 48).

Budget. :class:`DeviceBudget` keeps the device's :class:`~device_sim.budget.PrimitiveCounts`. The
client builds its EDHOC initiator itself, without a crypto hook, so the runner prices what it sees:
each full handshake adds the exact counts of one handshake of the provisioned method and suite
(run once per process on a :class:`~device_sim.budget.MeteredCrypto` with the device's own
credential against a calibration responder), plus the six HKDF-Expand calls of the session keys;
each resumption adds its HMACs (binder, confirmation, master secret) and the same six; each
protected record adds its AEAD plaintext (the datagram less header, connection id, packet number
and tag: an estimate of at most a few bytes) and as many CBOR bytes encoded (sent) or decoded
(received).
"""

from __future__ import annotations

import math
import socket as stdlib_socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from device_sim.budget import MeteredCrypto, PrimitiveCounts
from device_sim.client.core import INITIATOR_CONNECTION_ID, ClientState, DeviceClient
from device_sim.client.events import ClientClosed, ClientEvent, Connected, Woke
from device_sim.radio.duplex import DuplexLink
from device_sim.radio.link import DatagramTooLargeError
from gateway import edhoc, wire
from gateway.edhoc.suites import Aead
from gateway.enroll.provisioning import Provisioning, Transport
from gateway.session.record import AEAD_PARAMETERS, SUITE_AEAD, AeadAlgorithm

__all__ = [
    "IPV4_UDP_HEADER",
    "IPV6_UDP_HEADER",
    "DatagramSocket",
    "DatagramSockets",
    "DeviceBudget",
    "DeviceRunner",
    "RunnerError",
    "TrafficCounters",
    "UdpSockets",
    "gateway_address",
]

IPV4_UDP_HEADER = 28  # RFC 791 (20) + RFC 768 (8)
IPV6_UDP_HEADER = 48  # RFC 8200 (40) + RFC 768 (8)
MAX_DATAGRAM = 2048  # larger than any record the gateway sends (gateway/transport/udp.py)
KEEP_OLD_MAPPINGS = 4  # sockets of earlier NAT mappings kept so late answers are seen and dropped
DEFAULT_EVENT_QUEUE = 1024  # events buffered for :meth:`DeviceRunner.events`; more are counted
SESSION_KEY_EXPANDS = 6  # g2d, d2g, then key and IV per direction (gateway/session/record.py)
RESUMPTION_HMACS = 3  # binder, the RESUMED confirmation, the resumed master secret (tickets.py)
_PROTECTED_BIT = 0x80  # gateway/session/packets.py: a protected record, not a handshake packet
_RECORD_FIXED_OVERHEAD = 1 + 2  # header byte and the short packet number
_CALIBRATION_KEY = bytes.fromhex("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac")
_CALIBRATION_C_R = b"\x27"


class RunnerError(Exception):
    """The runner cannot do what was asked (no UDP endpoint, the client failed to connect)."""


class DatagramSocket(Protocol):
    """One device-side socket that talks to the gateway only."""

    async def send(self, datagram: bytes) -> None:
        """Send one datagram to the gateway (errors are the socket's to absorb)."""
        ...

    async def receive(self) -> bytes:
        """The next datagram from the gateway."""
        ...

    def close(self) -> None:
        """Release the socket."""
        ...


class DatagramSockets(Protocol):
    """Opens sockets toward one gateway; ``header_bytes`` are the IP+UDP bytes per datagram."""

    header_bytes: int

    async def open(self) -> DatagramSocket:
        """A new socket (a new source address) toward the gateway."""
        ...


class _UdpSocket:
    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock
        self.send_errors = 0

    async def send(self, datagram: bytes) -> None:
        try:
            await self._sock.send(datagram)
        except OSError:
            self.send_errors += 1  # e.g. an ICMP unreachable reported on a connected socket

    async def receive(self) -> bytes:
        while True:
            try:
                return await self._sock.recv(MAX_DATAGRAM)
            except OSError:
                continue  # ECONNREFUSED from an earlier ICMP error: the socket stays usable

    def close(self) -> None:
        self._sock.close()


class UdpSockets:
    """Real UDP sockets connected to ``gateway`` (host, port), bound on ``bind_host``."""

    def __init__(self, gateway: tuple[str, int], *, bind_host: str | None = None) -> None:
        self.gateway = gateway
        self._family = stdlib_socket.AF_INET6 if ":" in gateway[0] else stdlib_socket.AF_INET
        self.bind_host = bind_host
        self.header_bytes = (
            IPV6_UDP_HEADER if self._family == stdlib_socket.AF_INET6 else IPV4_UDP_HEADER
        )

    async def open(self) -> DatagramSocket:
        """Bind an ephemeral port and connect it to the gateway."""
        sock = trio.socket.socket(self._family, stdlib_socket.SOCK_DGRAM)
        try:
            if self.bind_host is not None:
                await sock.bind((self.bind_host, 0))
            await sock.connect(self.gateway)
        except BaseException:
            sock.close()
            raise
        return _UdpSocket(sock)


def gateway_address(provisioning: Provisioning) -> tuple[str, int]:
    """The first UDP endpoint of a provisioning file."""
    for endpoint in provisioning.endpoints:
        if endpoint.transport is Transport.UDP:
            return endpoint.host, endpoint.port
    raise RunnerError("the provisioning file names no UDP endpoint")


@dataclass
class TrafficCounters:
    """What crossed the device's radio; payload is UDP payload, ``link_*`` adds headers."""

    header_bytes: int
    datagrams_sent: int = 0
    bytes_sent: int = 0
    datagrams_received: int = 0
    bytes_received: int = 0

    @property
    def link_bytes_sent(self) -> int:
        """Bytes the device transmitted, headers included."""
        return self.bytes_sent + self.datagrams_sent * self.header_bytes

    @property
    def link_bytes_received(self) -> int:
        """Bytes the device received, headers included."""
        return self.bytes_received + self.datagrams_received * self.header_bytes


_HANDSHAKE_COUNTS: dict[tuple[bytes, int, int], PrimitiveCounts] = {}


def _lookup(trusted: edhoc.Credential) -> Callable[[edhoc.IdCred], edhoc.Credential | None]:
    def lookup(id_cred: edhoc.IdCred) -> edhoc.Credential | None:
        return trusted if id_cred.matches(trusted) else None

    return lookup


def handshake_counts(
    provisioning: Provisioning, private_key: bytes | None = None
) -> PrimitiveCounts:
    """The device side of one full handshake of the provisioned method and suite, counted.

    Run once per device credential on a :class:`MeteredCrypto`, against a responder with a fixed
    calibration key of the gateway credential's curve and kid (the work does not depend on the key).
    """
    own = provisioning.device_edhoc_credential()
    if private_key is not None:
        own = own.with_private_key(private_key)
    key = (own.encoded, provisioning.method, provisioning.suite)
    cached = _HANDSHAKE_COUNTS.get(key)
    if cached is not None:
        return cached
    real_gateway = provisioning.gateway_edhoc_credential()
    gateway = edhoc.Credential.new_ccs(
        curve=real_gateway.curve,
        private_key=_CALIBRATION_KEY,
        kid=real_gateway.kid or b"\x00",
        subject=real_gateway.subject or "",
    )
    crypto = MeteredCrypto()
    method = edhoc.Method(provisioning.method)
    suite = edhoc.CipherSuite(provisioning.suite)
    initiator = edhoc.Initiator(
        method=method,
        suites=[suite],
        c_i=INITIATOR_CONNECTION_ID,
        credential=own,
        credential_lookup=_lookup(gateway.public()),
        crypto=crypto,
    )
    public_own = own.public()

    def responder_lookup(id_cred: edhoc.IdCred) -> list[edhoc.Credential]:
        return [public_own] if id_cred.matches(public_own) else []

    responder = edhoc.Responder(
        suites=[suite], c_r=_CALIBRATION_C_R, credential=gateway, credential_lookup=responder_lookup
    )
    responder.receive_message_1(initiator.message_1())
    initiator.receive_message_2(responder.message_2())
    responder.receive_message_3(initiator.message_3())
    counts = crypto.counts
    _HANDSHAKE_COUNTS[key] = counts
    return counts


@dataclass
class DeviceBudget:
    """The primitives one device computed, as the runner saw them (see the module docstring)."""

    aead: Aead
    tag_length: int
    handshake: PrimitiveCounts
    counts: PrimitiveCounts = field(default_factory=PrimitiveCounts)
    handshakes: int = 0
    resumptions: int = 0
    wakeups: int = 0

    def on_event(self, event: ClientEvent) -> None:
        """Price a handshake or resumption when the client reports one."""
        if isinstance(event, Connected):
            if event.resumed:
                self.resumptions += 1
                for _ in range(RESUMPTION_HMACS):
                    self.counts.add_hmac(64)
            else:
                self.handshakes += 1
                self.counts = self.counts + self.handshake
            for _ in range(SESSION_KEY_EXPANDS):
                self.counts.hkdf_calls += 1
                self.counts.add_hmac(8)
        elif isinstance(event, Woke):
            self.wakeups += 1

    def on_datagram(self, datagram: bytes, *, sent: bool, connection_id_length: int) -> None:
        """Count a protected record's AEAD and CBOR bytes (handshake packets: in the template)."""
        if not datagram or not datagram[0] & _PROTECTED_BIT:
            return
        overhead = _RECORD_FIXED_OVERHEAD + connection_id_length + self.tag_length
        plaintext = max(0, len(datagram) - overhead)
        self.counts.add_aead(self.aead, plaintext)
        if sent:
            self.counts.add_cbor(encoded=plaintext)
        else:
            self.counts.add_cbor(decoded=plaintext)


def _budget_for(provisioning: Provisioning, private_key: bytes | None) -> DeviceBudget:
    algorithm = SUITE_AEAD[provisioning.suite]
    # PrimitiveCounts prices AES-CCM and ChaCha20-Poly1305; the GCM suites are priced as AES-CCM.
    aead = (
        Aead.CHACHA20_POLY1305
        if algorithm is AeadAlgorithm.CHACHA20_POLY1305
        else Aead.AES_CCM_16_64_128
    )
    tag_length = AEAD_PARAMETERS[algorithm].tag_length
    return DeviceBudget(
        aead=aead, tag_length=tag_length, handshake=handshake_counts(provisioning, private_key)
    )


EventCallback = Callable[[float, ClientEvent], None]


class DeviceRunner:
    """One device: a :class:`DeviceClient` on sockets from ``sockets``, through ``link`` if given.

    Start it with ``await nursery.start(runner.run)`` (it returns once the client has started its
    handshake), then ``await runner.connected()``. ``on_event`` is called synchronously with each
    client event and its time; every event also goes to :meth:`events` unless ``stream_events``
    is off (a swarm uses the callback and no stream).
    """

    def __init__(
        self,
        client: DeviceClient,
        provisioning: Provisioning,
        sockets: DatagramSockets,
        *,
        link: DuplexLink | None = None,
        private_key: bytes | None = None,
        on_event: EventCallback | None = None,
        stream_events: bool = True,
        event_queue: int = DEFAULT_EVENT_QUEUE,
        metering: bool = True,
    ) -> None:
        self.client = client
        self.provisioning = provisioning
        self.sockets = sockets
        self.link = link
        self._private_key = private_key
        self._on_event = on_event
        self._stream_events = stream_events
        self._event_send, self._event_receive = trio.open_memory_channel[ClientEvent](event_queue)
        self.events_dropped = 0
        header = link.preset.uplink.overhead_bytes if link is not None else sockets.header_bytes
        down_header = (
            link.preset.downlink.overhead_bytes if link is not None else sockets.header_bytes
        )
        self.uplink = TrafficCounters(header_bytes=header)
        self.downlink = TrafficCounters(header_bytes=down_header)
        self.budget = _budget_for(provisioning, private_key) if metering else None
        self.dropped: dict[str, int] = {}
        self._sockets: dict[int, DatagramSocket] = {}
        self._inbox: deque[tuple[int, bytes]] = deque()
        self._wakeup = trio.Event()
        self._state_changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._done = trio.Event()

    # ---- application calls ---------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The client's state."""
        return self.client.state

    async def connected(self) -> None:
        """Wait until the client is ESTABLISHED; :class:`RunnerError` if it fails or closes."""
        while self.client.state is not ClientState.ESTABLISHED:
            if self.client.state in (ClientState.FAILED, ClientState.CLOSED):
                raise RunnerError(f"the client is {self.client.state.value}")
            await self._state_changed.wait()

    def send_text(self, to: wire.ContactRef, text: str, *, want_report: bool = True) -> int:
        """Queue a message (see :meth:`DeviceClient.send_text`); returns its id."""
        message_id = self.client.send_text(to, text, want_report=want_report)
        self._poke()
        return message_id

    def set_presence(self, *, available: bool = True, show: wire.Show | None = None) -> None:
        """Send the device's own presence."""
        self.client.set_presence(available=available, show=show)
        self._poke()

    def sleep(self, duration: int) -> None:
        """Send Sleep and turn the radio off once it is acknowledged, until ``duration`` passed."""
        self.client.sleep(duration, trio.current_time())
        self._poke()

    def wake(self) -> None:
        """Radio on now: resume, then Wake."""
        self.client.wake(trio.current_time())
        self._poke()

    def close(self) -> None:
        """Close the session (best effort); :meth:`run` returns once the link has carried it."""
        self.client.close()
        self._poke()

    async def stopped(self) -> None:
        """Wait until :meth:`run` has returned (closed, failed, or cancelled)."""
        await self._done.wait()

    def events(self) -> trio.MemoryReceiveChannel[ClientEvent]:
        """The stream of the client's events (``async for event in runner.events()``)."""
        return self._event_receive

    # ---- the loop ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the first socket, start the handshake, and run until closed or cancelled.

        A socket that cannot be opened raises its ``OSError`` here, before anything started.
        """
        try:
            first = await self.sockets.open()
        except BaseException:
            self._done.set()
            raise
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._adopt(0, first)
                self.client.start(
                    self.provisioning, trio.current_time(), private_key=self._private_key
                )
                task_status.started()
                await self._loop()
                nursery.cancel_scope.cancel()
        finally:
            first.close()
            for sock in self._sockets.values():
                sock.close()
            self._sockets.clear()
            self._event_send.close()
            self._done.set()
            self._notify_state()

    async def _loop(self) -> None:
        while True:
            now = trio.current_time()
            while self._inbox:
                generation, datagram = self._inbox.popleft()
                if self.link is None:
                    self._deliver(datagram, now)
                elif self.link.send_down(datagram, generation, now) is None:
                    self._count_drop("nat_no_mapping")
            if self.link is not None:
                for down in self.link.downlink_due(now):
                    self._deliver(down.datagram, now)
            deadline = self.client.next_deadline()
            if deadline is not None and deadline <= now:
                self.client.handle_timeout(now)
            await self._flush(now)
            if self._finished():
                return
            deadlines = [
                d for d in (self.client.next_deadline(), self._link_deadline()) if d is not None
            ]
            deadline = min(deadlines, default=math.inf)
            if deadline > trio.current_time() and not self._inbox:
                with trio.move_on_at(deadline):
                    await self._wakeup.wait()
            else:
                await trio.lowlevel.checkpoint()
            self._wakeup = trio.Event()

    def _finished(self) -> bool:
        if self.client.state not in (ClientState.CLOSED, ClientState.FAILED):
            return False
        return self.link is None or self.link.uplink.next_deadline() is None

    def _link_deadline(self) -> float | None:
        return self.link.next_deadline() if self.link is not None else None

    def _deliver(self, datagram: bytes, now: float) -> None:
        self.downlink.datagrams_received += 1
        self.downlink.bytes_received += len(datagram)
        if self.budget is not None:
            self.budget.on_datagram(
                datagram, sent=False, connection_id_length=len(INITIATOR_CONNECTION_ID)
            )
        self.client.receive_datagram(datagram, now)

    async def _flush(self, now: float) -> None:
        state = self.client.state
        for datagram in self.client.datagrams_to_send(now):
            self.uplink.datagrams_sent += 1
            self.uplink.bytes_sent += len(datagram)
            if self.budget is not None:
                session = self.client.session
                cid = len(session.connection_id) if session is not None else 0
                self.budget.on_datagram(datagram, sent=True, connection_id_length=cid)
            if self.link is None:
                await (await self._socket_for(0)).send(datagram)
            else:
                try:
                    self.link.send_up(datagram, now)
                except DatagramTooLargeError:
                    self._count_drop("too_large")
        if self.link is not None:
            for up in self.link.uplink_due(now):
                await (await self._socket_for(up.generation)).send(up.datagram)
        for event in self.client.events():
            self._emit(now, event)
        if self.client.state is not state:
            self._notify_state()

    def _emit(self, now: float, event: ClientEvent) -> None:
        if self.budget is not None:
            self.budget.on_event(event)
        if self._on_event is not None:
            self._on_event(now, event)
        if self._stream_events:
            try:
                self._event_send.send_nowait(event)
            except trio.WouldBlock:
                self.events_dropped += 1
        if isinstance(event, Connected | ClientClosed):
            self._notify_state()

    def _notify_state(self) -> None:
        self._state_changed.set()
        self._state_changed = trio.Event()

    def _poke(self) -> None:
        self._wakeup.set()

    def _count_drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    async def _socket_for(self, generation: int) -> DatagramSocket:
        existing = self._sockets.get(generation)
        if existing is not None:
            return existing
        sock = await self.sockets.open()
        self._adopt(generation, sock)
        for old in [g for g in self._sockets if g <= generation - KEEP_OLD_MAPPINGS]:
            self._sockets.pop(old).close()
        return sock

    def _adopt(self, generation: int, sock: DatagramSocket) -> None:
        self._sockets[generation] = sock
        assert self._nursery is not None
        self._nursery.start_soon(self._receive, generation, sock)

    async def _receive(self, generation: int, sock: DatagramSocket) -> None:
        while True:
            try:
                datagram = await sock.receive()
            except (trio.ClosedResourceError, OSError):
                return
            self._inbox.append((generation, datagram))
            self._wakeup.set()
