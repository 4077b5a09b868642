"""The protected channel of one established session: records, acks, retransmission, fragments.

Theory of operation. A :class:`SecureChannel` turns wire messages into protected records and back.
It is the same on both sides; the gateway and device state machines (gateway_side.py,
device_side.py) create it once the handshake or resumption yields keys, and own the addresses.

* Datagram mode: reliable records (operations, tickets) are numbered, kept until acknowledged and
  resent byte for byte on timeout (reliability.py); acks ride in front of the operations of the next
  reliable record when one is sent within ``ack_delay``, otherwise they go alone in an unreliable
  record (record.py explains the two sequence spaces). Small operations share a record; large
  ones are fragmented (fragmentation.py).
* Stream mode (TCP): the stream already orders and retransmits, so records are sent once, never
  retransmitted, and must arrive with consecutive numbers. They are still acknowledged, because an
  ack says what the peer made durable, which no stream can say (docs/protocol.md §3.2, §3.5): the
  same wire Ack in an unreliable record, cumulative only, sent only when its number advanced and
  at most one per :meth:`SecureChannel.datagrams_to_send`. A sender keeps each operation until its
  record is acknowledged, only to send it again in a later session (:meth:`take_unacknowledged`),
  and stops at ``stream_max_in_flight`` unacknowledged records.
* Held acknowledgements (the gateway, docs/protocol.md §3.5): with ``hold_acknowledgements`` an
  ack means "durable here", not "arrived". Every :class:`OperationReceived` carries a ``receipt``;
  the record (all fragments of a fragmented operation) stays out of every ack until
  :meth:`SecureChannel.release` was called for each receipt it produced. A retransmission of a
  held record is a duplicate: not delivered again, answered with an ack that does not cover it.
  A record held longer than ``max_acknowledgement_hold`` ends the channel rather than be
  acknowledged unreleased: the device resumes and sends again what it holds, and the message ids
  absorb the repeat, whereas an ack for what was never made durable could lose it for good.

Checks on input, in order: window (before any crypto), AEAD open, replay window update (only
after a successful open, RFC 8613 §7.4), then content. Failures raise
:class:`RecordRejectedError` with the drop reason; an authenticated peer that breaks the
protocol fails the session.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from dataclasses import dataclass

from gateway import wire
from gateway.session.codec import (
    ControlItem,
    KeepAlive,
    MessageCodec,
    ack_fields,
    decode_control_untrusted,
    encode_control,
)
from gateway.session.errors import (
    DropReason,
    DuplicateRecordError,
    LocalSessionError,
    PacketError,
    RecordRejectedError,
    RemoteSessionError,
)
from gateway.session.events import (
    Event,
    KeyUpdated,
    OperationAcknowledged,
    OperationReceived,
    OperationRejected,
    SessionClosed,
)
from gateway.session.fragmentation import DEFAULT_MAX_OPERATION_SIZE, Reassembler, split
from gateway.session.packets import Content, Fragment, ProtectedRecord, RecordHeader
from gateway.session.record import (
    MAX_SEQUENCE,
    MAX_UNRELIABLE_PER_STEP,
    RELIABLE_SPACE,
    UNRELIABLE_SPACE,
    RecordProtection,
    partial_length,
    reconstruct,
)
from gateway.session.reliability import (
    DEFAULT_ACK_DELAY,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRANSMISSIONS,
    DEFAULT_RECEIVE_WINDOW,
    DEFAULT_STREAM_MAX_IN_FLIGHT,
    InFlight,
    ReceivedRecord,
    ReceiveWindow,
    RttEstimator,
    SendWindow,
)
from gateway.session.replay import DEFAULT_REPLAY_WINDOW, ReplayWindow

DEFAULT_MAX_DATAGRAM = 1232  # 1280-byte IPv6 minimum MTU - 40 (IPv6) - 8 (UDP) (RFC 8085 §3.2)
DEFAULT_MAX_STREAM_RECORD = 16 * 1024  # records on TCP; see packets.DEFAULT_MAX_STREAM_PACKET
DEFAULT_MAX_QUEUED_OPERATIONS = 4096  # operations waiting to be sent before send refuses more
# Seconds a record may wait for its release. A device backs its timer off to 60 s and gives up
# only after 12 timeouts (about 8 minutes), so a slow commit of a few seconds costs it nothing.
DEFAULT_MAX_ACKNOWLEDGEMENT_HOLD = 30.0
ACKNOWLEDGEMENT_HOLD_EXPIRED = "acknowledgement held too long"  # SessionClosed reason
MIN_KEEPALIVE_INTERVAL = 15.0  # RFC 8085 §3.5: never more often than every 15 s


class ChannelState(enum.Enum):
    """Lifecycle of a channel."""

    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(frozen=True)
class ChannelConfig:
    """Limits and timers of a channel; every default is named and explained where defined."""

    stream: bool = False
    max_datagram: int = DEFAULT_MAX_DATAGRAM
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    stream_max_in_flight: int = DEFAULT_STREAM_MAX_IN_FLIGHT
    max_retransmissions: int = DEFAULT_MAX_RETRANSMISSIONS
    receive_window: int = DEFAULT_RECEIVE_WINDOW
    replay_window: int = DEFAULT_REPLAY_WINDOW
    ack_delay: float = DEFAULT_ACK_DELAY
    max_operation_size: int = DEFAULT_MAX_OPERATION_SIZE
    max_queued_operations: int = DEFAULT_MAX_QUEUED_OPERATIONS
    keepalive_interval: float | None = None  # None: no keep-alives (the default, RFC 8085 §3.5)

    def __post_init__(self) -> None:
        if self.keepalive_interval is not None and self.keepalive_interval < MIN_KEEPALIVE_INTERVAL:
            raise LocalSessionError(
                "keep-alives may not be more frequent than every 15 s (RFC 8085 §3.5)"
            )
        if not 1 <= self.max_in_flight < 0x80 or self.receive_window > self.replay_window:
            raise LocalSessionError(
                "in-flight bound must be 1..127 and receive window <= replay window"
            )
        if self.stream and not 1 <= self.stream_max_in_flight <= self.receive_window:
            # A stream record beyond the peer's receive window is dropped, and the gap it leaves
            # stalls the stream; the peer's window is taken to be ours (both default to 64).
            raise LocalSessionError("stream in-flight bound must be 1..receive_window")


_DEFAULT_CONFIG = ChannelConfig()  # shared by every channel made without a config of its own


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    """What one incoming record produced."""

    events: list[Event]
    control: list[ControlItem]
    newest: bool  # the record advanced its space's window (may trigger migration, RFC 9000 §9.3)


@dataclass(slots=True)
class _Counters:
    """The channel's running counters (snapshot them with :meth:`SecureChannel.statistics`)."""

    records_sent: int = 0
    records_received: int = 0
    acks_sent: int = 0
    operations_sent: int = 0
    operations_received: int = 0
    duplicates: int = 0
    bytes_sent: int = 0
    key_updates: int = 0
    holds_expired: int = 0
    invalid_operations: int = 0  # reported as drops["invalid_operations"] once non-zero


