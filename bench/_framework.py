"""The benchmark convention: discovery, machine description, printing, charts and the record.

A benchmark module defines ``DESCRIPTION`` and ``run(quick) -> Report`` (or ``run(quick, options)``
to take ``--opt KEY=VALUE`` settings). Its module name with ``_`` read as ``-`` is its command
name (``device_cost.py`` is ``python -m bench device-cost``). :func:`run_benchmark` adds what
every record must hold (``name``, ``command``, ``machine``, ``date``, ``quick``) so figures from
different machines are never confused, writes ``results/NAME.json`` and renders the report's
:class:`Chart` s as PNG files beside it.

Two shapes of ``results`` exist. The comparison shape, which every benchmark of issue 15 uses, is
a list of rows made by :func:`comparison`: one per operation or load level, each with ``ours``,
``baseline``, ``ratio`` (always ``ours / baseline``) and ``unit``, so a goal can be checked with a
few lines of code. Older benchmarks return a mapping of their own figures; both are written as
they are.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import inspect
import json
import os
import pkgutil
import platform
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# The packages whose versions decide the figures: the event loop, the crypto, the codecs, the
# XMPP baseline client and the chart library.
KEY_PACKAGES = ("trio", "cryptography", "cbor2", "pynacl", "ecdsa", "slixmpp", "matplotlib")

# Sub-commands of ``python -m bench`` that are not benchmarks.
REPORT_COMMAND = "report"


@dataclass(frozen=True)
class Table:
    """One printed table: a title, column names, and rows of cells (numbers or text)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[object]]

    def render(self) -> str:
        """Format the table as aligned plain text."""
        cells = [[format_cell(c) for c in row] for row in self.rows]
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


def format_cell(value: object) -> str:
    """A number as people read it: thousands separators, two decimals, or three figures."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e6:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


# Kept for modules that imported the old private name.
_format_cell = format_cell


@dataclass(frozen=True)
class Chart:
    """A chart to render as PNG: categories on the x axis, one bar (or line) per series.

    ``slug`` names the file: ``NAME.png`` when empty, else ``NAME-slug.png``. ``None`` values are
    gaps (a figure not measured at that category).
    """

    title: str
    categories: Sequence[str]
    series: Mapping[str, Sequence[float | None]]
    ylabel: str
    slug: str = ""
    log_scale: bool = False
    kind: str = "bar"  # "bar" (grouped) or "line"
    xlabel: str = ""


@dataclass(frozen=True)
class Goal:
    """One goal of the issue and whether this run met it, with the figures that decide it."""

    text: str
    measured: str
    met: bool

    def as_json(self) -> dict[str, Any]:
        """The goal as a JSON object."""
        return {"goal": self.text, "measured": self.measured, "met": self.met}


@dataclass(frozen=True)
class Report:
    """What one benchmark run measured: JSON-able results plus tables, charts and goals."""

    results: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    tables: Sequence[Table] = field(default_factory=tuple)
    notes: Sequence[str] = field(default_factory=tuple)
    charts: Sequence[Chart] = field(default_factory=tuple)
    goals: Sequence[Goal] = field(default_factory=tuple)
    # Further JSON-able figures that are not comparisons (raw counts, profiles, parameters).
    details: Mapping[str, Any] = field(default_factory=dict)


class BenchmarkModule(Protocol):
    """The shape every benchmark module has."""

    DESCRIPTION: str

    @property
    def run(self) -> Callable[..., Report]:
        """``run(quick)``, or ``run(quick, options)`` for a benchmark taking ``--opt`` settings."""
        ...


def ratio(ours: float | None, baseline: float | None) -> float | None:
    """``ours / baseline`` rounded to four significant figures, or ``None`` if undefined."""
    if ours is None or baseline is None or baseline == 0:
        return None
    value = ours / baseline
    return float(f"{value:.4g}")


def comparison(
    key: str,
    name: str,
    ours: float | None,
    baseline: float | None,
    unit: str,
    **extra: Any,
) -> dict[str, Any]:
    """One row of ``results``: ``{key: name, ours, baseline, ratio = ours/baseline, unit, ...}``.

    ``key`` is ``"operation"`` or ``"level"``. Extra keyword figures are kept beside them (what the
    baseline is, the figures that make up ``ours``...).
    """
    if key not in ("operation", "level"):
        raise ValueError(f"a comparison is keyed by operation or level, not {key!r}")
    row: dict[str, Any] = {
        key: name,
        "ours": ours,
        "baseline": baseline,
        "ratio": ratio(ours, baseline),
        "unit": unit,
    }
    row.update(extra)
    return row


def command_name(module_name: str) -> str:
    """The command name of a benchmark module: ``device_cost`` is ``device-cost``."""
    return module_name.replace("_", "-")


def discover() -> dict[str, BenchmarkModule]:
    """Every benchmark module of this package, by command name (``_``-prefixed modules are not)."""
    package_dir = Path(__file__).resolve().parent
    found: dict[str, BenchmarkModule] = {}
    for info in sorted(pkgutil.iter_modules([str(package_dir)]), key=lambda i: i.name):
        if info.name.startswith("_") or info.name == REPORT_COMMAND:
            continue
        module: ModuleType = importlib.import_module(f"bench.{info.name}")
        if hasattr(module, "run") and hasattr(module, "DESCRIPTION"):
            found[command_name(info.name)] = cast(BenchmarkModule, module)
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


def _memory_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for package in KEY_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def machine_info() -> dict[str, Any]:
    """The machine a figure was measured on: CPU, cores, RAM, kernel, Python, key packages."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_bytes": _memory_total_bytes(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": _package_versions(),
    }


