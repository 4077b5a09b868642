"""Steps 3 to 6 of the demo (see device_sim/demo.py): each does one exchange and prints its cost.

The steps share a :class:`DemoRun` (the gateway's UDP endpoint, the device's driver and tap, the
accounts and the enrollment) and, from step 5, an :class:`Upstream` (two sessions of our XMPP
client: the gateway acting as the device's account, and the person). Every wait on a real process
is bounded by ``STEP_TIMEOUT``; anything unexpected raises :class:`DemoError` with a reason.
"""

from __future__ import annotations

import datetime
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import trio

from device_sim.demo_parts import (
    SHOW_TO_XMPP,
    HandshakeRecord,
    Tap,
    message_element,
    outbound_message,
    outbound_presence,
    presence_element,
    stanza_size,
    text_of,
)
from device_sim.demo_report import DemoError, Narrator, Row
from device_sim.domain_server import Account
from gateway import wire
from gateway.impp import ImppAddress, message_to_cpim, presence_to_pidf
from gateway.session import DeviceSessionEstablished, OperationReceived, SessionClosed
from gateway.signing import (
    CertificateAuthority,
    DeviceCredential,
    E2eVerifier,
    OnBehalfSigner,
    SignatureStatus,
)
from gateway.transport import DeviceDriver, DeviceSessionEvent, UdpEndpoint
from gateway.xmpp import Jid, events
from gateway.xmpp.net import UpstreamSession
from gateway.xmpp.stanzas import RECEIPTS_NS, build_message, build_presence

DEVICE_TEXT = "Temperature 21.5 C ok"  # what the device says (about 20 characters)
REPLY_TEXT = "Thanks, got it!"
PRESENCE_NOTE = "battery 81%"
STEP_TIMEOUT = 20.0  # seconds any one exchange with real processes may take before we give up
GOODBYE_TIMEOUT = 2.0  # seconds to wait for the device to hear the gateway's Close
MESSAGE_TAG = "{jabber:client}message"

T = TypeVar("T")


@dataclass
class DemoRun:
    """What the steps share: the device link, the accounts, the enrollment."""

    narrator: Narrator
    endpoint: UdpEndpoint
    driver: DeviceDriver
    tap: Tap
    record: HandshakeRecord
    device_account: Account
    person_account: Account
    ca: CertificateAuthority
    credential: DeviceCredential
    connection_id: bytes = b""


@dataclass
class Upstream:
    """The two XMPP sessions of step 5 on, and the gateway's signing and verifying objects."""

    device: UpstreamSession  # the gateway, logged in as the device's account
    person: UpstreamSession
    device_jid: Jid
    person_jid: Jid
    signer: OnBehalfSigner = field(default_factory=OnBehalfSigner)
    person_verifier: E2eVerifier | None = None  # the person's client: trusts the gateway CA
    gateway_verifier: E2eVerifier | None = None  # the gateway, for stanzas to the device


# -- waiting for events -----------------------------------------------------------------------


def _datagrams(entries: list[tuple[int, str]]) -> str:
    return ", ".join(f"{kind} {size} B" for size, kind in entries) or "none"


def _operation_record(entries: list[tuple[int, str]], what: str) -> int:
    sizes = [size for size, kind in entries if kind == "record (operation)"]
    if not sizes:
        raise DemoError(f"no protected record carried the {what}")
    return sizes[0]


async def _gateway_operation(
    channel: trio.MemoryReceiveChannel[DeviceSessionEvent], kind: type[T]
) -> T:
    """The next operation of type ``kind`` the gateway received (other events are skipped)."""
    with trio.fail_after(STEP_TIMEOUT):
        async for item in channel:
            if isinstance(item.event, SessionClosed):
                raise DemoError(f"the gateway's session closed: {item.event.reason}")
            if isinstance(item.event, OperationReceived) and isinstance(item.event.message, kind):
                return item.event.message
    raise DemoError("the gateway's event channel closed")


