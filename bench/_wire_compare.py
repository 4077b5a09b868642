"""Same-process speed comparison of the wire codec against an older tree of it.

Not a discovered benchmark (the leading underscore): it needs a second copy of the package, such as
the tree before a change, extracted and renamed so that both import side by side::

    mkdir -p /tmp/oldwire && git archive <commit> gateway | tar -x -C /tmp/oldwire
    mv /tmp/oldwire/gateway /tmp/oldwire/oldgateway
    grep -rl gateway /tmp/oldwire/oldgateway | xargs sed -i -E \
        's/(from|import) gateway(\\.| )/\\1 oldgateway\\2/g'
    python -m bench._wire_compare /tmp/oldwire

Both codecs run the same operations on equal messages, interleaved, in one process; each figure is
the median over repeats of the best-timed batch, and the ratio is new over old time (below 1 means
the new code is faster).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

import gateway.wire as new_wire

ROUNDS = 2000
REPEATS = 7


def _messages(wire: ModuleType) -> dict[str, Any]:
    """The compared messages, built from ``wire``'s own classes."""
    contacts = tuple(
        wire.Contact(
            alias=index,
            address=f"contact{index}@example.com",
            subscription=wire.SubscriptionState.BOTH,
            name=f"Contact {index}" if index % 2 else None,
            blocked=index % 5 == 0,
        )
        for index in range(20)
    )
    return {
        "IncomingMessage": wire.IncomingMessage(
            id=1234,
            sender=7,
            timestamp=1_764_000_000,
            content=wire.TextContent("hello there, how are you?", "en"),
        ),
        "SendMessage": wire.SendMessage(
            id=42, to="alice@example.com", content=wire.TextContent("on my way"), want_report=False
        ),
        "ContactList of 20": wire.ContactList(version=9, contacts=contacts, complete=True),
        "Ack (selective)": wire.Ack(100, ((102, 104), (110, 110))),
        "Ack (cumulative)": wire.Ack(70000),
    }


def _time(operation: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(ROUNDS):
        operation()
    return (time.perf_counter() - start) / ROUNDS


def _compare(old: Callable[[], object], new: Callable[[], object]) -> tuple[float, float]:
    """Median seconds per call of each, timed alternately so both see the same machine load."""
    old_times: list[float] = []
    new_times: list[float] = []
    for _ in range(REPEATS):
        old_times.append(_time(old))
        new_times.append(_time(new))
    return statistics.median(old_times), statistics.median(new_times)


def main(old_root: str) -> None:
    """Print old and new encode and decode times per message, and their ratio."""
    sys.path.insert(0, old_root)
    import oldgateway.wire as old_wire  # type: ignore[import-not-found]  # the renamed old tree

    old_messages = _messages(old_wire)
    new_messages = _messages(new_wire)
    print(f"{'message':20} {'op':6} {'old us':>8} {'new us':>8} {'new/old':>8}")
    for label, new_message in new_messages.items():
        old_message = old_messages[label]
        data = new_wire.encode(new_message)
        if old_wire.encode(old_message) != data:
            raise RuntimeError(f"{label}: the two trees encode differently")
        operations: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
            (
                "encode",
                partial(old_wire.encode, old_message),
                partial(new_wire.encode, new_message),
            ),
            (
                "decode",
                partial(old_wire.decode_untrusted, data),
                partial(new_wire.decode_untrusted, data),
            ),
        ]
        for op, old_op, new_op in operations:
            old_time, new_time = _compare(old_op, new_op)
            print(
                f"{label:20} {op:6} {old_time * 1e6:8.2f} {new_time * 1e6:8.2f}"
                f" {new_time / old_time:8.3f}"
            )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m bench._wire_compare DIRECTORY_HOLDING_oldgateway")
    main(sys.argv[1])
