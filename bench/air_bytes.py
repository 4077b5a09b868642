"""``air-bytes``: the bytes on a device's link and the round trips it waits, per operation.

Ours: the device client (:class:`device_sim.client.DeviceClient`, sans-IO) over a real UDP
socket to the in-process gateway service (:mod:`device_sim.harness`), against a private Prosody
and a person on an ordinary XMPP client session (the project's :class:`XmppClient`), who answers
XEP-0184 receipt requests and approves subscription requests. Every datagram the device sends or
receives is logged: payload is the UDP payload, link bytes add 28 per datagram (20 IPv4 + 8 UDP).

Baseline: slixmpp as the device, speaking XMPP to the same Prosody through a byte-counting proxy
(:mod:`bench._xmpp_direct`): STARTTLS (TLS 1.3), SCRAM-SHA-256, XEP-0198 with resumption, an ack
request after every stanza. Payload is the TCP payload both ways; link bytes add, for every TCP
segment the kernel counted on the proxy's device-side socket (``TCP_INFO``), 20 IPv4 + 20 TCP
(+ 12 with timestamps) header bytes. A sleeping XMPP device's TCP connection is gone when it
wakes (radio off, NAT binding expired): it connects again and resumes its XEP-0198 session.

Both devices do the same operations in the same order against the same server and person. An
operation ends when what it waits for has happened and the link has then been quiet for
:data:`QUIET` seconds (so trailing acknowledgements are counted). Round trips are the device's
waits. Ours: each run of datagrams the device sent, one of which leaves it awaiting an answer (a
handshake message, or an operation not yet acknowledged; a lone acknowledgement awaits nothing),
followed by a datagram from the gateway. XMPP, whose TLS records cannot be told apart: each turn
of the link from device-to-network to network-to-device, plus one per TCP connection opened (SYN,
SYN-ACK).

Beside them, computed (not measured) from the specifications' header sizes: OSCORE (RFC 8613)
over CoAP (RFC 7252) over UDP, MQTT-SN 1.2 over DTLS 1.3 (RFC 9147) with connection ids, and the
floor: the operation's information plus an 8-byte authentication tag and a 1-byte sequence
number per message, and nothing else (see :func:`computed_alternatives`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from bench._framework import Chart, Goal, Report, Table, comparison
from bench._xmpp_direct import ETHERNET_MSS, CountingProxy, DirectDevice, LinkUse
from device_sim.client import (
    BacklogAnnounced,
    Connected,
    DeliveryReported,
    DeviceClient,
    MessageArrived,
    PresenceChanged,
    Slept,
)
from device_sim.client.events import ClientEvent
from device_sim.domain_server import ProsodyServer, running_prosody
from device_sim.harness import (
    EnrolledDevice,
    RunningGateway,
    enroll,
    make_gateway_home,
    open_gateway_store,
    serving_gateway,
    upstream_ready,
)
from gateway import wire
from gateway.xmpp import events as ev
from gateway.xmpp.client import XmppClient
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.manager import UpstreamSession, UpstreamSettings, open_upstream_manager
from gateway.xmpp.net.resolver import ServerAddress
from gateway.xmpp.net.tls import TrustStore
from gateway.xmpp.stanzas import PresenceShow, SubscriptionKind

DESCRIPTION = "bytes on the device's link and round trips per operation, vs XMPP straight"

WAIT = 30.0  # seconds of real time one operation may take before the run is declared broken
QUIET = 0.3  # seconds without traffic that end an operation (6x the gateway's ack delay)
UDP_IPV4_HEADERS = 28  # RFC 791 (20) + RFC 768 (8)
TEXT = "twenty characters!!!"  # the 20-character message
NIGHT_MESSAGES = 5
NIGHT_PRESENCES = 50
SLEEP_SECONDS = 3600
PROSODY_MODULES = Path("/usr/lib/prosody/modules")

SETUP = "session set-up (usable, resumable)"
SUBSCRIPTION = "subscription asked and approved"
CONTACT_PRESENCE = "receive a contact's presence"
PRESENCE_UPDATE = "presence update"
SEND = "send 20-char message + ack + delivery report"
SEND_ACK = "send 20-char message + its ack"
RECEIVE = "receive a 20-char message"
RESUME_SLEEP = "resumption after sleep"
RESUME_MOVED = "resumption after an address change"
NIGHT = "wake after a night (5 messages, 50 presence changes)"
OPERATIONS = (
    SETUP,
    SUBSCRIPTION,
    CONTACT_PRESENCE,
    PRESENCE_UPDATE,
    SEND_ACK,
    SEND,
    RECEIVE,
    RESUME_SLEEP,
    RESUME_MOVED,
    NIGHT,
)


@dataclass(frozen=True)
class Figures:
    """One operation on one link: payload and link bytes each way, datagrams or segments, waits."""

    payload_up: int
    payload_down: int
    link_up: int
    link_down: int
    packets_up: int
    packets_down: int
    round_trips: int
    # ours: each datagram in order, "u61" up / "d80" down, payload bytes; "*": the device
    # then awaits an answer
    sequence: str = ""

    @property
    def payload(self) -> int:
        """Payload bytes both ways."""
        return self.payload_up + self.payload_down

    @property
    def link(self) -> int:
        """Bytes on the link both ways, headers included."""
        return self.link_up + self.link_down

    def as_json(self) -> dict[str, int | str]:
        """The figures as a JSON object."""
        sequence: dict[str, int | str] = {"sequence": self.sequence} if self.sequence else {}
        return sequence | {
            "payload_bytes": self.payload,
            "payload_up": self.payload_up,
            "payload_down": self.payload_down,
            "link_bytes": self.link,
            "link_up": self.link_up,
            "link_down": self.link_down,
            "packets_up": self.packets_up,
            "packets_down": self.packets_down,
            "round_trips": self.round_trips,
        }


def _from_link(use: LinkUse) -> Figures:
    return Figures(
        use.payload_up,
        use.payload_down,
        use.link_up,
        use.link_down,
        use.segments_up,
        use.segments_down,
        use.round_trips,
    )


# -- ours: the device client over a UDP socket -----------------------------------------------------


@dataclass
class UdpDevice:
    """The sans-IO :class:`DeviceClient` over one UDP socket at a time, every datagram logged."""

    client: DeviceClient
    gateway: tuple[str, int]
    # (direction, UDP payload bytes, whether the device then awaits an answer)
    log: list[tuple[str, int, bool]] = field(default_factory=list)
    events: list[ClientEvent] = field(default_factory=list)
    last_activity: float = 0.0
    _changed: trio.Event = field(default_factory=trio.Event)
    _socket: socket.socket | None = None
    _scope: trio.CancelScope | None = None
    _wait: trio.CancelScope | None = None  # the receive loop's current wait

    def _touch(self) -> None:
        self.last_activity = trio.current_time()
        self._changed.set()
        self._changed = trio.Event()

    def flush(self) -> None:
        """Send whatever the client has due, and collect its events."""
        assert self._socket is not None
        datagrams = self.client.datagrams_to_send(trio.current_time())
        for datagram in datagrams:
            self._socket.send(datagram)
        if datagrams:
            # The device waits when it has sent something to be answered or acknowledged (a
            # handshake message, an operation); a lone acknowledgement awaits nothing.
            session = self.client.session
            awaits = session is None or session.channel is None or not session.channel.idle
            self.log.extend(("up", len(datagram), awaits) for datagram in datagrams)
            self._touch()
        events = self.client.events()
        if events:
            self.events.extend(events)
            self._touch()

    async def attach(self, nursery: trio.Nursery) -> None:
        """A new socket (a new source port: a new address to the gateway) and its receive loop."""
        if self._scope is not None:
            self._scope.cancel()
        if self._socket is not None:
            self._socket.close()
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.setblocking(False)
        raw.connect(self.gateway)
        self._socket = raw
        self._scope = await nursery.start(self._receive, trio.socket.from_stdlib_socket(raw.dup()))

    async def _receive(
        self, sock: trio.socket.SocketType, *, task_status: trio.TaskStatus[trio.CancelScope]
    ) -> None:
        with sock, trio.CancelScope() as scope:
            task_status.started(scope)
            while True:
                deadline = self.client.next_deadline()
                with trio.move_on_at(deadline if deadline is not None else math.inf) as wait:
                    self._wait = wait
                    try:
                        data = await sock.recv(65536)
                    except ConnectionRefusedError:
                        continue  # the gateway's port was closed for a moment: keep listening
                    self.log.append(("down", len(data), False))
                    self.client.receive_datagram(data, trio.current_time())
                    self._touch()  # a datagram may change state without an event (a ticket)
                    self.flush()
                    continue
                if deadline is not None and trio.current_time() >= deadline:
                    self.client.handle_timeout(trio.current_time())
                    self.flush()

    def poke(self) -> None:
        """After an application call: send what is due now, and make the receive loop read the
        client's next deadline again (the call may have set a new timer)."""
        self.flush()
        if self._wait is not None:
            self._wait.cancel()

    async def until(self, ready: Callable[[], bool], what: str) -> None:
        """Wait (bounded) until ``ready()``; then until the link has been quiet for QUIET s."""
        with trio.move_on_after(WAIT):
            while not ready():
                await self._changed.wait()
            await quiet(lambda: self.last_activity)
        if not ready():
            sequence = " ".join(f"{d[0]}{size}" for d, size, _ in self.log[-20:])
            raise RuntimeError(
                f"ours: {what} did not happen within {WAIT} s (last datagrams: {sequence};"
                f" events: {[type(e).__name__ for e in self.events[-10:]]})"
            )

    def seen(self, kind: type[ClientEvent], since: int) -> list[Any]:
        """Events of ``kind`` since index ``since``."""
        return [e for e in self.events[since:] if isinstance(e, kind)]

    def figures(self, start: int, end: int | None = None) -> Figures:
        """Datagrams ``start:end`` of the log."""
        entries = self.log[start:end]
        up = [size for direction, size, _ in entries if direction == "up"]
        down = [size for direction, size, _ in entries if direction == "down"]
        return Figures(
            payload_up=sum(up),
            payload_down=sum(down),
            link_up=sum(up) + UDP_IPV4_HEADERS * len(up),
            link_down=sum(down) + UDP_IPV4_HEADERS * len(down),
            packets_up=len(up),
            packets_down=len(down),
            round_trips=_waits(entries),
            sequence=" ".join(
                f"{direction[0]}{size}{'*' if awaits else ''}"
                for direction, size, awaits in entries
            ),
        )


