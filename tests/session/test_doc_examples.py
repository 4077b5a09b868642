"""The `hex session:` examples of docs/protocol.md are what the encoder produces (no drift)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.session import HandshakePacket, ProtectedRecord, parse_packet_untrusted
from tests.session.doc_examples import EXAMPLES, GATEWAY_CID

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BLOCK = re.compile(r"^```hex session:(?P<label>[\w-]+)\n(?P<body>.*?)^```", re.S | re.M)


def doc_examples() -> dict[str, bytes]:
    """Every `hex session:` block of docs/protocol.md, by label."""
    found: dict[str, bytes] = {}
    for match in BLOCK.finditer(PROTOCOL.read_text("utf-8")):
        label = match.group("label")
        assert label not in found, f"duplicate example label {label}"
        found[label] = bytes.fromhex("".join(match.group("body").split()))
    return found


def test_every_builder_has_an_example_and_back() -> None:
    assert set(doc_examples()) == set(EXAMPLES)


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_example_matches_encoder(label: str) -> None:
    assert doc_examples()[label] == EXAMPLES[label](), label


@pytest.mark.parametrize("label", sorted(set(EXAMPLES) - {"tcp-frame", "tcp-ack"}))
def test_example_parses(label: str) -> None:
    data = doc_examples()[label]
    cid_length = len(GATEWAY_CID) if label in {"record-device", "record-send"} else 0
    packet = parse_packet_untrusted(data, cid_length=cid_length)
    assert isinstance(packet, HandshakePacket | ProtectedRecord)
