"""How the demo tells its story: numbered steps, indented facts, a byte table, what is missing.

The demo's output is its product: a reader should see what each piece did and what it cost in
bytes, and be told plainly what is not built yet. :class:`Narrator` writes to any text stream (the
terminal, or a buffer in tests) and collects the rows of the closing table.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TextIO

# What the demo wires by hand or leaves out, and where it will come from (docs/architecture.md).
NOT_BUILT_YET: tuple[tuple[str, str], ...] = (
    (
        "gateway/relay",
        "binding a device session to its upstream account and translating both ways; this demo "
        "did that wiring by hand, step by step (a later issue)",
    ),
    (
        "gateway/store",
        "device registry, keys and durable queues in SQLite; here the CA, the credentials and "
        "the sessions lived in memory and are gone (a later issue)",
    ),
    (
        "sleeping-device queue",
        "Sleep/Wake and MissedSummary: holding what arrives while a radio sleeps needs the "
        "store; the device here stayed awake (a later issue)",
    ),
    (
        "device emulator radio links",
        "lossy, slow link models and the swarm runner of device_sim; the datagrams here "
        "crossed loopback, without loss (a later issue)",
    ),
)


WIDTH = 100  # columns of the narrative (the table may be wider)


class DemoError(Exception):
    """A step could not do what it claims; the demo stops and says which step and why."""


@dataclass(frozen=True)
class Row:
    """One operation of the closing table: its cost on the device link and upstream."""

    operation: str
    device_bytes: int
    device_detail: str
    xmpp_bytes: int | None
    xmpp_detail: str


class Narrator:
    """Prints the numbered steps and collects the summary rows."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.rows: list[Row] = []
        self.current_step = 0

    def title(self, text: str) -> None:
        """The banner at the top."""
        self.out.write(f"{text}\n{'=' * len(text)}\n")
        self.out.flush()

    def step(self, number: int, text: str) -> None:
        """Start step ``number``."""
        self.current_step = number
        self.out.write(f"\n[{number}] {text}\n")
        self.out.flush()

    def say(self, text: str) -> None:
        """One fact of the current step."""
        lines = textwrap.wrap(
            text,
            width=WIDTH,
            initial_indent="    ",
            subsequent_indent="      ",
            break_on_hyphens=False,
            break_long_words=False,
        )
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    def row(self, row: Row) -> None:
        """Remember one operation for the closing table."""
        self.rows.append(row)

    def summary(self) -> None:
        """The byte table: device link against XMPP, per operation."""
        self.out.write("\nSummary: bytes per operation, device link vs. XMPP upstream\n")
        headers = ("operation", "device", "(what)", "XMPP", "(what)", "XMPP/device")
        lines = [headers]
        for row in self.rows:
            ratio = (
                f"{row.xmpp_bytes / row.device_bytes:.1f}x"
                if row.xmpp_bytes is not None and row.device_bytes
                else "-"
            )
            lines.append(
                (
                    row.operation,
                    str(row.device_bytes),
                    row.device_detail,
                    "-" if row.xmpp_bytes is None else str(row.xmpp_bytes),
                    row.xmpp_detail,
                    ratio,
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
        right = {1, 3, 5}
        for index, line in enumerate(lines):
            cells = [
                cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                for i, cell in enumerate(line)
            ]
            self.out.write("    " + "  ".join(cells).rstrip() + "\n")
            if index == 0:
                self.out.write("    " + "  ".join("-" * w for w in widths) + "\n")
        self.out.flush()

    def not_built(self) -> None:
        """The closing list of what is not built yet."""
        self.out.write("\nNot built yet (this demo wired the existing pieces itself):\n")
        for name, why in NOT_BUILT_YET:
            lines = textwrap.wrap(
                f"- {name}: {why}", width=WIDTH, initial_indent="    ", subsequent_indent="      "
            )
            self.out.write("\n".join(lines) + "\n")
        self.out.flush()
