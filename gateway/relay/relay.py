"""The relay core: one device's binding to its upstream account, translated both ways.

Theory of operation.  A :class:`DeviceRelay` is a sans-IO composite in wsproto's manner: what the
device sent goes into :meth:`~DeviceRelay.device_operation`, what the upstream said into
:meth:`~DeviceRelay.upstream_event`, the clock into :meth:`~DeviceRelay.handle_timer`; each returns
the :mod:`~gateway.relay.commands` to carry out, in order. It reads no bytes and keeps no I/O.

Device -> upstream (issue 12 §5, RFC 2779): SendMessage becomes a chat message with a receipt
request (XEP-0184) and, by default, the RFC 3923 signature over the Message/CPIM object made from
the operation; the device hears :class:`AcknowledgeDevice` only when the server accepted the
stanza (XEP-0198) or a final outcome is known, and a DeliveryReport: DELIVERED on a receipt,
FAILED with the mapped reason on a stanza error, UNKNOWN after ``report_timeout`` of silence. A
retransmitted id is acknowledged again, never resent. SetPresence changes only the fields it
carries and broadcasts the whole presence with a signed PIDF. Subscription commands become
subscribe/unsubscribe/approve/deny, block/unblock (XEP-0191, polite: the blocked contact gets an
unavailable presence first, so it sees the device offline, RFC 2779 §5.1.x).

Upstream -> device: messages become IncomingMessage (sender by alias, signature flag from the
verifier); presence becomes a whole PresenceNotification per contact (the best of its resources,
stripped of capabilities, delays and extensions), and only from contacts the device subscribed
to (RFC 2779 §5.3.2); subscription requests become SubscriptionRequest; the roster and its pushes
become ContactList (full or deltas). A receipt goes to the sender only after the device
acknowledged the message (:class:`~gateway.relay.inputs.DeviceDelivered`).

Sleep (issue 12 §6, XEP-0352): Sleep makes the upstream inactive and routes everything to the
durable queue, presence coalesced per contact; a device silent past its declared sleep plus
``sleep_grace`` becomes unavailable to its watchers (RFC 2779 §3.2.4, §3.2.5); a queued message
older than ``queue_lifetime`` is dropped and its sender told (§5.4.1). Wake answers with the
MissedSummary, then :class:`DrainQueue`, then live traffic; a second Wake drains nothing again.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from gateway.impp import ImppError
from gateway.relay import commands as cmd
from gateway.relay.contacts import ContactBook
from gateway.relay.errors import LocalRelayError
from gateway.relay.inputs import DeviceDelivered
from gateway.relay.signing import (
    DeviceSigner,
    PresenceState,
    cpim_for_message,
    pidf_for_presence,
)
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
    LocalWireError,
    MissedSummary,
    Ping,
    Pong,
    PresenceNotification,
    SendMessage,
    SetPresence,
    Show,
    SignatureStatus,
    Sleep,
    SubscriptionAction,
    SubscriptionCommand,
    SubscriptionRequest,
    TextContent,
    Wake,
)
from gateway.wire import Message as WireMessage
from gateway.wire.messages import MAX_SHORT_TEXT_SIZE, MESSAGE_CLASSES
from gateway.xmpp import (
    Jid,
    JidError,
    MessageStanza,
    MessageStanzaType,
    PresenceShow,
    PresenceStanza,
    RosterItem,
    StanzaErrorCondition,
    SubscriptionKind,
)
from gateway.xmpp import events as ev

__all__ = [
    "DEFAULT_MAX_PENDING_REPORTS",
    "DEFAULT_QUEUE_LIFETIME",
    "DEFAULT_REPORT_TIMEOUT",
    "DEFAULT_SLEEP_GRACE",
    "DeviceInput",
    "DeviceRelay",
    "InboundVerifier",
    "RelayConfig",
    "RelayStatistics",
    "SleepState",
]

DEFAULT_REPORT_TIMEOUT = 300.0  # seconds without receipt or error before UNKNOWN (RFC 2779 §4.2.1)
DEFAULT_SLEEP_GRACE = 60.0  # seconds past a declared sleep before watchers see the device gone
DEFAULT_QUEUE_LIFETIME = 7 * 86_400.0  # a week: a queued message older than this is reported
DEFAULT_MAX_PENDING_REPORTS = 256  # SendMessages awaiting an outcome; more get QUEUE_FULL
DEFAULT_MAX_OWED_RECEIPTS = 4096  # inbound messages awaiting the device's ack for their receipt
DEFAULT_MAX_TRACKED_QUEUE = 4096  # queued messages whose expiry the relay watches
DEFAULT_MAX_RESOURCES = 8  # presence resources kept per contact (a person has a few clients)
DEFAULT_MAX_PENDING_LIST_REQUESTS = 4  # ContactListRequests waiting for the roster

DELAY_TAG = "{urn:xmpp:delay}delay"  # XEP-0203

_NOTHING_MISSED = MissedSummary()

InboundVerifier = Callable[[MessageStanza | PresenceStanza, float], SignatureStatus]
"""Checks an inbound stanza's RFC 3923 signature (see ``xmpp_upstream.stanza_verifier``)."""

