"""Small line charts as inline SVG, drawn on the server: no script library and no CDN.

Each chart is one ``<svg>`` with a ``<title>``, a filled area under a polyline of the series
scaled to its own maximum, and the latest value as text. Every text in it is escaped; the
numbers are formatted by this module, so the markup is safe to insert into the page.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Final

__all__ = ["chart_svg"]

WIDTH: Final = 240
HEIGHT: Final = 64
_PAD: Final = 4


def _number(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def chart_svg(name: str, title: str, values: Sequence[float], unit: str = "") -> str:
    """One chart of ``values`` (oldest first), identified in the page as ``chart-{name}``."""
    top = max((v for v in values), default=0.0)
    scale = max(top, 1.0)
    count = len(values)
    step = (WIDTH - 2 * _PAD) / max(count - 1, 1)
    points = [
        (
            _PAD + index * step,
            HEIGHT - _PAD - (max(value, 0.0) / scale) * (HEIGHT - 2 * _PAD - 14),
        )
        for index, value in enumerate(values)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    area = ""
    if points:
        area = f"{points[0][0]:.1f},{HEIGHT - _PAD} {line} {points[-1][0]:.1f},{HEIGHT - _PAD}"
    latest = _number(values[-1]) if values else "no data"
    label = f"{title}: {latest}{(' ' + unit) if unit and values else ''}"
    safe_name = html.escape(name, quote=True)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-{safe_name}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{html.escape(label, quote=True)}">'
        f"<title>{html.escape(label)}</title>"
        f'<rect class="chart-frame" x="0.5" y="0.5" width="{WIDTH - 1}" height="{HEIGHT - 1}" '
        f'fill="none" stroke="#ccc"/>'
        f'<polygon class="chart-area" points="{area}" fill="#cfe3f7" stroke="none"/>'
        f'<polyline class="chart-line" points="{line}" fill="none" stroke="#1f6fb5" '
        f'stroke-width="1.5"/>'
        f'<text x="{_PAD + 2}" y="14" font-size="11" fill="#222">{html.escape(label)}</text>'
        "</svg>"
    )
