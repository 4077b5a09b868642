"""Unit tests of the small cores: RTO, send/receive windows, tickets, cookies, rate limits."""

from __future__ import annotations

import random

import pytest

from gateway import wire
from gateway.session import (
    ChannelConfig,
    DropReason,
    LocalSessionError,
    OperationRejected,
    TicketKeyRing,
    TicketRejectedError,
)
from gateway.session.cookies import RetryTokens
from gateway.session.mobility import (
    CHALLENGE_LENGTH,
    PROBE_RESERVE,
    AddressValidator,
    Admission,
    PathValidation,
)
from gateway.session.packets import Content, Fragment
from gateway.session.ratelimit import RateLimiter
from gateway.session.reliability import (
    MAX_RTO,
    MIN_RTO,
    InFlight,
    ReceivedRecord,
    ReceiveWindow,
    RttEstimator,
    SendWindow,
)
from gateway.session.tickets import MAX_RESUME_PACKET, ResumeRequest
from tests.session.test_record import deliver, pair


def test_rto_follows_rfc6298() -> None:
    rtt = RttEstimator(random.Random(1))
    assert 2.0 <= rtt.rto < 3.0  # CoAP ACK_TIMEOUT x [1, 1.5)
    rtt.sample(0.5)
    assert rtt.srtt == 0.5
    assert rtt.rttvar == 0.25
    assert rtt.rto == 1.5  # SRTT + 4 RTTVAR
    rtt.sample(1.0)
    assert rtt.rttvar == pytest.approx(0.75 * 0.25 + 0.25 * 0.5)
    assert rtt.srtt == pytest.approx(0.875 * 0.5 + 0.125 * 1.0)
    rtt.sample(0.001)
    for _ in range(50):
        rtt.sample(0.001)
    assert rtt.rto == MIN_RTO
    rtt.sample(500.0)
    assert rtt.rto == MAX_RTO


def test_timeouts_double_and_the_peer_is_declared_gone() -> None:
    window = SendWindow(max_in_flight=2, max_retransmissions=3)
    window.records[0] = InFlight(0, b"x", (), 0.0, 2.0, 2.0)
    window.next_sequence = 1
    times = []
    now = 0.0
    for _ in range(3):
        now = window.next_deadline() or 0.0
        (_record,) = window.due(now)
        times.append(now)
    assert times == [2.0, 6.0, 14.0]
    with pytest.raises(Exception, match="stopped acknowledging"):
        window.due(window.next_deadline() or 0.0)


def test_ack_numbers_are_reconstructed_beyond_65536() -> None:
    window = SendWindow()
    window.oldest_unacknowledged = 70000
    window.next_sequence = 70005
    assert window.reconstruct_ack(70002 % 65536, ((70004 - 65536, 70004 - 65536),)) == (
        70002,
        ((70004, 70004),),
    )


def test_receive_window_orders_and_builds_acks() -> None:
    window = ReceiveWindow(receive_window=8)
    record = ReceivedRecord(Fragment.WHOLE, Content.APPLICATION, b"", ())
    assert window.add(1, record) == []
    assert window.add(3, record) == []
    assert window.classify(3) == "duplicate"
    assert window.classify(8) == "beyond"
    assert window.ack_fields() == (0, ((1, 1), (3, 3)))
    assert len(window.add(0, record)) == 2
    assert window.ack_fields() == (2, ((3, 3),))
    wire.Ack(*window.ack_fields())  # the wire codec accepts what we build


def test_in_flight_bound() -> None:
    _gateway, device = pair()
    for i in range(40):
        device.send_operation(wire.Ping(id=i))
    records = device.datagrams_to_send(0.0)
    assert len(records) == 1  # 40 small pings share one record
    for i in range(40):
        device.send_operation(
            wire.SendMessage(id=i, to="a@b.c", content=wire.MimeContent("a/b", bytes(900)))
        )
    assert len(device.datagrams_to_send(0.0)) == 7  # 8 in flight, one already out


def test_invalid_operations_are_acknowledged_and_reported() -> None:
    gateway, device = pair()
    record = device._send_reliable(Fragment.WHOLE, Content.APPLICATION, b"\xff\xff", (), 0.0)
    assert deliver([record], gateway, 2) == []
    assert gateway.take_events() == []
    assert gateway.statistics().drops == {"invalid_operations": 1}
    acks = gateway.datagrams_to_send(1.0)
    assert len(acks) == 1
    deliver(acks, device, 0, 1.0)
    assert device.statistics().retransmissions == 0
    assert not device._send.records  # acknowledged


def test_invalid_operations_event() -> None:
    gateway, device = pair()
    record = device._send_reliable(Fragment.WHOLE, Content.APPLICATION, b"\xff", (), 0.0)
    from gateway.session.packets import ProtectedRecord, parse_packet_untrusted

    packet = parse_packet_untrusted(record, cid_length=2)
    assert isinstance(packet, ProtectedRecord)
    result = gateway.receive_record(packet, 0.0)
    (rejected,) = result.events
    assert isinstance(rejected, OperationRejected)
    assert rejected.error.code is wire.ErrorCode.MALFORMED  # the code the answering Error carries


