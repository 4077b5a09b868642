"""The provisioning file format (docs/provisioning.md): the documented example byte for byte,
the reader three ways (whole, every prefix, trailing data), and garbage."""

from __future__ import annotations

import contextlib
import itertools
import re
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import GATEWAY_KID
from gateway.edhoc import Credential, Curve
from gateway.enroll import (
    GatewayEndpoint,
    Provisioning,
    ProvisioningError,
    Transport,
    decode_provisioning_untrusted,
    encode_provisioning,
    read_provisioning_file,
    write_provisioning_file,
)
from gateway.enroll.enrollment import ccs_for_public_key, kid_candidates

DOC = Path(__file__).resolve().parents[2] / "docs" / "provisioning.md"
# RFC 9529 §3's static keys (public test keys): the device's and the gateway's.
DEVICE_KEY = bytes.fromhex("fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b")
GATEWAY_KEY = bytes.fromhex("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac")


def example() -> Provisioning:
    device = Credential.new_ccs(
        curve=Curve.P256, private_key=DEVICE_KEY, kid=b"\x00", subject="alice@example.org"
    )
    gateway = Credential.new_ccs(
        curve=Curve.P256, private_key=GATEWAY_KEY, kid=GATEWAY_KID, subject="gateway.example.org"
    )
    return Provisioning(
        device_kid=b"\x00",
        device_credential=device.encoded,
        gateway_credential=gateway.encoded,
        endpoints=(
            GatewayEndpoint(Transport.UDP, "192.0.2.1", 5690),
            GatewayEndpoint(Transport.TCP, "192.0.2.1", 5690),
        ),
        account="alice@example.org",
        device_private_key=DEVICE_KEY,
    )


def documented_example() -> bytes:
    match = re.search(r"```hex provisioning:example\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match is not None, "docs/provisioning.md lost its example"
    return bytes.fromhex("".join(match.group(1).split()))


def test_the_documented_example_is_what_the_encoder_writes() -> None:
    encoded = documented_example()
    assert encode_provisioning(example()) == encoded
    assert decode_provisioning_untrusted(encoded) == example()
    assert f"{len(encoded)} bytes" in DOC.read_text()


def test_without_a_private_key_the_documented_size_and_head() -> None:
    encoded = encode_provisioning(replace(example(), device_private_key=None))
    assert encoded[0] == 0xA8
    assert f"without key 6 (`enroll --device-key`) is {len(encoded)} bytes" in DOC.read_text()
    assert decode_provisioning_untrusted(encoded).device_private_key is None


def test_every_prefix_is_refused_and_so_is_trailing_data() -> None:
    encoded = documented_example()
    for length in range(len(encoded)):
        with pytest.raises(ProvisioningError):
            decode_provisioning_untrusted(encoded[:length])
    with pytest.raises(ProvisioningError, match="after the item"):
        decode_provisioning_untrusted(encoded + b"\x00")


def test_any_single_byte_change_decodes_or_raises_the_format_error() -> None:
    encoded = documented_example()
    for position, value in itertools.product(range(len(encoded)), (0x00, 0x18, 0x5F, 0xFF)):
        mutated = bytearray(encoded)
        mutated[position] ^= value or 0x01
        with contextlib.suppress(ProvisioningError):
            decode_provisioning_untrusted(bytes(mutated))


@given(st.binary(max_size=600))
def test_garbage_raises_only_the_format_error(data: bytes) -> None:
    with contextlib.suppress(ProvisioningError):
        decode_provisioning_untrusted(data)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update({1: 2}), "format version 2"),
        (lambda d: d.update({3: 0}), "suite 0"),
        (lambda d: d.update({10: 0}), "unknown keys"),
        (lambda d: d.pop(7), "missing"),
        (lambda d: d.update({4: b"\x01"}), "differs from the kid"),
        (lambda d: d.update({6: bytes(32)}), "unusable"),
        (lambda d: d.update({6: b"\x01" * 31}), "32-byte"),
        (lambda d: d.update({8: []}), "endpoints"),
        (lambda d: d.update({8: [[2, "h", 1]]}), "transport"),
        (lambda d: d.update({8: [[0, "h", 0]]}), "port"),
        (lambda d: d.update({8: [[True, "h", 1]]}), "transport"),
        (lambda d: d.update({9: "no-at-sign"}), "user@domain"),
    ],
)
def test_what_the_reader_refuses(
    change: Callable[[dict[int, object]], object], reason: str
) -> None:
    document = cbor2.loads(documented_example())
    change(document)
    with pytest.raises(ProvisioningError, match=reason):
        decode_provisioning_untrusted(cbor2.dumps(document, canonical=True))


def test_unsorted_keys_are_refused() -> None:
    document = cbor2.loads(documented_example())
    shuffled = dict(reversed(list(document.items())))
    with pytest.raises(ProvisioningError, match="not a provisioning file"):
        decode_provisioning_untrusted(cbor2.dumps(shuffled))


def test_written_with_mode_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "device.prov"
    write_provisioning_file(path, example())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_provisioning_file(path) == example()
    with pytest.raises(ProvisioningError, match="cannot read"):
        read_provisioning_file(tmp_path / "missing.prov")
    path.chmod(0o644)
    with pytest.raises(ProvisioningError, match="has mode 644"):
        read_provisioning_file(path)
    public_only = tmp_path / "public.prov"
    write_provisioning_file(public_only, replace(example(), device_private_key=None))
    public_only.chmod(0o644)
    assert read_provisioning_file(public_only).device_private_key is None
    path.write_bytes(bytes(5000))
    with pytest.raises(ProvisioningError, match="more than a provisioning file holds"):
        read_provisioning_file(path)


def test_a_device_made_key_gets_the_same_credential_new_ccs_makes() -> None:
    made = Credential.new_ccs(curve=Curve.P256, private_key=DEVICE_KEY, kid=b"\x07", subject="a@b")
    assert ccs_for_public_key(made.public_key, kid=b"\x07", subject="a@b").encoded == made.encoded


def test_kids_compact_first_unique_and_never_the_gateways() -> None:
    kids = list(itertools.islice(kid_candidates(), 400))
    assert len(set(kids)) == len(kids)
    assert GATEWAY_KID not in kids
    compact = kids[:47]
    assert all(len(k) == 1 and (k[0] <= 0x17 or 0x20 <= k[0] <= 0x37) for k in compact)
    assert kids[47:255] == [bytes([v]) for v in [*range(0x18, 0x20), *range(0x38, 0x100)]]
    assert kids[255] == b"\x00\x00"
