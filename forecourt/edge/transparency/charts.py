"""Bar charts of a report, laid out once as shapes that both SVG (HTML) and PDF draw.

:func:`bar_chart` turns a :class:`~forecourt.edge.transparency.model.Table` column (or several,
side by side) into rectangles, lines and labels in a top-left coordinate space; :func:`to_svg`
writes them as an inline SVG element, and the PDF renderer draws the same shapes with reportlab.
One layout for both formats is why a chart reads the same on screen and on paper.

A suppressed cell (``"< 5"``) draws no bar: its label says ``< 5`` where the value would be, so a
chart never shows more than its table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from forecourt.edge.transparency.model import Cell, Table, TransparencyReport

#: Series colours (colour-blind safe: Okabe–Ito blue, orange, bluish green).
PALETTE: Final = ("#0072B2", "#E69F00", "#009E73")
INK: Final = "#222222"
GRID: Final = "#CCCCCC"


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float
    text: str
    size: float = 10.0
    anchor: str = "start"  # start, middle, end
    fill: str = INK


Shape = Rect | Line | Text


@dataclass(frozen=True, slots=True)
class Chart:
    """Shapes within ``width`` × ``height`` points, origin top left, y downwards."""

    title: str
    width: float
    height: float
    shapes: tuple[Shape, ...]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    cells: tuple[Cell, ...]


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: float = 480.0,
    bar: float = 12.0,
) -> Chart:
    """Horizontal bars, one group per label, one bar per series; scaled to the largest value."""
    label_w, value_w, top, gap = 170.0, 40.0, 26.0 if len(series) > 1 else 8.0, 8.0
    group_h = bar * len(series) + gap
    height = top + max(1, len(labels)) * group_h + 4
    plot_w = width - label_w - value_w
    largest = max((c.value for s in series for c in s.cells if c.value is not None), default=0)
    shapes: list[Shape] = []
    if len(series) > 1:
        x = label_w
        for i, s in enumerate(series):
            shapes.append(Rect(x, 4, 10, 10, PALETTE[i % len(PALETTE)]))
            shapes.append(Text(x + 14, 13, s.name, 9))
            x += 24 + 6 * len(s.name)
    shapes.append(Line(label_w, top - 2, label_w, height - 2, GRID))
    if not labels:
        shapes.append(Text(label_w + 6, top + bar, "nothing in this period", 9, fill="#666666"))
    for row, label in enumerate(labels):
        y0 = top + row * group_h
        shapes.append(Text(label_w - 6, y0 + bar * len(series) / 2 + 4, label, 9, "end"))
        for i, s in enumerate(series):
            cell = s.cells[row]
            y = y0 + i * bar
            length = 0.0 if not largest or cell.value is None else plot_w * cell.value / largest
            if length > 0:
                shapes.append(Rect(label_w, y + 1, length, bar - 2, PALETTE[i % len(PALETTE)]))
            shapes.append(Text(label_w + length + 4, y + bar - 3, cell.display, 9))
    return Chart(title, width, height, tuple(shapes))


def to_svg(chart: Chart) -> str:
    """An inline ``<svg>`` (no script, no external reference), titled for screen readers."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{chart.width:g}" '
        f'height="{chart.height:g}" viewBox="0 0 {chart.width:g} {chart.height:g}">',
        f"<title>{escape(chart.title)}</title>",
    ]
    for shape in chart.shapes:
        if isinstance(shape, Rect):
            parts.append(
                f'<rect x="{shape.x:.1f}" y="{shape.y:.1f}" width="{shape.width:.1f}" '
                f'height="{shape.height:.1f}" fill="{shape.fill}"/>'
            )
        elif isinstance(shape, Line):
            parts.append(
                f'<line x1="{shape.x1:.1f}" y1="{shape.y1:.1f}" x2="{shape.x2:.1f}" '
                f'y2="{shape.y2:.1f}" stroke="{shape.stroke}"/>'
            )
        else:
            parts.append(
                f'<text x="{shape.x:.1f}" y="{shape.y:.1f}" font-size="{shape.size:g}" '
                f'text-anchor="{shape.anchor}" fill="{shape.fill}" '
                f'font-family="Helvetica, Arial, sans-serif">{escape(shape.text)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def report_charts(report: TransparencyReport) -> dict[str, Chart]:
    """The charts every format shows, keyed by the section they illustrate."""
    totals = report.activation_totals
    consent, operators = report.consent, report.operators
    return {
        "activations": bar_chart(
            "Activations by outcome",
            list(totals),
            [Series("activations", tuple(Cell(v) for v in totals.values()))],
        ),
        "refusals": _one_column(report.refusals, "Refused activations by reason"),
        "features": _one_column(report.features, "Features enabled"),
        "consent": bar_chart(
            "Consent answers by data category",
            [r.label for r in consent.rows],
            [
                Series(name, tuple(r.cells[i] for r in consent.rows))
                for i, name in enumerate(consent.columns)
            ],
        ),
        "operators": bar_chart(
            "Operator activity by role",
            [r.label for r in operators.rows],
            [
                Series(operators.columns[i], tuple(r.cells[i] for r in operators.rows))
                for i in (0, 1, 4)
            ],
        ),
    }


def _one_column(table: Table, title: str) -> Chart:
    return bar_chart(
        title,
        [r.label for r in table.rows],
        [Series(table.columns[0], tuple(r.cells[0] for r in table.rows))],
    )
