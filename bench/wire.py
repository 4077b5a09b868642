"""Wire codec benchmark: message sizes against the equivalent XMPP stanzas, and codec speed.

The examples are the ones docs/protocol.md specifies (its ``hex wire:`` blocks, which the tests
keep equal to the encoder's output) paired with the XMPP stanzas of its size table (``xml xmpp:``
blocks). Speed is reported as ratios against baselines measured in the same run: cbor2's C decoder
reading the same bytes (a general-purpose decoder, without our strictness checks), and expat
(through xml.etree) parsing the equivalent stanza (what the XMPP side pays per stanza).
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cbor2

from bench._framework import Report, Table
from gateway.wire import decode_untrusted, encode

DESCRIPTION = "wire codec: sizes vs XMPP stanzas, encode/decode rates vs cbor2 and an XML parser"

PROTOCOL_MD = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_ROW = re.compile(r"^\|[^|]*\|\s*`wire:([a-z-]+)`\s*\|.*?`xmpp:([a-z-]+)`", re.MULTILINE)


def _examples() -> list[tuple[str, bytes, bytes]]:
    """(label, compact bytes, XMPP stanza bytes) for every row of the document's size table."""
    text = PROTOCOL_MD.read_text("utf-8")
    compact: dict[str, bytes] = {}
    stanzas: dict[str, bytes] = {}
    for info, body in _FENCE.findall(text):
        info = info.strip()
        if info.startswith("hex wire:"):
            compact[info[len("hex wire:") :]] = bytes.fromhex("".join(body.split()))
        elif info.startswith("xml xmpp:"):
            stanzas[info[len("xml xmpp:") :]] = body.strip().encode("utf-8")
    return [(wire, compact[wire], stanzas[xmpp]) for wire, xmpp in _ROW.findall(text)]


def _rate(operation: Callable[[], object], iterations: int) -> float:
    """Operations per second, best of three runs (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(iterations):
            operation()
        best = min(best, time.perf_counter() - start)
    return iterations / best


def run(quick: bool) -> Report:
    """Measure sizes and rates for each example of the protocol document."""
    iterations = 50 if quick else 3000
    rows: list[list[object]] = []
    results: dict[str, object] = {}
    total_compact = total_xmpp = 0
    for label, data, stanza in _examples():
        message = decode_untrusted(data)
        if encode(message) != data:
            raise RuntimeError(f"docs/protocol.md example {label} is not the encoder's output")
        encode_rate = _rate(partial(encode, message), iterations)
        decode_rate = _rate(partial(decode_untrusted, data), iterations)
        cbor2_rate = _rate(partial(cbor2.loads, data), iterations)
        # The stanza is our own document's constant, not untrusted input.
        xml_rate = _rate(partial(ElementTree.fromstring, stanza), iterations)
        total_compact += len(data)
        total_xmpp += len(stanza)
        results[label] = {
            "compact_bytes": len(data),
            "xmpp_bytes": len(stanza),
            "xmpp_over_compact": round(len(stanza) / len(data), 2),
            "encode_per_second": round(encode_rate),
            "decode_per_second": round(decode_rate),
            "decode_vs_cbor2": round(decode_rate / cbor2_rate, 3),
            "decode_vs_xml_parse": round(decode_rate / xml_rate, 3),
        }
        rows.append(
            [
                label,
                len(data),
                len(stanza),
                len(stanza) / len(data),
                round(encode_rate),
                round(decode_rate),
                decode_rate / cbor2_rate,
                decode_rate / xml_rate,
            ]
        )
    results["total"] = {
        "compact_bytes": total_compact,
        "xmpp_bytes": total_xmpp,
        "xmpp_over_compact": round(total_xmpp / total_compact, 2),
    }
    table = Table(
        title="Wire messages: size vs the equivalent XMPP stanza; codec rates (ops/s, best of 3)",
        columns=[
            "example",
            "compact B",
            "XMPP B",
            "XMPP/compact",
            "encode/s",
            "decode/s",
            "decode vs cbor2",
            "decode vs XML parse",
        ],
        rows=rows,
    )
    return Report(
        results=results,
        tables=[table],
        notes=[
            f"all examples: {total_compact} compact bytes vs {total_xmpp} XMPP bytes "
            f"({total_xmpp / total_compact:.1f}x)",
            "decode vs cbor2: our strict pure-Python decoder over cbor2's C decoder on the same "
            "bytes (below 1 means slower); decode vs XML parse: against expat parsing the stanza",
        ],
    )
