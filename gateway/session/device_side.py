"""The device's side of a session (sans-IO): handshake or resumption, then the channel.

Theory of operation. A device talks to one gateway. :meth:`DeviceSession.connect` sends INITIAL
(EDHOC message_1) and retransmits it with back-off (RFC 7252 §4.8 timing) until message_2
arrives; a RETRY makes it resend INITIAL with the token. message_3 goes out with the gateway's
connection id (C_R) and is repeated until the gateway's first protected record confirms it.
Nothing unauthenticated ends or restarts an attempt that can still succeed: a message_2 that does
not verify, an EDHOC error or a stray packet is dropped and the attempt goes on, so the first
message_2 that verifies completes it (only a cipher-suite rejection, RFC 9528 §6.3, starts
again). :meth:`DeviceSession.resume` instead sends a RESUME of at most 40 bytes with the last
ticket; a RESUMED answer opens the channel in one round trip; a REJECT(2) that proves the gateway
holds the ticket's secret, or three unanswered RESUMEs, fall back to a full handshake. An
established session ends on REJECT(1) only when it carries the session's reset token
(resets.py), which the gateway gave in NewTicket. The device never needs its address: after a NAT
rebinding it keeps sending and the gateway follows (gateway_side.py); it answers PATH_CHALLENGE
with PATH_RESPONSE.

States and transitions (:data:`TRANSITIONS`): IDLE -> HANDSHAKING -> CONFIRMING -> ESTABLISHED;
IDLE/ESTABLISHED -> RESUMING -> ESTABLISHED (or -> HANDSHAKING on a proven REJECT(2) or after
:data:`DEFAULT_MAX_RESUME_ATTEMPTS` RESUMEs); any -> CLOSED.
Operations queued before the channel exists, and those unacknowledged when a session is replaced,
are sent on the next channel (the wire layer's message ids de-duplicate the rare repeat).
"""

from __future__ import annotations

import enum
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gateway import wire
from gateway.session.channel import ChannelConfig, ChannelState, ChannelStatistics, SecureChannel
from gateway.session.codec import Close, MessageCodec, NewTicket, PathChallenge, PathResponse
from gateway.session.errors import (
    DropReason,
    LocalSessionError,
    PacketError,
    RemoteSessionError,
)
from gateway.session.events import (
    DeviceSessionEstablished,
    DeviceSessionResumed,
    Event,
    SessionClosed,
    TicketReceived,
)
from gateway.session.handshake import InitiatorHandshake
from gateway.session.packets import (
    REJECT_BODY_LENGTH,
    HandshakeKind,
    HandshakePacket,
    ProtectedRecord,
    RejectReason,
    encode_initial_body,
    parse_packet_untrusted,
)
from gateway.session.record import AeadAlgorithm, RecordProtection, SessionSecrets
from gateway.session.reliability import ACK_RANDOM_FACTOR, ACK_TIMEOUT, MAX_RTO
from gateway.session.resets import token_matches
from gateway.session.tickets import (
    NONCE_LENGTH,
    ResumeRequest,
    TicketRejectedError,
    check_resumed_untrusted,
    rejected_proof,
    resumed_master_secret,
)

DEFAULT_MAX_HANDSHAKE_ATTEMPTS = 8  # transmissions of one handshake packet before giving up
DEFAULT_MAX_RESUME_ATTEMPTS = 3  # RESUMEs (2 + 4 s of waiting) before a full handshake instead


class DeviceSessionState(enum.Enum):
    """Lifecycle of the device's session."""

    IDLE = "idle"
    HANDSHAKING = "handshaking"  # message_1 sent, waiting for message_2
    CONFIRMING = "confirming"  # message_3 sent, waiting for the gateway's first record
    RESUMING = "resuming"  # RESUME sent, waiting for RESUMED
    ESTABLISHED = "established"
    CLOSED = "closed"


class Input(enum.Enum):
    """What moves the device state machine."""

    CONNECT = "connect"
    RESUME = "resume"
    MESSAGE_2 = "message_2"
    CONFIRMED = "confirmed"
    RESUMED = "resumed"
    REJECTED = "rejected"
    GIVE_UP = "give_up"
    CLOSE = "close"