def _waits(entries: Sequence[tuple[str, int, bool]]) -> int:
    """The device's waits: each run of datagrams it sent, one of which awaits an answer, that
    is followed by a datagram from the gateway."""
    waits, awaiting = 0, False
    for direction, _size, awaits in entries:
        if direction == "up":
            awaiting = awaiting or awaits
        elif awaiting:
            waits, awaiting = waits + 1, False
    return waits


async def quiet(last_activity: Callable[[], float]) -> None:
    """Return once nothing has moved on the link for :data:`QUIET` seconds."""
    while True:
        last = last_activity()
        await trio.sleep_until(max(last, trio.current_time() - QUIET) + QUIET)
        if last_activity() == last:
            return


def _first_exchange(directions: Sequence[str]) -> int:
    """How many entries make the first request and its first answer (up..., then down...)."""
    index = 0
    while index < len(directions) and directions[index] == "up":
        index += 1
    return min(index + 1, len(directions))


# -- the person on the other end -------------------------------------------------------------------


@dataclass
class Person:
    """An ordinary XMPP client session: answers receipts, approves subscriptions."""

    jid: Jid
    session: UpstreamSession
    markers: set[str] = field(default_factory=set)
    _marked: trio.Event = field(default_factory=trio.Event)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    async def drain(self) -> None:
        """Handle the person's events until cancelled."""
        async for event in self.session.events:
            if isinstance(event, ev.MessageReceived):
                message = event.message
                if message.from_ is not None and message.from_.bare == self.jid.bare:
                    self.markers.add(message.body or "")
                    self._marked.set()
                    self._marked = trio.Event()
                elif message.receipt_requested and message.from_ and message.id:
                    await self.session.use(
                        functools.partial(_receipt, to=message.from_, id=message.id)
                    )
            elif (
                isinstance(event, ev.SubscriptionReceived)
                and event.kind is SubscriptionKind.SUBSCRIBE
            ):
                await self.session.use(functools.partial(_approve, to=event.from_.bare))

    async def flushed(self) -> None:
        """Once a message to itself, sent after everything before it, came back: the server
        handles one stream's stanzas in order, so all of those were routed."""
        marker = f"marker {next(self._counter)}"
        await self.session.send_message(self.jid.bare, marker)
        with trio.fail_after(WAIT):
            while marker not in self.markers:
                await self._marked.wait()


