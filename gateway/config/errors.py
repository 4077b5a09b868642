"""Configuration problems: each names the key, says what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ConfigError", "Problem"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration.

    ``key`` is the dotted path (``listen.udp``, ``upstream.domains."example.org".server``), or
    ``""`` for the file as a whole; ``line`` is where the key is written, when it is.
    """

    key: str
    message: str
    fix: str
    line: int | None = None

    def format(self, source: Path | None = None) -> str:
        """``FILE:LINE: KEY: MESSAGE`` and, on the next line, the fix."""
        where = str(source) if source is not None else ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        head = ": ".join(part for part in (where, self.key) if part)
        text = f"{head}: {self.message}" if head else self.message
        return f"{text}\n  fix: {self.fix}"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason found, in file order."""

    def __init__(self, source: Path, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        super().__init__(f"{source}: {count} configuration problem{'s' if count != 1 else ''}")

    def report(self) -> list[str]:
        """Every problem, formatted, one entry each (an entry may span two lines)."""
        return [problem.format(self.source) for problem in self.problems]
