"""Where a key is written in a TOML file, so that a problem can name its line.

tomllib returns values without positions, so this scans the text for table headers and
``key =`` lines. It is a locator for messages only, never a parser: a key it cannot place
(a dotted key, an inline table) is reported without a line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["KeyLines", "dotted", "split_dotted"]

_KEY_LINE = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_HEADER_LINE = re.compile(r"\s*\[\[?(.*?)\]\]?\s*(?:#.*)?$")


def dotted(path: Sequence[str]) -> str:
    """A key path as TOML writes it: ``upstream.domains."example.org".server``."""
    return ".".join(part if _BARE_KEY.fullmatch(part) else f'"{part}"' for part in path)


def split_dotted(text: str) -> tuple[str, ...]:
    """``a."b.c".d`` -> ``("a", "b.c", "d")``; quotes removed, whitespace around parts dropped."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for char in text:
        if quote is not None:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return tuple(parts)


class KeyLines:
    """Line numbers (from 1) of table headers and of keys within their tables."""

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER_LINE.match(line)
            if header is not None and not line.lstrip().startswith("#"):
                table = split_dotted(header.group(1))
                self._lines.setdefault(table, number)
                continue
            key = _KEY_LINE.match(line)
            if key is not None:
                name = key.group(1)
                if name[:1] in "\"'":
                    name = name[1:-1]
                self._lines.setdefault((*table, name), number)

    def line(self, path: tuple[str, ...]) -> int | None:
        """The line of ``path`` (a key or a table), else of its nearest enclosing table."""
        for length in range(len(path), 0, -1):
            found = self._lines.get(path[:length])
            if found is not None:
                return found
        return None