async def _device_operation(channel: trio.MemoryReceiveChannel[object], kind: type[T]) -> T:
    """The next operation of type ``kind`` the device received."""
    with trio.fail_after(STEP_TIMEOUT):
        async for event in channel:
            if isinstance(event, SessionClosed):
                raise DemoError(f"the device's session closed: {event.reason}")
            if isinstance(event, OperationReceived) and isinstance(event.message, kind):
                return event.message
    raise DemoError("the device's event channel closed")


def _fatal(event: events.UpstreamSessionEvent, who: str) -> None:
    if isinstance(event, events.ConnectionClosed):
        raise DemoError(f"{who}'s XMPP connection closed: {event.error}")
    if isinstance(event, events.StreamEnded) and event.error is not None:
        raise DemoError(f"{who}'s XMPP stream failed: {event.error}")
    if isinstance(event, events.MessageFailed | events.PresenceFailed):
        raise DemoError(f"{who} got a stanza error: {event.error}")


async def _xmpp_event(
    session: UpstreamSession,
    kind: type[T],
    who: str,
    match: Callable[[T], bool] = lambda _event: True,
) -> tuple[T, list[events.UpstreamSessionEvent]]:
    """The next event of type ``kind`` (and ``match``), with the events seen before it."""
    seen: list[events.UpstreamSessionEvent] = []
    with trio.fail_after(STEP_TIMEOUT):
        async for event in session.events:
            _fatal(event, who)
            if isinstance(event, kind) and match(event):
                return event, seen
            seen.append(event)
    raise DemoError(f"{who}'s XMPP session stopped")


# -- step 3 -----------------------------------------------------------------------------------


async def authenticate(run: DemoRun, address: object) -> None:
    """Step 3: EDHOC inside the session layer's handshake packets, over UDP on loopback."""
    say = run.narrator.say
    run.narrator.step(3, "The device authenticates to the gateway: EDHOC over UDP (loopback)")
    say(f"gateway UDP endpoint (gateway/transport) listening on {address}")
    mark = run.tap.mark()
    run.driver.connect()
    peer = b""
    with trio.fail_after(STEP_TIMEOUT):
        async for item in run.endpoint.events:
            if isinstance(item.event, DeviceSessionEstablished):
                run.connection_id, peer = item.connection_id, item.event.peer_identity
                break
        async for event in run.driver.events:
            if isinstance(event, DeviceSessionEstablished):
                break
            if isinstance(event, SessionClosed):
                raise DemoError(f"the device's handshake failed: {event.reason}")
    sizes = run.record.sizes
    say(
        "EDHOC method 3 (static DH both ways), cipher suite 2 (AES-CCM-16-64-128, SHA-256, "
        "P-256); device = Initiator, gateway = Responder"
    )
    say(
        f"EDHOC message_1 {sizes.get('message_1', 0)} B, message_2 {sizes.get('message_2', 0)} "
        f"B, message_3 {sizes.get('message_3', 0)} B = {sum(sizes.values())} B for mutual "
        "authentication"
    )
    sent, received = run.tap.since(mark, "sent"), run.tap.since(mark, "received")
    say(f"device sent: {_datagrams(sent)}")
    say(f"device received: {_datagrams(received)}")
    if not run.record.secrets_match():
        raise DemoError("device and gateway derived different EDHOC exporter outputs")
    run.record.forget_secrets()
    say(
        "EDHOC_Exporter(32768, h'', 32) on both sides: identical (compared in constant time, "
        "never printed); the record keys are derived from it"
    )
    ticket = "received" if run.driver.session.ticket is not None else "not received"
    say(
        f"gateway authenticated the device as kid 0x{peer.hex()}; connection id "
        f"0x{run.connection_id.hex()}; resumption ticket {ticket}"
    )
    total = sum(size for size, _ in sent) + sum(size for size, _ in received)
    run.narrator.row(
        Row(
            "EDHOC + session set-up",
            total,
            f"{len(sent) + len(received)} datagrams",
            None,
            "TLS + SASL login (not counted)",
        )
    )