def _receipt(client: XmppClient, *, to: Jid, id: str) -> None:
    client.send_receipt(to, id)


def _approve(client: XmppClient, *, to: Jid) -> None:
    client.send_subscription(to, SubscriptionKind.SUBSCRIBED)


# slixmpp reports an available presence's type as its show (or "available").
_NOT_AVAILABLE = frozenset(
    {"unavailable", "error", "probe", "subscribe", "subscribed", "unsubscribe", "unsubscribed"}
)
_SHOWS = (PresenceShow.AWAY, PresenceShow.CHAT, PresenceShow.DND, PresenceShow.XA)


async def _night_traffic(person: Person, to: Jid, tag: str) -> None:
    """50 presence changes, then 5 messages, then a ping: once answered, all were routed."""
    for index in range(NIGHT_PRESENCES):
        await person.session.send_presence(show=_SHOWS[index % len(_SHOWS)])
    for index in range(NIGHT_MESSAGES):
        await person.session.send_message(to, f"{tag} night {index:02d} ..........")
    await person.flushed()


# -- ours, operation by operation ------------------------------------------------------------------


async def _measure_ours(
    gateway: RunningGateway, enrolled: EnrolledDevice, person: Person, nursery: trio.Nursery
) -> dict[str, Figures]:
    figures: dict[str, Figures] = {}
    provisioning = enrolled.provisioning(gateway.configuration)
    device = UdpDevice(DeviceClient(), ("127.0.0.1", gateway.udp_port))
    await device.attach(nursery)

    def connected(since: int, resumed: bool) -> Callable[[], bool]:
        return lambda: any(c.resumed == resumed for c in device.seen(Connected, since))

    # Set-up: the handshake, with the device's initial presence (as the XMPP device's) queued
    # from the start, until the session is usable and holds a resumption ticket.
    start, mark = len(device.events), len(device.log)
    device.client.start(provisioning, trio.current_time())
    device.client.set_presence(available=True)
    device.poke()
    session = device.client.session
    assert session is not None
    await device.until(
        lambda: (
            connected(start, False)()
            and session.ticket is not None
            and session.channel is not None
            and session.channel.idle
        ),
        "set-up with ticket",
    )
    figures[SETUP] = device.figures(mark)

    start, mark = len(device.events), len(device.log)
    # The client has no call of its own for this: the operation goes on its session.
    session.send_operation(
        wire.SubscriptionCommand(wire.SubscriptionAction.SUBSCRIBE, str(person.jid))
    )
    device.poke()
    await device.until(lambda: bool(device.seen(PresenceChanged, start)), "the contact approved")
    figures[SUBSCRIPTION] = device.figures(mark)
    alias = device.seen(PresenceChanged, start)[-1].contact

    start, mark = len(device.events), len(device.log)
    await person.session.send_presence(show=PresenceShow.AWAY)
    await device.until(
        lambda: any(e.show is wire.Show.AWAY for e in device.seen(PresenceChanged, start)),
        "the contact's presence",
    )
    figures[CONTACT_PRESENCE] = device.figures(mark)

    mark = len(device.log)
    device.client.set_presence(available=True, show=wire.Show.AWAY)
    device.poke()
    await device.until(lambda: session.channel is not None and session.channel.idle, "acked")
    figures[PRESENCE_UPDATE] = device.figures(mark)

    start, mark = len(device.events), len(device.log)
    device.client.send_text(alias, TEXT)
    device.poke()
    await device.until(lambda: bool(device.seen(DeliveryReported, start)), "the delivery report")
    directions = [d for d, _, _ in device.log[mark:]]
    figures[SEND_ACK] = device.figures(mark, mark + _first_exchange(directions))
    figures[SEND] = device.figures(mark)

    start, mark = len(device.events), len(device.log)
    await person.session.send_message(Jid.parse_untrusted(enrolled.account.jid), TEXT)
    await device.until(lambda: bool(device.seen(MessageArrived, start)), "the message")
    figures[RECEIVE] = device.figures(mark)

    sleep_figures: list[Figures] = []

    async def sleep() -> None:
        start, mark = len(device.events), len(device.log)
        device.client.sleep(SLEEP_SECONDS, trio.current_time())
        device.poke()
        await device.until(lambda: bool(device.seen(Slept, start)), "asleep")
        sleep_figures.append(device.figures(mark))

    async def wake(operation: str, done: Callable[[int], bool], what: str) -> None:
        """Wake; ``operation`` measured until ``done(first event index)`` holds and the link is
        quiet. The resumption's own exchange (the first request and its answer) is kept apart
        in ``figures`` under ``operation`` + " (resumption exchange only)"."""
        start, mark = len(device.events), len(device.log)
        device.client.wake(trio.current_time())
        device.poke()
        await device.until(lambda: done(start), what)
        directions = [d for d, _, _ in device.log[mark:]]
        first = device.figures(mark, mark + _first_exchange(directions))
        figures[f"{operation} (resumption exchange only)"] = first
        figures[operation] = device.figures(mark)

    def resumed(start: int) -> bool:
        return connected(start, True)()

    await sleep()
    await wake(RESUME_SLEEP, resumed, "resumed")

    await sleep()
    await device.attach(nursery)  # a new source port: the gateway sees a new address
    await wake(RESUME_MOVED, resumed, "resumed from a new address")

    await sleep()
    await _night_traffic(person, Jid.parse_untrusted(enrolled.account.jid), "ours")
    await wake(
        NIGHT,
        lambda start: (
            len(device.seen(MessageArrived, start)) >= NIGHT_MESSAGES
            and bool(device.seen(BacklogAnnounced, start))
        ),
        "the night's messages",
    )
    figures["going to sleep (each time)"] = sleep_figures[0]
    return figures


