"""Record protection: OSCORE nonces, overhead, key update, replay window, forged records."""

from __future__ import annotations

import random

import pytest

from gateway import wire
from gateway.session import (
    ChannelConfig,
    DropReason,
    OperationReceived,
    WireCodec,
    parse_packet_untrusted,
)
from gateway.session.channel import SecureChannel
from gateway.session.errors import RecordRejectedError
from gateway.session.events import KeyUpdated
from gateway.session.packets import ProtectedRecord
from gateway.session.record import (
    AeadAlgorithm,
    RecordProtection,
    SessionSecrets,
    oscore_nonce,
    reconstruct,
)
from gateway.session.replay import ReplayWindow


# RFC 8613 Appendix C.4, C.5 and C.6: Common IV, Sender ID, sequence number 20 -> nonce.
@pytest.mark.parametrize(
    ("common_iv", "sender_id", "nonce"),
    [
        ("4622d4dd6d944168eefb54987c", "", "4622d4dd6d944168eefb549868"),
        ("be35ae297d2dace910c52e99f9", "00", "bf35ae297d2dace910c52e99ed"),
        ("2ca58fb85ff1b81c0b7181b85e", "", "2ca58fb85ff1b81c0b7181b84a"),
    ],
)
def test_nonce_matches_rfc8613_vectors(common_iv: str, sender_id: str, nonce: str) -> None:
    got = oscore_nonce(bytes.fromhex(common_iv), bytes.fromhex(sender_id), 20)
    assert got.hex() == nonce


def test_reconstruct_picks_the_closest_number() -> None:
    assert reconstruct(0x05, 8, 0x100) == 0x105
    assert reconstruct(0xFF, 8, 0x100) == 0xFF
    assert reconstruct(0x80, 8, 0x100) == 0x180
    assert reconstruct(0x7F, 8, 0x100) == 0x17F
    assert reconstruct(0x01, 16, 0x1FFFF) == 0x20001


def test_replay_window() -> None:
    window = ReplayWindow(64)
    assert window.check(0)
    window.mark(0)
    assert not window.check(0)
    window.mark(100)
    assert window.check(99)
    assert window.check(37)
    assert not window.check(36)  # left of the 64-wide window
    window.mark(99)
    assert not window.check(99)
    assert window.is_newest(101)
    with pytest.raises(ValueError, match="at least 64"):
        ReplayWindow(32)


def pair(
    algorithm: AeadAlgorithm = AeadAlgorithm.AES_CCM_16_64_128,
    *,
    key_update_after: int = 2**18,
    config: ChannelConfig | None = None,
) -> tuple[SecureChannel, SecureChannel]:
    """A gateway channel and a device channel sharing a master secret."""
    master = bytes(range(32))

    def channel(is_gateway: bool, peer_connection_id: bytes, seed: int) -> SecureChannel:
        secrets = SessionSecrets.from_master(master, algorithm, is_gateway=is_gateway)
        return SecureChannel(
            RecordProtection(secrets, key_update_after=key_update_after),
            codec=WireCodec(),
            peer_connection_id=peer_connection_id,
            config=config,
            rng=random.Random(seed),
        )

    return channel(True, b"", 1), channel(False, b"\xaa\xbb", 2)


def deliver(
    datagrams: list[bytes], to: SecureChannel, cid_length: int, now: float = 0.0
) -> list[object]:
    """Feed records; return the operations delivered."""
    out: list[object] = []
    for datagram in datagrams:
        packet = parse_packet_untrusted(datagram, cid_length=cid_length)
        assert isinstance(packet, ProtectedRecord)
        result = to.receive_record(packet, now)
        out.extend(e.message for e in result.events if isinstance(e, OperationReceived))
    return out