# -- step 4 -----------------------------------------------------------------------------------


async def send_from_device(run: DemoRun) -> tuple[wire.SendMessage, int]:
    """Step 4: the device's SendMessage in a protected record; returns it and the record size."""
    say = run.narrator.say
    run.narrator.step(
        4, f"The device sends a message to {run.person_account.jid} in the secure session"
    )
    operation = wire.SendMessage(
        id=1, to=run.person_account.jid, content=wire.TextContent(DEVICE_TEXT)
    )
    encoded = wire.encode(operation)
    mark = run.tap.mark()
    run.driver.send_operation(operation)
    received = await _gateway_operation(run.endpoint.events, wire.SendMessage)
    record_size = _operation_record(run.tap.since(mark, "sent"), "SendMessage")
    say(
        f"SendMessage(id=1, to={operation.to!r}, {len(DEVICE_TEXT)} characters of text): "
        f"{len(encoded)} B of CBOR (gateway/wire)"
    )
    say(
        f"protected record on the wire: {record_size} B (header, connection id, sequence "
        f"number and AEAD tag: {record_size - len(encoded)} B)"
    )
    say(f"the gateway decrypted and decoded it: SendMessage(id={received.id}) to {received.to!r}")
    return received, record_size


# -- step 5 -----------------------------------------------------------------------------------


async def log_in(run: Upstream, narrator: Narrator) -> None:
    """Both XMPP sessions up; the device's account announced available, the person online."""
    ready, before = await _xmpp_event(run.device, events.SessionEstablished, "the device")
    await _xmpp_event(run.person, events.SessionEstablished, str(run.person_jid))
    await run.device.send_presence()  # the device is reachable while its session lives
    await run.person.send_presence()
    ping_id = await run.person.use(lambda client: client.ping(trio.current_time()))
    # The ping's answer proves the server processed the person's presence first (same stream).
    await _xmpp_event(
        run.person, events.PingAnswered, str(run.person_jid), lambda e: e.id == ping_id
    )
    mechanisms = [e.mechanism for e in before if isinstance(e, events.Authenticated)]
    narrator.say(
        f"our XMPP client (gateway/xmpp) logged in as {ready.jid}: STARTTLS trusting the "
        f"private CA, SASL {mechanisms[0] if mechanisms else '?'}, stream management "
        f"{'on' if ready.stream_management else 'off'}"
    )
    narrator.say(
        "the gateway announced the device available (initial presence, RFC 6121 §4.2), so "
        "messages to its bare JID reach it"
    )
    narrator.say(f"{run.person_jid} is online too (a second session of our XMPP client)")


