"""The swarm's live progress line and its closing summary table (rich, on a terminal or not)."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from device_sim.swarm.driver import Progress
from device_sim.swarm.ledger import MAX_TRACES, KindSummary, Summary

__all__ = ["LiveProgress", "print_summary", "summary_table"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


class LiveProgress:
    """A one-line live display that the swarm's ``on_progress`` updates."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live = Live(Text(""), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def update(self, progress: Progress) -> None:
        """Show ``progress``."""
        phase = (
            "draining"
            if progress.draining
            else f"{progress.elapsed:5.0f}/{progress.duration:.0f} s"
        )
        self._live.update(
            Text(
                f"{phase}  devices {progress.connected}/{progress.devices} connected, "
                f"{progress.asleep} asleep  ops sent {progress.sent}, delivered "
                f"{progress.delivered}, in flight {progress.outstanding}  "
                f"link {progress.link_bytes / 1024:,.1f} KiB"
            )
        )


def _kind_row(table: Table, name: str, kind: KindSummary, *, observed: bool = True) -> None:
    table.add_row(
        name,
        str(kind.sent),
        str(kind.accepted) if observed else "n/a",
        str(kind.delivered) if observed else "n/a",
        str(kind.lost) if observed else "n/a",
        str(kind.queued) if observed else "n/a",
        str(kind.unacknowledged) if observed else "n/a",
        str(kind.duplicated) if observed else "n/a",
        str(kind.refused),
        _ms(kind.latency_p50_ms),
        _ms(kind.latency_p90_ms),
        _ms(kind.latency_p99_ms),
    )


def summary_table(summary: Summary) -> list[Table]:
    """The summary as rich tables: operations, link bytes, device cost per profile."""
    ops = Table(
        title=(
            f"swarm: {summary.devices} devices, link {summary.link}, "
            f"{summary.duration_s:g} s, seed {summary.seed}"
        )
    )
    columns = (
        "operations",
        "sent",
        "accepted",
        "delivered",
        "lost",
        "queued",
        "unacked",
        "duplicated",
        "refused",
    )
    for column in columns:
        ops.add_column(column, justify="right" if column != "operations" else "left")
    for column in ("p50 ms", "p90 ms", "p99 ms"):
        ops.add_column(column, justify="right")
    for name, kind in summary.by_kind.items():
        _kind_row(ops, name, kind, observed=name != "presence")
    _kind_row(ops, "all", summary.total)
    totals = summary.totals
    link = Table(title="on the link (both directions, all devices)")
    link.add_column("figure")
    link.add_column("value", justify="right")
    per_op = summary.link_bytes_per_op
    payload_per_op = summary.payload_bytes_per_op
    link.add_row(
        "bytes per operation (headers included)", "-" if per_op is None else f"{per_op:,.1f}"
    )
    link.add_row(
        "UDP payload bytes per operation",
        "-" if payload_per_op is None else f"{payload_per_op:,.1f}",
    )
    link.add_row(
        "datagrams sent / received", f"{totals.datagrams_sent} / {totals.datagrams_received}"
    )
    link.add_row(
        "devices connected / handshakes / resumptions",
        f"{totals.connected} / {totals.handshakes} / {totals.resumptions}",
    )
    link.add_row(
        "wake-ups / device-seconds asleep", f"{totals.wakeups} / {totals.asleep_seconds:,.0f}"
    )
    cost = Table(title="device cost per operation sent")
    for column in ("profile", "CPU ms", "CPU mJ", "CPU + radio mJ"):
        cost.add_column(column, justify="left" if column == "profile" else "right")
    for name, profile in summary.profiles.items():
        cost.add_row(
            name,
            f"{profile.cpu_ms_per_op:,.2f}",
            f"{profile.cpu_mj_per_op:,.3f}",
            f"{profile.total_mj_per_op:,.1f}",
        )
    return [ops, link, cost]


def undelivered_table(summary: Summary, limit: int = 20) -> Table | None:
    """The first ``limit`` messages not delivered (lost first), or None when there are none."""
    if not summary.undelivered:
        return None
    shown = summary.undelivered[:limit]
    missing = summary.total.lost + summary.in_flight
    table = Table(
        title=f"not delivered ({len(shown)} of {missing} shown; up to {MAX_TRACES} in --json)"
    )
    for column in ("op", "kind", "outcome", "from", "to", "message id", "sent at s", "report"):
        table.add_column(column, justify="left" if column in ("kind", "outcome") else "right")
    for trace in shown:
        table.add_row(
            str(trace.op_id),
            trace.kind,
            trace.outcome,
            str(trace.sender),
            str(trace.recipient),
            "-" if trace.message_id is None else str(trace.message_id),
            f"{trace.sent_at_s:,.3f}",
            trace.report or "-",
        )
    return table


def print_summary(summary: Summary, console: Console) -> None:
    """Print the summary tables, then the messages not delivered."""
    for table in summary_table(summary):
        console.print(table)
    undelivered = undelivered_table(summary)
    if undelivered is not None:
        console.print(undelivered)