@pytest.mark.parametrize(
    ("algorithm", "device_overhead", "gateway_overhead"),
    [
        (AeadAlgorithm.AES_CCM_16_64_128, 12, 10),
        (AeadAlgorithm.AES_CCM_16_128_128, 20, 18),
        (AeadAlgorithm.CHACHA20_POLY1305, 20, 18),
        (AeadAlgorithm.A128GCM, 20, 18),
    ],
)
def test_record_overhead(
    algorithm: AeadAlgorithm, device_overhead: int, gateway_overhead: int
) -> None:
    gateway, device = pair(algorithm)
    message = wire.Ping(id=1)
    size = len(wire.encode(message))
    device.send_operation(message)
    (record,) = device.datagrams_to_send(0.0)
    assert len(record) - size == device_overhead
    assert deliver([record], gateway, 2) == [message]
    gateway.send_operation(message)
    (record,) = gateway.datagrams_to_send(0.0)
    assert len(record) - size - len(wire.encode(wire.Ack(cumulative=1))) == gateway_overhead


def test_replayed_and_forged_records_are_rejected() -> None:
    gateway, device = pair()
    device.send_operation(wire.Ping(id=1))
    (record,) = device.datagrams_to_send(0.0)
    assert deliver([record], gateway, 2) == [wire.Ping(id=1)]
    with pytest.raises(RecordRejectedError) as replay:
        deliver([record], gateway, 2)
    assert replay.value.reason is DropReason.REPLAYED
    device.send_operation(wire.Ping(id=2))
    (record2,) = device.datagrams_to_send(0.0)
    for index in range(len(record2)):
        forged = bytearray(record2)
        forged[index] ^= 0x01
        packet = parse_packet_untrusted(bytes(forged), cid_length=2)
        if not isinstance(packet, ProtectedRecord):
            continue
        with pytest.raises(RecordRejectedError):
            gateway.receive_record(packet, 0.0)
    assert deliver([record2], gateway, 2) == [wire.Ping(id=2)]  # the window did not move
    assert gateway.protection.failed_opens >= len(record2) - 3


def test_duplicate_is_acknowledged_again() -> None:
    gateway, device = pair()
    device.send_operation(wire.Ping(id=1))
    (record,) = device.datagrams_to_send(0.0)
    deliver([record], gateway, 2)
    assert len(gateway.datagrams_to_send(1.0)) == 1  # the delayed ack
    with pytest.raises(RecordRejectedError):
        deliver([record], gateway, 2, now=2.0)
    assert len(gateway.datagrams_to_send(2.0)) == 1  # acked again at once


def test_key_update_before_the_limit() -> None:
    gateway, device = pair(key_update_after=5)
    received: list[object] = []
    now = 0.0
    updates = 0
    for i in range(40):
        device.send_operation(wire.Ping(id=i))
        records = device.datagrams_to_send(now)
        updates += sum(isinstance(e, KeyUpdated) for e in device.take_events())
        received += deliver(records, gateway, 2, now)
        now += 1.0
        for ack in gateway.datagrams_to_send(now):
            deliver([ack], device, 0, now)
    assert received == [wire.Ping(id=i) for i in range(40)]
    assert updates >= 5
    assert device.protection.send_phase == updates
    assert device.statistics().key_updates == updates


def test_key_update_repeats_on_a_stream() -> None:
    # A stream delivers in order, so the update does not wait for an ack of the new phase
    # (docs/protocol.md §3.4.4): with no ack ever delivered back (a gateway that holds them
    # while it commits), every key_update_after records the key still moves on.
    gateway, device = pair(key_update_after=3, config=ChannelConfig(stream=True))
    received: list[object] = []
    for i in range(30):  # within the stream window of 32 unacknowledged records
        device.send_operation(wire.Ping(id=i))
        received += deliver(device.datagrams_to_send(float(i)), gateway, 2, float(i))
    assert received == [wire.Ping(id=i) for i in range(30)]
    assert device.statistics().key_updates == 9  # records 3, 6, ..., 27 each start a phase
    assert device.protection.sealed_with_current_key <= 3


def test_secrets_are_not_in_reprs() -> None:
    from gateway.session.codec import NewTicket
    from gateway.session.events import TicketReceived

    secrets_ = SessionSecrets.from_master(bytes(range(32)), AeadAlgorithm.A128GCM, is_gateway=True)
    for secret in (secrets_.send_secret, secrets_.receive_secret):
        assert repr(secret) not in repr(secrets_)
    for item in (NewTicket(b"t", b"\x99" * 16, 60), TicketReceived(b"t", b"\x99" * 16, 60)):
        assert "\\x99" not in repr(item)
