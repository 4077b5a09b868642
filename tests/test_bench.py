"""Every benchmark still runs (``--quick``) and writes a record of the agreed shape.

Only the shape is checked: benchmarks measure, tests never judge a duration.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import Report, Table, discover, run_benchmark

REPO = Path(__file__).resolve().parent.parent


def _check_record(path: Path, name: str) -> None:
    record = json.loads(path.read_text("utf-8"))
    assert record["name"] == name
    assert set(record) >= {"machine", "command", "date", "results"}
    assert set(record["machine"]) >= {"cpu_model", "cores", "python"}
    assert record["command"].startswith(f"python -m bench {name}")
    assert isinstance(record["results"], dict)
    assert record["results"], f"benchmark {name} reported no results"


@pytest.mark.parametrize("name", sorted(discover()))
def test_benchmark_runs_quick(name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", name, "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"== {name}:" in result.stdout
    _check_record(tmp_path / f"{name}.json", name)


def test_list_names_every_benchmark() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed == set(discover())


def test_unknown_benchmark_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "no-such-bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown benchmark no-such-bench" in result.stderr


class _Toy:
    DESCRIPTION = "a toy benchmark for the runner's own test"

    @staticmethod
    def run(quick: bool) -> Report:
        return Report(
            results={"quick": quick, "ratio": 1.5},
            tables=[Table("toy", ["what", "value"], [["ratio", 1.5], ["count", 1200]])],
        )


def test_runner_writes_the_record_and_prints_tables(tmp_path: Path) -> None:
    printed: list[str] = []
    path = run_benchmark("toy", _Toy(), quick=True, out_dir=tmp_path, echo=printed.append)
    _check_record(path, "toy")
    text = "\n".join(printed)
    assert "toy" in text
    assert "1,200" in text
    assert "1.50" in text