async def relay_message(
    run: DemoRun, up: Upstream, operation: wire.SendMessage, record_size: int
) -> str:
    """The SendMessage as a signed XMPP message; the person receives and verifies it."""
    say = run.narrator.say
    assert up.person_verifier is not None
    full_jid = str(up.device.client.jid)
    text = text_of(operation.content)
    now = time.time()
    cpim = message_to_cpim(
        outbound_message(full_jid, str(up.person_jid), text),
        date_time=datetime.datetime.fromtimestamp(now, datetime.UTC),
    )
    children = up.signer.sign_message(run.credential, cpim, now=now)
    stanza_id = up.device.client.next_id()
    plain = build_message(up.person_jid, id=stanza_id, body=text)
    stanza = build_message(up.person_jid, id=stanza_id, request_receipt=True, extensions=children)
    say(f"Message/CPIM object (RFC 3862, gateway/impp): {len(cpim.to_bytes())} B")
    say(
        f"signed on the device's behalf (RFC 3923: multipart/signed, CMS, ECDSA P-256, device "
        f"certificate included): <e2e/> of {len(children[-1].text or '')} B"
    )
    say(
        f"<message/> with <body/>, <e2e/> and a receipt request: {stanza_size(stanza)} B "
        f"(the same message unsigned: {stanza_size(plain)} B)"
    )
    await up.device.use(lambda client: client.send_stanza(stanza))
    got, _ = await _xmpp_event(
        up.person,
        events.MessageReceived,
        str(up.person_jid),
        lambda e: e.message.from_ is not None and e.message.from_.bare == up.device_jid,
    )
    message = got.message
    result = up.person_verifier.verify_stanza(
        message_element(message), now=time.time(), recipient=ImppAddress.parse(str(up.person_jid))
    )
    signer = f", signer {result.signer.im_uri}" if result.signer is not None else ""
    reason = f", {result.reason}" if result.reason is not None else ""
    say(
        f"{up.person_jid} received {message.body!r} from {message.from_}; <e2e/> checked "
        f"against the gateway CA: {result.status.name}{signer}{reason}"
    )
    if result.status is not SignatureStatus.VERIFIED:
        raise DemoError(f"the signature did not verify: {result.reason}")
    run.narrator.row(
        Row(
            "device message out",
            record_size,
            "record",
            stanza_size(stanza),
            f"signed stanza; {stanza_size(plain)} B unsigned",
        )
    )
    if message.from_ is None or message.id is None:
        raise DemoError("the received message lacks a sender or an id")
    # The person's client confirms delivery (XEP-0184 §5.2) and answers.
    receipt = ET.Element(MESSAGE_TAG, {"to": str(message.from_), "id": up.person.client.next_id()})
    ET.SubElement(receipt, f"{{{RECEIPTS_NS}}}received", {"id": message.id})
    await up.person.use(lambda client: client.send_stanza(receipt))
    await up.person.send_message(up.device_jid, REPLY_TEXT)
    await _deliver_back(run, up, stanza_id, stanza_size(receipt))
    return full_jid


async def _deliver_back(run: DemoRun, up: Upstream, stanza_id: str, receipt_size: int) -> None:
    """The receipt and the reply reach the device's account and go down to the device."""
    say = run.narrator.say
    assert up.gateway_verifier is not None
    reply = None
    receipt_seen = False
    with trio.fail_after(STEP_TIMEOUT):
        async for event in up.device.events:
            _fatal(event, "the device")
            if isinstance(event, events.ReceiptReceived) and event.message_id == stanza_id:
                receipt_seen = True
            elif isinstance(event, events.MessageReceived) and (
                event.message.from_ is not None and event.message.from_.bare == up.person_jid
            ):
                reply = event.message
            if receipt_seen and reply is not None:
                break
    if reply is None or reply.from_ is None:
        raise DemoError("the person's reply did not arrive")
    say(f"{up.person_jid} confirmed delivery (XEP-0184) and replied {reply.body!r}")

    report = wire.DeliveryReport(id=1, status=wire.DeliveryStatus.DELIVERED)
    mark = run.tap.mark()
    run.endpoint.send_operation(run.connection_id, report)
    await _device_operation(run.driver.events, wire.DeliveryReport)
    report_record = _operation_record(run.tap.since(mark, "received"), "DeliveryReport")
    say(
        f"gateway -> device: DeliveryReport(id=1, DELIVERED): {len(wire.encode(report))} B "
        f"CBOR, record {report_record} B (the receipt stanza: {receipt_size} B)"
    )
    run.narrator.row(
        Row("delivery report", report_record, "record", receipt_size, "XEP-0184 receipt")
    )

    reply_element = message_element(reply)
    verdict = up.gateway_verifier.verify_stanza(
        reply_element, now=time.time(), recipient=ImppAddress.parse(str(up.device_jid))
    )
    incoming = wire.IncomingMessage(
        id=1,
        sender=str(reply.from_.bare),
        timestamp=int(time.time()),
        content=wire.TextContent(reply.body or ""),
        signature=verdict.status,
    )
    mark = run.tap.mark()
    run.endpoint.send_operation(run.connection_id, incoming)
    delivered = await _device_operation(run.driver.events, wire.IncomingMessage)
    incoming_record = _operation_record(run.tap.since(mark, "received"), "IncomingMessage")
    say(
        f"gateway -> device: IncomingMessage from {delivered.sender!r}, {len(REPLY_TEXT)} "
        f"characters, signature {delivered.signature.name} (the person did not sign): "
        f"{len(wire.encode(incoming))} B CBOR, record {incoming_record} B"
    )
    say(
        f"the same reply as an XMPP stanza: {stanza_size(reply_element)} B (as received, "
        "re-serialized from the parsed stanza, with the server's additions)"
    )
    run.narrator.row(
        Row(
            "message to device",
            incoming_record,
            "record",
            stanza_size(reply_element),
            "stanza as received",
        )
    )