S = DeviceSessionState
TRANSITIONS: dict[tuple[DeviceSessionState, Input], DeviceSessionState] = {
    (S.IDLE, Input.CONNECT): S.HANDSHAKING,
    (S.IDLE, Input.RESUME): S.RESUMING,
    (S.CLOSED, Input.CONNECT): S.HANDSHAKING,
    (S.CLOSED, Input.RESUME): S.RESUMING,
    (S.ESTABLISHED, Input.CONNECT): S.HANDSHAKING,
    (S.ESTABLISHED, Input.RESUME): S.RESUMING,
    (S.HANDSHAKING, Input.MESSAGE_2): S.CONFIRMING,
    (S.HANDSHAKING, Input.REJECTED): S.HANDSHAKING,
    (S.CONFIRMING, Input.REJECTED): S.HANDSHAKING,
    (S.CONFIRMING, Input.CONFIRMED): S.ESTABLISHED,
    (S.RESUMING, Input.RESUMED): S.ESTABLISHED,
    (S.RESUMING, Input.REJECTED): S.HANDSHAKING,
    (S.HANDSHAKING, Input.GIVE_UP): S.CLOSED,
    (S.CONFIRMING, Input.GIVE_UP): S.CLOSED,
    (S.RESUMING, Input.GIVE_UP): S.CLOSED,
    (S.HANDSHAKING, Input.CLOSE): S.CLOSED,
    (S.CONFIRMING, Input.CLOSE): S.CLOSED,
    (S.RESUMING, Input.CLOSE): S.CLOSED,
    (S.ESTABLISHED, Input.CLOSE): S.CLOSED,
}


@dataclass(frozen=True)
class DeviceStatistics:
    """A frozen snapshot of a device session's counters."""

    state: DeviceSessionState
    handshake_bytes_sent: int
    dropped: dict[str, int]
    channel: ChannelStatistics | None


