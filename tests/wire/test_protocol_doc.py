"""docs/protocol.md cannot drift from the code: examples, size table and registries are checked.

Every ```hex wire:<label>``` block must be the encoder's output for tests/wire/doc_examples.py's
value of that label, and the ```cbor-diag``` block after it must be its diagnostic notation. The
size table next to the XMPP stanzas is recomputed from the examples and the ```xml xmpp:<label>```
blocks.
(``hex session:`` blocks belong to tests/session and are not read here.)
"""

from __future__ import annotations

import re
from pathlib import Path

import defusedxml.ElementTree
import pytest

from gateway.wire import (
    ErrorCode,
    Message,
    MessageType,
    decode_sequence_untrusted,
    decode_untrusted,
    encode,
    encode_sequence,
)
from gateway.wire.cbor import CborReader
from gateway.wire.decoding import _READERS
from tests.wire.diagnostic import diagnostic, normalize
from tests.wire.doc_examples import EXAMPLES

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    return [(info.strip(), body) for info, body in FENCE.findall(PROTOCOL_MD.read_text("utf-8"))]


def labelled(prefix: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for info, body in blocks():
        if info.startswith(prefix):
            label = info[len(prefix) :]
            assert label not in found, f"label {label} used twice"
            found[label] = body
    return found


def wire_examples() -> dict[str, tuple[bytes, str]]:
    """label -> (bytes of the hex block, text of the cbor-diag block that follows it)."""
    all_blocks = blocks()
    found: dict[str, tuple[bytes, str]] = {}
    for index, (info, body) in enumerate(all_blocks):
        if info.startswith("hex wire:"):
            label = info[len("hex wire:") :]
            assert label not in found, f"label {label} used twice"
            assert index + 1 < len(all_blocks), label
            assert all_blocks[index + 1][0] == "cbor-diag", label
            found[label] = (bytes.fromhex("".join(body.split())), all_blocks[index + 1][1])
    return found


def encoded(value: Message | tuple[Message, ...]) -> bytes:
    return encode_sequence(value) if isinstance(value, tuple) else encode(value)


def test_every_example_value_has_a_block_and_every_block_a_value() -> None:
    assert set(wire_examples()) == set(EXAMPLES)


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_hex_example_is_the_encoders_output(label: str) -> None:
    data, diag = wire_examples()[label]
    value = EXAMPLES[label]
    assert data == encoded(value)
    if isinstance(value, tuple):
        assert decode_sequence_untrusted(data) == list(value)
        assert encode_sequence(decode_sequence_untrusted(data)) == data
    else:
        assert decode_untrusted(data) == value
        assert encode(decode_untrusted(data)) == data  # the form received is the form re-sent
    reader = CborReader(data, max_depth=8)
    items = []
    while not reader.at_end:
        items.append(diagnostic(reader.read_item()))
    assert normalize(diag) == normalize(", ".join(items))


def test_normalize_ignores_layout_and_comments_but_not_strings() -> None:
    assert normalize('{ 0: 4, / type / 3: "a / b" }') == '{0:4,3:"a / b"}'
    assert normalize("h'00 ff'") == "h'00 ff'"


TABLE_ROW = re.compile(
    r"^\|[^|]*\|\s*`wire:([a-z-]+)`\s*\|\s*(\d+)\s*\|\s*`xmpp:([a-z-]+)`\s*\|\s*(\d+)\s*\|"
    r"\s*([\d.]+)\s*\|\s*$",
    re.MULTILINE,
)


def test_size_table_is_measured() -> None:
    stanzas = labelled("xml xmpp:")
    rows = TABLE_ROW.findall(PROTOCOL_MD.read_text("utf-8"))
    assert len(rows) >= 15
    assert {row[2] for row in rows} == set(stanzas)
    for wire_label, wire_size, xmpp_label, xmpp_size, ratio in rows:
        assert wire_label == xmpp_label
        compact = len(encoded(EXAMPLES[wire_label]))
        stanza = stanzas[xmpp_label].strip().encode("utf-8")
        assert "\n" not in stanzas[xmpp_label].strip(), "a stanza is measured as sent: one line"
        defusedxml.ElementTree.fromstring(stanza)  # a real, well-formed stanza
        assert (int(wire_size), int(xmpp_size)) == (compact, len(stanza)), wire_label
        assert ratio == f"{len(stanza) / compact:.1f}", wire_label


def test_message_type_registry_matches_the_code() -> None:
    text = PROTOCOL_MD.read_text("utf-8").split("### 12.1. Message types", 1)[1]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*(\w+)\s*\|", text.split("### 12.2", 1)[0], re.M)
    assert {int(number) for number, _ in rows} == {int(t) for t in MessageType}
    assert set(_READERS) == {int(t) for t in MessageType}


def test_error_code_table_matches_the_code() -> None:
    text = PROTOCOL_MD.read_text("utf-8").split("### 8.1. Error codes", 1)[1]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*([A-Z_]+)\s*\|", text.split("### 8.2", 1)[0], re.M)
    assert {int(number): name for number, name in rows} == {c.value: c.name for c in ErrorCode}


def test_the_session_layer_has_its_place() -> None:
    """The session engineer replaces the placeholder with Section 3; either must be there."""
    text = PROTOCOL_MD.read_text("utf-8")
    assert "<!-- session-layer: replace this line -->" in text or "\n## 3." in text