def test_invalid_arguments_are_local_protocol_errors() -> None:
    with pytest.raises(LocalSessionError, match="15 s"):
        ChannelConfig(keepalive_interval=1.0)
    with pytest.raises(LocalSessionError, match="6 bytes"):
        TicketKeyRing().issue(b"seven!!", 2, 0.0)
    assert issubclass(LocalSessionError, ValueError)  # as gateway.wire.LocalWireError


def test_tickets() -> None:
    ring = TicketKeyRing(rotation_interval=100.0, retain=1)
    ticket, secret = ring.issue(b"abcdef", 2, 0.0, lifetime=1000)
    opened = ring.open_untrusted(ticket, 10.0)
    assert (opened.identity, opened.suite, opened.resumption_secret) == (b"abcdef", 2, secret)
    request = ResumeRequest.build(ticket, secret, bytes(8))
    assert len(request.packet) == MAX_RESUME_PACKET  # the longest identity still fits
    request.verify(secret)
    with pytest.raises(TicketRejectedError):
        request.verify(bytes(16))
    tampered = bytes([ticket[0]]) + ticket[1:-1] + bytes([ticket[-1] ^ 1])
    with pytest.raises(TicketRejectedError):
        ring.open_untrusted(tampered, 10.0)
    with pytest.raises(TicketRejectedError, match="expired"):
        ring.open_untrusted(ticket, 1000.0)
    ring.mark_used(opened, 10.0)
    with pytest.raises(TicketRejectedError, match="already used"):
        ring.mark_used(opened, 11.0)
    ring.issue(b"x", 2, 150.0)  # rotation 1
    assert ring.open_untrusted(ticket, 150.0).serial == 0  # previous key retained
    ring.issue(b"x", 2, 300.0)  # rotation 2: the first key is retired
    with pytest.raises(TicketRejectedError, match="retired"):
        ring.open_untrusted(ticket, 300.0)
    with pytest.raises(ValueError, match="6 bytes"):
        ring.issue(b"1234567", 2, 0.0)


def test_retry_tokens() -> None:
    tokens = RetryTokens(lifetime=30.0)
    token = tokens.issue(("192.0.2.1", 5), 100.0)
    assert tokens.valid(token, ("192.0.2.1", 5), 120.0)
    assert not tokens.valid(token, ("192.0.2.1", 6), 120.0)  # another address
    assert not tokens.valid(token, ("192.0.2.1", 5), 131.0)  # expired
    assert not tokens.valid(token[:-1] + bytes([token[-1] ^ 1]), ("192.0.2.1", 5), 120.0)
    assert not RetryTokens().valid(token, ("192.0.2.1", 5), 120.0)  # another gateway key


def test_rate_limiter() -> None:
    limiter = RateLimiter(rate=2.0, burst=3.0, max_keys=2)
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("a", 0.5)  # one token back after 0.5 s
    assert not limiter.allow("a", 0.5)
    limiter.allow("b", 0.5)
    limiter.allow("c", 0.5)  # "a" is forgotten: bounded memory
    assert limiter.allow("a", 0.5)


def test_drop_reasons_have_stable_names() -> None:
    assert {r.value for r in DropReason} >= {"malformed", "replayed", "authentication_failed"}


def test_reassembly_memory_is_bounded() -> None:
    from gateway.session import RemoteSessionError
    from gateway.session.fragmentation import Reassembler

    reassembler = Reassembler(max_operation_size=10)
    assert reassembler.add(Fragment.FIRST, b"12345") is None
    with pytest.raises(RemoteSessionError):
        reassembler.add(Fragment.MIDDLE, b"123456")
    reassembler = Reassembler(max_operation_size=10)
    with pytest.raises(RemoteSessionError):
        reassembler.add(Fragment.LAST, b"1")  # no FIRST
    assert Reassembler().add(Fragment.FIRST, b"a") is None


def test_oversized_operation_is_refused_locally() -> None:
    from gateway.session import ChannelConfig, LocalSessionError

    _gateway, device = pair(config=ChannelConfig(max_operation_size=1000))
    with pytest.raises(LocalSessionError):
        device.send_operation(
            wire.SendMessage(id=1, to="a@b.c", content=wire.MimeContent("a/b", bytes(2000)))
        )


def test_stream_records_must_be_consecutive() -> None:
    from gateway.session import ChannelConfig
    from gateway.session.errors import RecordRejectedError

    gateway, device = pair(config=ChannelConfig(stream=True))
    device.send_operation(wire.Ping(id=1))
    first = device.datagrams_to_send(0.0)
    device.send_operation(wire.Ping(id=2))
    second = device.datagrams_to_send(0.0)
    assert len(first) == len(second) == 1
    with pytest.raises(RecordRejectedError):
        deliver(second, gateway, 2)
    assert deliver(first, gateway, 2) == [wire.Ping(id=1)]
    assert deliver(second, gateway, 2) == [wire.Ping(id=2)]
    assert device.next_deadline() is None  # never a retransmission timer on a stream


