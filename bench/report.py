"""``python -m bench report``: docs/benchmarks.md generated from every bench/results/*.json.

The page holds, per benchmark, the command and date of its run, the machine it ran on, one table of
its comparison rows (``ours``, ``baseline``, ``ratio``, ``unit``), the goals of issue 15 marked met
or missed, its PNG charts and its notes. Goals are the record's own ``goals`` (the benchmark
judged them with the figures of the same run); for a benchmark of the issue whose record is
missing or judges none, the issue's goals are listed as "not evaluated", so a missing
measurement is never shown as met. Records in
the older shape (a mapping of figures) are shown as a flat table of their figures.

Nothing is measured here: the page is a pure function of the JSON files, so it can be regenerated
at any time and reviewed as a diff.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench._framework import RESULTS_DIR, format_cell

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

# The benchmarks of issue 15 first, in the issue's order; the others after, by name.
ISSUE_ORDER = ("air-bytes", "device-cost", "gateway-capacity")

# The goals of issue 15 ("Goals to report against"), by benchmark: listed as not evaluated for a
# benchmark whose record is missing or judges no goal (a record's own goals, judged with the
# figures of its run, are shown as they are).
ISSUE_GOALS: dict[str, tuple[str, ...]] = {
    "air-bytes": (
        "setup: session set-up (ticket included) at least 45x fewer bytes in at most 2 round trips",
        "resumption: at least 70x fewer bytes in one round trip",
        "message: a 20-character message with its acknowledgement at least 5x fewer bytes, at "
        "most 48 B, and at least 8x on the protocol's own overhead beyond the 20 bytes of text",
        "presence: a presence update at least 10x fewer bytes",
        "contact-presence: a contact's presence at least 6x fewer bytes",
    ),
    "device-cost": (
        "cpu: device CPU per typical day on the Cortex-M4 profile under 1% of a day's cycles",
        "battery: battery life at least 10x the XMPP-direct device's on the same schedule",
    ),
    "gateway-capacity": (
        "ops: gateway operations per second at least 30% of the raw trio UDP echo rate",
        "state: idle device-layer state at most 4 KiB per session",
        "sessions: 50k sessions in one process",
    ),
}

_MAX_FLAT_ROWS = 40  # figures shown for an old-shape record; the JSON holds the rest


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    """Every record in ``results_dir``, the issue's benchmarks first."""
    records: list[dict[str, Any]] = []
    for path in sorted(results_dir.glob("*.json")):
        record = json.loads(path.read_text("utf-8"))
        if isinstance(record, dict) and "name" in record and "results" in record:
            records.append(record)

    def order(record: Mapping[str, Any]) -> tuple[int, str]:
        name = str(record["name"])
        return (ISSUE_ORDER.index(name) if name in ISSUE_ORDER else len(ISSUE_ORDER), name)

    return sorted(records, key=order)


def _escape(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(_escape(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_escape(format_cell(c)) for c in row) + " |")
    return lines


def _machine_line(machine: Mapping[str, Any]) -> str:
    ram = machine.get("ram_bytes")
    ram_text = f", {ram / 2**30:.1f} GiB RAM" if isinstance(ram, int | float) else ""
    packages = machine.get("packages")
    package_text = ""
    if isinstance(packages, Mapping) and packages:
        package_text = "; " + ", ".join(f"{k} {v}" for k, v in sorted(packages.items()))
    kernel = machine.get("kernel") or machine.get("platform", "")
    return (
        f"{machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores{ram_text}, "
        f"kernel {kernel}, {machine.get('implementation', 'Python')} "
        f"{machine.get('python', '?')}{package_text}"
    )


def _ratio_text(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.3g}"
    return "-"


def _inverse_text(row: Mapping[str, Any]) -> str:
    ours, baseline = row.get("ours"), row.get("baseline")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (ours, baseline))
    if not numbers or not ours:
        return "-"
    return f"{baseline / ours:.3g}x"


def _comparison_rows(results: Sequence[Mapping[str, Any]]) -> list[str]:
    key = "level" if any("level" in row for row in results) else "operation"
    extra_columns = [name for name in ("baseline_name",) if any(name in row for row in results)]
    columns = [key, "ours", "baseline", "unit", "ratio", "baseline / ours", *extra_columns]
    rows = [
        [
            row.get(key, row.get("operation", row.get("level", ""))),
            row.get("ours"),
            row.get("baseline"),
            row.get("unit"),
            _ratio_text(row.get("ratio")),
            _inverse_text(row),
            *(row.get(c) for c in extra_columns),
        ]
        for row in results
    ]
    return _table(columns, rows)


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, Mapping):
        for key in sorted(value):
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out)
    elif isinstance(value, list):
        out.append((prefix, f"[{len(value)} items]"))
    else:
        out.append((prefix, value))