# -- the baseline, operation by operation ----------------------------------------------------------


async def _measure_direct(
    prosody: ProsodyServer, proxy: CountingProxy, person: Person
) -> tuple[dict[str, Figures], str]:
    """The same operations by slixmpp through ``proxy``; also what its TLS negotiated."""
    figures: dict[str, Figures] = {}
    account = prosody.create_user()
    device = DirectDevice(account.jid, account.password, proxy.port, prosody.ca_file)

    async def measured(what: str) -> Figures:
        await quiet(lambda: proxy.last_activity)
        return _from_link(proxy.since(mark))

    mark = proxy.mark()
    await device.start()
    figures[SETUP] = await measured("set-up")
    try:
        seen = device.seen()
        person_bare = str(person.jid.bare)

        def presences_from_person(since: int) -> list[tuple[str, str, str]]:
            return [p for p in seen.presences[since:] if p[0].split("/")[0] == person_bare]

        mark, since = proxy.mark(), len(seen.presences)
        await device.subscribe(person_bare)
        await device.until(
            lambda s: any(t not in _NOT_AVAILABLE for _, t, _ in presences_from_person(since)),
            "the approval",
        )
        figures[SUBSCRIPTION] = await measured("subscription")

        mark, since = proxy.mark(), len(seen.presences)
        await person.session.send_presence(show=PresenceShow.AWAY)
        await device.until(
            lambda s: any(show == "away" for _, _, show in presences_from_person(since)),
            "the contact's presence",
        )
        figures[CONTACT_PRESENCE] = await measured("contact's presence")

        mark, acked = proxy.mark(), seen.acked
        await device.send_presence("away")
        await device.until(lambda s: s.acked > acked, "the presence acknowledged")
        figures[PRESENCE_UPDATE] = await measured("presence update")

        mark, acked = proxy.mark(), seen.acked
        message_id = await device.send_message(person_bare, TEXT)
        await device.until(lambda s: message_id in s.receipts, "the receipt")
        use = await measured("send")
        figures[SEND] = use
        first = proxy.chunks[mark.chunks :]
        count = _first_exchange([direction for _, direction, _, _ in first])
        figures[SEND_ACK] = _from_link(proxy.prefix(mark, count))

        mark, since = proxy.mark(), len(seen.messages)
        await person.session.send_message(Jid.parse_untrusted(account.jid), TEXT)
        await device.until(lambda s: len(s.messages) > since, "the message")
        figures[RECEIVE] = await measured("receive")

        sleep_figures: list[Figures] = []

        async def sleep() -> None:
            nonlocal mark
            mark = proxy.mark()
            await device.vanish()
            await proxy.idle()
            sleep_figures.append(await measured("sleep"))

        await sleep()
        mark = proxy.mark()
        await device.reconnect()
        figures[RESUME_SLEEP] = await measured("resumption")

        # The XMPP device's address changes with every new TCP connection: the same again.
        await sleep()
        mark = proxy.mark()
        await device.reconnect()
        figures[RESUME_MOVED] = await measured("resumption after moving")

        await sleep()
        await _night_traffic(person, Jid.parse_untrusted(account.jid), "direct")
        mark, since = proxy.mark(), len(seen.messages)
        await device.reconnect()
        await device.until(
            lambda s: len(s.messages) >= since + NIGHT_MESSAGES, "the night's messages"
        )
        figures[NIGHT] = await measured("night")
        figures["going to sleep (each time)"] = sleep_figures[0]
    finally:
        await device.close()
    return figures, device.seen().tls


def compression_offered() -> tuple[bool, str]:
    """Whether this Prosody can offer XEP-0138 stream compression, and why not."""
    module = PROSODY_MODULES / "mod_compression.lua"
    if module.exists():
        return True, f"{module} is installed"
    return False, (
        f"Prosody has no mod_compression ({module} absent; Debian's prosody 0.12 does not ship"
        " it), so no XMPP-with-compression column was measured"
    )


# -- computed alternatives -------------------------------------------------------------------------

# Each computed message: (direction, bytes of its own framing and protection, information bytes).
Message = tuple[str, int, int]