def test_a_stream_is_acknowledged_once_per_advance_and_cumulatively() -> None:
    # docs/protocol.md §3.2, §3.5: a stream is acknowledged (acks say what is durable, which
    # the stream cannot), with one cumulative ack, in the unreliable space, per advance.
    from gateway.session import ChannelConfig, OperationAcknowledged
    from gateway.session.packets import ProtectedRecord, parse_packet_untrusted

    gateway, device = pair(config=ChannelConfig(stream=True))
    for i in range(3):
        device.send_operation(wire.Ping(id=i))
        assert deliver(device.datagrams_to_send(0.0), gateway, 2) == [wire.Ping(id=i)]
    assert gateway.datagrams_to_send(0.0) == []  # delayed, to cover what arrives meanwhile
    assert gateway.next_deadline() == gateway.config.ack_delay
    acks = gateway.datagrams_to_send(gateway.config.ack_delay)
    assert len(acks) == 1
    packet = parse_packet_untrusted(acks[0], cid_length=0)
    assert isinstance(packet, ProtectedRecord)
    assert packet.header.unreliable
    assert gateway.datagrams_to_send(1.0) == []  # nothing advanced: no second ack
    assert device.take_unacknowledged() == [wire.Ping(id=i) for i in range(3)]
    result = device.receive_record(packet, 1.0)
    assert [e for e in result.events if isinstance(e, OperationAcknowledged)] == [
        OperationAcknowledged(i, wire.Ping(id=i)) for i in range(3)
    ]
    assert device.take_unacknowledged() == []
    assert device.next_deadline() is None
    assert gateway.statistics().acks_sent == 1


def test_gateway_forgets_half_open_handshakes_at_the_exact_deadline() -> None:
    from gateway.session import DeviceSession, SessionClosed, WireCodec
    from tests.session.helpers import initiator_factory, make_gateway

    gateway = make_gateway()
    device = DeviceSession(handshake_factory=initiator_factory(), codec=WireCodec())
    device.connect(0.0)
    (initial,) = device.datagrams_to_send(0.0)
    gateway.receive_datagram(initial, ("192.0.2.1", 5), 3.0)
    assert gateway.statistics().handshakes_in_progress == 1
    assert gateway.next_deadline() == 63.0
    gateway.handle_timeout(62.9)
    assert gateway.statistics().handshakes_in_progress == 1
    gateway.handle_timeout(63.0)
    assert gateway.statistics().handshakes_in_progress == 0
    assert [type(e) for _cid, e in gateway.events()] == [SessionClosed]


def test_path_validation_holds_over_budget_and_keeps_the_probe_reserve() -> None:
    budget = AddressValidator()
    path = PathValidation(max_held=2)
    budget.received("peer", 100)  # 300 bytes may go back before validation
    assert path.admit(budget, "peer", bytes(300)) is Admission.SEND
    path.challenge(b"c" * CHALLENGE_LENGTH, now=0.0)
    assert budget.spend("peer", 300 - PROBE_RESERVE)
    assert path.admit(budget, "peer", bytes(1)) is Admission.HELD  # the reserve stays unspent
    assert path.admit(budget, "peer", bytes(2)) is Admission.HELD
    assert path.admit(budget, "peer", bytes(3)) is Admission.DROPPED  # the held queue is full
    assert path.next_releasable(budget, "peer") is None
    assert not path.on_response(budget, "peer", b"x" * CHALLENGE_LENGTH)  # not our challenge
    assert path.on_response(budget, "peer", b"c" * CHALLENGE_LENGTH)
    assert budget.is_validated("peer")
    assert not path.pending
    assert path.next_releasable(budget, "peer") == bytes(1)
    assert path.next_releasable(budget, "peer") == bytes(2)
    assert path.next_releasable(budget, "peer") is None


def test_path_challenge_timer_backs_off_to_its_cap_and_resets() -> None:
    path = PathValidation()
    deadlines = []
    now = 0.0
    for _ in range(10):
        path.challenge(b"c" * CHALLENGE_LENGTH, now)
        assert path.deadline is not None
        deadlines.append(path.deadline - now)
        now = path.deadline
        assert path.timer_due(now)
    assert deadlines == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
    assert len(path.challenges) == 3  # only the most recent stay acceptable
    path.moved()
    assert path.deadline is None
    assert not path.timer_due(now)
    assert path.interval == 1.0


def test_first_record_without_challenge_validates_the_path() -> None:
    budget = AddressValidator()
    path = PathValidation()
    assert not path.on_authenticated_record(budget, "peer", 0.0)
    assert budget.is_validated("peer")
    path.challenge(b"c" * CHALLENGE_LENGTH, 0.0)
    unvalidated = AddressValidator()
    assert not path.on_authenticated_record(unvalidated, "peer", 0.5)  # challenged 0.5 s ago
    assert path.on_authenticated_record(unvalidated, "peer", 1.0)  # the challenge may be lost
    assert not unvalidated.is_validated("peer")