def chart_file_name(name: str, chart: Chart) -> str:
    """The PNG file name of one chart of benchmark ``name``."""
    if not chart.slug:
        return f"{name}.png"
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", chart.slug):
        raise ValueError(f"chart slug {chart.slug!r} is not a lower-case file-name word")
    return f"{name}-{chart.slug}.png"


def render_chart(chart: Chart, path: Path) -> None:
    """Draw ``chart`` into the PNG file ``path`` (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(6.0, 0.9 * len(chart.categories) + 3.0), 4.2))
    try:
        positions = list(range(len(chart.categories)))
        names = list(chart.series)
        if chart.kind == "line":
            for series_name in names:
                values = chart.series[series_name]
                points = [(x, v) for x, v in zip(positions, values, strict=True) if v is not None]
                axes.plot([p[0] for p in points], [p[1] for p in points], marker="o")
        else:
            width = 0.8 / max(1, len(names))
            for index, series_name in enumerate(names):
                values = chart.series[series_name]
                offset = (index - (len(names) - 1) / 2) * width
                xs = [x + offset for x, v in zip(positions, values, strict=True) if v is not None]
                ys = [v for v in values if v is not None]
                axes.bar(xs, ys, width=width, label=series_name)
        axes.set_xticks(positions)
        axes.set_xticklabels(list(chart.categories), rotation=30, ha="right", fontsize=8)
        axes.set_ylabel(chart.ylabel)
        if chart.xlabel:
            axes.set_xlabel(chart.xlabel)
        if chart.log_scale:
            axes.set_yscale("log")
        axes.set_title(chart.title, fontsize=10)
        axes.legend(names, fontsize=8, loc="best")
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)


def _call_run(module: BenchmarkModule, quick: bool, options: Mapping[str, str] | None) -> Report:
    parameters = inspect.signature(module.run).parameters
    if "options" in parameters:
        return module.run(quick, options=dict(options or {}))
    if options:
        raise ValueError(f"this benchmark takes no options (given {', '.join(options)})")
    return module.run(quick)


def run_benchmark(
    name: str,
    module: BenchmarkModule,
    *,
    quick: bool,
    out_dir: Path = RESULTS_DIR,
    command: Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
    options: Mapping[str, str] | None = None,
) -> Path:
    """Run one benchmark, print its tables, write ``out_dir/NAME.json`` and its charts."""
    report = _call_run(module, quick, options)
    machine = machine_info()
    results: Any = (
        dict(report.results)
        if isinstance(report.results, Mapping)
        else [dict(row) for row in report.results]
    )
    record: dict[str, Any] = {
        "name": name,
        "description": module.DESCRIPTION,
        "machine": machine,
        "command": " ".join(command if command is not None else ["python", "-m", "bench", name]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "results": results,
        "notes": list(report.notes),
    }
    if report.goals:
        record["goals"] = [goal.as_json() for goal in report.goals]
    if report.details:
        record["details"] = dict(report.details)
    echo(f"== {name}: {module.DESCRIPTION}")
    echo(
        f"   machine: {machine['cpu_model']}, {machine['cores']} cores, Python {machine['python']}"
    )
    for table in report.tables:
        echo("")
        echo(table.render())
    for goal in report.goals:
        echo(f"goal {'MET' if goal.met else 'MISSED'}: {goal.text} ({goal.measured})")
    for note in report.notes:
        echo(f"note: {note}")
    out_dir.mkdir(parents=True, exist_ok=True)
    charts: list[str] = []
    for chart in report.charts:
        file_name = chart_file_name(name, chart)
        render_chart(chart, out_dir / file_name)
        charts.append(file_name)
    if charts:
        record["charts"] = charts
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    echo(f"\nwrote {path}")
    return path


def _parse_options(pairs: Sequence[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--opt takes KEY=VALUE, not {pair!r}")
        options[key] = value
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench [--list] [NAME ...] [--quick] [--out DIR] [--opt K=V]`` or ``report``."""
    import argparse

    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == [REPORT_COMMAND]:
        from bench.report import main as report_main

        return report_main(arguments[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Run the project's benchmarks; each writes bench/results/NAME.json (and its charts). "
            "'python -m bench report' writes docs/benchmarks.md from those files."
        ),
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
    parser.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting passed to the benchmark (e.g. levels=200 for gateway-capacity)",
    )
    args = parser.parse_args(arguments)
    benchmarks = discover()
    if args.list:
        for name, module in benchmarks.items():
            print(f"{name:<18} {module.DESCRIPTION}")
        return 0
    names: list[str] = list(benchmarks) if args.all else [command_name(n) for n in args.names]
    if not names:
        parser.error("name a benchmark (see --list) or give --all")
    unknown = [n for n in names if n not in benchmarks]
    if unknown:
        parser.error(
            f"unknown benchmark {', '.join(unknown)}; known: {', '.join(benchmarks) or 'none yet'}"
        )
    try:
        options = _parse_options(args.opt)
    except ValueError as exc:
        parser.error(str(exc))
    for name in names:
        command = ["python", "-m", "bench", name] + (["--quick"] if args.quick else [])
        command += [f"--opt {key}={value}" for key, value in options.items()]
        run_benchmark(
            name,
            benchmarks[name],
            quick=args.quick,
            out_dir=args.out,
            command=command,
            options=options,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