@dataclass(frozen=True)
class ChannelStatistics:
    """A frozen snapshot of one channel's counters."""

    records_sent: int
    records_received: int
    retransmissions: int
    acks_sent: int
    operations_sent: int
    operations_received: int
    duplicates: int
    bytes_sent: int
    key_updates: int
    holds_expired: int  # held records that outlived max_acknowledgement_hold (ends the channel)
    records_held: int  # received records whose operations await their release
    drops: dict[str, int]


@dataclass(slots=True)
class _Pending:
    operation_id: int
    encoded: bytes


@dataclass(slots=True)
class _HeldRecords:
    """The records one delivery came in, until every receipt it produced is released."""

    key: int
    records: tuple[int, ...]
    receipts: set[int]
    since: float


class SecureChannel:
    """Protected, reliable, ordered exchange of wire messages with one peer.

    A gateway holds one per device for as long as the device stays connected, mostly idle, so
    an idle channel keeps only what it needs: slots instead of an instance dict, the shared
    default :class:`ChannelConfig`, no send queue until something is queued, and its
    occasional collections (control items, fragments, retransmissions, held records) empty
    lists or dicts that are dropped again once drained.
    """

    __slots__ = (
        "_ack_deadline",
        "_ack_pending",
        "_acknowledged_through",
        "_events",
        "_first_sequence_of_phase",
        "_fragment_records",
        "_fragments",
        "_held",
        "_highest_order",
        "_hold",
        "_last_sent",
        "_messages",
        "_next_operation_id",
        "_next_receipt",
        "_queue",
        "_reassembler",
        "_receipts",
        "_receive",
        "_received_since_ack",
        "_records_left",
        "_reliable_control",
        "_reliable_replay",
        "_retransmit",
        "_rng",
        "_rtt",
        "_send",
        "_unreliable_base",
        "_unreliable_control",
        "_unreliable_count",
        "_unreliable_replay",
        "codec",
        "config",
        "max_acknowledgement_hold",
        "peer_connection_id",
        "protection",
        "state",
        "stats",
    )

    def __init__(
        self,
        protection: RecordProtection,
        *,
        codec: MessageCodec,
        peer_connection_id: bytes,
        config: ChannelConfig | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
        hold_acknowledgements: bool = False,
        max_acknowledgement_hold: float = DEFAULT_MAX_ACKNOWLEDGEMENT_HOLD,
    ) -> None:
        self.config = config or _DEFAULT_CONFIG
        self._hold = hold_acknowledgements
        self.max_acknowledgement_hold = max_acknowledgement_hold
        self.protection = protection
        self.codec = codec
        self.peer_connection_id = peer_connection_id
        self.state = ChannelState.OPEN
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._rtt = RttEstimator(self._rng)
        in_flight = self.config.stream_max_in_flight if self.config.stream else None
        self._send = SendWindow(
            in_flight or self.config.max_in_flight, self.config.max_retransmissions
        )
        self._receive = ReceiveWindow(receive_window=self.config.receive_window)
        self._reliable_replay = ReplayWindow(self.config.replay_window)
        self._unreliable_replay = ReplayWindow(self.config.replay_window)
        self._reassembler: Reassembler | None = None  # created by the first fragment
        self._queue: deque[_Pending] | None = None  # created by the first queued operation
        # The occasional lists and tables below are None while empty (nearly always).
        self._fragments: list[tuple[Fragment, bytes, int]] | None = None  # of one operation
        self._reliable_control: list[ControlItem] | None = None
        self._unreliable_control: list[ControlItem] | None = None
        self._retransmit: list[InFlight] | None = None
        # Queued or sent, not yet acknowledged; None while every operation is acknowledged.
        self._messages: dict[int, wire.Message] | None = None
        # Records still unacknowledged of each fragmented operation (a whole one has one).
        self._records_left: dict[int, int] | None = None
        self._next_operation_id = 0
        self._next_receipt = 0
        self._receipts: dict[int, _HeldRecords] | None = None
        self._held: dict[int, _HeldRecords] | None = None  # by key, oldest first
        self._fragment_records: list[int] | None = None  # of the operation being reassembled
        self._unreliable_base = -1  # reliable next_sequence when the unreliable count was reset
        self._unreliable_count = 0
        self._ack_pending = False
        self._ack_deadline: float | None = None
        self._received_since_ack = 0
        self._acknowledged_through = 0  # the cumulative number of the last ack sent (streams)
        self._first_sequence_of_phase = 0
        self._highest_order = -1
        self._last_sent = now
        self._events: list[Event] | None = None
        self.stats = _Counters()

    # ---- sending -------------------------------------------------------------------------------

    def send_operation(self, message: wire.Message) -> int:
        """Queue one wire message; returns its operation id (see :class:`OperationAcknowledged`)."""
        self._require_open()
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        elif len(queue) >= self.config.max_queued_operations:
            raise LocalSessionError("send queue full")
        encoded = self.codec.encode(message)
        if len(encoded) > self.config.max_operation_size:
            raise LocalSessionError("operation larger than max_operation_size")
        operation_id = self._next_operation_id
        self._next_operation_id += 1
        queue.append(_Pending(operation_id, encoded))
        if self._messages is None:
            self._messages = {}
        self._messages[operation_id] = message
        return operation_id

    def send_control(self, item: ControlItem, *, reliable: bool) -> None:
        """Queue a session control item (tickets reliable; probes and keep-alives not)."""
        self._require_open()
        if reliable or self.config.stream:
            if self._reliable_control is None:
                self._reliable_control = []
            self._reliable_control.append(item)
        else:
            if self._unreliable_control is None:
                self._unreliable_control = []
            self._unreliable_control.append(item)

    def take_unacknowledged(self) -> list[wire.Message]:
        """Messages not yet fully acknowledged, oldest first (to re-send after resumption)."""
        messages = self._messages
        return [] if messages is None else [messages[i] for i in sorted(messages)]

    @property
    def idle(self) -> bool:
        """True when nothing is queued or in flight."""
        return not (self._queue or self._fragments or self._send.records or self._reliable_control)

    def _require_open(self) -> None:
        if self.state is not ChannelState.OPEN:
            raise LocalSessionError(f"channel is {self.state.value}")

    def _max_plaintext(self) -> int:
        limit = DEFAULT_MAX_STREAM_RECORD if self.config.stream else self.config.max_datagram
        header = 1 + len(self.peer_connection_id) + 2
        return limit - header - self.protection.tag_length

    def _seal(
        self,
        *,
        unreliable: bool,
        fragment: Fragment,
        content: Content,
        plaintext: bytes,
        now: float,
    ) -> tuple[int, bytes]:
        if unreliable:
            base = self._send.next_sequence
            if base != self._unreliable_base:
                self._unreliable_base, self._unreliable_count = base, 0
            sequence = base * 256 + self._unreliable_count
            self._unreliable_count += 1
            n_length = partial_length(base, self._send.oldest_unacknowledged)
            psn = (base & ((1 << (8 * n_length)) - 1)).to_bytes(n_length, "big")
            psn += bytes([sequence & 0xFF])
            space = UNRELIABLE_SPACE
        else:
            sequence = self._send.next_sequence
            if sequence >= MAX_SEQUENCE:
                self.state = ChannelState.FAILED
                raise LocalSessionError(
                    "reliable sequence numbers exhausted; a new handshake is due"
                )
            self._send.next_sequence += 1
            length = (
                2
                if self.config.stream
                else partial_length(sequence, self._send.oldest_unacknowledged)
            )
            psn = (sequence & ((1 << (8 * length)) - 1)).to_bytes(length, "big")
            space = RELIABLE_SPACE
        header = RecordHeader(
            key_phase=self.protection.send_phase & 1,
            unreliable=unreliable,
            fragment=fragment,
            content=content,
            connection_id=self.peer_connection_id,
            partial_sequence=psn,
        ).encode()
        datagram = header + self.protection.seal(space, sequence, header, plaintext)
        self.stats.records_sent += 1
        self.stats.bytes_sent += len(datagram)
        self._last_sent = now
        return sequence, datagram

    def _ack_message(self) -> bytes:
        cumulative, selective = self._receive.ack_fields()
        if self.config.stream:
            # In order and never lost: only the release order can open a gap, and the cumulative
            # number that follows it says all a stream sender needs.
            selective = ()
        return self.codec.encode(self.codec.make_ack(cumulative, selective))

    def _ack_worth_sending(self) -> bool:
        """On a stream an ack goes only when its cumulative number advanced; on UDP always (the
        earlier one may have been lost)."""
        if not self.config.stream:
            return True
        return self._receive.acknowledgement_base > self._acknowledged_through

    def _send_reliable(
        self,
        fragment: Fragment,
        content: Content,
        plaintext: bytes,
        ops: tuple[int, ...],
        now: float,
    ) -> bytes:
        sequence, datagram = self._seal(
            unreliable=False, fragment=fragment, content=content, plaintext=plaintext, now=now
        )
        if self.config.stream:
            # Counted against the window until acknowledged, never retransmitted: no bytes kept.
            self._send.records[sequence] = InFlight(sequence, b"", ops, now, math.inf, math.inf)
        else:
            timeout = self._rtt.rto
            self._send.records[sequence] = InFlight(
                sequence, datagram, ops, now, now + timeout, timeout
            )
        return datagram

    def _next_reliable(self, now: float) -> bytes | None:
        """Build the next new reliable record, or None when there is nothing to send."""
        if self._reliable_control:
            items = self._reliable_control[:4]
            del self._reliable_control[:4]
            if not self._reliable_control:
                self._reliable_control = None
            return self._send_reliable(
                Fragment.WHOLE, Content.CONTROL, encode_control(items), (), now
            )
        if self._fragments:
            position, piece, operation_id = self._fragments.pop(0)
            if not self._fragments:
                self._fragments = None
            return self._send_reliable(position, Content.APPLICATION, piece, (operation_id,), now)
        queue = self._queue
        if not queue:
            return None
        room = self._max_plaintext()
        parts: list[bytes] = []
        used = 0
        if self._ack_pending and self._ack_worth_sending():
            ack = self._ack_message()
            parts.append(ack)
            used = len(ack)
        operations: list[int] = []
        while queue and used + len(queue[0].encoded) <= room:
            pending = queue.popleft()
            parts.append(pending.encoded)
            used += len(pending.encoded)
            operations.append(pending.operation_id)
        if not operations:
            pending = queue.popleft()
            if len(pending.encoded) <= room:  # fits alone: send it without the ack
                parts, operations = [pending.encoded], [pending.operation_id]
            else:
                pieces = split(pending.encoded, room)
                if self._records_left is None:
                    self._records_left = {}
                self._records_left[pending.operation_id] = len(pieces)
                self._fragments = [(pos, data, pending.operation_id) for pos, data in pieces[1:]]
                position, piece = pieces[0]
                return self._send_reliable(
                    position, Content.APPLICATION, piece, (pending.operation_id,), now
                )
        elif len(parts) > len(operations):
            self._clear_ack()
        self.stats.operations_sent += len(operations)
        return self._send_reliable(
            Fragment.WHOLE,
            Content.APPLICATION,
            parts[0] if len(parts) == 1 else b"".join(parts),
            tuple(operations),
            now,
        )

    def _clear_ack(self) -> None:
        """The pending ack was sent (or, on a stream, found not worth sending)."""
        self._acknowledged_through = self._receive.acknowledgement_base
        self._ack_pending = False
        self._ack_deadline = None
        self._received_since_ack = 0

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Every record due now: retransmissions, new records within the in-flight bound, acks."""
        if self.state is not ChannelState.OPEN:
            return []
        out: list[bytes] = []
        if self._unreliable_control:  # path probes first: small, and they unblock the 3x limit
            items, self._unreliable_control = self._unreliable_control, None
            out.append(self._unreliable(Content.CONTROL, encode_control(items), now))
        if self.protection.update_due():
            self.protection.update_send_key()
            if self.config.stream:
                # A stream delivers in order: the peer reads every record of the old phase before
                # the first of the new one, so the update needs no confirmation. Acks on a stream
                # confirm it as on UDP, but waiting for them would tie the key schedule to how
                # fast the peer's application releases (docs/protocol.md §3.4.4).
                self.protection.send_phase_confirmed = True
            self._first_sequence_of_phase = self._send.next_sequence
            self.stats.key_updates += 1
            self._event(KeyUpdated(self.protection.send_phase))
        if self._retransmit:
            retransmit, self._retransmit = self._retransmit, None
            for record in retransmit:
                if record.sequence in self._send.records:
                    out.append(record.datagram)
                    self.stats.bytes_sent += len(record.datagram)
        while (self._queue or self._fragments or self._reliable_control) and self._send.has_room():
            datagram = self._next_reliable(now)
            if datagram is None:
                break
            out.append(datagram)
        if self._queue is not None and not self._queue:
            self._queue = None  # drained: an idle channel keeps no queue
        if self._ack_pending and self._ack_deadline is not None and self._ack_deadline <= now:
            if self._ack_worth_sending():
                out.append(self._ack_only(now))
            else:
                self._clear_ack()  # a stream's peer already holds this cumulative number
        return out

    def seal_probe(self, item: ControlItem, now: float) -> bytes:
        """Seal one path probe (PATH_CHALLENGE) at once, outside the send queue.

        The gateway sends it ahead of data held back by the anti-amplification limit, from the
        budget it keeps for probes (gateway_side.py), so validation of a new address never
        waits behind data that cannot be sent yet.
        """
        self._require_open()
        return self._unreliable(Content.CONTROL, encode_control([item]), now)

    def _ack_only(self, now: float) -> bytes:
        plaintext = self._ack_message()
        self._clear_ack()
        self.stats.acks_sent += 1
        return self._unreliable(Content.APPLICATION, plaintext, now)

    def _unreliable(self, content: Content, plaintext: bytes, now: float) -> bytes:
        if (
            self._send.next_sequence == self._unreliable_base
            and self._unreliable_count > MAX_UNRELIABLE_PER_STEP
        ):
            # The unreliable count is spent: step the reliable number with a reliable record.
            return self._send_reliable(Fragment.WHOLE, content, plaintext, (), now)
        return self._seal(
            unreliable=True, fragment=Fragment.WHOLE, content=content, plaintext=plaintext, now=now
        )[1]

    # ---- timers --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timeout` has work to do."""
        if self.state is not ChannelState.OPEN:
            return None
        deadline = self._send.next_deadline()
        for candidate in (
            self._ack_deadline,
            self._hold_deadline(),
            None
            if self.config.keepalive_interval is None
            else self._last_sent + self.config.keepalive_interval,
        ):
            if candidate is not None and (deadline is None or candidate < deadline):
                deadline = candidate
        return deadline

    def handle_timeout(self, now: float) -> list[Event]:
        """Run expired timers: retransmissions (with back-off), keep-alives; returns events."""
        if self.state is not ChannelState.OPEN:
            return []
        try:
            expired = self._send.due(now)
        except RemoteSessionError as exc:
            self.state = ChannelState.CLOSED
            return [SessionClosed(str(exc))]
        hold_deadline = self._hold_deadline()
        if hold_deadline is not None and hold_deadline <= now:
            self.stats.holds_expired += 1
            self.state = ChannelState.CLOSED
            return [SessionClosed(ACKNOWLEDGEMENT_HOLD_EXPIRED)]
        if expired:
            self._retransmit = expired if self._retransmit is None else self._retransmit + expired
            # The probe (RFC 9002 §6.2.4, RFC 9000 §8.1): a retransmission is a byte-for-byte
            # copy, which the peer must treat as a duplicate, so it neither moves a session to
            # a rebound address (only the newest record does, RFC 9000 §9.3) nor tells the peer
            # anything new. A fresh ack-only record rides along: it is always the newest record,
            # so the peer follows a NAT rebinding even when every new record was lost, and it
            # refreshes the peer's view of what arrived.
            self._ack_pending = True
            self._ack_deadline = now
        interval = self.config.keepalive_interval
        if interval is not None and now >= self._last_sent + interval:
            self.send_control(KeepAlive(), reliable=False)
            self._last_sent = now
        return self.take_events()

    def _hold_deadline(self) -> float | None:
        if not self._held:
            return None
        oldest = next(iter(self._held.values()))
        return oldest.since + self.max_acknowledgement_hold

    def release(self, receipt: int, now: float) -> None:
        """The operation that came with ``receipt`` is durable: once every operation of its
        record is, acknowledge the record at once. Unknown or repeated receipts are ignored."""
        if self._receipts is None or self._held is None:
            return
        held = self._receipts.pop(receipt, None)
        if held is None:
            return
        held.receipts.discard(receipt)
        if held.receipts:
            return
        del self._held[held.key]
        if not self._held:  # nothing held any more: no tables
            self._held = self._receipts = None
        self._receive.release(held.records)
        self._ack_pending = True
        self._ack_deadline = now

    def take_events(self) -> list[Event]:
        """Events produced while sending (acks processed, key updates)."""
        events, self._events = self._events, None
        return events if events is not None else []

    def _event(self, event: Event) -> None:
        if self._events is None:
            self._events = []
        self._events.append(event)

    # ---- receiving -----------------------------------------------------------------------------

    def receive_record(self, record: ProtectedRecord, now: float) -> ReceiveResult:
        """Check, open and process one record. Raises :class:`RecordRejectedError` to drop it."""
        if self.state is not ChannelState.OPEN:
            raise RecordRejectedError("channel closed", reason=DropReason.UNEXPECTED)
        if record.header.unreliable:
            return self._receive_unreliable(record, now)
        return self._receive_reliable(record, now)

    def _open(self, record: ProtectedRecord, space: int, sequence: int) -> bytes:
        """Open one record. A failure never ends the channel: anyone who knows the connection
        id can send forgeries, and docs/security.md shows why 64-bit tags need no such limit."""
        return self.protection.open(
            record.header.key_phase, space, sequence, record.header_bytes, record.ciphertext
        )

    def _receive_reliable(self, record: ProtectedRecord, now: float) -> ReceiveResult:
        psn = record.header.partial_sequence
        expected = self._receive.next_expected
        sequence = reconstruct(int.from_bytes(psn, "big"), 8 * len(psn), expected)
        kind = self._receive.classify(sequence)
        if self.config.stream and sequence != expected:
            raise RecordRejectedError("stream record out of order", reason=DropReason.REPLAYED)
        if kind == "beyond":
            raise RecordRejectedError(
                "record beyond the receive window", reason=DropReason.OUT_OF_WINDOW
            )
        if kind == "duplicate" or not self._reliable_replay.check(sequence):
            self._open(record, RELIABLE_SPACE, sequence)
            self.stats.duplicates += 1
            self._ack_pending = True
            self._ack_deadline = now  # the earlier ack may have been lost: answer at once
            raise DuplicateRecordError("duplicate record")
        plaintext = self._open(record, RELIABLE_SPACE, sequence)
        newest = self._advance_order(((sequence + 1) * 256) * 2 - 1)
        self._reliable_replay.mark(sequence)
        self.stats.records_received += 1
        events: list[Event] = []
        received = self._parse_on_arrival(record.header, plaintext, now, events)
        held = (
            self._hold
            and received.content is Content.APPLICATION
            and (received.fragment is not Fragment.WHOLE or bool(received.messages))
        )
        if held:
            self._receive.hold(sequence)
        control: list[ControlItem] = []
        for ready_sequence, ready in self._receive.add(sequence, received):
            self._deliver(ready_sequence, ready, events, control, now)
        if not held:  # a held record changes no ack until released
            self._ack_pending = True
            self._received_since_ack += 1
            if self.config.stream:
                # Nothing is lost on a stream and no sender timer waits: delay every ack, so that
                # one covers what arrives meanwhile or rides on data.
                if self._ack_deadline is None:
                    self._ack_deadline = now + self.config.ack_delay
            elif self._receive.has_gap() or self._received_since_ack >= 2:
                self._ack_deadline = now
            elif self._ack_deadline is None:
                self._ack_deadline = now + self.config.ack_delay
        if self._events:
            events.extend(self.take_events())
        return ReceiveResult(events, control, newest)

    def _advance_order(self, order: int) -> bool:
        """Track the peer's send order across both spaces; True for its newest record so far.

        A reliable record ``s`` was sent after every unreliable record numbered below
        ``(s + 1) * 256`` and before the others (record.py), so ``2 * ((s + 1) * 256) - 1`` and
        ``2 * u`` order all records as sent: migration follows only the newest (RFC 9000 §9.3).
        """
        if order <= self._highest_order:
            return False
        self._highest_order = order
        return True

    def _parse_on_arrival(
        self, header: RecordHeader, plaintext: bytes, now: float, events: list[Event]
    ) -> ReceivedRecord:
        """Decode whole records at once so piggybacked acks act before in-order delivery."""
        if header.fragment is not Fragment.WHOLE:
            return ReceivedRecord(header.fragment, header.content, plaintext)
        if header.content is Content.CONTROL:
            items = tuple(self._decode_control(plaintext))
            return ReceivedRecord(header.fragment, header.content, b"", control=items)
        messages = self._decode_messages(plaintext, events)
        others: list[wire.Message] = []
        for message in messages:
            fields = ack_fields(message)
            if fields is None:
                others.append(message)
            else:
                self._apply_ack(fields, now, events)
        return ReceivedRecord(header.fragment, header.content, b"", messages=tuple(others))

    def _decode_messages(self, data: bytes, events: list[Event]) -> list[wire.Message]:
        """Decode wire messages; an invalid sequence is discarded whole (docs/protocol.md §4.7)."""
        try:
            return self.codec.decode_sequence_untrusted(data)
        except wire.RemoteWireError as exc:
            self.stats.invalid_operations += 1
            events.append(OperationRejected(exc))
            return []

    def _decode_control(self, data: bytes) -> list[ControlItem]:
        try:
            return decode_control_untrusted(data)
        except PacketError as exc:
            self._fail()
            raise RemoteSessionError("peer sent undecodable control items") from exc

    def _fail(self) -> None:
        self.state = ChannelState.FAILED

    def _deliver(
        self,
        sequence: int,
        ready: ReceivedRecord,
        events: list[Event],
        control: list[ControlItem],
        now: float,
    ) -> None:
        if ready.fragment is Fragment.WHOLE:
            if ready.content is Content.CONTROL:
                control.extend(ready.control)
                return
            self._operations_received(ready.messages, (sequence,), events, now)
            return
        if self._fragment_records is None:
            self._fragment_records = []
        self._fragment_records.append(sequence)
        if self._reassembler is None:
            self._reassembler = Reassembler(max_operation_size=self.config.max_operation_size)
        try:
            operation = self._reassembler.add(ready.fragment, ready.plaintext)
        except RemoteSessionError:
            self._fail()
            raise
        if operation is not None:
            records, self._fragment_records = tuple(self._fragment_records), None
            messages = self._decode_messages(operation, events)
            self._operations_received(messages, records, events, now)

    def _operations_received(
        self,
        messages: tuple[wire.Message, ...] | list[wire.Message],
        records: tuple[int, ...],
        events: list[Event],
        now: float,
    ) -> None:
        """Deliver operations with fresh receipts; hold their records until all are released."""
        receipts: set[int] = set()
        for message in messages:
            receipt = self._next_receipt
            self._next_receipt += 1
            receipts.add(receipt)
            events.append(OperationReceived(message, receipt))
            self.stats.operations_received += 1
        if not self._hold:
            return
        if not receipts:  # the wire codec refused the operation: acknowledged as received
            self._receive.release(records)
            return
        held = _HeldRecords(min(receipts), records, receipts, now)
        if self._held is None or self._receipts is None:
            self._held, self._receipts = {}, {}
        self._held[held.key] = held
        for receipt in receipts:
            self._receipts[receipt] = held

    def _receive_unreliable(self, record: ProtectedRecord, now: float) -> ReceiveResult:
        psn = record.header.partial_sequence
        base_bits = 8 * (len(psn) - 1)
        base = reconstruct(int.from_bytes(psn[:-1], "big"), base_bits, self._receive.next_expected)
        sequence = base * 256 + psn[-1]
        if not self._unreliable_replay.check(sequence):
            raise RecordRejectedError("replayed unreliable record", reason=DropReason.REPLAYED)
        plaintext = self._open(record, UNRELIABLE_SPACE, sequence)
        newest = self._advance_order(sequence * 2)
        self._unreliable_replay.mark(sequence)
        self.stats.records_received += 1
        events: list[Event] = []
        control: list[ControlItem] = []
        if record.header.content is Content.CONTROL:
            control = self._decode_control(plaintext)
        else:
            for message in self._decode_messages(plaintext, events):
                fields = ack_fields(message)
                if fields is None:
                    self._fail()
                    raise RemoteSessionError("operation in an unreliable record")
                self._apply_ack(fields, now, events)
        if self._events:
            events.extend(self.take_events())
        return ReceiveResult(events, control, newest)

    def _apply_ack(
        self, fields: tuple[int, tuple[tuple[int, int], ...]], now: float, events: list[Event]
    ) -> None:
        cumulative, selective = self._send.reconstruct_ack(*fields)
        acknowledged = self._send.acknowledge(cumulative, selective, now, self._rtt)
        if not acknowledged:
            return
        records_left = self._records_left
        for record in acknowledged:
            if record.sequence >= self._first_sequence_of_phase:
                self.protection.send_phase_confirmed = True
            for operation_id in record.operation_ids:
                if records_left is not None and operation_id in records_left:
                    left = records_left[operation_id] - 1
                    if left > 0:
                        records_left[operation_id] = left
                        continue
                    del records_left[operation_id]
                message = self._messages.pop(operation_id, None) if self._messages else None
                if message is not None:
                    events.append(OperationAcknowledged(operation_id, message))
        if not self._messages:
            self._messages = None  # every operation acknowledged
        if records_left is not None and not records_left:
            self._records_left = None

    def close(self) -> None:
        """Stop sending and receiving."""
        self.state = ChannelState.CLOSED

    @property
    def retransmission_count(self) -> int:
        """Records sent again so far (what :meth:`statistics` reports, without the snapshot)."""
        return self._send.retransmissions

    @property
    def records_held(self) -> int:
        """Records received whose acknowledgement waits for a release."""
        return self._receive.unreleased

    def statistics(self) -> ChannelStatistics:
        """A frozen snapshot of the counters."""
        stats = self.stats
        return ChannelStatistics(
            records_sent=stats.records_sent,
            records_received=stats.records_received,
            retransmissions=self._send.retransmissions,
            acks_sent=stats.acks_sent,
            operations_sent=stats.operations_sent,
            operations_received=stats.operations_received,
            duplicates=stats.duplicates,
            bytes_sent=stats.bytes_sent,
            key_updates=stats.key_updates,
            holds_expired=stats.holds_expired,
            records_held=self._receive.unreleased,
            drops=(
                {"invalid_operations": stats.invalid_operations} if stats.invalid_operations else {}
            ),
        )

    @property
    def smoothed_rtt(self) -> float | None:
        """The RFC 6298 SRTT, once measured."""
        return self._rtt.srtt