DeviceInput = WireMessage | DeviceDelivered
"""What :meth:`DeviceRelay.device_operation` accepts."""

_SHOW_FROM_XMPP = {
    None: Show.AVAILABLE,
    PresenceShow.CHAT: Show.CHAT,
    PresenceShow.AWAY: Show.AWAY,
    PresenceShow.XA: Show.EXTENDED_AWAY,
    PresenceShow.DND: Show.DO_NOT_DISTURB,
}

_C = StanzaErrorCondition
_FAILURE_REASONS: dict[object, FailureReason] = {
    _C.ITEM_NOT_FOUND: FailureReason.RECIPIENT_UNKNOWN,
    _C.GONE: FailureReason.RECIPIENT_UNKNOWN,
    _C.JID_MALFORMED: FailureReason.RECIPIENT_UNKNOWN,
    _C.RECIPIENT_UNAVAILABLE: FailureReason.RECIPIENT_UNAVAILABLE,
    _C.SERVICE_UNAVAILABLE: FailureReason.RECIPIENT_UNAVAILABLE,
    _C.FORBIDDEN: FailureReason.NOT_AUTHORIZED,
    _C.NOT_AUTHORIZED: FailureReason.NOT_AUTHORIZED,
    _C.NOT_ALLOWED: FailureReason.NOT_AUTHORIZED,
    _C.SUBSCRIPTION_REQUIRED: FailureReason.NOT_AUTHORIZED,
    _C.REGISTRATION_REQUIRED: FailureReason.NOT_AUTHORIZED,
    _C.REMOTE_SERVER_NOT_FOUND: FailureReason.REMOTE_SERVER_UNREACHABLE,
    _C.REMOTE_SERVER_TIMEOUT: FailureReason.REMOTE_SERVER_UNREACHABLE,
    _C.POLICY_VIOLATION: FailureReason.REJECTED,
    _C.NOT_ACCEPTABLE: FailureReason.REJECTED,
}

_SUBSCRIPTION_VERBS = {
    SubscriptionAction.SUBSCRIBE: cmd.SubscriptionVerb.SUBSCRIBE,
    SubscriptionAction.UNSUBSCRIBE: cmd.SubscriptionVerb.UNSUBSCRIBE,
    SubscriptionAction.APPROVE: cmd.SubscriptionVerb.APPROVE,
    SubscriptionAction.DENY: cmd.SubscriptionVerb.DENY,
}


@dataclasses.dataclass(frozen=True)
class RelayConfig:
    """Policy and limits of one relay (named defaults above)."""

    sign_messages: bool = True  # RFC 3923 signature on behalf of the device, when a signer is set
    sign_presence: bool = True
    report_timeout: float = DEFAULT_REPORT_TIMEOUT
    sleep_grace: float = DEFAULT_SLEEP_GRACE
    queue_lifetime: float = DEFAULT_QUEUE_LIFETIME
    max_pending_reports: int = DEFAULT_MAX_PENDING_REPORTS
    max_owed_receipts: int = DEFAULT_MAX_OWED_RECEIPTS
    max_tracked_queue: int = DEFAULT_MAX_TRACKED_QUEUE
    max_resources: int = DEFAULT_MAX_RESOURCES
    max_pending_list_requests: int = DEFAULT_MAX_PENDING_LIST_REQUESTS
    message_id_prefix: str = "gw-"  # upstream ids are this, then a counter