class DeviceSession:
    """A device's secure session with its gateway."""

    def __init__(
        self,
        *,
        handshake_factory: Callable[[], InitiatorHandshake],
        codec: MessageCodec,
        config: ChannelConfig | None = None,
        rng: random.Random | None = None,
        max_handshake_attempts: int = DEFAULT_MAX_HANDSHAKE_ATTEMPTS,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._random_bytes = random_bytes  # resumption nonces
        self._handshake_factory = handshake_factory
        self.codec = codec
        self.config = config or ChannelConfig()
        self._rng = rng or random.Random()  # noqa: S311 - timer jitter only
        self.max_handshake_attempts = max_handshake_attempts
        self.max_resume_attempts = DEFAULT_MAX_RESUME_ATTEMPTS
        self.state = DeviceSessionState.IDLE
        self._reset_token = b""  # the current connection id's (resets.py), from NewTicket
        self.connection_id = b""
        self.channel: SecureChannel | None = None
        self.ticket: TicketReceived | None = None
        self._handshake: InitiatorHandshake | None = None
        self._resume: ResumeRequest | None = None
        self._handshake_packet: bytes | None = None
        self._handshake_deadline: float | None = None
        self._handshake_timeout = ACK_TIMEOUT
        self._handshake_attempts = 0
        self._outbox: list[wire.Message] = []
        self._outgoing: list[bytes] = []
        self._events: list[Event] = []
        self.dropped: dict[str, int] = {reason.value: 0 for reason in DropReason}
        self.handshake_bytes_sent = 0
        self._aead = AeadAlgorithm.AES_CCM_16_64_128

    # ---- state machine -------------------------------------------------------------------------

    def _transition(self, what: Input) -> None:
        target = TRANSITIONS.get((self.state, what))
        if target is None:
            raise LocalSessionError(f"{what.value} is not allowed in state {self.state.value}")
        self.state = target

    def _send_handshake(self, packet: bytes, now: float) -> None:
        self._handshake_packet = packet
        self._handshake_attempts = 1
        self._handshake_timeout = ACK_TIMEOUT * self._rng.uniform(1.0, ACK_RANDOM_FACTOR)
        self._handshake_deadline = now + self._handshake_timeout
        self._outgoing.append(packet)
        self.handshake_bytes_sent += len(packet)

    def _retire_channel(self) -> None:
        if self.channel is not None:
            self._outbox = self.channel.take_unacknowledged() + self._outbox
            self.channel.close()
            self.channel = None

    def connect(self, now: float, *, token: bytes = b"") -> None:
        """Start a full handshake (EDHOC)."""
        self._transition(Input.CONNECT)
        self._retire_channel()
        self._reset_token = b""
        self._handshake = self._handshake_factory()
        self._send_initial(self._handshake.start(), token, now)

    def _send_initial(self, message_1: bytes, token: bytes, now: float) -> None:
        body = encode_initial_body(token, message_1)
        self._send_handshake(HandshakePacket(HandshakeKind.INITIAL, b"", body).encode(), now)

    def resume(self, now: float, ticket: TicketReceived | None = None) -> None:
        """Resume with ``ticket`` (default: the last one received) in one round trip."""
        ticket = ticket or self.ticket
        if ticket is None:
            raise LocalSessionError("no resumption ticket")
        self._transition(Input.RESUME)
        self._retire_channel()
        self._reset_token = b""
        self.ticket = ticket
        self._resume = ResumeRequest.build(
            ticket.ticket, ticket.resumption_secret, self._random_bytes(NONCE_LENGTH)
        )
        self._send_handshake(self._resume.packet, now)

    def send_operation(self, message: wire.Message) -> None:
        """Queue a wire message; sent as soon as a channel is open."""
        if self.channel is not None and self.state is DeviceSessionState.ESTABLISHED:
            self.channel.send_operation(message)
        else:
            self._outbox.append(message)

    def close(self) -> None:
        """Tell the gateway the session ends (best effort) and stop."""
        if self.channel is not None and self.channel.state is ChannelState.OPEN:
            self.channel.send_control(Close(0), reliable=False)
            self._outgoing.extend(self.channel.datagrams_to_send(0.0))
            self.channel.close()
        if (
            self.state is not DeviceSessionState.CLOSED
            and self.state is not DeviceSessionState.IDLE
        ):
            self._transition(Input.CLOSE)

    def statistics(self) -> DeviceStatistics:
        """A frozen snapshot of the counters."""
        return DeviceStatistics(
            state=self.state,
            handshake_bytes_sent=self.handshake_bytes_sent,
            dropped=dict(self.dropped),
            channel=self.channel.statistics() if self.channel is not None else None,
        )

    # ---- output and timers ---------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Everything due now."""
        if self.channel is not None:
            self._outgoing.extend(self.channel.datagrams_to_send(now))
            self._events.extend(self.channel.take_events())
        out, self._outgoing = self._outgoing, []
        return out

    def events(self) -> list[Event]:
        """Events since the last call."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timeout` has work."""
        deadlines = [self._handshake_deadline]
        if self.channel is not None:
            deadlines.append(self.channel.next_deadline())
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timeout(self, now: float) -> None:
        """Retransmit handshake packets with back-off; run the channel's timers."""
        if self._handshake_deadline is not None and now >= self._handshake_deadline:
            if self.state is S.RESUMING and self._handshake_attempts >= self.max_resume_attempts:
                self._fall_back_to_handshake(now)  # the ticket's key may be gone: start afresh
            elif self._handshake_attempts >= self.max_handshake_attempts:
                self._handshake_deadline = None
                self._transition(Input.GIVE_UP)
                self._events.append(SessionClosed("gateway did not answer the handshake"))
            elif self._handshake_packet is not None:
                self._handshake_attempts += 1
                self._handshake_timeout = min(MAX_RTO, self._handshake_timeout * 2)
                self._handshake_deadline = now + self._handshake_timeout
                self._outgoing.append(self._handshake_packet)
                self.handshake_bytes_sent += len(self._handshake_packet)
        if self.channel is not None:
            events = self.channel.handle_timeout(now)
            self._events.extend(events)
            if self.channel.state is not ChannelState.OPEN and self.state is S.ESTABLISHED:
                self._retire_channel()
                self._transition(Input.CLOSE)

    # ---- input ---------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Process one datagram from the gateway. Never raises for what the network sends."""
        try:
            packet = parse_packet_untrusted(data, cid_length=0)
            if isinstance(packet, ProtectedRecord):
                self._on_record(packet, now)
            else:
                self._on_handshake_packet(packet, now)
        except RemoteSessionError as exc:
            self.dropped[exc.reason.value] += 1

    def _on_handshake_packet(self, packet: HandshakePacket, now: float) -> None:
        kind = packet.kind
        if kind is HandshakeKind.RETRY and self.state is S.HANDSHAKING and self._handshake:
            assert self._handshake_packet is not None
            initial = parse_packet_untrusted(self._handshake_packet, cid_length=0)
            assert isinstance(initial, HandshakePacket)
            message_1 = initial.body[1 + initial.body[0] :]
            self._send_initial(message_1, packet.body, now)
        elif kind is HandshakeKind.HANDSHAKE and self.state is S.HANDSHAKING and self._handshake:
            self._on_message_2(packet, now)
        elif kind is HandshakeKind.RESUMED and self.state is S.RESUMING:
            self._on_resumed(packet, now)
        elif kind is HandshakeKind.REJECT and len(packet.body) == REJECT_BODY_LENGTH:
            self._on_reject(packet.body[0], packet.body[1:], now)
        else:
            raise RemoteSessionError("unexpected handshake packet", reason=DropReason.UNEXPECTED)

    def _on_message_2(self, packet: HandshakePacket, now: float) -> None:
        assert self._handshake is not None
        step = self._handshake.receive(packet.body)  # a failure leaves the attempt as it was
        if step.restart and step.reply is not None:
            self._send_initial(step.reply, b"", now)
            return
        connection_id = self._handshake.peer_connection_id or packet.connection_id
        if not step.complete or step.reply is None or not connection_id:
            raise RemoteSessionError("message_2 did not complete", reason=DropReason.UNEXPECTED)
        self.connection_id = connection_id  # C_R as EDHOC authenticated it
        self._transition(Input.MESSAGE_2)
        message_3 = HandshakePacket(HandshakeKind.HANDSHAKE, self.connection_id, step.reply)
        self._send_handshake(message_3.encode(), now)
        self._open_channel(self._handshake.master_secret(), self._handshake.aead, now)

    def _fall_back_to_handshake(self, now: float) -> None:
        """Give up the ticket and run a full handshake (RESUMING -> HANDSHAKING)."""
        self._transition(Input.REJECTED)
        self.ticket = None
        self._resume = None
        self._handshake = self._handshake_factory()
        self._send_initial(self._handshake.start(), b"", now)

    def _open_channel(self, master: bytes, aead: AeadAlgorithm, now: float) -> None:
        self._aead = aead  # a resumed session keeps the AEAD of the session that got the ticket
        secrets_ = SessionSecrets.from_master(master, aead, is_gateway=False)
        self.channel = SecureChannel(
            RecordProtection(secrets_),
            codec=self.codec,
            peer_connection_id=self.connection_id,
            config=self.config,
            rng=self._rng,
            now=now,
        )

    def _flush_outbox(self) -> None:
        assert self.channel is not None
        outbox, self._outbox = self._outbox, []
        for message in outbox:
            self.channel.send_operation(message)

    def _on_resumed(self, packet: HandshakePacket, now: float) -> None:
        assert self._resume is not None
        assert self.ticket is not None
        try:
            gateway_nonce = check_resumed_untrusted(
                packet, self._resume, self.ticket.resumption_secret
            )
        except (PacketError, TicketRejectedError) as exc:
            raise RemoteSessionError(str(exc), reason=DropReason.TICKET_REJECTED) from exc
        self.connection_id = packet.connection_id
        master = resumed_master_secret(
            self.ticket.resumption_secret, self._resume.device_nonce, gateway_nonce
        )
        self._handshake_deadline = None
        self._transition(Input.RESUMED)
        self.ticket = None  # single use
        self._open_channel(master, self._aead, now)
        self._flush_outbox()
        self._events.append(DeviceSessionResumed(self.connection_id, b""))

    def _on_reject(self, reason: int, proof: bytes, now: float) -> None:
        """Act on a REJECT only when it proves it comes from the gateway (constant-time)."""
        if (
            reason == RejectReason.TICKET_REJECTED
            and self.state is S.RESUMING
            and self._resume is not None
            and self.ticket is not None
            and token_matches(rejected_proof(self._resume, self.ticket.resumption_secret), proof)
        ):
            self._fall_back_to_handshake(now)
            return
        if (
            reason == RejectReason.UNKNOWN_CONNECTION
            and self.state is S.ESTABLISHED
            and token_matches(self._reset_token, proof)
        ):
            # The gateway no longer holds our session (a restart, or the idle timeout): resume.
            if self.ticket is not None:
                self.resume(now)
            else:
                self.connect(now)
            return
        raise RemoteSessionError("REJECT without a valid token", reason=DropReason.UNEXPECTED)

    def _on_record(self, record: ProtectedRecord, now: float) -> None:
        if self.channel is None:
            raise RemoteSessionError("record without a session", reason=DropReason.UNEXPECTED)
        result = self.channel.receive_record(record, now)
        if self.state is S.CONFIRMING:
            self._handshake_deadline = None
            self._handshake_packet = None
            self._transition(Input.CONFIRMED)
            self._flush_outbox()
            self._events.append(DeviceSessionEstablished(self.connection_id, b""))
        self._events.extend(result.events)
        for item in result.control:
            if isinstance(item, NewTicket):
                self._reset_token = item.reset_token
                self.ticket = TicketReceived(item.ticket, item.resumption_secret, item.lifetime)
                self._events.append(self.ticket)
            elif isinstance(item, PathChallenge):
                self.channel.send_control(PathResponse(item.data), reliable=False)
            elif isinstance(item, Close):
                self.channel.close()
                self._transition(Input.CLOSE)
                self._events.append(SessionClosed("closed by the gateway"))
