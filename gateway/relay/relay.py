"""The relay core: one device's binding to its upstream account, translated both ways.

Theory of operation.  A :class:`DeviceRelay` is a sans-IO composite in wsproto's manner: what the
device sent goes into :meth:`~DeviceRelay.device_operation`, what the upstream said into
:meth:`~DeviceRelay.upstream_event`, the clock into :meth:`~DeviceRelay.handle_timer`; each returns
the :mod:`~gateway.relay.commands` to carry out, in order. It reads no bytes and keeps no I/O. Its
parts are modules of their own: the listening state (:mod:`~gateway.relay.listening`), the
device's own presence and its directions (:mod:`~gateway.relay.own_presence`), the contacts'
presence (:mod:`~gateway.relay.presence`), messages awaiting an outcome
(:mod:`~gateway.relay.outgoing`), the contact list (:mod:`~gateway.relay.contacts`).

Device -> upstream (issue 12 §5, RFC 2779): SendMessage becomes a chat message with a receipt
request (XEP-0184) and, by default, the RFC 3923 signature over the Message/CPIM object made from
the operation; the device hears :class:`AcknowledgeDevice` only when the server accepted the
stanza (XEP-0198) or a final outcome is known, and a DeliveryReport: DELIVERED on a receipt,
FAILED with the mapped reason on a stanza error, UNKNOWN after ``report_timeout`` of silence. A
retransmitted id is acknowledged again, never resent. SetPresence changes only the fields it
carries and broadcasts the whole presence with a signed PIDF; with ``to`` it is directed at one
watcher (§2.3.3, §5.2.3), and every later broadcast is followed by each direction again.
Subscription commands become subscribe/unsubscribe/approve/deny, block/unblock (XEP-0191,
polite: the blocked contact gets an unavailable presence first, so it sees the device offline).

Upstream -> device: messages become IncomingMessage (sender by alias, signature flag from the
verifier); presence becomes a whole PresenceNotification per contact, only from contacts the
device subscribed to (§5.3.2); subscription requests become SubscriptionRequest; the roster and
its pushes become ContactList (full or deltas). A receipt goes to the sender only after the
device acknowledged the message (:class:`~gateway.relay.inputs.DeviceDelivered`); a message the
device's queue refused (:class:`~gateway.relay.inputs.QueueOverflowed`) or that expired there
is reported to its sender as a stanza error (§5.4.1).

Sleep and absence (issue 12 §6, XEP-0352): Sleep makes the upstream inactive and routes
everything to the durable queue, presence coalesced per contact. A device silent past its declared
sleep plus ``sleep_grace``, or whose session ended without Sleep
(:class:`~gateway.relay.inputs.DeviceLinkLost`) and opened no new one within ``link_lost_grace``,
becomes unavailable to its watchers (§3.2.4, §3.2.5) while its upstream session stays (§2.1.1);
when it returns its presence, directions included, is restored. Wake answers with the
MissedSummary, then :class:`DrainQueue`, then live traffic; a second Wake drains nothing again.
A Wake (or a returning session) of a device the upstream holds traffic for first makes the
upstream active and waits for its flush (:mod:`~gateway.relay.flush`): what arrives meanwhile
still goes to the queue, coalesced, so a night's presence reaches the device once per contact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.impp import ImppError
from gateway.relay import commands as cmd
from gateway.relay.config import InboundVerifier, RelayConfig, RelayStatistics
from gateway.relay.contacts import ContactBook, ContactListRequests
from gateway.relay.errors import LocalRelayError
from gateway.relay.flush import PendingWake, WakeFlush
from gateway.relay.inbound import message_content, stanza_timestamp
from gateway.relay.inputs import DeviceDelivered, DeviceLinkLost, DeviceLinkUp, QueueOverflowed
from gateway.relay.ledger import InboundLedger, Sender
from gateway.relay.listening import Listening, ListeningInput, SleepState
from gateway.relay.outgoing import FAILURE_REASONS, Outgoing, OutgoingMessages
from gateway.relay.own_presence import DevicePresence
from gateway.relay.presence import ContactPresence
from gateway.relay.signing import DeviceSigner, PresenceState, cpim_for_message, pidf_for_presence
from gateway.signing import SigningError
from gateway.wire import (
    Ack,
    ContactListRequest,
    DeliveryReport,
    DeliveryStatus,
    Direction,
    Error,
    ErrorCode,
    FailureReason,
    IncomingMessage,
    MissedSummary,
    Ping,
    Pong,
    SendMessage,
    SetPresence,
    SignatureStatus,
    Sleep,
    SubscriptionAction,
    SubscriptionCommand,
    SubscriptionRequest,
    Wake,
)
from gateway.wire import Message as WireMessage
from gateway.wire.messages import MESSAGE_CLASSES
from gateway.xmpp import (
    Jid,
    JidError,
    MessageStanza,
    MessageStanzaType,
    PresenceStanza,
    RosterItem,
    SubscriptionKind,
)
from gateway.xmpp import events as ev

__all__ = [
    "DeviceInput",
    "DeviceRelay",
    "InboundVerifier",
    "RelayConfig",
    "RelayStatistics",
    "SleepState",
]

_NOTHING_MISSED = MissedSummary()
_DEFAULT_CONFIG = RelayConfig()

DeviceInput = WireMessage | DeviceDelivered | DeviceLinkLost | DeviceLinkUp | QueueOverflowed
"""What :meth:`DeviceRelay.device_operation` accepts."""

_SUBSCRIPTION_VERBS = {
    SubscriptionAction.SUBSCRIBE: cmd.SubscriptionVerb.SUBSCRIBE,
    SubscriptionAction.UNSUBSCRIBE: cmd.SubscriptionVerb.UNSUBSCRIBE,
    SubscriptionAction.APPROVE: cmd.SubscriptionVerb.APPROVE,
    SubscriptionAction.DENY: cmd.SubscriptionVerb.DENY,
}

_REPORT_COUNTERS = {
    DeliveryStatus.DELIVERED: "reports_delivered",
    DeliveryStatus.FAILED: "reports_failed",
    DeliveryStatus.UNKNOWN: "reports_unknown",
}
_TOTALS = (  # the counters of RelayStatistics that only grow
    "reports_delivered",
    "reports_failed",
    "reports_unknown",
    "messages_signed",
    "presence_signed",
    "signing_failures",
    "inbound_verified",
    "inbound_signature_failed",
    "inbound_unsigned",
    "presence_unsubscribed",
    "overflow_reports",
    "expiry_reports",
    "blocked_reports",
    "unavailable_announced",
    "wake_sync_timeouts",
)
_SIGNATURE_COUNTERS = {
    SignatureStatus.VERIFIED: "inbound_verified",
    SignatureStatus.FAILED: "inbound_signature_failed",
    SignatureStatus.NONE: "inbound_unsigned",
}


class DeviceRelay:
    """One enrolled device's binding to its upstream account (see the module docstring).

    ``aliases``, ``contact_list_version``, ``blocked``, ``deduplication_ids``,
    ``next_incoming_id`` and ``queued_summary`` are what the service read from the store, so a
    restarted relay continues where the last one stopped.
    """

    def __init__(
        self,
        account: Jid,
        *,
        config: RelayConfig = _DEFAULT_CONFIG,
        signer: DeviceSigner | None = None,
        verifier: InboundVerifier | None = None,
        aliases: Mapping[Jid, int] = {},
        contact_list_version: int = 0,
        blocked: Iterable[Jid] = (),
        deduplication_ids: Iterable[int] = (),
        next_incoming_id: int = 0,
        queued_summary: MissedSummary = _NOTHING_MISSED,
        upstream_ready: bool = False,
    ) -> None:
        self.account = account.bare
        self.config = config
        self._signer = signer
        self._verifier = verifier
        self.contacts = ContactBook(aliases, version=contact_list_version, blocked=blocked)
        self._listening = Listening()
        self.own = DevicePresence(config.max_directed)
        self._presence_unsent = False  # set while the upstream was down
        self.upstream_ready = upstream_ready
        self._stream_management = False
        self._outgoing = OutgoingMessages(
            config.message_id_prefix, config.report_timeout, deduplication_ids
        )
        self._next_incoming_id = next_incoming_id
        self._ledger = InboundLedger(config, queued_summary, self._count)
        self._contact_presence = ContactPresence(config.max_resources)
        self._list_requests = ContactListRequests(config.max_pending_list_requests)
        self._flush = WakeFlush(config.wake_sync_timeout)
        self._dropped: dict[str, int] = {}
        self._totals: dict[str, int] = {}  # the non-zero ones of _TOTALS

    # -- public API -------------------------------------------------------------------------------

    @property
    def state(self) -> SleepState:
        """Whether the device listens (:class:`SleepState`)."""
        return self._listening.state

    @property
    def delivering(self) -> bool:
        """Whether what arrives goes to the device now (awake, no upstream flush awaited)."""
        return self.state is SleepState.AWAKE and self._flush.pending is None

    @property
    def presence(self) -> PresenceState:
        """The device's broadcast presence."""
        return self.own.broadcast

    def statistics(self) -> RelayStatistics:
        """What was dropped, how much is in flight, and the totals since the relay started."""
        totals = dict.fromkeys(_TOTALS, 0)
        totals.update(self._totals)
        totals.update(
            pending_reports=len(self._outgoing),
            owed_receipts=self._ledger.owed_receipts,
            tracked_queue=self._ledger.tracked,
            directed_watchers=len(self.own.directed),
        )
        return RelayStatistics(dropped=dict(self._dropped), **totals)

    def close(self) -> None:
        """End the binding; every later call is misuse."""
        self._listening.move(ListeningInput.CLOSE)

    def device_operation(self, operation: DeviceInput, now: float) -> list[cmd.Command]:
        """Commands for what the device sent (a decoded wire message) or what the service saw."""
        self._check_open()
        if type(operation) is SendMessage:  # the commonest operation, ahead of the dispatch
            spoke = self._spoke(now)
            sent = self._on_send_message(operation, now)
            return spoke + sent if spoke else sent
        if isinstance(operation, DeviceDelivered):
            return self._on_delivered(operation.message_id)
        if isinstance(operation, QueueOverflowed):
            sender = self._ledger.overflowed(operation.message_id)
            reason = FailureReason.RESOURCE_CONSTRAINT
            return self._report_to_sender(sender, reason, "overflow_reports")
        if isinstance(operation, DeviceLinkLost):
            return self._on_link_lost(now)
        if isinstance(operation, DeviceLinkUp):
            return self._on_link_up(now)
        if not isinstance(operation, MESSAGE_CLASSES):
            raise LocalRelayError(f"{type(operation).__name__} is not a wire message")
        if isinstance(operation, Sleep):
            return self._on_sleep(operation, now)
        if isinstance(operation, Wake):
            return self._on_wake(operation, now)
        return self._spoke(now) + self._on_other_operation(operation, now)

    def _on_other_operation(self, operation: WireMessage, now: float) -> list[cmd.Command]:
        """Every device operation but Sleep and Wake."""
        if isinstance(operation, SendMessage):
            return self._on_send_message(operation, now)
        if isinstance(operation, SetPresence):
            return self._on_set_presence(operation, now)
        if isinstance(operation, SubscriptionCommand):
            return self._on_subscription_command(operation, now)
        if isinstance(operation, ContactListRequest):
            return self._on_contact_list_request(operation)
        if isinstance(operation, Ping):
            return [cmd.SendToDevice(Pong(operation.id))]
        if isinstance(operation, Pong | Error):
            return []  # the relay sends no Pings; an Error from the device needs no answer
        # Gateway-to-device messages, and Ack (the session layer's, never the relay's).
        assert operation.DIRECTION is Direction.GATEWAY_TO_DEVICE or isinstance(operation, Ack)
        return [self._error(ErrorCode.UNEXPECTED_MESSAGE, operation, "not a device operation")]

    def device_rejected(
        self, code: ErrorCode, *, message_type: int | None = None
    ) -> list[cmd.Command]:
        """The session layer could not decode an operation: answer with the wire Error."""
        self._check_open()
        return [cmd.SendToDevice(Error(code, message_type=message_type))]

    def upstream_event(self, event: object, now: float) -> list[cmd.Command]:
        """Commands for what the upstream said (the XMPP client's events, mapped here alone)."""
        self._check_open()
        # The commonest events first: every message the device sends brings these two back.
        if isinstance(event, ev.StanzasAcknowledged):
            return self._outgoing.acknowledged(event.ids)
        if isinstance(event, ev.ReceiptReceived):
            return self._on_outcome(event.message_id, DeliveryStatus.DELIVERED, None)
        if isinstance(event, ev.MessageReceived):
            return self._on_message(event.message, event.sequence, now)
        if isinstance(event, ev.PresenceReceived):
            return self._on_presence(event.presence, event.sequence, now)
        if isinstance(event, ev.SubscriptionReceived):
            return self._on_subscription(event.from_, event.kind, event.sequence)
        if isinstance(event, ev.MessageFailed):
            if event.id is None:
                return self._drop("failure-without-id")
            reason = FAILURE_REASONS.get(event.error.condition, FailureReason.OTHER)
            return self._on_outcome(event.id, DeliveryStatus.FAILED, reason)
        if isinstance(event, ev.StanzaDropped):
            if event.id is None:
                return []
            reason = (
                FailureReason.TOO_LARGE if event.reason == "too-large" else FailureReason.REJECTED
            )
            return self._on_outcome(event.id, DeliveryStatus.FAILED, reason)
        if isinstance(event, ev.RosterReceived):
            return self._on_roster(event.items)
        if isinstance(event, ev.RosterPushed):
            store, delta = self.contacts.push(event.item)
            commands: list[cmd.Command] = list(store)
            if delta is not None:
                commands += self._to_device(delta)
            return commands
        if isinstance(event, ev.SessionEstablished):
            self._stream_management = event.stream_management
            return self._on_session_up(now, fresh=True)
        if isinstance(event, ev.SessionResumed):
            return self._on_session_up(now, fresh=False)
        if isinstance(event, ev.StreamEnded):
            return self._on_session_down()
        if isinstance(event, ev.PingAnswered):
            return self._woken(self._flush.answered())
        if isinstance(event, ev.Event | ev.ConnectionOpened | ev.ConnectionClosed):
            return []  # negotiation, iq and ping results: the client's business
        raise LocalRelayError(f"{type(event).__name__} is not an upstream event")

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None."""
        if self.state is SleepState.CLOSED:
            return None
        deadlines = (
            self._outgoing.next_deadline(),
            self._listening.next_deadline(),
            self._ledger.next_expiry(),
            self._flush.next_deadline(),
        )
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> list[cmd.Command]:
        """Report silence as UNKNOWN, an absent device as unavailable, expired queue items."""
        self._check_open()
        commands: list[cmd.Command] = []
        for outgoing in self._outgoing.due(now):
            commands += self._finish(outgoing, DeliveryStatus.UNKNOWN, None)
        late = self._flush.due(now)
        if late is not None:
            self._add_total("wake_sync_timeouts")
            commands += self._woken(late)
        deadline = self._listening.next_deadline()
        if deadline is not None and now >= deadline:
            self._listening.move(ListeningInput.OVERSLEPT)
            self._listening.deadline = None
            if self.own.visible:
                self._add_total("unavailable_announced")
                commands += self._presence_commands(now)
        for message_id, sender in self._ledger.expire(now):
            commands.append(cmd.DropQueued(message_id))
            commands += self._report_to_sender(sender, FailureReason.EXPIRED, "expiry_reports")
        return commands

    def _report_to_sender(
        self, sender: Sender | None, reason: FailureReason, counter: str
    ) -> list[cmd.Command]:
        """Tell ``sender`` that its message will not reach the device (RFC 2779 §5.4.1)."""
        if sender is None:
            return self._drop("report-sender-forgotten")
        self._add_total(counter)
        return [cmd.UpstreamDeliveryFailed(sender.address, sender.upstream_id, reason)]

    # -- device -> upstream -----------------------------------------------------------------------

    def _on_send_message(self, message: SendMessage, now: float) -> list[cmd.Command]:
        answer = self._outgoing.retransmission(message.id)
        if answer is not None:
            return answer
        recipient = self._resolve(message.to)
        if isinstance(recipient, ErrorCode):
            return [self._error(recipient, message, "unknown recipient")]
        if not self.upstream_ready:
            return [self._error(ErrorCode.UPSTREAM_UNAVAILABLE, message, "retry later")]
        if len(self._outgoing) >= self.config.max_pending_reports:
            return [self._error(ErrorCode.QUEUE_FULL, message, "too many messages in flight")]
        signed: bytes | None = None
        if self.config.sign_messages and self._signer is not None:
            try:
                cpim = cpim_for_message(self.account, recipient, message.content)
                signed = self._signer.sign_message(cpim, now)
            except ImppError:
                self._add_total("signing_failures")
                return [self._error(ErrorCode.INVALID_ADDRESS, message, "not an IM address")]
            except SigningError:
                self._add_total("signing_failures")
                return [self._error(ErrorCode.INTERNAL, message, "signing failed")]
            self._add_total("messages_signed")
        return self._outgoing.start(message, recipient, signed, now)

    def _on_set_presence(self, update: SetPresence, now: float) -> list[cmd.Command]:
        if update.to is None:
            self.own.update(update)
            return self._presence_commands(now)
        contact = self._resolve(update.to)
        if isinstance(contact, ErrorCode):
            return [self._error(contact, update, "unknown watcher")]
        contact = contact.bare
        if not self.own.direct(contact, update):
            return [self._error(ErrorCode.QUEUE_FULL, update, "too many directed presences")]
        if self.contacts.is_blocked(contact):
            return []  # it sees the device offline; the direction applies once unblocked
        return self._presence_commands(now, only=contact)

    def _presence_commands(self, now: float, *, only: Jid | None = None) -> list[cmd.Command]:
        """The device's presence, whole, to its watchers (or to ``only``), directions after.

        An absent device is unavailable to everyone, whatever it set: one unavailable broadcast,
        which the server also carries to those that had directed presence (RFC 6121 §4.6.3).
        """
        if not self.upstream_ready:
            self._presence_unsent = True
            return []
        return [
            *self.own.commands(
                absent=self._listening.absent,
                blocked=self.contacts.is_blocked,
                sign=lambda shown: self._sign_presence(shown, now),
                only=only,
            )
        ]

    def _sign_presence(self, shown: PresenceState, now: float) -> bytes | None:
        """The signed PIDF of ``shown`` (RFC 3923), or None when signing is off or failed."""
        if not self.config.sign_presence or self._signer is None:
            return None
        try:
            signed = self._signer.sign_presence(pidf_for_presence(self.account, shown), now)
        except (ImppError, SigningError):
            self._count("presence-unsigned")
            self._add_total("signing_failures")
            return None
        self._add_total("presence_signed")
        return signed

    def _on_subscription_command(
        self, command: SubscriptionCommand, now: float
    ) -> list[cmd.Command]:
        contact = self._resolve(command.contact)
        if isinstance(contact, ErrorCode):
            return [self._error(contact, command, "unknown contact")]
        contact = contact.bare
        if not self.upstream_ready:
            return [self._error(ErrorCode.UPSTREAM_UNAVAILABLE, command, "retry later")]
        action = command.action
        if action in _SUBSCRIPTION_VERBS:
            return [cmd.UpstreamSubscription(contact, _SUBSCRIPTION_VERBS[action])]
        blocking = action is SubscriptionAction.BLOCK
        commands: list[cmd.Command] = []
        if blocking:
            # Polite blocking: the contact sees the device go offline, not a refusal.
            commands += [
                cmd.UpstreamSendPresence(available=False, to=contact),
                cmd.UpstreamBlock(contact),
            ]
            self._contact_presence.forget(contact)
        else:
            commands.append(cmd.UpstreamUnblock(contact))
            if self.own.view(contact).open and not self._listening.absent:
                commands += self._presence_commands(now, only=contact)
        store, delta = self.contacts.set_blocked(contact, blocking)
        commands += store
        if delta is not None:
            commands.append(cmd.SendToDevice(delta))
        return commands

    def _on_contact_list_request(self, request: ContactListRequest) -> list[cmd.Command]:
        if self.contacts.roster_known:
            return [cmd.SendToDevice(self.contacts.answer(request.known_version))]
        if not self.upstream_ready:
            return [self._error(ErrorCode.UPSTREAM_UNAVAILABLE, request, "retry later")]
        waiting = self._list_requests.wait(request.known_version)
        if waiting is None:
            return [self._error(ErrorCode.RATE_LIMITED, request, "a request is pending")]
        return waiting

    # -- listening --------------------------------------------------------------------------------

    def _back(self, event: ListeningInput, now: float) -> list[cmd.Command]:
        """An absent device is back (``event``): its presence, directions included, restored."""
        was_absent = self._listening.absent
        self._listening.move(event)
        if self.state is SleepState.ASLEEP:
            self._listening.deadline = now + self.config.sleep_grace
        if was_absent and self.own.known:
            return self._presence_commands(now)
        return []

    def _spoke(self, now: float) -> list[cmd.Command]:
        """The device sent an operation: it has a session, so an absent one is back."""
        state = self._listening.state
        if state is SleepState.DETACHED or state is SleepState.LOST:
            return self._on_link_up(now)
        if state is SleepState.OVERDUE:
            return self._back(ListeningInput.BACK, now)
        return []

    def _on_sleep(self, sleep: Sleep, now: float) -> list[cmd.Command]:
        previous = self.state
        self._flush.cancel()  # the queue stays for the next wake
        commands = self._back(ListeningInput.SLEEP, now)
        self._listening.deadline = now + sleep.duration + self.config.sleep_grace
        if previous is SleepState.AWAKE and self.upstream_ready:
            commands.append(cmd.UpstreamSetActive(False))
        return commands

    def _on_wake(self, wake: Wake, now: float) -> list[cmd.Command]:
        waiting = self._flush.pending
        if waiting is not None:
            # Woken already, the flush still awaited: one answer for both, when it ends.
            waiting.summary = True
            waiting.snapshot = waiting.snapshot or wake.presence_snapshot
            return []
        activate = self.state is not SleepState.AWAKE and self.upstream_ready
        commands: list[cmd.Command] = [cmd.UpstreamSetActive(True)] if activate else []
        commands += self._back(ListeningInput.WAKE, now)
        self._listening.deadline = None
        if activate:
            self._flush.start(now, summary=True, snapshot=wake.presence_snapshot)
            return [*commands, cmd.UpstreamSync()]
        return commands + self._woken(PendingWake(0, now, True, wake.presence_snapshot))

    def _woken(self, wake: PendingWake | None) -> list[cmd.Command]:
        """The flush is over (or none was awaited): summary, queue, snapshot, in that order."""
        if wake is None:
            return []
        commands: list[cmd.Command] = []
        if wake.summary:
            commands.append(cmd.SendToDevice(self._ledger.summary()))
        commands += self._delivered_from_queue()
        if wake.snapshot:
            commands += [cmd.SendToDevice(n) for n in self._contact_presence.snapshot()]
        return commands

    def _delivered_from_queue(self) -> list[cmd.Command]:
        """The queue goes to the device now: drain it, and stop counting and expiring it."""
        return [cmd.DrainQueue()] if self._ledger.drained() else []

    def _on_link_lost(self, now: float) -> list[cmd.Command]:
        self._flush.cancel()  # the queue stays for the next session
        previous = self._listening.move(ListeningInput.LINK_LOST)
        if previous is not SleepState.AWAKE:
            return []  # asleep or absent already: that deadline, or none, stands
        self._listening.deadline = now + self.config.link_lost_grace
        return [cmd.UpstreamSetActive(False)] if self.upstream_ready else []

    def _on_link_up(self, now: float) -> list[cmd.Command]:
        previous = self.state
        if previous not in (SleepState.DETACHED, SleepState.LOST, SleepState.OVERDUE):
            self._listening.move(ListeningInput.LINK_UP)
            return []
        activate = previous is not SleepState.OVERDUE and self.upstream_ready
        commands: list[cmd.Command] = [cmd.UpstreamSetActive(True)] if activate else []
        commands += self._back(ListeningInput.LINK_UP, now)
        if self.state is SleepState.AWAKE:
            self._listening.deadline = None
            if activate:
                self._flush.start(now, summary=False, snapshot=False)
                return [*commands, cmd.UpstreamSync()]
            commands += self._delivered_from_queue()
        return commands

    # -- upstream -> device -----------------------------------------------------------------------

    def _on_delivered(self, message_id: int) -> list[cmd.Command]:
        owed = self._ledger.delivered(message_id)
        if owed is None or owed.upstream_id is None:
            return []
        return [cmd.UpstreamSendReceipt(owed.address, owed.upstream_id)]

    def _on_message(self, message: MessageStanza, sequence: int, now: float) -> list[cmd.Command]:
        if message.type in (MessageStanzaType.ERROR, MessageStanzaType.GROUPCHAT):
            return self._drop(f"message-{message.type}")
        sender = message.from_
        if sender is None or message.body is None:
            return self._drop("message-without-sender-or-body")
        if self.contacts.is_blocked(sender):
            # As the server answers once the block reaches it (XEP-0191 §3.5): the same error,
            # whichever of the two refused the message first.
            reason = FailureReason.REJECTED
            return self._report_to_sender(Sender(sender, message.id), reason, "blocked_reports")
        content = message_content(message)
        if content is None:
            return self._drop("body-not-text")
        incoming = IncomingMessage(
            id=self._next_incoming_id,
            sender=self.contacts.reference(sender),
            timestamp=stanza_timestamp(message, now),
            content=content,
            signature=self._verify(message, now),
        )
        self._next_incoming_id += 1
        receipt = message.receipt_requested and message.id is not None
        self._ledger.arrived(incoming.id, Sender(sender, message.id), receipt)
        if self.delivering:
            return [cmd.SendToDevice(incoming, upstream_sequence=sequence or None)]
        expires_at = self._ledger.queued_message(incoming.id, now)
        return [
            cmd.EnqueueForDevice(
                incoming, expires_at=expires_at, upstream_sequence=sequence or None
            )
        ]

    def _on_presence(
        self, presence: PresenceStanza, sequence: int, now: float
    ) -> list[cmd.Command]:
        sender = presence.from_
        if sender is None or sender.bare == self.account:
            return self._drop("presence-own-or-anonymous")
        contact = sender.bare
        if self.contacts.is_blocked(contact):
            return self._drop("blocked")
        if not self.contacts.is_subscribed_to(contact):
            self._add_total("presence_unsubscribed")
            return self._drop("presence-not-subscribed")  # RFC 2779 §5.3.2
        signature = self._verify(presence, now) if presence.available else SignatureStatus.NONE
        notification = self._contact_presence.receive(
            presence, self.contacts.reference(contact), signature
        )
        if notification is None:
            return self._drop("presence-unchanged")
        return self._to_device(
            notification,
            coalesce_key=f"presence {contact}",
            upstream_sequence=sequence or None,
        )

    def _on_subscription(
        self, sender: Jid, kind: SubscriptionKind, sequence: int
    ) -> list[cmd.Command]:
        if kind is not SubscriptionKind.SUBSCRIBE:
            return []  # approvals and cancellations arrive as roster pushes
        if self.contacts.is_blocked(sender):
            return self._drop("blocked")
        request = SubscriptionRequest(sender=self.contacts.reference(sender))
        return self._to_device(
            request,
            coalesce_key=f"subscription {sender.bare}",
            upstream_sequence=sequence or None,
        )

    def _on_roster(self, items: Iterable[RosterItem]) -> list[cmd.Command]:
        store, _changed = self.contacts.replace_roster(items)
        return [*store, *self._list_requests.answer(self.contacts)]

    def _on_outcome(
        self, upstream_id: str, status: DeliveryStatus, reason: FailureReason | None
    ) -> list[cmd.Command]:
        record = self._outgoing.by_upstream_id(upstream_id)
        if record is None:
            return self._drop("outcome-unknown-id")
        return self._finish(record, status, reason)

    def _finish(
        self, record: Outgoing, status: DeliveryStatus, reason: FailureReason | None
    ) -> list[cmd.Command]:
        """The final outcome of a SendMessage, reported to the device (and counted)."""
        return self._outgoing.finish(record, status, reason, self._report_to_device)

    def _report_to_device(self, report: DeliveryReport) -> list[cmd.Command]:
        self._add_total(_REPORT_COUNTERS[report.status])
        return self._to_device(report)

    def _on_session_up(self, now: float, *, fresh: bool) -> list[cmd.Command]:
        self.upstream_ready = True
        commands: list[cmd.Command] = []
        if fresh:
            self._list_requests.roster_requested = True
            commands.append(cmd.UpstreamRosterRequest())
            if self.state is not SleepState.AWAKE:
                commands.append(cmd.UpstreamSetActive(False))
            if self.own.known:
                self._presence_unsent = True  # a new stream: the server forgot our presence
        if self._presence_unsent:
            self._presence_unsent = False
            commands += self._presence_commands(now)
        return commands

    def _on_session_down(self) -> list[cmd.Command]:
        self.upstream_ready = False
        return [*self._list_requests.abandon(), *self._woken(self._flush.lost())]

    # -- helpers ----------------------------------------------------------------------------------

    def _to_device(
        self,
        message: WireMessage,
        *,
        coalesce_key: str | None = None,
        upstream_sequence: int | None = None,
    ) -> list[cmd.Command]:
        """Send now to an awake device, else queue (presence and requests coalesced)."""
        if self.delivering:
            return [cmd.SendToDevice(message, upstream_sequence=upstream_sequence)]
        self._ledger.queued_other(message, coalesce_key)
        return [
            cmd.EnqueueForDevice(
                message, coalesce_key=coalesce_key, upstream_sequence=upstream_sequence
            )
        ]

    def _resolve(self, reference: int | str) -> Jid | ErrorCode:
        if isinstance(reference, int):
            contact = self.contacts.contact_of(reference)
            return contact if contact is not None else ErrorCode.UNKNOWN_ALIAS
        try:
            return Jid.parse_untrusted(reference)
        except JidError:
            return ErrorCode.INVALID_ADDRESS

    def _verify(self, stanza: MessageStanza | PresenceStanza, now: float) -> SignatureStatus:
        status = SignatureStatus.NONE if self._verifier is None else self._verifier(stanza, now)
        self._add_total(_SIGNATURE_COUNTERS[status])
        return status

    def _error(self, code: ErrorCode, operation: WireMessage, text: str) -> cmd.SendToDevice:
        message_id = getattr(operation, "id", None) if isinstance(operation, SendMessage) else None
        return cmd.SendToDevice(
            Error(code, message_type=int(operation.TYPE), message_id=message_id, text=text)
        )

    def _drop(self, reason: str) -> list[cmd.Command]:
        self._count(reason)
        return []

    def _add_total(self, counter: str) -> None:
        self._totals[counter] = self._totals.get(counter, 0) + 1

    def _count(self, reason: str) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def _check_open(self) -> None:
        if self._listening.state is SleepState.CLOSED:
            raise LocalRelayError("the relay is closed")