def _goal_rows(record: Mapping[str, Any]) -> list[list[object]]:
    judged = record.get("goals")
    judged_list = [g for g in judged if isinstance(g, Mapping)] if isinstance(judged, list) else []
    issue_goals = ISSUE_GOALS.get(str(record["name"]), ())
    rows: list[list[object]] = []
    for goal in judged_list:
        text = str(goal.get("goal", ""))
        rows.append(
            ["met" if goal.get("met") is True else "missed", text, goal.get("measured", "")]
        )
    if not judged_list:
        rows += [["not evaluated", text, "this record judges no goal"] for text in issue_goals]
    return rows


def _goal_lines(record: Mapping[str, Any]) -> list[str]:
    rows = _goal_rows(record)
    if not rows:
        return []
    return ["", "Goals (issue 15):", "", *_table(["status", "goal", "measured"], rows)]


def render_record(record: Mapping[str, Any], doc_dir: Path, results_dir: Path) -> list[str]:
    """The section of the page for one record."""
    name = str(record["name"])
    lines = [f"## {name}", ""]
    if record.get("description"):
        lines += [f"{_escape(record['description'])}.", ""]
    run_kind = "quick run (`--quick`)" if record.get("quick") else "full run"
    lines.append(f"- command: `{record.get('command', '')}` ({run_kind})")
    lines.append(f"- date: {record.get('date', '?')}")
    machine = record.get("machine")
    if isinstance(machine, Mapping):
        lines.append(f"- machine: {_machine_line(machine)}")
    lines.append("")
    results = record["results"]
    if isinstance(results, list):
        lines.extend(_comparison_rows([r for r in results if isinstance(r, Mapping)]))
        lines.append("")
        lines.append(
            "`ratio` is `ours / baseline`; `baseline / ours` is the baseline's figure as a "
            "multiple of ours (for bytes, time and energy: how many times less ours takes)."
        )
    elif isinstance(results, Mapping):
        flat: list[tuple[str, Any]] = []
        _flatten("", results, flat)
        shown = flat[:_MAX_FLAT_ROWS]
        lines.extend(_table(["figure", "value"], shown))
        if len(flat) > len(shown):
            lines.append("")
            lines.append(f"({len(flat) - len(shown)} more figures in the JSON record.)")
    lines.extend(_goal_lines(record))
    charts = record.get("charts")
    if isinstance(charts, list) and charts:
        lines.append("")
        relative = Path(_relative(results_dir, doc_dir))
        for chart in charts:
            lines.append(f"![{name}: {chart}]({(relative / str(chart)).as_posix()})")
    notes = record.get("notes")
    if isinstance(notes, list) and notes:
        lines.append("")
        lines.append("Notes:")
        lines.append("")
        lines.extend(f"- {_escape(note)}" for note in notes)
    lines.append("")
    return lines


def _relative(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve())


def render(records: Sequence[Mapping[str, Any]], doc_dir: Path, results_dir: Path) -> str:
    """The whole page."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench report` from `bench/results/*.json`; do not edit by hand "
        "(run the benchmarks, then the report). Each benchmark is `python -m bench NAME "
        "[--quick]`; every figure below was measured when that command ran, on the machine "
        "named with it. Ratios are `ours / baseline` from the same run.",
        "",
        "Reproduce: `python -m bench air-bytes`, `python -m bench device-cost`, `python -m bench "
        "gateway-capacity` (each with `--quick` for a small run; `--opt KEY=VALUE` passes a "
        "setting, e.g. `--opt levels=1000,10000`), then `python -m bench report`. "
        "`python -m bench --list` names every benchmark.",
        "",
    ]
    machines: list[str] = []
    for record in records:
        machine = record.get("machine")
        if isinstance(machine, Mapping):
            line = _machine_line(machine)
            if line not in machines:
                machines.append(line)
    if machines:
        lines.append("Machines:")
        lines.append("")
        lines.extend(f"- {m}" for m in machines)
        lines.append("")
    summary: list[list[object]] = []
    for record in records:
        goal_rows = _goal_rows(record)
        summary += [[record["name"], *row] for row in goal_rows]
    present = {str(record["name"]) for record in records}
    for name in ISSUE_ORDER:
        if name not in present:
            summary += [[name, "not evaluated", text, "no record"] for text in ISSUE_GOALS[name]]
    if summary:
        lines.append("## Goals of issue 15")
        lines.append("")
        lines.extend(_table(["benchmark", "status", "goal", "measured"], summary))
        lines.append("")
    for record in records:
        lines.extend(render_record(record, doc_dir, results_dir))
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench report [--results DIR] [--output FILE]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bench report",
        description="Write docs/benchmarks.md from the benchmarks' JSON records.",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output", type=Path, default=DOC_PATH)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    records = load_records(args.results)
    text = render(records, args.output.parent, args.results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, "utf-8")
    print(f"wrote {args.output} from {len(records)} records in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
