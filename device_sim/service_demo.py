"""``impp-devices demo``: a few devices on a lossy GPRS-like link chat through the real service.

What runs, each as its own process or session, nothing wired by hand:

1. a private Prosody on loopback (:class:`~device_sim.domain_server.ProsodyServer`) with an account
   per device (``sensor-1`` ... ``sensor-N``) and one for a person (``alice``);
2. ``impp-gateway init DIR --domain D``, its configuration pointed at that Prosody;
3. ``impp-gateway enroll`` once per device: one login each, a provisioning file each;
4. ``impp-gateway run`` as a child process, ready once it logs ``gateway running`` and every
   device's upstream session ``established``;
5. the devices: each a :class:`~device_sim.chat.client.ChatRunner` (the project's device client on
   the trio device runner) built only from its provisioning file, its datagrams crossing a seeded
   radio link model (``gprs`` by default: 26.8/53.6 kbit/s, 700 ms round trips, bursty loss) and a
   NAT before reaching the gateway over loopback UDP; the person: a session of the project's XMPP
   client, which answers receipts (XEP-0184) and subscription requests as a friendly client would;
6. the story: EDHOC handshakes; subscriptions (each device with the person, and each device with
   the next one in a ring, approved by the other side); messages device -> person (with
   DeliveryReport DELIVERED from the person's receipt), person -> device and device -> device;
   presence each way; one device sleeps, gets a message while asleep, wakes and receives it; then
   SIGTERM of the gateway and its exit status 0;
7. the summary: every message counted at both ends (sent once, received once, reports), and the
   bytes each operation took on the device link against what the same operation took in XMPP.

What happens is printed as it happens (device and person events with their time). Every wait is
bounded (:data:`STEP_TIMEOUT`), there is no fixed sleep, every process is ended and the temporary
directory removed on any exit. Passwords and message bodies go only where they belong (the
password file, mode 0600, and the streams), never into the gateway's log, which is checked.

Bytes. Device side, measured: the runner's counters of what crossed each device's radio, UDP
payload plus the preset's per-datagram header bytes (28, IPv4 + UDP), summed over the devices for
the phase of the story that did the operation, divided by the operations in it; acknowledgements
and notifications of the same phase are included. XMPP side: *measured* where the person's client
received the operation (its stream's byte counter of decrypted XML, so without TLS and TCP/IP
overhead), *computed* where the person sent it (the serialized size of the stanza it sent), and
``-`` where XMPP has no such operation; the table says which.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import trio
from cryptography import x509

from device_sim.chat.client import ChatClient, ChatRunner
from device_sim.chat.model import ContactsListed, SubscriptionRequested
from device_sim.client.core import ClientState
from device_sim.client.events import (
    BacklogAnnounced,
    ClientClosed,
    ClientEvent,
    Connected,
    DeliveryReported,
    MessageArrived,
    PresenceChanged,
    Slept,
    Woke,
)
from device_sim.client.runner import UdpSockets, gateway_address
from device_sim.domain_server import Account, ProsodyError, ProsodyServer
from device_sim.radio import DuplexLink, preset
from gateway import wire
from gateway.enroll.provisioning import Provisioning, read_provisioning_file
from gateway.impp import ImppAddress
from gateway.signing import E2eVerifier, SignerTrustStore
from gateway.wire import SignatureStatus
from gateway.xmpp import ClientConfig, Jid, MessageStanza, PresenceStanza, events
from gateway.xmpp.net import (
    ServerAddress,
    TrustStore,
    UpstreamSession,
    UpstreamSettings,
    open_upstream_manager,
)
from gateway.xmpp.serializer import serialize
from gateway.xmpp.stanzas import RECEIPTS_NS, PresenceShow, SubscriptionKind

__all__ = ["DEFAULT_DEVICES", "STEP_TIMEOUT", "DemoError", "run_service_demo"]

STEP_TIMEOUT = 60.0  # seconds any one step may take (a lossy link retransmits) before we give up
DEFAULT_DEVICES = 3
MAX_DEVICES = 20  # one Prosody account, enrollment and upstream stream each: a handful
DEFAULT_LINK = "gprs"
PERSON_LOCALPART = "alice"
PERSON_NOTE = "in a meeting"
SLEEP_SECONDS = 600  # the sleeper wakes on request long before this
MESSAGE_TAG = "{jabber:client}message"
CLIENT_NS = "jabber:client"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
GATEWAY_BIN = Path(sys.executable).with_name("impp-gateway")
WIDTH = 100


class DemoError(Exception):
    """A step could not do what it claims; the demo stops and says which step and why."""


# ---- narration ----------------------------------------------------------------------------------


class Narrator:
    """Numbered steps, indented facts, and timestamped events as they happen."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.current_step = 0
        self.started = time.monotonic()

    def title(self, text: str) -> None:
        """The banner at the top."""
        self.out.write(f"{text}\n{'=' * len(text)}\n")
        self.out.flush()

    def step(self, number: int, text: str) -> None:
        """Start step ``number``."""
        self.current_step = number
        self.out.write(f"\n[{number}] {text}\n")
        self.out.flush()

    def say(self, text: str) -> None:
        """One fact of the current step, wrapped (continuations indented 6)."""
        lines = textwrap.wrap(
            text,
            width=WIDTH,
            initial_indent="    ",
            subsequent_indent="      ",
            break_on_hyphens=False,
            break_long_words=False,
        )
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    def event(self, who: str, text: str) -> None:
        """Something that just happened, with the time since the demo started."""
        self.say(f"{time.monotonic() - self.started:6.1f} s  {who}: {text}")

    def table(self, title: str, headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
        """A plain-text table."""
        lines = [headers, *rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
        self.out.write(f"\n{title}\n")
        for index, line in enumerate(lines):
            self.out.write(
                "  " + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            )
            self.out.write("\n")
            if index == 0:
                self.out.write("  " + "  ".join("-" * w for w in widths) + "\n")
        self.out.flush()


# ---- the entry point and the processes ----------------------------------------------------------


def run_service_demo(
    out: TextIO, *, devices: int = DEFAULT_DEVICES, link: str = DEFAULT_LINK, seed: int = 1
) -> int:
    """Run the whole demo with ``devices`` devices on ``link``; 0 on success, 1 on failure."""
    narrator = Narrator(out)
    narrator.title(
        f"impp-devices demo: {devices} device(s) on a {link} link chat with a person and each "
        "other through impp-gateway run"
    )
    started = time.monotonic()
    try:
        _check_arguments(devices, link)
        directory = _run_in_temporary_directory(narrator, devices, link, seed)
    except BaseException as raised:  # every failure becomes one clear message and status 1
        failure = _unwrap(raised)
        if isinstance(failure, KeyboardInterrupt | SystemExit):
            raise
        step = narrator.current_step
        if isinstance(failure, DemoError | ProsodyError | ValueError):
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


def _check_arguments(devices: int, link: str) -> None:
    """Refuse a device count out of range or an unknown link, before anything starts."""
    if not 1 <= devices <= MAX_DEVICES:
        raise DemoError(f"--devices must be 1 to {MAX_DEVICES}")
    preset(link)


def _unwrap(error: BaseException) -> BaseException:
    """The first real failure inside (possibly nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        inner = [e for e in error.exceptions if not isinstance(e, trio.Cancelled)]
        error = (inner or list(error.exceptions))[0]
    return error


def _run_in_temporary_directory(narrator: Narrator, devices: int, link: str, seed: int) -> str:
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
            accounts = [server.create_user(f"sensor-{n}") for n in range(1, devices + 1)]
            person = server.create_user(PERSON_LOCALPART)
            narrator.say(
                f"registered {', '.join(a.jid for a in accounts)} (the devices' accounts) and "
                f"{person.jid} (a person)"
            )
            trio.run(_story, narrator, Path(directory), server, accounts, person, link, seed)
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

    async def wait_for(self, needle: str, count: int = 1) -> None:
        """Wait (bounded) until ``count`` lines holding ``needle`` have been logged."""
        with trio.fail_after(STEP_TIMEOUT):
            while self.text.count(needle.encode()) < count:
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
    accounts: list[Account],
    person_account: Account,
    link: str,
    seed: int,
) -> None:
    """Steps 2 to 10."""
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

    narrator.step(3, f"impp-gateway enroll: {len(accounts)} device(s), one login each")
    files = [directory / f"{account.localpart}.prov" for account in accounts]
    for account, provisioning_file in zip(accounts, files, strict=True):
        # One after the other: each enroll allocates the next kid in the store.
        await _enroll(directory, config, account, provisioning_file)
    provisionings = []
    for account, provisioning_file in zip(accounts, files, strict=True):
        provisioning = read_provisioning_file(provisioning_file)
        provisionings.append(provisioning)
        narrator.say(
            f"{account.jid}: provisioning file of {provisioning_file.stat().st_size} B of CBOR, "
            f"kid 0x{provisioning.device_kid.hex()}, endpoints "
            f"{', '.join(str(e) for e in provisioning.endpoints)}"
        )
    narrator.say("enroll kept SCRAM's salted secret of each account, never the password")

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
            await log.wait_for("established (stream management", count=len(accounts))
            narrator.say(
                f"pid {process.pid} logged 'gateway running' and {len(accounts)} upstream XMPP "
                "session(s) established, before any device spoke"
            )
            demo = Demo(narrator, server, provisionings, person_account, link, seed)
            demo.verifier = _gateway_ca_verifier(home)
            await demo.run()

            narrator.step(10, "SIGTERM: the gateway drains and exits")
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
            secrets = [a.password for a in accounts] + sorted(demo.bodies)
            if any(secret in text for secret in secrets):
                raise DemoError("the gateway's log holds a password or a message body")
            narrator.say(
                f"it logged 'received SIGTERM' and 'stopped', exit status {status}; its log "
                f"({len(text.splitlines())} lines) holds neither passwords nor message bodies"
            )
            demo.summary()
    finally:
        if process.returncode is None:
            process.kill()
            with trio.move_on_after(STEP_TIMEOUT):
                await process.wait()


async def _enroll(directory: Path, config: Path, account: Account, out: Path) -> None:
    """``impp-gateway enroll`` for ``account``, its password in a 0600 file removed after."""
    password_file = directory / f"{account.localpart}-password"
    descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(account.password)
    try:
        await _gateway_command(
            "enroll",
            "--config",
            str(config),
            "--jid",
            account.jid,
            "--password-file",
            str(password_file),
            "--out",
            str(out),
        )
    finally:
        password_file.unlink()


def _gateway_ca_verifier(home: Path) -> E2eVerifier:
    """What alice's client trusts: the gateway's CA certificate, as ``init`` wrote it."""
    certificate = x509.load_pem_x509_certificate((home / "ca" / "ca-cert.pem").read_bytes())
    return E2eVerifier(SignerTrustStore((certificate,)))


# ---- stanzas as the person's client received them -----------------------------------------------


def _q(local: str) -> str:
    return f"{{{CLIENT_NS}}}{local}"


def message_element(message: MessageStanza) -> ET.Element:
    """A received ``<message/>`` re-created from what the client parsed (extensions included)."""
    element = ET.Element(_q("message"))
    for name, value in (
        ("from", message.from_),
        ("to", message.to),
        ("id", message.id),
        ("type", str(message.type)),
    ):
        if value is not None:
            element.set(name, str(value))
    if message.lang is not None:
        element.set(XML_LANG, message.lang)
    for lang, text in message.bodies:
        body = ET.SubElement(element, _q("body"))
        body.text = text
        if lang is not None:
            body.set(XML_LANG, lang)
    element.extend(message.extensions)
    return element


def presence_element(presence: PresenceStanza) -> ET.Element:
    """A received ``<presence/>`` re-created from what the client parsed (extensions included)."""
    element = ET.Element(_q("presence"))
    for name, value in (("from", presence.from_), ("to", presence.to)):
        if value is not None:
            element.set(name, str(value))
    if not presence.available:
        element.set("type", "unavailable")
    if presence.lang is not None:
        element.set(XML_LANG, presence.lang)
    if presence.show is not None:
        ET.SubElement(element, _q("show")).text = str(presence.show)
    for lang, text in presence.statuses:
        status = ET.SubElement(element, _q("status"))
        status.text = text
        if lang is not None:
            status.set(XML_LANG, lang)
    if presence.priority:
        ET.SubElement(element, _q("priority")).text = str(presence.priority)
    element.extend(presence.extensions)
    return element


def _chat_message_size(sender: str, to: str, body: str) -> int:
    """Bytes of a chat ``<message/>`` with ``<body/>`` as our serializer writes it."""
    element = ET.Element(_q("message"), {"from": sender, "to": to, "id": "x" * 12, "type": "chat"})
    ET.SubElement(element, _q("body")).text = body
    return len(serialize(element))


# ---- the devices and the person -----------------------------------------------------------------


@dataclass
class DeviceView:
    """One device of the demo: its runner and what it saw."""

    name: str
    jid: str
    runner: ChatRunner
    arrived: Counter[str] = field(default_factory=Counter)  # text -> times shown
    sent: Counter[str] = field(default_factory=Counter)  # text -> times sent
    reports: dict[int, wire.DeliveryStatus] = field(default_factory=dict)
    presence: dict[str, wire.Show | None] = field(default_factory=dict)  # contact -> show
    requests: list[str] = field(default_factory=list)
    connections: int = 0
    resumptions: int = 0
    asleep: bool = False
    backlog: tuple[int, int] | None = None
    done: bool = False  # the runner returned (its Close crossed the link)
    from_person: Counter[str] = field(default_factory=Counter)  # what the person sent it

    aliases: dict[int, str] = field(default_factory=dict)  # from the gateway's ContactLists

    def name_of(self, contact: wire.ContactRef) -> str:
        """The address behind an alias (``#N`` while unbound)."""
        if isinstance(contact, int):
            return self.aliases.get(contact, f"#{contact}")
        return contact

    def link_bytes(self) -> int:
        """Bytes that crossed the device's radio so far, both ways, headers included."""
        return self.runner.uplink.link_bytes_sent + self.runner.downlink.link_bytes_received


@dataclass
class Phase:
    """One row of the bytes table."""

    operation: str
    count: int
    device_bytes: int
    xmpp_bytes: int | None
    xmpp_how: str


class Demo:
    """Steps 5 to 9 and the summary (see the module docstring)."""

    def __init__(
        self,
        narrator: Narrator,
        server: ProsodyServer,
        provisionings: list[Provisioning],
        person_account: Account,
        link: str,
        seed: int,
    ) -> None:
        self.narrator = narrator
        self.server = server
        self.provisionings = provisionings
        self.person_account = person_account
        self.person_jid = Jid.parse_untrusted(person_account.jid)
        self.link = link
        self.seed = seed
        self.verifier: E2eVerifier | None = None
        self.devices: list[DeviceView] = []
        self.person_got: Counter[str] = Counter()  # body -> times received by the person
        self.person_presence: dict[str, PresenceStanza] = {}
        self.person_subscribed: set[str] = set()
        self.bodies: set[str] = set()
        self.phases: list[Phase] = []
        self.checked: list[str] = []
        self._changed = trio.Event()
        self.person: UpstreamSession | None = None

    # ---- waiting -------------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, done: Callable[[], bool], what: str) -> None:
        """Wait until ``done()`` holds, re-checked after every event (at most STEP_TIMEOUT)."""
        with trio.move_on_after(STEP_TIMEOUT):
            while not done():
                await self._changed.wait()
            return
        raise DemoError(f"{what}: not within {STEP_TIMEOUT:.0f} s")

    # ---- events --------------------------------------------------------------------------------

    def _on_device_event(self, device: DeviceView, event: ClientEvent) -> None:
        say = self.narrator.event
        if isinstance(event, Connected):
            device.connections += 1
            if event.resumed:
                device.resumptions += 1
                device.asleep = False
            up, down = device.runner.uplink, device.runner.downlink
            how = "resumed with its ticket" if event.resumed else "EDHOC done"
            say(
                device.name,
                f"connected ({how}); so far {up.datagrams_sent} datagrams / "
                f"{up.link_bytes_sent} B up, {down.datagrams_received} / "
                f"{down.link_bytes_received} B down",
            )
        elif isinstance(event, MessageArrived):
            text = event.text or ""
            device.arrived[text] += 1
            say(device.name, f"<- {device.name_of(event.sender)}: {text!r}")
        elif isinstance(event, DeliveryReported):
            device.reports[event.message_id] = event.status
            say(device.name, f"message {event.message_id}: {event.status.name}")
        elif isinstance(event, PresenceChanged):
            contact = device.name_of(event.contact)
            device.presence[contact] = event.show if event.available else None
            state = event.show.name if event.available else "offline"
            say(device.name, f"sees {contact} {state}")
        elif isinstance(event, ContactsListed):
            for entry in event.contacts:
                if entry.subscription is wire.SubscriptionState.REMOVED:
                    device.aliases.pop(entry.alias, None)
                else:
                    device.aliases[entry.alias] = entry.address
        elif isinstance(event, SubscriptionRequested):
            device.requests.append(device.name_of(event.sender))
            device.runner.send_operation(
                wire.SubscriptionCommand(wire.SubscriptionAction.APPROVE, event.sender)
            )
            say(device.name, f"{device.name_of(event.sender)} asks to see its presence: approved")
        elif isinstance(event, Slept):
            device.asleep = True
            say(device.name, "radio off (Sleep acknowledged)")
        elif isinstance(event, Woke):
            say(device.name, "radio on: resuming")
        elif isinstance(event, BacklogAnnounced):
            device.backlog = (event.messages, event.delivery_reports)
            say(
                device.name,
                f"the gateway kept {event.messages} message(s) and "
                f"{event.delivery_reports} report(s) while it slept",
            )
        elif isinstance(event, ClientClosed):
            say(device.name, f"session {'failed' if event.failed else 'closed'}: {event.reason}")
        self._notify()

    async def _person_events(self, person: UpstreamSession) -> None:
        """What the person's client receives; it answers receipts and subscription requests."""
        say = self.narrator.event
        async for event in person.events:
            if isinstance(event, events.MessageReceived):
                message = event.message
                body = message.body
                sender = message.from_
                if body is not None and sender is not None:
                    self.person_got[body] += 1
                    say(str(self.person_jid.bare), f"<- {sender.bare}: {body!r}")
                    if message.id is not None:
                        await self._receipt(person, sender, message.id)
                    if self.verifier is not None and not self.checked:
                        self.checked.append(
                            _check_signature(
                                self.verifier, message_element(message), self.person_jid
                            )
                        )
            elif isinstance(event, events.PresenceReceived):
                presence = event.presence
                if presence.from_ is not None and presence.from_.bare != self.person_jid.bare:
                    who = str(presence.from_.bare)
                    self.person_presence[who] = presence
                    show = (presence.show or "available") if presence.available else "offline"
                    status = f" {presence.status!r}" if presence.status else ""
                    say(str(self.person_jid.bare), f"sees {who} {show}{status}")
            elif isinstance(event, events.SubscriptionReceived):
                asker = event.from_.bare
                if event.kind is SubscriptionKind.SUBSCRIBE:
                    await _subscription(person, asker, SubscriptionKind.SUBSCRIBED)
                    if str(asker) not in self.person_subscribed:
                        self.person_subscribed.add(str(asker))
                        await _subscription(person, asker, SubscriptionKind.SUBSCRIBE)
                    say(
                        str(self.person_jid.bare),
                        f"{asker} asks to subscribe: approved, asked back",
                    )
            elif isinstance(event, events.ConnectionClosed):
                say(str(self.person_jid.bare), f"XMPP connection closed: {event.error}")
            self._notify()

    async def _receipt(self, person: UpstreamSession, to: Jid, message_id: str) -> None:
        receipt = ET.Element(MESSAGE_TAG, {"to": str(to), "id": person.client.next_id()})
        ET.SubElement(receipt, f"{{{RECEIPTS_NS}}}received", {"id": message_id})
        await person.use(lambda client: client.send_stanza(receipt))

    def _person_bytes(self) -> int:
        assert self.person is not None
        return self.person.client.statistics().bytes_received

    # ---- the story -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Steps 5 to 9."""
        server = self.server
        settings = UpstreamSettings(
            trust=TrustStore(ca_file=server.ca_file, use_system_store=False),
            static_hosts={server.domain: [ServerAddress(server.host, server.c2s_port)]},
        )
        async with open_upstream_manager(settings) as manager, trio.open_nursery() as nursery:
            self.narrator.step(
                5,
                f"{len(self.provisionings)} device(s) connect over a {self.link} link model "
                f"(seeds {self.seed}..{self.seed + len(self.provisionings) - 1}); "
                f"{self.person_jid} logs in",
            )
            person = await manager.open_session(
                ClientConfig(jid=self.person_jid, password=self.person_account.password)
            )
            self.person = person
            with trio.fail_after(STEP_TIMEOUT):
                async for event in person.events:
                    if isinstance(event, events.SessionEstablished):
                        break
            login_bytes = self._person_bytes()
            nursery.start_soon(self._person_events, person)
            await person.send_presence()
            link_preset = preset(self.link)
            self.narrator.say(
                f"{link_preset.name}: {link_preset.uplink.bandwidth_bps / 1000:g} kbit/s up, "
                f"{link_preset.downlink.bandwidth_bps / 1000:g} kbit/s down, "
                f"{link_preset.uplink.overhead_bytes} B of headers per datagram "
                "(docs/device-budget.md)"
            )
            for index, provisioning in enumerate(self.provisionings):
                await self._start_device(nursery, index, provisioning)
            await self.until(
                lambda: all(d.connections for d in self.devices), "every device connected"
            )
            self._phase(
                "connect: EDHOC handshake / XMPP login (SASL, bind)",
                len(self.devices),
                sum(d.link_bytes() for d in self.devices),
                login_bytes,
                "measured: the person's own login, received side",
            )
            for device in self.devices:
                device.runner.send_operation(wire.SetPresence(open=True))
            await self._subscriptions()
            await self._messages()
            await self._presence()
            await self._sleep_and_wake()
            self.narrator.step(9, "The devices close their sessions")
            for device in self.devices:
                device.runner.close()
            await self.until(
                lambda: all(d.runner.state is ClientState.CLOSED and d.done for d in self.devices),
                "every device closed and its Close crossed the link",
            )
            nursery.cancel_scope.cancel()

    async def _start_device(
        self,
        nursery: trio.Nursery,
        index: int,
        provisioning: Provisioning,
    ) -> None:
        name = provisioning.account.split("@", 1)[0]
        views: list[DeviceView] = []
        runner = ChatRunner(
            ChatClient(),
            provisioning,
            UdpSockets(gateway_address(provisioning)),
            link=DuplexLink(preset(self.link), seed=self.seed + index),
            on_event=lambda _now, event: self._on_device_event(views[0], event),
            stream_events=False,
        )
        device = DeviceView(name, provisioning.account, runner)
        views.append(device)
        self.devices.append(device)

        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await runner.run(task_status=task_status)
            finally:
                device.done = True
                self._notify()

        await nursery.start(run)

    def _phase(
        self, operation: str, count: int, device_bytes: int, xmpp: int | None, how: str
    ) -> None:
        self.phases.append(Phase(operation, count, device_bytes, xmpp, how))

    def _device_bytes(self) -> int:
        return sum(d.link_bytes() for d in self.devices)

    async def _subscriptions(self) -> None:
        person = str(self.person_jid.bare)
        ring = len(self.devices) > 1
        self.narrator.step(
            6,
            f"Subscriptions: each device with {person}"
            + (", and each with the next device in a ring" if ring else ""),
        )
        before = self._device_bytes()
        for index, device in enumerate(self.devices):
            device.runner.send_operation(
                wire.SubscriptionCommand(wire.SubscriptionAction.SUBSCRIBE, person)
            )
            if ring:
                neighbour = self.devices[(index + 1) % len(self.devices)]
                device.runner.send_operation(
                    wire.SubscriptionCommand(wire.SubscriptionAction.SUBSCRIBE, neighbour.jid)
                )
        await self.until(
            lambda: (
                all(d.jid in self.person_subscribed for d in self.devices)
                and all(person in d.requests for d in self.devices)
            ),
            "the person approved every device and asked back",
        )
        if ring:
            await self.until(
                lambda: all(
                    self.devices[(i + 1) % len(self.devices)].jid in d.presence
                    for i, d in enumerate(self.devices)
                ),
                "every device sees its neighbour's presence",
            )
        await self.until(
            lambda: all(d.jid in self.person_presence for d in self.devices),
            "the person sees every device's presence",
        )
        subscriptions = len(self.devices) * (2 if ring else 1)
        self._phase(
            "subscribe and approve (both ways, with the first presence)",
            subscriptions,
            self._device_bytes() - before,
            None,
            "-: made by the gateway's upstream session, not seen here",
        )

    async def _messages(self) -> None:
        person = str(self.person_jid.bare)
        self.narrator.step(7, "Messages: device -> person, person -> device, device -> device")
        before, before_person = self._device_bytes(), self._person_bytes()
        texts: dict[str, str] = {}
        for device in self.devices:
            text = f"{device.name}: temperature {20 + len(texts)}.5 C"
            texts[device.name] = text
            self.bodies.add(text)
            device.sent[text] += 1
            device.runner.send_text(person, text)
        await self.until(
            lambda: all(self.person_got[t] for t in texts.values()),
            "the person received every device's message",
        )
        await self.until(
            lambda: all(wire.DeliveryStatus.DELIVERED in d.reports.values() for d in self.devices),
            "every device got DeliveryReport DELIVERED",
        )
        self._phase(
            "message device -> person (+ DeliveryReport)",
            len(self.devices),
            self._device_bytes() - before,
            self._person_bytes() - before_person,
            "measured: what the person's stream received",
        )
        for line in self.checked:
            self.narrator.say(line)

        before = self._device_bytes()
        replies: dict[str, str] = {}
        xmpp = 0
        for device in self.devices:
            reply = f"Thanks {device.name}, got it"
            replies[device.name] = reply
            self.bodies.add(reply)
            device.from_person[reply] += 1
            assert self.person is not None
            await self.person.send_message(Jid.parse_untrusted(device.jid), reply)
            xmpp += _chat_message_size(person + "/r", device.jid, reply)
        await self.until(
            lambda: all(d.arrived[replies[d.name]] for d in self.devices),
            "every device received the person's reply",
        )
        self._phase(
            "message person -> device",
            len(self.devices),
            self._device_bytes() - before,
            xmpp // len(self.devices),
            "computed: serialized size of the <message/> the person sent",
        )

        if len(self.devices) > 1:
            before = self._device_bytes()
            xmpp = 0
            expected: dict[str, str] = {}
            for index, device in enumerate(self.devices):
                neighbour = self.devices[(index + 1) % len(self.devices)]
                text = f"{device.name} to {neighbour.name}: hello neighbour"
                expected[neighbour.name] = text
                self.bodies.add(text)
                device.sent[text] += 1
                device.runner.send_text(neighbour.jid, text)
                xmpp += 2 * _chat_message_size(device.jid + "/r", neighbour.jid, text)
            await self.until(
                lambda: all(d.arrived[expected[d.name]] for d in self.devices),
                "every device received its neighbour's message",
            )
            self._phase(
                "message device -> device (both links)",
                len(self.devices),
                self._device_bytes() - before,
                xmpp // len(self.devices),
                "computed: the <message/> sent and received, serialized, twice",
            )

    async def _presence(self) -> None:
        person = str(self.person_jid.bare)
        self.narrator.step(8, "Presence changes, each way; one device sleeps, then wakes")
        before, before_person = self._device_bytes(), self._person_bytes()
        for index, device in enumerate(self.devices):
            device.runner.send_operation(
                wire.SetPresence(open=True, show=wire.Show.AWAY, note=f"battery {81 - index}%")
            )

        def all_away() -> bool:
            for device in self.devices:
                seen = self.person_presence.get(device.jid)
                if seen is None or seen.show is not PresenceShow.AWAY:
                    return False
            return True

        await self.until(all_away, "the person sees every device away")
        self._phase(
            "presence change device -> person",
            len(self.devices),
            self._device_bytes() - before,
            self._person_bytes() - before_person,
            "measured: what the person's stream received",
        )
        first = self.person_presence[self.devices[0].jid]
        if self.verifier is not None:
            self.narrator.say(
                _check_signature(self.verifier, presence_element(first), self.person_jid)
            )
        before = self._device_bytes()
        assert self.person is not None
        await self.person.send_presence(show=PresenceShow.DND, status=PERSON_NOTE)
        await self.until(
            lambda: all(d.presence.get(person) is wire.Show.DO_NOT_DISTURB for d in self.devices),
            "every device sees the person busy",
        )
        presence = ET.Element(_q("presence"), {"from": person + "/r"})
        ET.SubElement(presence, _q("show")).text = "dnd"
        ET.SubElement(presence, _q("status")).text = PERSON_NOTE
        self._phase(
            "presence change person -> device",
            len(self.devices),
            self._device_bytes() - before,
            len(serialize(presence)),
            "computed: serialized size of the <presence/> the person sent",
        )

    async def _sleep_and_wake(self) -> None:
        sleeper = self.devices[-1]
        before = sleeper.link_bytes()
        sleeper.runner.sleep(SLEEP_SECONDS)
        await self.until(lambda: sleeper.asleep, f"{sleeper.name} asleep")
        text = f"while you slept, {sleeper.name}"
        self.bodies.add(text)
        sleeper.from_person[text] += 1
        assert self.person is not None
        await self.person.send_message(Jid.parse_untrusted(sleeper.jid), text)
        self.narrator.event(str(self.person_jid.bare), f"-> {sleeper.jid} (asleep): {text!r}")
        resumptions = sleeper.resumptions
        sleeper.runner.wake()
        await self.until(
            lambda: sleeper.resumptions > resumptions and sleeper.arrived[text] > 0,
            f"{sleeper.name} resumed and received what came while it slept",
        )
        self._phase(
            "sleep, wake, resume (ticket) and the held message",
            1,
            sleeper.link_bytes() - before,
            None,
            "-: XMPP has no sleep (a client stays connected or logs in again)",
        )

    # ---- the summary ---------------------------------------------------------------------------

    def summary(self) -> None:
        """The exactly-once table and the bytes table; DemoError unless every count is one."""
        rows: list[tuple[str, ...]] = []
        problems = []
        person = str(self.person_jid.bare)
        paths: list[tuple[str, Counter[str], Counter[str]]] = []
        for device in self.devices:
            to_person = Counter(
                {t: n for t, n in device.sent.items() if t.startswith(f"{device.name}:")}
            )
            paths.append((f"{device.name} -> {person}", to_person, self.person_got))
        for device in self.devices:
            paths.append((f"{person} -> {device.name}", device.from_person, device.arrived))
        for index, device in enumerate(self.devices if len(self.devices) > 1 else []):
            neighbour = self.devices[(index + 1) % len(self.devices)]
            sent = Counter({t: n for t, n in device.sent.items() if " to " in t})
            paths.append((f"{device.name} -> {neighbour.name}", sent, neighbour.arrived))
        for path, sent, received in paths:
            counts = [received[text] for text in sent]
            once = sum(1 for c in counts if c == 1)
            duplicated = sum(1 for c in counts if c > 1)
            missing = sum(1 for c in counts if c == 0)
            ok = once == len(sent) and all(n == 1 for n in sent.values())
            rows.append(
                (
                    path,
                    str(sum(sent.values())),
                    str(once),
                    str(duplicated),
                    str(missing),
                    "exactly once" if ok else "NOT exactly once",
                )
            )
            if not ok:
                problems.append(path)
        delivered = sum(
            1
            for d in self.devices
            for status in d.reports.values()
            if status is wire.DeliveryStatus.DELIVERED
        )
        sent_with_reports = sum(sum(d.sent.values()) for d in self.devices)
        self.narrator.table(
            "Summary: every message, counted where it was sent and where it arrived",
            ("path", "sent", "received once", "duplicated", "missing", "verdict"),
            rows,
        )
        self.narrator.say(
            f"DeliveryReports DELIVERED: {delivered} of {sent_with_reports} device messages; "
            f"the devices dropped {sum(d.runner.client.duplicates_dropped for d in self.devices)}"
            " repeated message(s) or report(s) the network or a resumption brought again"
        )
        table = []
        for phase in self.phases:
            per = phase.device_bytes / phase.count if phase.count else 0.0
            if phase.xmpp_bytes is None:
                xmpp = "-"
            elif phase.operation.startswith("connect") or phase.xmpp_how.startswith("computed"):
                xmpp = str(phase.xmpp_bytes)  # already per operation
            else:
                xmpp = f"{phase.xmpp_bytes / phase.count:.0f}"
            table.append((phase.operation, str(phase.count), f"{per:.0f}", xmpp, phase.xmpp_how))
        self.narrator.table(
            f"Summary: bytes per operation on the {self.link} link (device, both ways, headers "
            "included) against XMPP (per operation)",
            ("operation", "ops", "device B/op", "XMPP B/op", "XMPP figure"),
            table,
        )
        if problems:
            raise DemoError(f"not exactly once: {', '.join(problems)}")
        self.narrator.say(
            f"every message was delivered exactly once ({len(paths)} paths, counted at both ends)"
        )


async def _subscription(person: UpstreamSession, to: Jid, kind: SubscriptionKind) -> None:
    """The person sends a subscription stanza of ``kind`` to ``to``."""
    await person.use(lambda client: client.send_subscription(to, kind))


def _check_signature(verifier: E2eVerifier, stanza: ET.Element, recipient: Jid) -> str:
    """The verifier's verdict on a received stanza's ``<e2e/>``; DemoError unless VERIFIED."""
    result = verifier.verify_stanza(
        stanza, now=time.time(), recipient=ImppAddress.parse(str(recipient.bare))
    )
    if result.status is not SignatureStatus.VERIFIED:
        raise DemoError(f"the signature did not verify: {result.reason or result.status.name}")
    signer = f", signer {result.signer.im_uri}" if result.signer is not None else ""
    return f"<e2e/> checked against the gateway's CA: {result.status.name}{signer}"
