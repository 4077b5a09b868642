"""The benchmark convention: discovery, the machine description, printing and the JSON record.

A benchmark returns a :class:`Report`: JSON-able ``results`` (what later sessions compare) and
human-readable :class:`Table` s. :func:`run_benchmark` adds what every record must hold
(``machine``, ``command``, ``date``) so figures from different machines are never confused.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import pkgutil
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Table:
    """One printed table: a title, column names, and rows of cells (numbers or text)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[object]]

    def render(self) -> str:
        """Format the table as aligned plain text."""
        cells = [[_format_cell(c) for c in row] for row in self.rows]
        header = [str(c) for c in self.columns]
        widths = [len(h) for h in header]
        for row in cells:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        lines = [self.title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        for row in cells:
            lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        return "\n".join(lines)


def _format_cell(value: object) -> str:
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e6:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@dataclass(frozen=True)
class Report:
    """What one benchmark run measured: JSON-able results plus tables for people."""

    results: Mapping[str, Any]
    tables: Sequence[Table] = field(default_factory=tuple)
    notes: Sequence[str] = field(default_factory=tuple)


class BenchmarkModule(Protocol):
    """The shape every benchmark module has."""

    DESCRIPTION: str

    def run(self, quick: bool) -> Report: ...


def discover() -> dict[str, BenchmarkModule]:
    """Every benchmark module of this package, by name (modules starting with ``_`` are not)."""
    package_dir = Path(__file__).resolve().parent
    found: dict[str, BenchmarkModule] = {}
    for info in sorted(pkgutil.iter_modules([str(package_dir)]), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module: ModuleType = importlib.import_module(f"bench.{info.name}")
        if hasattr(module, "run") and hasattr(module, "DESCRIPTION"):
            found[info.name] = cast(BenchmarkModule, module)
    return found


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """The machine a figure was measured on: CPU model, cores, Python and platform."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def run_benchmark(
    name: str,
    module: BenchmarkModule,
    *,
    quick: bool,
    out_dir: Path = RESULTS_DIR,
    command: Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run one benchmark, print its tables and write ``out_dir/NAME.json``; return that path."""
    report = module.run(quick)
    machine = machine_info()
    record: dict[str, Any] = {
        "name": name,
        "machine": machine,
        "command": " ".join(command if command is not None else ["python", "-m", "bench", name]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "results": dict(report.results),
    }
    echo(f"== {name}: {module.DESCRIPTION}")
    echo(
        f"   machine: {machine['cpu_model']}, {machine['cores']} cores, Python {machine['python']}"
    )
    for table in report.tables:
        echo("")
        echo(table.render())
    for note in report.notes:
        echo(f"note: {note}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    echo(f"\nwrote {path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench [--list] [NAME ...] [--quick] [--out DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the project's benchmarks; each writes bench/results/NAME.json.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--all", action="store_true", help="run every benchmark")
    parser.add_argument("--quick", action="store_true", help="small run: checks it still works")
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR,
        help="directory for NAME.json (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    benchmarks = discover()
    if args.list:
        for name, module in benchmarks.items():
            print(f"{name:<12} {module.DESCRIPTION}")
        return 0
    names: list[str] = list(benchmarks) if args.all else list(args.names)
    if not names:
        parser.error("name a benchmark (see --list) or give --all")
    unknown = [n for n in names if n not in benchmarks]
    if unknown:
        parser.error(
            f"unknown benchmark {', '.join(unknown)}; known: {', '.join(benchmarks) or 'none yet'}"
        )
    for name in names:
        command = ["python", "-m", "bench", name] + (["--quick"] if args.quick else [])
        run_benchmark(name, benchmarks[name], quick=args.quick, out_dir=args.out, command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