class SleepState(enum.Enum):
    """Whether the device listens: AWAKE, ASLEEP (declared), OVERDUE (silent past its sleep)."""

    AWAKE = "awake"
    ASLEEP = "asleep"
    OVERDUE = "overdue"
    CLOSED = "closed"


class _Input(enum.Enum):
    SLEEP = "sleep"
    WAKE = "wake"
    OVERSLEPT = "overslept"
    CLOSE = "close"


_S, _I = SleepState, _Input
# The one transition table of the device's listening state; an unlisted pair is misuse.
_TRANSITIONS: dict[tuple[SleepState, _Input], SleepState] = {
    (_S.AWAKE, _I.SLEEP): _S.ASLEEP,
    (_S.ASLEEP, _I.SLEEP): _S.ASLEEP,
    (_S.OVERDUE, _I.SLEEP): _S.ASLEEP,
    (_S.AWAKE, _I.WAKE): _S.AWAKE,
    (_S.ASLEEP, _I.WAKE): _S.AWAKE,
    (_S.OVERDUE, _I.WAKE): _S.AWAKE,
    (_S.ASLEEP, _I.OVERSLEPT): _S.OVERDUE,
    (_S.AWAKE, _I.CLOSE): _S.CLOSED,
    (_S.ASLEEP, _I.CLOSE): _S.CLOSED,
    (_S.OVERDUE, _I.CLOSE): _S.CLOSED,
}


@dataclasses.dataclass
class _Outgoing:
    """A SendMessage awaiting its outcome."""

    device_message_id: int
    upstream_id: str
    want_report: bool
    deadline: float
    acknowledged: bool = False


@dataclasses.dataclass
class _Queued:
    """An IncomingMessage in the device's queue, watched for expiry."""

    sender: Jid
    upstream_id: str | None
    expires_at: float | None


@dataclasses.dataclass(frozen=True)
class _ResourcePresence:
    available: bool
    show: Show
    note: str | None
    note_language: str | None
    priority: int
    signature: SignatureStatus


