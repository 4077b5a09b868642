"""``impp-devices demo``: the end-to-end story through the real gateway service, as processes.

What runs, each as its own process or session, nothing wired by hand:

1. a private Prosody on loopback (:class:`~device_sim.domain_server.ProsodyServer`), with the
   device's account and a person's account;
2. ``impp-gateway init DIR --domain D``, its configuration pointed at that Prosody (a free loopback
   port for the device listeners, ``[upstream.domains."D"]`` with the Prosody's address and CA);
3. ``impp-gateway enroll``, which logs in once, issues the device's keys and writes its
   provisioning file;
4. ``impp-gateway run`` as a child process, ready once it logs ``gateway running`` and the
   device's upstream session ``established``;
5. the device: the project's :class:`~gateway.session.DeviceSession` over loopback UDP, built only
   from the provisioning file; the person: a session of the project's XMPP client;
6. the story: the EDHOC handshake, a message device -> person with the person's receipt coming
   back as DeliveryReport DELIVERED, a message person -> device, a mutual presence subscription
   and presence each way, then SIGTERM of the gateway and its exit status 0.

Every wait is bounded (``STEP_TIMEOUT``), there is no fixed sleep, and every process is ended and
the temporary directory removed on any exit. Passwords and message bodies go only where they
belong: the password file (mode 0600) and the accounts' streams, never the narrative's log scan.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, TypeVar

import trio
from cryptography import x509

from device_sim.demo_parts import (
    HandshakeRecord,
    RecordingInitiator,
    Tap,
    TappedDeviceSession,
    message_element,
    presence_element,
    stanza_size,
)
from device_sim.demo_report import DemoError, Narrator
from device_sim.domain_server import Account, ProsodyError, ProsodyServer
from gateway import wire
from gateway.edhoc import CipherSuite, Credential, IdCred, Initiator, Method
from gateway.enroll.provisioning import Provisioning, Transport, read_provisioning_file
from gateway.impp import ImppAddress
from gateway.session import (
    DeviceSessionEstablished,
    EdhocInitiator,
    OperationReceived,
    SessionClosed,
    WireCodec,
)
from gateway.signing import E2eVerifier, SignerTrustStore
from gateway.transport import DeviceDriver, run_device_over_udp
from gateway.wire import SignatureStatus
from gateway.xmpp import ClientConfig, Jid, events
from gateway.xmpp.net import (
    ServerAddress,
    TrustStore,
    UpstreamSession,
    UpstreamSettings,
    open_upstream_manager,
)
from gateway.xmpp.stanzas import RECEIPTS_NS, PresenceShow, SubscriptionKind

__all__ = ["STEP_TIMEOUT", "run_service_demo"]

STEP_TIMEOUT = 30.0  # seconds any one step with real processes may take before we give up
DEVICE_LOCALPART = "sensor-1"
PERSON_LOCALPART = "alice"
DEVICE_TEXT = "Temperature 21.5 C ok"
REPLY_TEXT = "Thanks, got it!"
PRESENCE_NOTE = "battery 81%"
PERSON_NOTE = "in a meeting"
DEVICE_C_I = b"\x37"
MESSAGE_TAG = "{jabber:client}message"
GATEWAY_BIN = Path(sys.executable).with_name("impp-gateway")
T = TypeVar("T")


def run_service_demo(out: TextIO) -> int:
    """Run the whole service demo, narrating to ``out``; 0 on success, 1 on failure."""
    narrator = Narrator(out)
    narrator.title("impp-devices demo: a device talks to an XMPP user through impp-gateway run")
    started = time.monotonic()
    try:
        directory = _run_in_temporary_directory(narrator)
    except BaseException as raised:  # every failure becomes one clear message and status 1
        failure = _unwrap(raised)
        if isinstance(failure, KeyboardInterrupt | SystemExit):
            raise
        step = narrator.current_step
        if isinstance(failure, DemoError | ProsodyError):
            out.write(f"\ndemo failed at step {step}: {failure}\n")
        elif isinstance(failure, trio.TooSlowError):
            out.write(f"\ndemo failed at step {step}: no answer within {STEP_TIMEOUT:.0f} s\n")
        else:
            out.write(f"\ndemo failed at step {step}: unexpected {type(failure).__name__}\n")
            traceback.print_exception(failure, file=out)
        return 1
    out.write(
        f"\nDemo finished in {time.monotonic() - started:.1f} s. The gateway and Prosody "
        f"stopped, no process left behind, temporary directory {directory} removed.\n"
    )
    return 0


def _unwrap(error: BaseException) -> BaseException:
    """The first real failure inside (possibly nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        inner = [e for e in error.exceptions if not isinstance(e, trio.Cancelled)]
        error = (inner or list(error.exceptions))[0]
    return error


def _run_in_temporary_directory(narrator: Narrator) -> str:
    """Step 1, then the rest under trio; Prosody and the directory are gone on return."""
    with tempfile.TemporaryDirectory(prefix="impp-demo-") as directory:
        narrator.step(1, "A private XMPP domain server (Prosody) on loopback")
        (Path(directory) / "prosody").mkdir()
        server = ProsodyServer(Path(directory) / "prosody")
        try:
            server.start()
            narrator.say(
                f"Prosody serves {server.domain} on {server.host}:{server.c2s_port} (c2s, "
                "STARTTLS with a certificate from a throw-away CA)"
            )
            device_account = server.create_user(DEVICE_LOCALPART)
            person_account = server.create_user(PERSON_LOCALPART)
            narrator.say(f"registered {device_account.jid} (the device's account)")
            narrator.say(f"registered {person_account.jid} (a person)")
            trio.run(_story, narrator, Path(directory), server, device_account, person_account)
        finally:
            server.stop()
        leftover = server.running_processes()
        leftover += _processes_mentioning(directory)
    if leftover:
        raise DemoError(f"processes left behind: {sorted(set(leftover))}")
    if Path(directory).exists():
        raise DemoError(f"temporary directory {directory} was not removed")
    return directory


def _processes_mentioning(directory: str) -> list[int]:
    """Pids of processes with ``directory`` on their command line (the gateway's, say)."""
    marker = directory.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _free_port() -> int:
    """A loopback port free for both UDP and TCP right now (the gateway listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise DemoError("no loopback port free for both UDP and TCP")


def _edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in the file (the template's line must exist)."""
    text = path.read_text("utf-8")
    if text.count(old) != 1:
        raise DemoError(f"{path}: expected one {old!r} in the template, found {text.count(old)}")
    path.write_text(text.replace(old, new), "utf-8")


async def _gateway_command(*args: str) -> list[str]:
    """Run ``impp-gateway ARGS`` (bounded); its output lines, or DemoError with its stderr."""
    with trio.fail_after(STEP_TIMEOUT):
        result = await trio.run_process(
            [str(GATEWAY_BIN), *args], capture_stdout=True, capture_stderr=True, check=False
        )
    if result.returncode != 0:
        raise DemoError(
            f"impp-gateway {args[0]} exited {result.returncode}: "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout.decode(errors="replace").splitlines()


def _configure(config: Path, server: ProsodyServer, port: int) -> None:
    """Point the fresh configuration at the private Prosody and at free loopback ports."""
    from gateway.config import DEFAULT_DEVICE_PORT

    _edit(config, f'udp = ["127.0.0.1:{DEFAULT_DEVICE_PORT}"]', f'udp = ["127.0.0.1:{port}"]')
    _edit(config, f'tcp = ["127.0.0.1:{DEFAULT_DEVICE_PORT}"]', f'tcp = ["127.0.0.1:{port}"]')
    _edit(
        config,
        f'# server = "xmpp.{server.domain}:5222"',
        f'server = "{server.host}:{server.c2s_port}"\ntrust = "{server.ca_file}"',
    )
    _edit(config, 'listen = "127.0.0.1:9464"', 'listen = "127.0.0.1:0"')


class GatewayLog:
    """The gateway process's log (stderr), read continuously so its pipe never fills."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.text = bytearray()
        self.closed = False
        self._changed = trio.Event()

    async def pump(self) -> None:
        """Read the log until the process closes it."""
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.receive_some(65536):
            self.text += chunk
            self._changed.set()
            self._changed = trio.Event()
        self.closed = True
        self._changed.set()

    async def wait_for(self, needle: str) -> None:
        """Wait (bounded) until a line holding ``needle`` has been logged."""
        with trio.fail_after(STEP_TIMEOUT):
            while needle.encode() not in self.text:
                if self.closed:
                    tail = self.text.decode(errors="replace").strip().splitlines()[-3:]
                    said = "; it said: " + " | ".join(tail) if tail else ""
                    raise DemoError(f"the gateway exited before logging {needle!r}{said}")
                await self._changed.wait()

    async def wait_closed(self) -> None:
        """Wait (bounded) until the process has closed its log."""
        with trio.fail_after(STEP_TIMEOUT):
            while not self.closed:
                await self._changed.wait()


async def _story(
    narrator: Narrator,
    directory: Path,
    server: ProsodyServer,
    device_account: Account,
    person_account: Account,
) -> None:
    """Steps 2 to 8."""
    narrator.step(2, "impp-gateway init: a gateway directory for the Prosody's domain")
    home = directory / "gw"  # short: DATA_DIR/admin.sock must fit a Unix socket's path
    await _gateway_command("init", str(home), "--domain", server.domain)
    config = home / "gateway.toml"
    port = _free_port()
    _configure(config, server, port)
    narrator.say(
        f"made {home} (keys, CA, store, gateway.toml); devices reach it on udp/tcp "
        f'127.0.0.1:{port}; [upstream.domains."{server.domain}"] server = '
        f"{server.host}:{server.c2s_port}, trusting the Prosody's CA"
    )

    narrator.step(3, f"impp-gateway enroll: the device for {device_account.jid}")
    password_file = directory / "device-password"
    descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(device_account.password)
    provisioning_file = directory / "sensor-1.prov"
    await _gateway_command(
        "enroll",
        "--config",
        str(config),
        "--jid",
        device_account.jid,
        "--password-file",
        str(password_file),
        "--out",
        str(provisioning_file),
    )
    password_file.unlink()
    provisioning = read_provisioning_file(provisioning_file)
    narrator.say(
        f"enroll logged in once (the store keeps SCRAM's salted secret, not the password) and "
        f"wrote the provisioning file: {provisioning_file.stat().st_size} B of CBOR, kid "
        f"0x{provisioning.device_kid.hex()}, device credential "
        f"{len(provisioning.device_credential)} B, gateway credential "
        f"{len(provisioning.gateway_credential)} B, endpoints "
        f"{', '.join(str(e) for e in provisioning.endpoints)}"
    )

    narrator.step(4, "impp-gateway run: the service as a child process")
    process = await trio.lowlevel.open_process(
        [str(GATEWAY_BIN), "run", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with trio.open_nursery() as nursery:
            log = GatewayLog(process)
            nursery.start_soon(log.pump)
            await log.wait_for("gateway running")
            await log.wait_for("established (stream management")
            narrator.say(
                f"pid {process.pid} logged 'gateway running' and the device's upstream XMPP "
                "session established, before the device ever spoke"
            )
            await _device_and_person(
                narrator, server, provisioning, person_account, _gateway_ca_verifier(home)
            )

            narrator.step(8, "SIGTERM: the gateway drains and exits")
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(STEP_TIMEOUT):
                status = await process.wait()
            await log.wait_closed()
            text = log.text.decode(errors="replace")
            if status != 0:
                raise DemoError(f"impp-gateway run exited {status} after SIGTERM")
            for needle in ("received SIGTERM", "stopped"):
                if needle not in text:
                    raise DemoError(f"the gateway's log lacks {needle!r}")
            for secret in (device_account.password, DEVICE_TEXT, REPLY_TEXT):
                if secret in text:
                    raise DemoError("the gateway's log holds a password or a message body")
            narrator.say(
                f"it logged 'received SIGTERM' and 'stopped', exit status {status}; its log "
                f"({len(text.splitlines())} lines) holds neither password nor message bodies"
            )
    finally:
        if process.returncode is None:
            process.kill()
            with trio.move_on_after(STEP_TIMEOUT):
                await process.wait()


def _device_session(
    provisioning: Provisioning, tap: Tap, record: HandshakeRecord
) -> TappedDeviceSession:
    """The device's session from the provisioning file alone, trusting only its gateway."""
    credential = provisioning.device_edhoc_credential()
    gateway = provisioning.gateway_edhoc_credential()

    def lookup(id_cred: IdCred) -> Credential | None:
        return gateway if id_cred.matches(gateway) else None

    def initiator() -> RecordingInitiator:
        edhoc = Initiator(
            method=Method(provisioning.method),
            suites=[CipherSuite(provisioning.suite)],
            c_i=DEVICE_C_I,
            credential=credential,
            credential_lookup=lookup,
        )
        return RecordingInitiator(EdhocInitiator(edhoc), record)

    return TappedDeviceSession(tap=tap, handshake_factory=initiator, codec=WireCodec())


async def _next_operation(driver: DeviceDriver, kind: type[T]) -> T:
    """The next operation of type ``kind`` the device received (bounded)."""
    with trio.fail_after(STEP_TIMEOUT):
        async for event in driver.events:
            if isinstance(event, SessionClosed):
                raise DemoError(f"the device's session closed: {event.reason}")
            if isinstance(event, OperationReceived) and isinstance(event.message, kind):
                return event.message
    raise DemoError("the device's event channel closed")


async def _xmpp_event(
    session: UpstreamSession, kind: type[T], match: Callable[[T], bool] = lambda _e: True
) -> T:
    """The person's next XMPP event of type ``kind`` matching ``match`` (bounded)."""
    with trio.fail_after(STEP_TIMEOUT):
        async for event in session.events:
            if isinstance(event, events.ConnectionClosed):
                raise DemoError(f"the person's XMPP connection closed: {event.error}")
            if isinstance(event, kind) and match(event):
                return event
    raise DemoError("the person's XMPP session stopped")


def _gateway_ca_verifier(home: Path) -> E2eVerifier:
    """What alice's client trusts: the gateway's CA certificate, as ``init`` wrote it."""
    certificate = x509.load_pem_x509_certificate((home / "ca" / "ca-cert.pem").read_bytes())
    return E2eVerifier(SignerTrustStore((certificate,)))


def _check_signature(verifier: E2eVerifier, stanza: ET.Element, recipient: Jid) -> str:
    """The verifier's verdict on a received stanza's ``<e2e/>``; DemoError unless VERIFIED."""
    result = verifier.verify_stanza(
        stanza, now=time.time(), recipient=ImppAddress.parse(str(recipient.bare))
    )
    if result.status is not SignatureStatus.VERIFIED:
        raise DemoError(f"the signature did not verify: {result.reason or result.status.name}")
    signer = f", signer {result.signer.im_uri}" if result.signer is not None else ""
    return f"<e2e/> checked against the gateway's CA: {result.status.name}{signer}"


def _contact(reference: wire.ContactRef) -> str:
    """A contact as the device sees it: the gateway's alias number, or an address."""
    return f"alias {reference}" if isinstance(reference, int) else repr(reference)


def _sent(tap: Tap, mark: int) -> str:
    sizes = [size for size, _kind in tap.since(mark, "sent")]
    return " + ".join(f"{s} B" for s in sizes) or "nothing"


async def _device_and_person(
    narrator: Narrator,
    server: ProsodyServer,
    provisioning: Provisioning,
    person_account: Account,
    verifier: E2eVerifier,
) -> None:
    """Steps 5 to 7: the device's handshake, a message each way, presence each way."""
    endpoint = next((e for e in provisioning.endpoints if e.transport is Transport.UDP), None)
    if endpoint is None:
        raise DemoError("the provisioning file names no UDP endpoint")
    settings = UpstreamSettings(
        trust=TrustStore(ca_file=server.ca_file, use_system_store=False),
        static_hosts={server.domain: [ServerAddress(server.host, server.c2s_port)]},
    )
    device_jid = Jid.parse_untrusted(provisioning.account)
    person_jid = Jid.parse_untrusted(person_account.jid)
    tap, record = Tap(), HandshakeRecord()
    driver = DeviceDriver(_device_session(provisioning, tap, record))
    async with open_upstream_manager(settings) as manager, trio.open_nursery() as nursery:
        person = await manager.open_session(
            ClientConfig(jid=person_jid, password=person_account.password, resource="phone")
        )
        await _xmpp_event(person, events.SessionEstablished)
        await person.send_presence()
        ping_id = await person.use(lambda client: client.ping(trio.current_time()))
        await _xmpp_event(person, events.PingAnswered, lambda e: e.id == ping_id)

        narrator.step(5, f"The device authenticates to the gateway: EDHOC over UDP to {endpoint}")
        nursery.start_soon(run_device_over_udp, driver, (endpoint.host, endpoint.port))
        driver.connect()
        with trio.fail_after(STEP_TIMEOUT):
            async for event in driver.events:
                if isinstance(event, DeviceSessionEstablished):
                    break
                if isinstance(event, SessionClosed):
                    raise DemoError(f"the handshake failed: {event.reason}")
        sizes = record.sizes
        m1, m2, m3 = sizes.get("message_1", 0), sizes.get("message_2", 0), sizes.get("message_3", 0)
        sent = sum(size for size, _kind in tap.since(0, "sent"))
        received = sum(size for size, _kind in tap.since(0, "received"))
        narrator.say(
            f"EDHOC (method {provisioning.method}, suite {provisioning.suite}): message_1 {m1} B, "
            f"message_2 {m2} B, message_3 {m3} B = {m1 + m2 + m3} B; on the wire the device "
            f"sent {sent} B and received {received} B; session established with the gateway"
        )

        narrator.step(6, f"A message each way between the device and {person_jid}")
        mark = tap.mark()
        driver.send_operation(wire.SetPresence(open=True))
        driver.send_operation(wire.SendMessage(1, str(person_jid), wire.TextContent(DEVICE_TEXT)))
        got = await _xmpp_event(
            person,
            events.MessageReceived,
            lambda e: e.message.from_ is not None and e.message.from_.bare == device_jid.bare,
        )
        message = got.message
        narrator.say(
            f"device -> gateway: SetPresence + SendMessage in {_sent(tap, mark)} of records"
        )
        narrator.say(
            f"{person_jid} received {message.body!r} from {device_jid}: a <message/> of "
            f"{stanza_size(message_element(message))} B with <body/> and <e2e/>"
        )
        narrator.say(_check_signature(verifier, message_element(message), person_jid))
        if message.body != DEVICE_TEXT:
            raise DemoError(f"the person received {message.body!r}, not the device's text")
        if message.from_ is None or message.id is None:
            raise DemoError("the received message lacks a sender or an id")
        receipt = ET.Element(MESSAGE_TAG, {"to": str(message.from_), "id": person.client.next_id()})
        ET.SubElement(receipt, f"{{{RECEIPTS_NS}}}received", {"id": message.id})
        await person.use(lambda client: client.send_stanza(receipt))
        report = await _next_operation(driver, wire.DeliveryReport)
        narrator.say(
            f"{person_jid} confirmed delivery (XEP-0184); the device got DeliveryReport "
            f"{report.status.name} for message {report.id}"
        )
        if report.status is not wire.DeliveryStatus.DELIVERED:
            raise DemoError(f"the delivery report says {report.status.name}")

        mark = tap.mark()
        await person.send_message(device_jid, REPLY_TEXT)
        incoming = await _next_operation(driver, wire.IncomingMessage)
        received_sizes = " + ".join(f"{s} B" for s, _k in tap.since(mark, "received"))
        if not isinstance(incoming.content, wire.TextContent):
            raise DemoError("the device received a message without text")
        narrator.say(
            f"gateway -> device: IncomingMessage from {incoming.sender!r}: "
            f"{incoming.content.text!r} in {received_sizes} of records"
        )
        if incoming.content.text != REPLY_TEXT:
            raise DemoError("the device received another text than the person sent")

        narrator.step(7, f"Presence both ways, after a mutual subscription with {person_jid}")
        await _presence(narrator, driver, tap, person, device_jid, person_jid, verifier)
        nursery.cancel_scope.cancel()


async def _presence(
    narrator: Narrator,
    driver: DeviceDriver,
    tap: Tap,
    person: UpstreamSession,
    device_jid: Jid,
    person_jid: Jid,
    verifier: E2eVerifier,
) -> None:
    """Step 7: the device asks, the person approves and asks back; then each one's presence."""
    driver.send_operation(
        wire.SubscriptionCommand(wire.SubscriptionAction.SUBSCRIBE, str(person_jid))
    )
    await _xmpp_event(
        person,
        events.SubscriptionReceived,
        lambda e: e.from_.bare == device_jid.bare and e.kind is SubscriptionKind.SUBSCRIBE,
    )
    await person.use(
        lambda client: client.send_subscription(device_jid, SubscriptionKind.SUBSCRIBED)
    )
    await person.use(
        lambda client: client.send_subscription(device_jid, SubscriptionKind.SUBSCRIBE)
    )
    request = await _next_operation(driver, wire.SubscriptionRequest)
    driver.send_operation(wire.SubscriptionCommand(wire.SubscriptionAction.APPROVE, request.sender))
    narrator.say(
        f"the device asked to see {person_jid}'s presence, the person approved and asked back "
        f"(SubscriptionRequest from {_contact(request.sender)}), the device approved"
    )

    mark = tap.mark()
    driver.send_operation(wire.SetPresence(open=True, show=wire.Show.AWAY, note=PRESENCE_NOTE))
    seen = await _xmpp_event(
        person,
        events.PresenceReceived,
        lambda e: (
            e.presence.from_ is not None
            and e.presence.from_.bare == device_jid.bare
            and e.presence.show is PresenceShow.AWAY
        ),
    )
    narrator.say(
        f"device -> person: SetPresence away {PRESENCE_NOTE!r} in {_sent(tap, mark)} of records; "
        f"{person_jid} sees {device_jid} {seen.presence.show} {seen.presence.status!r}"
    )
    if seen.presence.status != PRESENCE_NOTE:
        raise DemoError(f"the person sees the note {seen.presence.status!r}")
    narrator.say(_check_signature(verifier, presence_element(seen.presence), person_jid))

    mark = tap.mark()
    await person.send_presence(show=PresenceShow.DND, status=PERSON_NOTE)
    with trio.fail_after(STEP_TIMEOUT):
        while True:
            notification = await _next_operation(driver, wire.PresenceNotification)
            if notification.show is wire.Show.DO_NOT_DISTURB:
                break
    received_sizes = " + ".join(f"{s} B" for s, _k in tap.since(mark, "received"))
    narrator.say(
        f"person -> device: PresenceNotification for {_contact(notification.contact)}: "
        f"{notification.show.name} {notification.note!r} in {received_sizes} of records"
    )
    if notification.note != PERSON_NOTE:
        raise DemoError(f"the device sees the note {notification.note!r}")
