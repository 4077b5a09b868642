"""Benchmark programs: ``python -m bench NAME [--quick]``.

Each benchmark is a module of this package whose name does not start with an underscore. It
defines ``DESCRIPTION`` (one line) and ``run(quick: bool) -> Report``. The runner prints the
report's tables and writes ``bench/results/NAME.json`` with the machine, command, date and results.
Figures are reported as ratios against a baseline measured in the same run wherever there is one;
tests only run each benchmark with ``--quick`` and check the JSON's shape, never a duration.
"""

from __future__ import annotations

from bench._framework import Report, Table, discover, machine_info, run_benchmark

__all__ = ["Report", "Table", "discover", "machine_info", "run_benchmark"]
