"""Small bar charts drawn on the server as inline SVG (no JavaScript chart library).

The SVG uses classes for colours (app.css) and presentation attributes only, so it works
under `Content-Security-Policy: default-src 'self'` (no inline styles, no scripts). Every
text is escaped; each bar carries a `<title>` so hovering shows its value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 600
HEIGHT = 230
PAD_LEFT = 50
PAD_RIGHT = 8
PAD_TOP = 12
PAD_BOTTOM = 40


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]
    css_class: str  # e.g. "s-started"; colours live in app.css


def nice_step(value: float) -> int:
    """The smallest 1/2/5 x 10^n at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 < value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    label_every: int = 1,
    value_format: Callable[[int], str] = str,
    axis_format: Callable[[int], str] | None = None,
    min_step: int = 1,
) -> Markup:
    """Grouped bars: one group per label, one bar per series. `min_step` is the smallest
    grid step (100 for cents shown as whole units, so no axis reads 0 0 0 0 0)."""
    if any(len(s.values) != len(labels) for s in series):
        raise ValueError("every series needs one value per label")
    axis_format = axis_format or value_format
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    # Four grid steps of a round size, so every axis label is a round number.
    step = max(nice_step(max([0, *[v for s in series for v in s.values]]) / 4), min_step)
    top = step * 4
    groups = max(len(labels), 1)
    group_w = plot_w / groups
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)

    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    parts += _grid(step, plot_h, axis_format)
    for gi, label in enumerate(labels):
        x0 = PAD_LEFT + gi * group_w + group_w * 0.1
        for si, s in enumerate(series):
            value = s.values[gi]
            h = plot_h * value / top if top else 0
            if value and h < 1:
                h = 1.0
            x = x0 + si * bar_w
            y = PAD_TOP + plot_h - h
            parts.append(
                f'<rect class="{escape(s.css_class)}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{max(bar_w - 0.6, 0.6):.1f}" height="{h:.1f}">'
                f"<title>{escape(label)}: {escape(s.name)} {escape(value_format(value))}"
                "</title></rect>"
            )
        if gi % max(label_every, 1) == 0:
            cx = PAD_LEFT + gi * group_w + group_w / 2
            parts.append(
                f'<text x="{cx:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append(
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" '
        f'x2="{WIDTH - PAD_RIGHT}" y2="{PAD_TOP + plot_h}"/>'
    )
    parts += _legend(series)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped above)


def _grid(step: int, plot_h: float, axis_format: Callable[[int], str]) -> list[str]:
    """Five grid lines, each with its value at the left."""
    parts: list[str] = []
    for i in range(5):
        value = step * i
        y = PAD_TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH - PAD_RIGHT}" '
            f'y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text x="{PAD_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">'
            f"{escape(axis_format(value))}</text>"
        )
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    """One swatch and name per series, along the bottom edge."""
    parts: list[str] = []
    legend_x = PAD_LEFT
    for s in series:
        parts.append(
            f'<rect class="{escape(s.css_class)}" x="{legend_x}" y="{HEIGHT - 13}" '
            'width="11" height="11"/>'
        )
        parts.append(f'<text x="{legend_x + 15}" y="{HEIGHT - 3}">{escape(s.name)}</text>')
        legend_x += 15 + 8 * len(s.name) + 20
    return parts