# OSCORE (RFC 8613) over CoAP (RFC 7252) over UDP, AES-CCM-16-64-128 (8-byte tag, RFC 8613 §3.2.1):
COAP_HEADER = 4  # RFC 7252 §3: Ver/T/TKL, Code, Message ID
COAP_TOKEN = 1  # RFC 7252 §5.3.1: one byte tells this device's few requests apart
OSCORE_OPTION_REQUEST = 4  # RFC 8613 §6.1: option header, flag byte, 1-byte Partial IV, 1-byte kid
OSCORE_OPTION_RESPONSE = 1  # RFC 8613 §6.1: empty option (the request's nonce is reused)
OSCORE_OPTION_NOTIFICATION = 3  # RFC 8613 §6.1, §4.1.3.5.2: header, flag, Partial IV
COAP_OBSERVE_OPTION = 2  # RFC 7641 §2: option header and a 1-byte sequence number
PAYLOAD_MARKER = 1  # RFC 7252 §3: 0xFF before a payload
INNER_CODE = 1  # RFC 8613 §5.3: the real code inside the ciphertext
INNER_URI_PATH = 2  # a one-character Uri-Path, inside the ciphertext (RFC 8613 §4.1.3.3)
AEAD_TAG = 8  # AES-CCM-16-64-128 (RFC 8613 §3.2.1), TLS_AES_128_CCM_8_SHA256 for DTLS
COAP_EMPTY_ACK = 4  # RFC 7252 §4.2: a bare header acknowledges a confirmable message
# EDHOC (RFC 9528) method 3, suite 2, credentials by kid: the sizes of RFC 9529 §3's trace.
EDHOC_MESSAGE_1, EDHOC_MESSAGE_2, EDHOC_MESSAGE_3 = 37, 45, 19
EDHOC_URI_PATH = (1 + 11) + (1 + 5)  # RFC 9528 App. A.2: Uri-Path ".well-known", "edhoc"
EDHOC_CBOR_TRUE = 1  # RFC 9528 App. A.2: message_1 is prefixed with CBOR true
EDHOC_C_R = 1  # RFC 9528 App. A.2: message_3 is prefixed with C_R
EDHOC_OPTION = 1  # RFC 9668 §3.1: the EDHOC option (empty) of the combined request

OSCORE_REQUEST = (
    COAP_HEADER
    + COAP_TOKEN
    + OSCORE_OPTION_REQUEST
    + PAYLOAD_MARKER
    + INNER_CODE
    + INNER_URI_PATH
    + PAYLOAD_MARKER
    + AEAD_TAG
)
OSCORE_RESPONSE = COAP_HEADER + COAP_TOKEN + OSCORE_OPTION_RESPONSE + PAYLOAD_MARKER
OSCORE_RESPONSE += INNER_CODE + AEAD_TAG
OSCORE_NOTIFICATION = COAP_HEADER + COAP_TOKEN + COAP_OBSERVE_OPTION + OSCORE_OPTION_NOTIFICATION
OSCORE_NOTIFICATION += PAYLOAD_MARKER + INNER_CODE + PAYLOAD_MARKER + AEAD_TAG

# MQTT-SN 1.2 over DTLS 1.3 (RFC 9147) with a 1-byte connection id, TLS_AES_128_CCM_8_SHA256:
DTLS_RECORD = 1 + 1 + 1 + 1 + AEAD_TAG  # §4: unified header byte, CID, 8-bit seq (no length);
# the inner content type; the tag
DTLS_HANDSHAKE_RECORD = 1 + 1 + 2 + 2 + 1 + AEAD_TAG  # 16-bit seq and a length in a flight
DTLS_PLAINTEXT_HEADER = 13  # §4: DTLSPlaintext (ClientHello, ServerHello)
DTLS_HANDSHAKE_HEADER = 12  # §5.2: msg_type, length, message_seq, fragment offset and length
# RFC 8446 §4.1.2/§4.1.3 with RFC 9147's changes, PSK with (EC)DHE on x25519, one suite:
DTLS_CLIENT_HELLO = DTLS_PLAINTEXT_HEADER + DTLS_HANDSHAKE_HEADER + (2 + 32 + 1 + 1 + 4 + 2 + 2)
DTLS_CLIENT_HELLO += 7 + 8 + 42 + 6 + 6 + 49  # versions, groups, key_share, psk modes, cid, psk
DTLS_SERVER_HELLO = DTLS_PLAINTEXT_HEADER + DTLS_HANDSHAKE_HEADER + (2 + 32 + 1 + 2 + 1 + 2)
DTLS_SERVER_HELLO += 6 + 40 + 6  # supported_versions, key_share, pre_shared_key
DTLS_ENCRYPTED_EXTENSIONS = DTLS_HANDSHAKE_RECORD + DTLS_HANDSHAKE_HEADER + 2 + 6  # cid extension
DTLS_FINISHED = DTLS_HANDSHAKE_RECORD + DTLS_HANDSHAKE_HEADER + 32  # SHA-256 verify_data
DTLS_ACK = DTLS_HANDSHAKE_RECORD + 2 + 16  # §7: one record number (epoch, seq) acknowledged
MQTTSN_PUBLISH = 7  # MQTT-SN 1.2 §5.4.12: Length, MsgType, Flags, TopicId(2), MsgId(2)
MQTTSN_PUBACK = 7  # §5.4.13: Length, MsgType, TopicId(2), MsgId(2), ReturnCode
MQTTSN_CONNECT = 6  # §5.4.4: Length, MsgType, Flags, ProtocolId, Duration(2), then ClientId
MQTTSN_CONNACK = 3  # §5.4.5
MQTTSN_SUBSCRIBE = 5 + 2  # §5.4.15: ..., MsgId(2), a predefined TopicId(2)
MQTTSN_SUBACK = 8  # §5.4.16
MQTTSN_PINGREQ = 2  # §5.4.19, then the ClientId of a waking sleeping client (§6.14)
MQTTSN_PINGRESP = 2  # §5.4.20
MQTTSN_DISCONNECT_SLEEP = 4  # §5.4.21 with Duration: a client going to sleep

