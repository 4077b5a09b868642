"""The ticket key ring survives a restart through its snapshot, safely."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from gateway.session import TicketKeyRing, TicketRingFileError
from gateway.session.tickets import TicketRejectedError, resumed_master_secret

IDENTITY = b"\x01"
SUITE = 2


def test_snapshot_restores_keys_and_spent_serials() -> None:
    ring = TicketKeyRing()
    spent, _ = ring.issue(IDENTITY, SUITE, now=100.0)
    unspent, secret = ring.issue(IDENTITY, SUITE, now=101.0)
    ring.mark_used(ring.open_untrusted(spent, 102.0), 102.0)

    restored = TicketKeyRing.from_bytes(ring.to_bytes(), now=200.0)

    opened = restored.open_untrusted(unspent, 200.0)  # sealed before the restart: still opens
    assert opened.resumption_secret == secret
    assert opened.identity == IDENTITY
    with pytest.raises(TicketRejectedError, match="already used"):
        restored.mark_used(restored.open_untrusted(spent, 200.0), 200.0)


def test_restore_rotates_so_a_stale_snapshot_never_reuses_a_nonce() -> None:
    ring = TicketKeyRing()
    ring.issue(IDENTITY, SUITE, now=0.0)
    snapshot = ring.to_bytes()  # taken before the next ticket...
    after_snapshot, _ = ring.issue(IDENTITY, SUITE, now=1.0)  # ...which the snapshot never saw
    restored = TicketKeyRing.from_bytes(snapshot, now=2.0)
    fresh, _ = restored.issue(IDENTITY, SUITE, now=2.0)
    # Same serial would mean the same AES-CCM nonce; a new key id makes that impossible.
    assert fresh[0] != after_snapshot[0]
    assert restored.open_untrusted(after_snapshot, 2.0).identity == IDENTITY


def test_expired_spent_serials_are_dropped_on_restore() -> None:
    ring = TicketKeyRing()
    ticket, _ = ring.issue(IDENTITY, SUITE, now=0.0, lifetime=10)
    ring.mark_used(ring.open_untrusted(ticket, 1.0), 1.0)
    assert TicketKeyRing.from_bytes(ring.to_bytes(), now=5.0).used
    assert not TicketKeyRing.from_bytes(ring.to_bytes(), now=11.0).used


def test_repr_shows_no_keys() -> None:
    ring = TicketKeyRing()
    ring.issue(IDENTITY, SUITE, now=0.0)
    key = ring.keys[ring.current]
    assert key.hex() not in repr(ring)
    assert repr(key) not in repr(ring)


@given(st.binary(max_size=300))
def test_corrupt_snapshots_raise_only_the_ring_error(data: bytes) -> None:
    with contextlib.suppress(TicketRingFileError):
        TicketKeyRing.from_bytes(data, now=0.0)


def test_unknown_version_is_named() -> None:
    import cbor2

    with pytest.raises(TicketRingFileError, match="version 9"):
        TicketKeyRing.from_bytes(cbor2.dumps([9, 0, 0, 0, {}, -1, 0, 0, []]), now=0.0)


@given(
    secret=st.binary(min_size=16, max_size=16),
    device_nonce=st.binary(min_size=8, max_size=8),
    gateway_nonce=st.binary(min_size=8, max_size=8),
)
def test_resumed_master_secret_is_rfc5869_hkdf(
    secret: bytes, device_nonce: bytes, gateway_nonce: bytes
) -> None:
    """The one-block HMAC form equals HKDF-SHA-256 as cryptography computes it (docs/protocol.md
    §3.8: salt = both nonces, info "impp-session resumed master", 32 bytes)."""
    expected = HKDF(
        hashes.SHA256(),
        32,
        salt=device_nonce + gateway_nonce,
        info=b"impp-session resumed master",
    ).derive(secret)
    assert resumed_master_secret(secret, device_nonce, gateway_nonce) == expected