# -- step 6 -----------------------------------------------------------------------------------


async def update_presence(run: DemoRun, up: Upstream, full_jid: str) -> None:
    """Step 6: SetPresence -> signed PIDF in a directed presence; the person verifies it."""
    say = run.narrator.say
    assert up.person_verifier is not None
    run.narrator.step(6, "The device updates its presence")
    update = wire.SetPresence(open=True, show=wire.Show.AWAY, note=PRESENCE_NOTE)
    mark = run.tap.mark()
    run.driver.send_operation(update)
    got = await _gateway_operation(run.endpoint.events, wire.SetPresence)
    update_record = _operation_record(run.tap.since(mark, "sent"), "SetPresence")
    say(
        f"SetPresence(open, AWAY, note {PRESENCE_NOTE!r}): {len(wire.encode(update))} B CBOR, "
        f"record {update_record} B"
    )
    now = time.time()
    pidf = presence_to_pidf(
        outbound_presence(full_jid, str(up.person_jid), got),
        timestamp=datetime.datetime.fromtimestamp(now, datetime.UTC),
    )
    e2e = up.signer.sign_presence(run.credential, pidf, now=now)
    show = SHOW_TO_XMPP[got.show] if got.show is not None else None
    presence = build_presence(to=up.person_jid, show=show, status=got.note, extensions=[e2e])
    plain = build_presence(to=up.person_jid, show=show, status=got.note)
    say(f"PIDF document (RFC 3863): {len(pidf.to_bytes())} B, signed on the device's behalf")
    say(
        "directed <presence/> (no subscriptions yet: those are relay work) with <show/>, "
        f"<status/> and <e2e/>: {stanza_size(presence)} B (unsigned: {stanza_size(plain)} B)"
    )
    await up.device.use(lambda client: client.send_stanza(presence))
    seen, _ = await _xmpp_event(
        up.person,
        events.PresenceReceived,
        str(up.person_jid),
        lambda e: e.presence.from_ is not None and e.presence.from_.bare == up.device_jid,
    )
    result = up.person_verifier.verify_stanza(presence_element(seen.presence), now=time.time())
    say(
        f"{up.person_jid} sees {seen.presence.from_} as {seen.presence.show} "
        f"({seen.presence.status!r}); <e2e/> signature: {result.status.name}"
    )
    if result.status is not SignatureStatus.VERIFIED:
        raise DemoError(f"the presence signature did not verify: {result.reason}")
    run.narrator.row(
        Row(
            "presence update",
            update_record,
            "record",
            stanza_size(presence),
            f"signed stanza; {stanza_size(plain)} B unsigned",
        )
    )


async def say_goodbye(run: DemoRun) -> None:
    """The gateway closes the device's session (Close); wait briefly for the device to hear it."""
    await run.endpoint.aclose()
    with trio.move_on_after(GOODBYE_TIMEOUT):
        async for event in run.driver.events:
            if isinstance(event, SessionClosed):
                run.narrator.say(f"device session ended: {event.reason}")
                return
    run.narrator.say("device session: no goodbye heard (the gateway's Close is best effort)")