FLOOR_OVERHEAD = AEAD_TAG + 1  # an 8-byte tag and a 1-byte sequence number per message
X25519_KEY = 32


@dataclass(frozen=True)
class Information:
    """What each operation must carry at the least, in bytes (from this run's values)."""

    text: int  # the message text (UTF-8)
    contact_address: int  # the contact's address, the first time (a subscription request)
    contact_ref: int = 1  # a contact by a 1-byte alias afterwards
    message_ref: int = 1  # which message a report or ack is about
    status: int = 1  # presence show or delivery status
    client_id: int = 2  # the device's key id (its MQTT-SN ClientId)


def _computed(messages: Sequence[Message], round_trips: int) -> dict[str, int]:
    up = [f + i for d, f, i in messages if d == "up"]
    down = [f + i for d, f, i in messages if d == "down"]
    return {
        "payload_bytes": sum(up) + sum(down),
        "link_bytes": sum(up) + sum(down) + UDP_IPV4_HEADERS * (len(up) + len(down)),
        "datagrams": len(up) + len(down),
        "round_trips": round_trips,
    }


def computed_alternatives(info: Information) -> dict[str, dict[str, dict[str, int]]]:
    """Per operation, the computed figures of OSCORE/CoAP, MQTT-SN/DTLS 1.3 and the floor.

    OSCORE: device requests are confirmable requests answered by piggybacked responses; what the
    server pushes is an Observe notification (confirmable: an empty ACK back); an observation
    only ever delivers the latest state, so a night's 50 presence changes are one notification.
    Set-up is EDHOC over CoAP with message_3 combined with the first OSCORE request (RFC 9668),
    which registers the observation. After a sleep or a move the device registers again.
    MQTT-SN: QoS 1 publishes both ways, each with its PUBACK; a sleeping client's broker buffers
    every publish; set-up is a DTLS 1.3 PSK + ECDHE handshake, CONNECT and SUBSCRIBE; after a
    sleep or a move, PINGREQ/PINGRESP (the connection id keeps the DTLS session on a new address).
    The floor: each message's information plus :data:`FLOOR_OVERHEAD`; a key exchange is two
    X25519 keys and a tag each way.
    """
    text_out = info.contact_ref + info.text
    text_in = info.contact_ref + info.text + 4  # the sender and a 4-byte timestamp
    presence = info.contact_ref + info.status
    report = info.message_ref + info.status
    floor_ack = (0, FLOOR_OVERHEAD)
    o_req, o_resp, o_note = OSCORE_REQUEST, OSCORE_RESPONSE, OSCORE_NOTIFICATION
    d, p, a = DTLS_RECORD, MQTTSN_PUBLISH, MQTTSN_PUBACK
    edhoc = [
        (
            "up",
            COAP_HEADER + COAP_TOKEN + EDHOC_URI_PATH + PAYLOAD_MARKER,
            EDHOC_CBOR_TRUE + EDHOC_MESSAGE_1,
        ),
        ("down", COAP_HEADER + COAP_TOKEN + PAYLOAD_MARKER, EDHOC_MESSAGE_2),
        (
            "up",
            o_req + EDHOC_OPTION + COAP_OBSERVE_OPTION - 1,
            EDHOC_C_R + EDHOC_MESSAGE_3 + info.status,
        ),
        ("down", o_resp + COAP_OBSERVE_OPTION + PAYLOAD_MARKER, 0),
    ]
    dtls = [
        ("up", DTLS_CLIENT_HELLO, 0),
        ("down", DTLS_SERVER_HELLO + DTLS_ENCRYPTED_EXTENSIONS + DTLS_FINISHED, 0),
        ("up", DTLS_FINISHED + d + MQTTSN_CONNECT, info.client_id),
        ("down", DTLS_ACK + d + MQTTSN_CONNACK, 0),
        ("up", d + MQTTSN_SUBSCRIBE, 0),
        ("down", d + MQTTSN_SUBACK, 0),
        ("up", d + p, info.status),
        ("down", d + a, 0),
    ]
    reregister = [("up", o_req + COAP_OBSERVE_OPTION, 0), ("down", o_resp + COAP_OBSERVE_OPTION, 0)]
    ping = [("up", d + MQTTSN_PINGREQ, info.client_id), ("down", d + MQTTSN_PINGRESP, 0)]
    f = FLOOR_OVERHEAD
    night_oscore = [*reregister, *[("down", o_note, text_in), ("up", COAP_EMPTY_ACK, 0)] * 5]
    night_oscore += [("down", o_note, presence), ("up", COAP_EMPTY_ACK, 0)]
    night_mqtt = [ping[0], *[("down", d + p, text_in), ("up", d + a, 0)] * NIGHT_MESSAGES]
    night_mqtt += [("down", d + p, presence), ("up", d + a, 0)] * NIGHT_PRESENCES
    night_mqtt.append(ping[1])
    night_floor = [("up", f, 0), *[("down", f, text_in)] * NIGHT_MESSAGES]
    night_floor += [("down", f, presence), ("up", *floor_ack)]
    models: dict[str, tuple[list[Message], int, list[Message], int, list[Message], int]] = {
        SETUP: (
            edhoc,
            2,
            dtls,
            3,
            [("up", f, X25519_KEY), ("down", f, X25519_KEY), ("up", *floor_ack)],
            1,
        ),
        SUBSCRIPTION: (
            [
                ("up", o_req, info.contact_address),
                ("down", o_resp, 0),
                ("down", o_note, presence),
                ("up", COAP_EMPTY_ACK, 0),
            ],
            1,
            [
                ("up", d + p, info.contact_address),
                ("down", d + a, 0),
                ("down", d + p, presence),
                ("up", d + a, 0),
            ],
            1,
            [("up", f, info.contact_address), ("down", f, presence), ("up", *floor_ack)],
            1,
        ),
        CONTACT_PRESENCE: (
            [("down", o_note, presence), ("up", COAP_EMPTY_ACK, 0)],
            0,
            [("down", d + p, presence), ("up", d + a, 0)],
            0,
            [("down", f, presence), ("up", *floor_ack)],
            0,
        ),
        PRESENCE_UPDATE: (
            [("up", o_req, info.status), ("down", o_resp, 0)],
            1,
            [("up", d + p, info.status), ("down", d + a, 0)],
            1,
            [("up", f, info.status), ("down", *floor_ack)],
            1,
        ),
        SEND_ACK: (
            [("up", o_req, text_out), ("down", o_resp, 0)],
            1,
            [("up", d + p, text_out), ("down", d + a, 0)],
            1,
            [("up", f, text_out), ("down", *floor_ack)],
            1,
        ),
        SEND: (
            [
                ("up", o_req, text_out),
                ("down", o_resp, 0),
                ("down", o_note, report),
                ("up", COAP_EMPTY_ACK, 0),
            ],
            1,
            [
                ("up", d + p, text_out),
                ("down", d + a, 0),
                ("down", d + p, report),
                ("up", d + a, 0),
            ],
            1,
            [("up", f, text_out), ("down", *floor_ack), ("down", f, report), ("up", *floor_ack)],
            1,
        ),
        RECEIVE: (
            [("down", o_note, text_in), ("up", COAP_EMPTY_ACK, 0)],
            0,
            [("down", d + p, text_in), ("up", d + a, 0)],
            0,
            [("down", f, text_in), ("up", *floor_ack)],
            0,
        ),
        RESUME_SLEEP: (reregister, 1, ping, 1, [("up", f, 0), ("down", *floor_ack)], 1),
        RESUME_MOVED: (reregister, 1, ping, 1, [("up", f, 0), ("down", *floor_ack)], 1),
        NIGHT: (night_oscore, 1, night_mqtt, 1, night_floor, 1),
    }
    return {
        operation: {
            "oscore_coap": _computed(oscore, oscore_rt),
            "mqtt_sn_dtls13": _computed(mqtt, mqtt_rt),
            "floor": _computed(floor, floor_rt),
        }
        for operation, (oscore, oscore_rt, mqtt, mqtt_rt, floor, floor_rt) in models.items()
    }


