"""Every ```hex``` example of docs/protocol.md has the length the text around it states.

The byte content of each block is checked by tests/session/test_doc_examples.py and
tests/wire/test_protocol_doc.py; this test checks the stated sizes: a "(N bytes ...)" note in the
first prose paragraph after the block (or after its annotation block) must equal the block's
length, so a size in the text cannot drift from the bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

PROTOCOL = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
STATED = re.compile(r"^\((\d+) bytes\b")


def stated_lengths() -> list[tuple[str, int, int]]:
    """(label, bytes in the block, length stated after it) for each hex block with a note."""
    text = PROTOCOL.read_text("utf-8")
    fences = list(FENCE.finditer(text))
    found = []
    for index, fence in enumerate(fences):
        info = fence.group(1).strip()
        if not info.startswith("hex"):
            continue
        data = bytes.fromhex("".join(fence.group(2).split()))
        end = fence.end()
        if index + 1 < len(fences) and fences[index + 1].group(1).strip() == "":
            between = text[end : fences[index + 1].start()]
            if not between.strip():  # the annotation block directly after the bytes
                end = fences[index + 1].end()
        following = text[end:].lstrip("\n")
        match = STATED.match(following)
        if match:
            found.append((info, len(data), int(match.group(1))))
    return found


def test_stated_lengths_match_the_bytes() -> None:
    found = stated_lengths()
    assert {label for label, _, _ in found} >= {"hex session:resume", "hex session:reject"}
    for label, actual, stated in found:
        assert actual == stated, f"{label}: the text says {stated} bytes, the block has {actual}"


def test_every_hex_block_is_valid_hex() -> None:
    for fence in FENCE.finditer(PROTOCOL.read_text("utf-8")):
        if fence.group(1).strip().startswith("hex"):
            bytes.fromhex("".join(fence.group(2).split()))
