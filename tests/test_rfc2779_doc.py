"""docs/rfc2779.md stays honest: every cited test exists, and the counts line matches the table."""

from __future__ import annotations

import ast
import collections
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "rfc2779.md"
STATUSES = ("met", "partly", "not", "n/a")
CITATION = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?`")
ROW = re.compile(r"^\| ([2-5]\.\d+\.\d+) \|")
COUNTS = re.compile(r"^Counts: met (\d+), partly (\d+), not (\d+), n/a (\d+) \((\d+) in all\)\.$")


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if ROW.match(line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_every_cited_test_exists() -> None:
    citations = CITATION.findall(DOC.read_text(encoding="utf-8"))
    assert citations
    missing = [
        f"{path}::{name}"
        for path, name in citations
        if not (ROOT / path).is_file() or name not in _functions(ROOT / path)
    ]
    assert missing == []


def test_one_row_per_requirement_with_a_known_status() -> None:
    rows = _rows()
    numbers = [row[0] for row in rows]
    assert len(numbers) == len(set(numbers)) == 93
    assert {row[2] for row in rows} <= set(STATUSES)


def test_counts_line_matches_the_table() -> None:
    counted = collections.Counter(row[2] for row in _rows())
    (line,) = [
        line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("Counts:")
    ]
    match = COUNTS.match(line)
    assert match is not None, line
    met, partly, not_met, not_applicable, total = (int(group) for group in match.groups())
    assert (met, partly, not_met, not_applicable) == tuple(counted[s] for s in STATUSES)
    assert total == sum(counted.values())