# -- the run ---------------------------------------------------------------------------------------


async def _open_person(
    nursery: trio.Nursery, prosody: ProsodyServer, settings: UpstreamSettings
) -> Person:
    from gateway.xmpp.client import ClientConfig

    manager = await nursery.start(_manager, settings)
    account = prosody.create_user()
    jid = Jid.parse_untrusted(account.jid)
    session = await manager.open_session(ClientConfig(jid=jid, password=account.password))
    with trio.fail_after(WAIT):
        await session.established.wait()
    await session.send_presence()
    person = Person(jid, session)
    nursery.start_soon(person.drain)
    return person


async def _manager(settings: UpstreamSettings, *, task_status: trio.TaskStatus[Any]) -> None:
    async with open_upstream_manager(settings) as manager:
        task_status.started(manager)
        await trio.sleep_forever()


async def _measure(
    prosody: ProsodyServer, config_path: Path
) -> tuple[dict[str, Figures], dict[str, Figures], Information, str]:
    settings = UpstreamSettings(
        trust=TrustStore(prosody.ca_file, use_system_store=False),
        static_hosts={prosody.domain: [ServerAddress(prosody.host, prosody.c2s_port)]},
    )
    async with (
        open_gateway_store(config_path) as (store, configuration),
        trio.open_nursery() as nursery,
    ):
        enrolled = await enroll(store, configuration, prosody.create_user())
        person = await _open_person(nursery, prosody, settings)
        async with serving_gateway(
            nursery, store, configuration, registry_refresh=3600.0, stop_timeout=WAIT
        ) as gateway:
            await upstream_ready(gateway, enrolled.kid, WAIT)
            ours = await _measure_ours(gateway, enrolled, person, nursery)
        proxy = CountingProxy((prosody.host, prosody.c2s_port))
        await nursery.start(proxy.serve)
        baseline, tls = await _measure_direct(prosody, proxy, person)
        nursery.cancel_scope.cancel()
    info = Information(
        text=len(TEXT.encode()),
        contact_address=len(str(person.jid).encode()),
        client_id=len(enrolled.kid),
    )
    return ours, baseline, info, tls


def _times(baseline: int, ours: int) -> float:
    return round(baseline / ours, 2) if ours else float("inf")


