"""An in-process gateway for swarm tests: the real session core and relay, an in-memory upstream.

The session core (:class:`GatewaySessions`, real EDHOC) and one real :class:`DeviceRelay` per
device run over the seeded fake network, as ``impp-gateway run`` runs them over UDP. The upstream
is a dictionary of accounts standing for the XMPP hosts: a message to a device's account is handed
to that device's relay as a received stanza; a message to a person is taken by the person's
client, which answers with a receipt (XEP-0184) at once. The receipt of a device's message goes
back when the receiving device acknowledged the record (``OperationAcknowledged`` ->
``DeviceDelivered``), as the service does. Queues are in memory; store commands are not needed.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import trio

from gateway import edhoc, wire
from gateway.enroll.provisioning import GatewayEndpoint, Provisioning, Transport
from gateway.jid import Jid
from gateway.relay import DeviceDelivered, DeviceRelay
from gateway.relay import commands as cmd
from gateway.session import (
    EdhocResponder,
    GatewaySessions,
    OperationAcknowledged,
    OperationReceived,
    TicketKeyRing,
    WireCodec,
)
from gateway.session.events import DeviceSessionEstablished, DeviceSessionResumed, SessionClosed
from gateway.session.handshake import identity_of
from gateway.xmpp import MessageStanza, MessageStanzaType
from gateway.xmpp import events as ev
from tests.session.fakenet import FakeNetwork
from tests.session.helpers import GATEWAY_ADDRESS, GATEWAY_CREDENTIAL

DOMAIN = "example.org"
UNIX_START = 1_800_000_000.0  # what the relays' clock reads when the gateway starts


def device_credential(index: int) -> edhoc.Credential:
    """A fixed P-256 credential per device index (kid: the index in two bytes)."""
    key = hashlib.sha256(f"swarm test device {index}".encode()).digest()
    return edhoc.Credential.new_ccs(
        curve=edhoc.Curve.P256, private_key=key, kid=index.to_bytes(2, "big"), subject=f"d{index}"
    )


def provisionings(count: int) -> list[Provisioning]:
    """What bulk enrollment would write for ``count`` devices ``dev{n}@example.org``."""
    result = []
    for index in range(count):
        credential = device_credential(index)
        assert credential.kid is not None
        result.append(
            Provisioning(
                device_kid=credential.kid,
                device_credential=credential.public().encoded,
                gateway_credential=GATEWAY_CREDENTIAL.public().encoded,
                endpoints=(GatewayEndpoint(Transport.UDP, "2001:db8::1", 5683),),
                account=f"dev{index}@{DOMAIN}",
                device_private_key=credential.private_key,
            )
        )
    return result


@dataclass
class InProcessGateway:
    """The gateway and the upstream hosts, in one object (see the module docstring)."""

    count: int
    people: Sequence[str] = ()
    seed: int = 1
    person_inbox: list[tuple[str, str]] = field(default_factory=list)  # (person, body)
    errors_to_devices: list[wire.Error] = field(default_factory=list)

    def __post_init__(self) -> None:
        credentials = [device_credential(i).public() for i in range(self.count)]
        self._by_identity = {identity_of(c): i for i, c in enumerate(credentials)}
        self._accounts = {Jid.parse_untrusted(f"dev{i}@{DOMAIN}"): i for i in range(self.count)}
        self.relays = [
            DeviceRelay(Jid.parse_untrusted(f"dev{i}@{DOMAIN}"), upstream_ready=True)
            for i in range(self.count)
        ]
        self._people = {Jid.parse_untrusted(p).bare for p in self.people}
        self._sessions: dict[int, bytes] = {}
        self._device_of: dict[bytes, int] = {}
        self._queues: dict[int, list[wire.Message]] = {i: [] for i in range(self.count)}
        self.core = GatewaySessions(
            handshake_factory=self._responder_factory(credentials),
            codec=WireCodec(),
            ticket_keys=TicketKeyRing(),
            rng=random.Random(self.seed),
            random_bytes=random.Random(self.seed + 100).randbytes,
        )
        self._offset = 0.0

    @staticmethod
    def _responder_factory(
        credentials: list[edhoc.Credential],
    ) -> Callable[[bytes], EdhocResponder]:
        by_kid = {c.kid: c for c in credentials}

        def lookup(id_cred: edhoc.IdCred) -> list[edhoc.Credential]:
            return [c for c in by_kid.values() if id_cred.matches(c)]

        def make(connection_id: bytes) -> EdhocResponder:
            return EdhocResponder(
                edhoc.Responder(
                    suites=[edhoc.CipherSuite.SUITE_2],
                    c_r=connection_id,
                    credential=GATEWAY_CREDENTIAL,
                    credential_lookup=lookup,
                )
            )

        return make

    # ---- the node ------------------------------------------------------------------------------

    async def run(self, net: FakeNetwork, address: Hashable = GATEWAY_ADDRESS) -> None:
        """Feed datagrams and timers to the core and the relays; send what they return."""
        inbox = net.bind(address, capacity=65536)
        # The relays get Unix-like time (their timestamps go on the wire), counted from the start,
        # so a run's bytes do not depend on where the virtual clock stood when it began.
        self._offset = UNIX_START - trio.current_time()
        while True:
            relay_deadlines = [r.next_deadline() for r in self.relays]
            deadlines = [self.core.next_deadline()] + [
                d - self._offset for d in relay_deadlines if d is not None
            ]
            deadline = min((d for d in deadlines if d is not None), default=math.inf)
            with trio.move_on_at(deadline):
                data, source = await inbox.receive()
                if source is not None:
                    self.core.receive_datagram(data, source, trio.current_time())
            now = trio.current_time()
            self.core.handle_timeout(now)
            relay_now = now + self._offset
            for index, relay in enumerate(self.relays):
                due = relay.next_deadline()
                if due is not None and due <= relay_now:
                    self._execute(index, relay.handle_timer(relay_now), relay_now)
            self._pump(relay_now)
            for datagram, destination in self.core.datagrams_to_send(now):
                net.send(address, destination, datagram)

    def _pump(self, now: float) -> None:
        while True:
            events = self.core.events()
            if not events:
                return
            for connection_id, event in events:
                self._on_session_event(connection_id, event, now)

    def _on_session_event(self, connection_id: bytes, event: object, now: float) -> None:
        if isinstance(event, DeviceSessionEstablished | DeviceSessionResumed):
            index = self._by_identity[event.peer_identity]
            self._sessions[index] = connection_id
            self._device_of[connection_id] = index
            # What waited for a session goes to it now, as DeviceBinding.attach sends its queue.
            queued, self._queues[index] = self._queues[index], []
            for message in queued:
                self._to_device(index, message)
            return
        index_or_none = self._device_of.get(connection_id)
        if index_or_none is None:
            return
        index = index_or_none
        relay = self.relays[index]
        if isinstance(event, OperationReceived):
            self._execute(index, relay.device_operation(event.message, now), now)
        elif isinstance(event, OperationAcknowledged):
            if isinstance(event.message, wire.IncomingMessage):
                self._execute(
                    index, relay.device_operation(DeviceDelivered(event.message.id), now), now
                )
        elif isinstance(event, SessionClosed) and self._sessions.get(index) == connection_id:
            del self._sessions[index]

    # ---- commands ------------------------------------------------------------------------------

    def _to_device(self, index: int, message: wire.Message) -> None:
        connection_id = self._sessions.get(index)
        if isinstance(message, wire.Error):
            self.errors_to_devices.append(message)
        if connection_id is None:
            self._queues[index].append(message)
        else:
            self.core.send_operation(connection_id, message)

    def _execute(self, index: int, commands: list[cmd.Command], now: float) -> None:
        work = list(commands)
        while work:
            command = work.pop(0)
            if isinstance(command, cmd.SendToDevice):
                self._to_device(index, command.message)
            elif isinstance(command, cmd.EnqueueForDevice):
                self._queues[index].append(command.message)
            elif isinstance(command, cmd.DrainQueue):
                queued, self._queues[index] = self._queues[index], []
                for message in queued:
                    self._to_device(index, message)
            elif isinstance(command, cmd.UpstreamSendMessage):
                self._upstream_message(index, command, now)
            elif isinstance(command, cmd.UpstreamSendReceipt):
                self._upstream_receipt(index, command, now)
            # Presence, activity, subscriptions and store commands: nobody here needs them.

    def _upstream_message(self, index: int, command: cmd.UpstreamSendMessage, now: float) -> None:
        sender = self.relays[index].account
        body = command.content.text if isinstance(command.content, wire.TextContent) else ""
        recipient = command.to.bare
        if recipient in self._people:
            self.person_inbox.append((str(recipient), body))
            receipt = ev.ReceiptReceived(from_=recipient, message_id=command.message_id)
            self._execute(index, self.relays[index].upstream_event(receipt, now), now)
            return
        target = self._accounts.get(recipient)
        if target is None:
            return
        stanza = MessageStanza(
            to=recipient,
            from_=sender,
            id=command.message_id,
            type=MessageStanzaType.CHAT,
            bodies=((None, body),),
            receipt_requested=command.request_receipt,
        )
        relay = self.relays[target]
        self._execute(target, relay.upstream_event(ev.MessageReceived(stanza), now), now)

    def _upstream_receipt(self, index: int, command: cmd.UpstreamSendReceipt, now: float) -> None:
        target = self._accounts.get(command.to.bare)
        if target is None:
            return
        receipt = ev.ReceiptReceived(
            from_=self.relays[index].account, message_id=command.message_id
        )
        self._execute(target, self.relays[target].upstream_event(receipt, now), now)