@dataclasses.dataclass(frozen=True)
class RelayStatistics:
    """Counters of what the relay did not pass on, by reason (a snapshot)."""

    dropped: Mapping[str, int]
    pending_reports: int
    owed_receipts: int
    tracked_queue: int


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
        config: RelayConfig = RelayConfig(),
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
        self.state = SleepState.AWAKE
        self.presence = PresenceState()
        self._presence_set = False  # the device has said what its presence is
        self._presence_unsent = False  # set while the upstream was down
        self.upstream_ready = upstream_ready
        self._stream_management = False
        # Ids restored from the store: seen before, outcome unknown here; acknowledged again.
        self._restored_ids: set[int] = set(deduplication_ids)
        self._outgoing: dict[int, _Outgoing] = {}
        self._outgoing_by_upstream_id: dict[str, _Outgoing] = {}
        self._upstream_counter = 0
        self._next_incoming_id = next_incoming_id
        self._owed_receipts: OrderedDict[int, tuple[Jid, str]] = OrderedDict()
        self._queued: dict[int, _Queued] = {}
        self._sleep_deadline: float | None = None
        self._missed = dataclasses.asdict(queued_summary)
        self._coalesced: set[str] = set()
        self._queue_may_hold = any(self._missed.values())
        self._resources: dict[Jid, dict[str | None, _ResourcePresence]] = {}
        self._notified: dict[Jid, PresenceNotification] = {}
        self._pending_list_requests: list[int | None] = []
        self._roster_requested = False
        self._dropped: dict[str, int] = {}

    # -- public API -------------------------------------------------------------------------------

    def statistics(self) -> RelayStatistics:
        """What was dropped and how much is in flight."""
        return RelayStatistics(
            dropped=dict(self._dropped),
            pending_reports=len(self._outgoing),
            owed_receipts=len(self._owed_receipts),
            tracked_queue=len(self._queued),
        )

    def close(self) -> None:
        """End the binding; every later call is misuse."""
        self._transition(_I.CLOSE)

    def device_operation(self, operation: DeviceInput, now: float) -> list[cmd.Command]:
        """Commands for what the device sent (a decoded wire message) or acknowledged."""
        self._check_open()
        if isinstance(operation, DeviceDelivered):
            return self._on_delivered(operation.message_id)
        if not isinstance(operation, MESSAGE_CLASSES):
            raise LocalRelayError(f"{type(operation).__name__} is not a wire message")
        if isinstance(operation, Sleep):
            return self._on_sleep(operation, now)
        if isinstance(operation, Wake):
            return self._on_wake(operation, now)
        commands = self._back_from_overdue(now)
        return commands + self._on_other_operation(operation, now)

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
        if isinstance(event, ev.MessageReceived):
            return self._on_message(event.message, event.sequence, now)
        if isinstance(event, ev.PresenceReceived):
            return self._on_presence(event.presence, event.sequence, now)
        if isinstance(event, ev.SubscriptionReceived):
            return self._on_subscription(event.from_, event.kind, event.sequence)
        if isinstance(event, ev.ReceiptReceived):
            return self._on_outcome(event.message_id, DeliveryStatus.DELIVERED, None)
        if isinstance(event, ev.MessageFailed):
            if event.id is None:
                return self._drop("failure-without-id")
            reason = _FAILURE_REASONS.get(event.error.condition, FailureReason.OTHER)
            return self._on_outcome(event.id, DeliveryStatus.FAILED, reason)
        if isinstance(event, ev.StanzaDropped):
            if event.id is None:
                return []
            reason = (
                FailureReason.TOO_LARGE if event.reason == "too-large" else FailureReason.REJECTED
            )
            return self._on_outcome(event.id, DeliveryStatus.FAILED, reason)
        if isinstance(event, ev.StanzasAcknowledged):
            return self._on_acknowledged(event.ids)
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
        if isinstance(event, ev.Event | ev.ConnectionOpened | ev.ConnectionClosed):
            return []  # negotiation, iq and ping results: the client's business
        raise LocalRelayError(f"{type(event).__name__} is not an upstream event")

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None."""
        if self.state is SleepState.CLOSED:
            return None
        deadlines = [outgoing.deadline for outgoing in self._outgoing.values()]
        deadlines += [q.expires_at for q in self._queued.values() if q.expires_at is not None]
        if self.state is SleepState.ASLEEP and self._sleep_deadline is not None:
            deadlines.append(self._sleep_deadline)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> list[cmd.Command]:
        """Report silence as UNKNOWN, an overdue sleeper as unavailable, expired queue items."""
        self._check_open()
        commands: list[cmd.Command] = []
        for outgoing in [o for o in self._outgoing.values() if now >= o.deadline]:
            commands += self._finish(outgoing, DeliveryStatus.UNKNOWN, None)
        if (
            self.state is SleepState.ASLEEP
            and self._sleep_deadline is not None
            and now >= self._sleep_deadline
        ):
            self._transition(_I.OVERSLEPT)
            self._sleep_deadline = None
            if self._presence_set and self.presence.open:
                commands += self._presence_commands(now, available=False)
        for message_id, queued in list(self._queued.items()):
            if queued.expires_at is not None and now >= queued.expires_at:
                del self._queued[message_id]
                self._owed_receipts.pop(message_id, None)
                self._missed["expired"] += 1
                self._missed["messages"] = max(0, self._missed["messages"] - 1)
                commands.append(cmd.DropQueued(message_id))
                commands.append(
                    cmd.UpstreamDeliveryFailed(
                        queued.sender, queued.upstream_id, FailureReason.EXPIRED
                    )
                )
        return commands

    # -- device -> upstream -----------------------------------------------------------------------

    def _on_send_message(self, message: SendMessage, now: float) -> list[cmd.Command]:
        if message.id in self._outgoing:
            record = self._outgoing[message.id]
            return [cmd.AcknowledgeDevice(message.id)] if record.acknowledged else []
        if message.id in self._restored_ids:
            return [cmd.AcknowledgeDevice(message.id)]
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
                return [self._error(ErrorCode.INVALID_ADDRESS, message, "not an IM address")]
            except SigningError:
                return [self._error(ErrorCode.INTERNAL, message, "signing failed")]
        self._upstream_counter += 1
        upstream_id = f"{self.config.message_id_prefix}{self._upstream_counter}"
        record = _Outgoing(
            message.id, upstream_id, message.want_report, now + self.config.report_timeout
        )
        self._outgoing[message.id] = record
        self._outgoing_by_upstream_id[upstream_id] = record
        return [
            cmd.RecordDeduplicationId(message.id),
            cmd.UpstreamSendMessage(
                to=recipient,
                content=message.content,
                message_id=upstream_id,
                device_message_id=message.id,
                signed=signed,
                request_receipt=True,
            ),
        ]

    def _on_set_presence(self, update: SetPresence, now: float) -> list[cmd.Command]:
        self.presence.update(
            open=update.open,
            show=update.show,
            note=update.note,
            note_language=update.note_language,
        )
        self._presence_set = True
        return self._presence_commands(now, available=True)

    def _presence_commands(
        self, now: float, *, available: bool, to: Jid | None = None
    ) -> list[cmd.Command]:
        """The device's presence, whole; ``available=False`` says unavailable whatever it set."""
        if not self.upstream_ready:
            self._presence_unsent = True
            return []
        open_now = available and self.presence.open
        signed: bytes | None = None
        if self.config.sign_presence and self._signer is not None:
            state = self.presence if open_now or not self.presence.open else self.presence.closed()
            try:
                signed = self._signer.sign_presence(pidf_for_presence(self.account, state), now)
            except (ImppError, SigningError):
                self._count("presence-unsigned")
        return [
            cmd.UpstreamSendPresence(
                available=open_now,
                show=self.presence.effective_show if open_now else Show.AVAILABLE,
                status=self.presence.note,
                status_language=self.presence.note_language if self.presence.note else None,
                to=to,
                signed=signed,
            )
        ]

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
            self._resources.pop(contact, None)
            self._notified.pop(contact, None)
        else:
            commands.append(cmd.UpstreamUnblock(contact))
            if self._presence_set and self.presence.open and self.state is not SleepState.OVERDUE:
                commands += self._presence_commands(now, available=True, to=contact)
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
        if len(self._pending_list_requests) >= self.config.max_pending_list_requests:
            return [self._error(ErrorCode.RATE_LIMITED, request, "a request is pending")]
        self._pending_list_requests.append(request.known_version)
        if self._roster_requested:
            return []
        self._roster_requested = True
        return [cmd.UpstreamRosterRequest()]

    def _back_from_overdue(self, now: float) -> list[cmd.Command]:
        """An overdue device spoke: it is back within a grace period, its presence restored."""
        if self.state is not SleepState.OVERDUE:
            return []
        self._transition(_I.SLEEP)
        self._sleep_deadline = now + self.config.sleep_grace
        if self._presence_set and self.presence.open:
            return self._presence_commands(now, available=True)
        return []

    def _on_sleep(self, sleep: Sleep, now: float) -> list[cmd.Command]:
        previous = self.state
        self._transition(_I.SLEEP)
        self._sleep_deadline = now + sleep.duration + self.config.sleep_grace
        commands: list[cmd.Command] = []
        if previous is SleepState.OVERDUE and self._presence_set and self.presence.open:
            commands += self._presence_commands(now, available=True)
        if previous is SleepState.AWAKE and self.upstream_ready:
            commands.append(cmd.UpstreamSetActive(False))
        return commands

    def _on_wake(self, wake: Wake, now: float) -> list[cmd.Command]:
        previous = self.state
        self._transition(_I.WAKE)
        self._sleep_deadline = None
        commands: list[cmd.Command] = []
        if previous is not SleepState.AWAKE and self.upstream_ready:
            commands.append(cmd.UpstreamSetActive(True))
        if previous is SleepState.OVERDUE and self._presence_set and self.presence.open:
            commands += self._presence_commands(now, available=True)
        commands.append(cmd.SendToDevice(MissedSummary(**self._missed)))
        if self._queue_may_hold or any(self._missed.values()):
            commands.append(cmd.DrainQueue())
        for queued in self._queued.values():
            queued.expires_at = None  # being delivered now; no longer the relay's to expire
        self._missed = dict.fromkeys(self._missed, 0)
        self._coalesced.clear()
        self._queue_may_hold = False
        if wake.presence_snapshot:
            commands += [cmd.SendToDevice(n) for n in self._notified.values()]
        return commands

    def _on_delivered(self, message_id: int) -> list[cmd.Command]:
        self._queued.pop(message_id, None)
        owed = self._owed_receipts.pop(message_id, None)
        if owed is None:
            return []
        sender, upstream_id = owed
        return [cmd.UpstreamSendReceipt(sender, upstream_id)]

    # -- upstream -> device -----------------------------------------------------------------------

    def _on_message(self, message: MessageStanza, sequence: int, now: float) -> list[cmd.Command]:
        if message.type in (MessageStanzaType.ERROR, MessageStanzaType.GROUPCHAT):
            return self._drop(f"message-{message.type}")
        sender = message.from_
        body = message.body
        if sender is None or body is None:
            return self._drop("message-without-sender-or-body")
        if self.contacts.is_blocked(sender):
            return self._drop("blocked")
        language = message.lang
        for body_lang, text in message.bodies:
            if text == body:
                language = body_lang or message.lang
                break
        try:
            content = TextContent(body, _language(language))
        except LocalWireError:
            return self._drop("body-not-text")
        signature = self._verify(message, now)
        incoming = IncomingMessage(
            id=self._next_incoming_id,
            sender=self.contacts.reference(sender),
            timestamp=_timestamp(message, now),
            content=content,
            signature=signature,
        )
        self._next_incoming_id += 1
        if message.receipt_requested and message.id is not None:
            self._owed_receipts[incoming.id] = (sender, message.id)
            while len(self._owed_receipts) > self.config.max_owed_receipts:
                self._owed_receipts.popitem(last=False)
                self._count("receipt-forgotten")
        if self.state is SleepState.AWAKE:
            return [cmd.SendToDevice(incoming, upstream_sequence=sequence or None)]
        expires_at: float | None = now + self.config.queue_lifetime
        if len(self._queued) < self.config.max_tracked_queue:
            self._queued[incoming.id] = _Queued(sender, message.id, expires_at)
        else:
            self._count("queue-untracked")
            expires_at = None
        self._missed["messages"] += 1
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
            return self._drop("presence-not-subscribed")  # RFC 2779 §5.3.2
        resources = self._resources.setdefault(contact, {})
        if not presence.available:
            resources.pop(sender.resource, None)
        else:
            resources.pop(sender.resource, None)
            if len(resources) >= self.config.max_resources:
                resources.pop(next(iter(resources)))
            note = presence.status
            if note is not None and (not note or len(note.encode()) > MAX_SHORT_TEXT_SIZE):
                note = None
            resources[sender.resource] = _ResourcePresence(
                available=True,
                show=_SHOW_FROM_XMPP.get(presence.show, Show.AVAILABLE),
                note=note,
                note_language=_language(presence.lang) if note else None,
                priority=presence.priority,
                signature=self._verify(presence, now),
            )
        if not resources:
            self._resources.pop(contact, None)
        best = max(resources.values(), key=lambda r: r.priority, default=None)
        reference = self.contacts.reference(contact)
        if best is None:
            notification = PresenceNotification(contact=reference, open=False)
        else:
            notification = PresenceNotification(
                contact=reference,
                open=True,
                show=best.show,
                note=best.note,
                note_language=best.note_language,
                signature=best.signature,
            )
        if self._notified.get(contact) == notification:
            return self._drop("presence-unchanged")
        self._notified[contact] = notification
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
        self._roster_requested = False
        commands: list[cmd.Command] = list(store)
        for known_version in self._pending_list_requests:
            commands.append(cmd.SendToDevice(self.contacts.answer(known_version)))
        self._pending_list_requests.clear()
        return commands

    def _on_acknowledged(self, ids: tuple[str | None, ...]) -> list[cmd.Command]:
        commands: list[cmd.Command] = []
        for upstream_id in ids:
            record = self._outgoing_by_upstream_id.get(upstream_id or "")
            if record is not None and not record.acknowledged:
                record.acknowledged = True
                commands.append(cmd.AcknowledgeDevice(record.device_message_id))
        return commands

    def _on_outcome(
        self, upstream_id: str, status: DeliveryStatus, reason: FailureReason | None
    ) -> list[cmd.Command]:
        record = self._outgoing_by_upstream_id.get(upstream_id)
        if record is None:
            return self._drop("outcome-unknown-id")
        return self._finish(record, status, reason)

    def _finish(
        self, record: _Outgoing, status: DeliveryStatus, reason: FailureReason | None
    ) -> list[cmd.Command]:
        """The final outcome of a SendMessage: acknowledge, report, forget its id."""
        del self._outgoing[record.device_message_id]
        del self._outgoing_by_upstream_id[record.upstream_id]
        commands: list[cmd.Command] = []
        if not record.acknowledged:
            commands.append(cmd.AcknowledgeDevice(record.device_message_id))
        if status is not DeliveryStatus.DELIVERED or record.want_report:
            report = DeliveryReport(record.device_message_id, status, reason)
            commands += self._to_device(report)
        commands.append(cmd.ForgetDeduplicationId(record.device_message_id))
        return commands

    def _on_session_up(self, now: float, *, fresh: bool) -> list[cmd.Command]:
        self.upstream_ready = True
        commands: list[cmd.Command] = []
        if fresh:
            self._roster_requested = True
            commands.append(cmd.UpstreamRosterRequest())
            if self.state is not SleepState.AWAKE:
                commands.append(cmd.UpstreamSetActive(False))
        if self._presence_unsent:
            self._presence_unsent = False
            available = self.state is not SleepState.OVERDUE
            commands += self._presence_commands(now, available=available)
        return commands

    def _on_session_down(self) -> list[cmd.Command]:
        self.upstream_ready = False
        self._roster_requested = False
        commands: list[cmd.Command] = [
            cmd.SendToDevice(
                Error(ErrorCode.UPSTREAM_UNAVAILABLE, message_type=ContactListRequest.TYPE)
            )
            for _ in self._pending_list_requests
        ]
        self._pending_list_requests.clear()
        return commands

    # -- helpers ----------------------------------------------------------------------------------

    def _to_device(
        self,
        message: WireMessage,
        *,
        coalesce_key: str | None = None,
        upstream_sequence: int | None = None,
    ) -> list[cmd.Command]:
        """Send now to an awake device, else queue (presence and requests coalesced)."""
        if self.state is SleepState.AWAKE:
            return [cmd.SendToDevice(message, upstream_sequence=upstream_sequence)]
        kind = {
            DeliveryReport: "delivery_reports",
            PresenceNotification: "presence_notifications",
            SubscriptionRequest: "subscription_requests",
        }.get(type(message))
        if kind is not None:
            if coalesce_key is None or coalesce_key not in self._coalesced:
                self._missed[kind] += 1
            if coalesce_key is not None:
                self._coalesced.add(coalesce_key)
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
        if self._verifier is None:
            return SignatureStatus.NONE
        return self._verifier(stanza, now)

    def _error(self, code: ErrorCode, operation: WireMessage, text: str) -> cmd.SendToDevice:
        message_id = getattr(operation, "id", None) if isinstance(operation, SendMessage) else None
        return cmd.SendToDevice(
            Error(code, message_type=int(operation.TYPE), message_id=message_id, text=text)
        )

    def _drop(self, reason: str) -> list[cmd.Command]:
        self._count(reason)
        return []

    def _count(self, reason: str) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def _transition(self, event: _Input) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, event)]
        except KeyError:
            raise LocalRelayError(f"{event.name} in state {self.state.name}") from None

    def _check_open(self) -> None:
        if self.state is SleepState.CLOSED:
            raise LocalRelayError("the relay is closed")


def _language(tag: str | None) -> str | None:
    """``tag`` if the wire protocol can carry it as a language tag, else None."""
    if tag is None:
        return None
    try:
        TextContent("", tag)
    except LocalWireError:
        return None
    return tag


def _timestamp(message: MessageStanza, now: float) -> int:
    """The sender's stated time (XEP-0203 ``<delay stamp>``) if readable and past, else now."""
    for extension in message.extensions:
        if extension.tag == DELAY_TAG:
            stamp = extension.get("stamp", "")
            try:
                moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except ValueError:
                break
            if moment.utcoffset() is None:
                break
            seconds = int(moment.timestamp())
            if 0 <= seconds <= now:
                return seconds
            break
    return max(0, int(now))