def run(quick: bool) -> Report:
    """Measure every operation on both devices against one private Prosody (``quick``: the same;
    the run is one pass of each operation either way)."""
    del quick  # one pass of each operation is both the quick and the full run
    with (
        tempfile.TemporaryDirectory(prefix="bench-air-bytes-") as directory,
        running_prosody(Path(directory)) as prosody,
    ):
        config = make_gateway_home(Path(directory) / "gw", prosody)
        ours, baseline, info, tls = trio.run(_measure, prosody, config)
    computed = computed_alternatives(info)
    compression, compression_note = compression_offered()
    results = []
    rows = []
    for operation in OPERATIONS:
        o, b = ours[operation], baseline[operation]
        alternatives = computed[operation]
        results.append(
            comparison(
                "operation",
                operation,
                o.payload,
                b.payload,
                "bytes (payload, both directions)",
                times_fewer_payload=_times(b.payload, o.payload),
                times_fewer_link=_times(b.link, o.link),
                ours_figures=o.as_json(),
                baseline_figures=b.as_json(),
                computed=alternatives,
            )
        )
        rows.append(
            [
                operation,
                o.payload,
                o.link,
                o.round_trips,
                b.payload,
                b.link,
                b.round_trips,
                _times(b.payload, o.payload),
                _times(b.link, o.link),
                alternatives["oscore_coap"]["payload_bytes"],
                alternatives["mqtt_sn_dtls13"]["payload_bytes"],
                alternatives["floor"]["payload_bytes"],
            ]
        )
    goals = _goals(ours, baseline)
    tables = [
        Table(
            "Bytes and round trips per operation (measured: ours and XMPP straight; computed:"
            " OSCORE/CoAP, MQTT-SN/DTLS 1.3, floor — payload bytes)",
            [
                "operation",
                "ours B",
                "ours link B",
                "ours RT",
                "XMPP B",
                "XMPP link B",
                "XMPP RT",
                "x fewer",
                "x fewer link",
                "OSCORE B*",
                "MQTT-SN B*",
                "floor B*",
            ],
            rows,
        ),
    ]
    categories = list(OPERATIONS)
    charts = [
        Chart(
            "Bytes on the device's link per operation (log scale; * computed)",
            categories,
            {
                "ours (measured)": [ours[op].link for op in categories],
                "XMPP straight (measured)": [baseline[op].link for op in categories],
                "OSCORE/CoAP*": [computed[op]["oscore_coap"]["link_bytes"] for op in categories],
                "MQTT-SN/DTLS 1.3*": [
                    computed[op]["mqtt_sn_dtls13"]["link_bytes"] for op in categories
                ],
                "floor*": [computed[op]["floor"]["link_bytes"] for op in categories],
            },
            "bytes (IP + UDP/TCP headers included)",
            log_scale=True,
        )
    ]
    notes = [
        "payload: UDP payload (ours), TCP payload (XMPP); link: + 28 B per UDP datagram"
        " (IPv4 + UDP), + 40 B per TCP segment (+ 12 with TCP timestamps) with every segment"
        " the kernel counted (TCP_INFO tcpi_segs_in/out on the proxy's device-side socket:"
        " SYN, FIN and pure ACKs included), the proxy's listener capped at an Ethernet MSS"
        f" (TCP_MAXSEG {ETHERNET_MSS})",
        "round trips: the device's waits; ours: each run of datagrams holding one that awaits"
        " an answer (handshake, unacknowledged operation), followed by a gateway datagram; XMPP:"
        " each turn of the link from device-to-network to network-to-device, plus one per TCP"
        " connection opened (a turn where the device only answered Prosody's ack request counts"
        " too: the XMPP figure varies by one or two between runs)",
        f"an operation ends {QUIET} s after the last packet once what it waits for happened",
        f"XMPP straight: slixmpp, STARTTLS ({tls}, P-256 certificate), SCRAM-SHA-256, XEP-0198"
        " with resumption and an ack request after each stanza, initial presence; Prosody 0.12"
        " asks for an ack after each stanza it sends (smacks_max_unacked_stanzas = 0)",
        "a sleeping XMPP device's TCP connection is gone when it wakes: it connects again,"
        " STARTTLS, SCRAM, and resumes its XEP-0198 session (the address change is the same)",
        f"stream compression: {compression_note}"
        if not compression
        else f"stream compression: {compression_note} but not enabled in this Prosody",
        "* computed, not measured: the specifications' header sizes (bench/air_bytes.py"
        " computed_alternatives cites each) on the same information; the floor is the"
        " information plus an 8-byte tag and a 1-byte sequence number per message",
        f"{SEND_ACK!r} is the first request and its first answer of {SEND!r}",
    ]
    details = {
        "ours_resumption_exchange_only": {
            key.removesuffix(" (resumption exchange only)"): figures.as_json()
            for key, figures in ours.items()
            if key.endswith(" (resumption exchange only)")
        },
        "going_to_sleep": {
            "ours": ours["going to sleep (each time)"].as_json(),
            "baseline": baseline["going to sleep (each time)"].as_json(),
        },
        "information_bytes": dataclasses.asdict(info),
        "xmpp_tls": tls,
        "stream_compression_offered": compression,
        "quiet_seconds": QUIET,
    }
    return Report(
        results=results, tables=tables, notes=notes, charts=charts, goals=goals, details=details
    )


def _goals(ours: dict[str, Figures], baseline: dict[str, Figures]) -> list[Goal]:
    def fewer(operation: str, at_least: float, round_trips: int | None = None) -> Goal:
        o, b = ours[operation], baseline[operation]
        times = _times(b.payload, o.payload)
        met = times >= at_least and (round_trips is None or o.round_trips <= round_trips)
        text = f"{operation}: at least {at_least:g}x fewer bytes"
        if round_trips is not None:
            text += f" in at most {round_trips} round trip{'s' if round_trips > 1 else ''}"
        return Goal(
            text,
            f"{times:g}x ({o.payload} B vs {b.payload} B), {o.round_trips} round trips"
            f" (XMPP {b.round_trips})",
            met,
        )

    send, send_base = ours[SEND_ACK], baseline[SEND_ACK]
    overhead, overhead_base = send.payload - len(TEXT), send_base.payload - len(TEXT)
    return [
        fewer(SETUP, 45, 2),
        fewer(RESUME_SLEEP, 70, 1),
        fewer(RESUME_MOVED, 70, 1),
        fewer(SEND_ACK, 5),
        Goal(
            f"{SEND_ACK}: at most 48 B",
            f"{send.payload} B payload ({send.link} B on the link)",
            send.payload <= 48,
        ),
        Goal(
            f"{SEND_ACK}: at least 8x fewer bytes beyond the 20 of text",
            f"{_times(overhead_base, overhead):g}x ({overhead} B vs {overhead_base} B)",
            _times(overhead_base, overhead) >= 8,
        ),
        fewer(PRESENCE_UPDATE, 10),
        fewer(CONTACT_PRESENCE, 6),
    ]
