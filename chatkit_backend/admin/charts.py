"""Bar charts as SVG geometry, drawn by our own code: the template turns these into <rect> elements."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT, TOP, BOTTOM = 720, 200, 24, 28


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    key: str
    title: str
    total: int
    peak: int
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - BOTTOM


def bar_chart(key: str, title: str, labels: list[str], values: list[int]) -> BarChart:
    """One bar per bucket, scaled to the largest value."""
    peak = max(values, default=0)
    slot = WIDTH / max(len(values), 1)
    usable = HEIGHT - TOP - BOTTOM
    bars = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = usable * value / peak if peak else 0.0
        bars.append(
            Bar(
                label,
                value,
                round(index * slot + slot * 0.1, 2),
                round(TOP + usable - height, 2),
                round(slot * 0.8, 2),
                round(height, 2),
            )
        )
    return BarChart(key=key, title=title, total=sum(values), peak=peak, bars=bars)
