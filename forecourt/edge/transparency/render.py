"""A report as JSON (machine-readable), as one standalone HTML file, and as PDF.

All three show the same :class:`~forecourt.edge.transparency.model.TransparencyReport` and
nothing else, so the publishing rules of :mod:`.model` hold for every format.

* JSON: a stable schema named by ``schema`` (:data:`~.model.SCHEMA_VERSION`); every count cell
  is ``{"value", "display", "suppressed"}`` with ``value`` null when suppressed; keys sorted.
* HTML: one file, inline CSS, charts as inline SVG (:mod:`.charts`); no script, no external
  reference (a published report must open offline and track nobody).
* PDF: reportlab, the same charts drawn from the same shapes; fixed sections: page 1 overview
  and activations, page 2 consent and data processing, page 3 operators, reviews, anomalies and
  the ledger checkpoint (longer tables continue on further pages).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from html import escape
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from forecourt.edge.transparency.charts import Chart, Line, Rect, Text, report_charts, to_svg
from forecourt.edge.transparency.model import (
    SCHEMA_VERSION,
    SUPPRESSED_TEXT,
    Table,
    TransparencyReport,
)

FORMATS = ("html", "json", "pdf")
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
}


class UnknownFormat(ValueError):
    """A report format other than html, json or pdf."""


def render(report: TransparencyReport, fmt: str) -> bytes:
    """The report in ``fmt`` (one of :data:`FORMATS`) as the bytes of a file."""
    if fmt == "json":
        return render_json(report)
    if fmt == "html":
        return render_html(report).encode("utf-8")
    if fmt == "pdf":
        return render_pdf(report)
    raise UnknownFormat(f"unknown report format {fmt!r} (one of {', '.join(FORMATS)})")


def file_name(report: TransparencyReport, fmt: str) -> str:
    p = report.period
    return f"transparency-{report.dealer_id}-{p.start.isoformat()}-{p.end.isoformat()}.{fmt}"


# -- JSON ----------------------------------------------------------------------------------------


def to_json(report: TransparencyReport) -> dict[str, Any]:
    profile, ledger = report.profile, report.ledger
    return {
        "schema": SCHEMA_VERSION,
        "dealer_id": report.dealer_id,
        "period": {
            "start": report.period.start.isoformat(),
            "end_exclusive": report.period.end.isoformat(),
        },
        "generated_at": report.generated_at.isoformat(),
        "k_anonymity": {"k": report.k_anonymity, "suppressed_display": SUPPRESSED_TEXT},
        "activations": {
            "totals": dict(report.activation_totals),
            "refusals_by_reason": report.refusals.to_json(),
            "features_enabled": report.features.to_json(),
        },
        "consent": {
            "by_category": report.consent.to_json(),
            "withdrawal_propagation": report.withdrawal_propagation.to_json(),
            "cross_border": report.cross_border.to_json(),
        },
        "compliance_profile": {
            "market": profile.market,
            "residency": profile.residency,
            "version": profile.version,
            "notice_version": profile.notice_version,
            "notice_versions_answered": list(profile.notice_versions_answered),
            "retention_days": profile.retention_days,
            "cross_border_mode": profile.cross_border_mode,
            "data_categories": [
                {
                    "category": c.category,
                    "mode": c.mode,
                    "processed": c.processed,
                    "default_on": c.default_on,
                    "separate_consent": c.separate_consent,
                    "purpose": c.purpose,
                }
                for c in profile.categories
            ],
        },
        "operators": report.operators.to_json(),
        "reviews": {
            "requested_by_kind": report.reviews_requested.to_json(),
            "decided": dict(report.reviews_decided),
        },
        "anomalies": report.anomalies.to_json(),
        "ledger_checkpoint": None
        if ledger is None
        else {
            "origin": ledger.origin,
            "tree_size": ledger.tree_size,
            "root_hash": ledger.root_hash_b64,
            "issued_at": ledger.issued_at.isoformat(),
            "covers_period_end": ledger.covers_period_end,
            "signed_note": ledger.signed_note,
        },
    }


def render_json(report: TransparencyReport) -> bytes:
    return (
        json.dumps(to_json(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()


# -- HTML ----------------------------------------------------------------------------------------

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:60rem;margin:2rem auto;
padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#666;font-size:.9rem}
.totals{display:flex;gap:1rem;flex-wrap:wrap}.totals div{border:1px solid #ccc;padding:.5rem 1rem}
.totals strong{display:block;font-size:1.4rem}pre{background:#f5f5f5;padding:.5rem;overflow-x:auto}
.warn{color:#a40}figure{margin:.5rem 0}
"""


def _table_html(table: Table) -> str:
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in table.columns)
    if table.rows:
        body = "".join(
            f'<tr><th scope="row">{escape(r.label)}</th>'
            + "".join(f'<td class="n">{escape(c.display)}</td>' for c in r.cells)
            + "</tr>"
            for r in table.rows
        )
    else:
        span = len(table.columns) + 1
        body = f'<tr><td colspan="{span}" class="muted">none in this period</td></tr>'
    note = f'<p class="muted">{escape(table.note)}</p>' if table.note else ""
    return (
        f"<h3>{escape(table.title)}</h3><table><thead><tr><th></th>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>{note}"
    )


def _figure(chart: Chart) -> str:
    caption = f'<figcaption class="muted">{escape(chart.title)}</figcaption>'
    return f"<figure>{to_svg(chart)}{caption}</figure>"


def render_html(report: TransparencyReport) -> str:
    """One standalone HTML document (inline CSS and SVG; no script, no external reference)."""
    charts = report_charts(report)
    p, prof, ledger = report.period, report.profile, report.ledger
    totals = "".join(
        f"<div>{escape(k)}<strong>{v}</strong></div>" for k, v in report.activation_totals.items()
    )
    categories = "".join(
        f'<tr><th scope="row">{escape(c.category)}</th><td>{escape(c.mode)}</td>'
        f"<td>{'yes' if c.processed else 'no'}</td><td>{escape(c.purpose)}</td></tr>"
        for c in prof.categories
    )
    decided = "".join(
        f'<tr><th scope="row">{escape(k)}</th><td class="n">{v}</td></tr>'
        for k, v in report.reviews_decided.items()
    )
    if ledger is None:
        ledger_html = '<p class="warn">The ledger has no signed checkpoint yet.</p>'
    else:
        cover = (
            "issued after the period ended: every entry of the period is in its tree."
            if ledger.covers_period_end
            else "the newest checkpoint, issued before the period ended: later entries are not "
            "yet covered."
        )
        ledger_html = (
            f"<p>Log <code>{escape(ledger.origin)}</code>, tree size <strong>{ledger.tree_size}"
            f"</strong>, root hash <code>{escape(ledger.root_hash_b64)}</code>, issued "
            f"{escape(ledger.issued_at.isoformat())}: {escape(cover)}</p>"
            f'<p class="muted">Verify with the edge\'s published key (forecourt ledger '
            f"verify-log); the signed checkpoint:</p><pre>{escape(ledger.signed_note)}</pre>"
        )
    version = "not recorded" if prof.version is None else str(prof.version)
    answered = ", ".join(prof.notice_versions_answered) or "none"
    return "".join(
        (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            f"<title>Transparency report {escape(report.dealer_id)} {escape(p.label)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>Transparency report</h1><p>Dealer <strong>{escape(report.dealer_id)}</strong>"
            f" · period {escape(p.label)} (UTC) · generated "
            f"{escape(report.generated_at.isoformat(timespec='seconds'))}</p>",
            f'<p class="muted">Aggregates only. Cells counting 1 to {report.k_anonymity - 1} '
            f"read “{escape(SUPPRESSED_TEXT)}” (k-anonymity, k = {report.k_anonymity}); "
            "a second cell is hidden where a total would reveal one.</p>",
            f'<h2>Activations</h2><div class="totals">{totals}</div>',
            _figure(charts["activations"]),
            _table_html(report.refusals),
            _figure(charts["refusals"]),
            _table_html(report.features),
            _figure(charts["features"]),
            "<h2>Consent</h2>",
            _table_html(report.consent),
            _figure(charts["consent"]),
            _table_html(report.withdrawal_propagation),
            _table_html(report.cross_border),
            "<h2>Compliance profile and data processed</h2>",
            f"<p>Market <strong>{escape(prof.market)}</strong>, data residency "
            f"<strong>{escape(prof.residency)}</strong>, profile version {escape(version)}, "
            f"privacy notice {escape(prof.notice_version)} (answered in the period: "
            f"{escape(answered)}), retention {prof.retention_days} days, cross-border transfer "
            f"{escape(prof.cross_border_mode)}.</p>",
            '<table><thead><tr><th scope="col">data category</th><th scope="col">rule</th>'
            '<th scope="col">processed</th><th scope="col">why</th></tr></thead>'
            f"<tbody>{categories}</tbody></table>",
            "<h2>Operators and dual reviews</h2>",
            _table_html(report.operators),
            _figure(charts["operators"]),
            _table_html(report.reviews_requested),
            "<h3>Dual reviews decided</h3><table><tbody>" + decided + "</tbody></table>",
            "<h2>Anomaly warnings</h2>",
            _table_html(report.anomalies),
            "<h2>Ledger checkpoint</h2>",
            ledger_html,
            "</body></html>\n",
        )
    )


# -- PDF -----------------------------------------------------------------------------------------

_PAGE_W, _PAGE_H = A4
_MARGIN = 50.0


class _Pages:
    """A top-down writer over a reportlab canvas: text lines, tables and charts, page breaks."""

    def __init__(self, canvas: Canvas, footer: str) -> None:
        self.c = canvas
        self.footer = footer
        self.y = _PAGE_H - _MARGIN
        self.pages = 1

    def new_page(self) -> None:
        self._footer()
        self.c.showPage()
        self.pages += 1
        self.y = _PAGE_H - _MARGIN

    def _footer(self) -> None:
        self.c.setFont("Helvetica", 8)
        self.c.setFillColor("#666666")
        self.c.drawString(_MARGIN, 25, f"{self.footer} · page {self.pages}")
        self.c.setFillColor("#222222")

    def finish(self) -> None:
        self._footer()
        self.c.showPage()

    def room(self, height: float) -> None:
        if self.y - height < _MARGIN:
            self.new_page()

    def heading(self, text: str, size: float = 14) -> None:
        self.room(size + 24)
        self.y -= size + 8
        self.c.setFont("Helvetica-Bold", size)
        self.c.drawString(_MARGIN, self.y, text)
        self.y -= 6

    def lines(self, texts: Iterable[str], size: float = 9, font: str = "Helvetica") -> None:
        for text in texts:
            for part in _wrap(text, 105 if size <= 9 else 90):
                self.room(size + 4)
                self.y -= size + 3
                self.c.setFont(font, size)
                self.c.drawString(_MARGIN, self.y, part)

    def table(self, table: Table) -> None:
        self.heading(table.title, 11)
        widths = [170.0] + [max(60.0, 325.0 / max(1, len(table.columns)))] * len(table.columns)
        rows = [("", *table.columns)]
        rows += [(r.label, *(c.display for c in r.cells)) for r in table.rows]
        if not table.rows:
            rows.append(("none in this period", *("" for _ in table.columns)))
        for i, row in enumerate(rows):
            self.room(14)
            self.y -= 13
            x = _MARGIN
            self.c.setFont("Helvetica-Bold" if i == 0 else "Helvetica", 8.5)
            for j, (value, w) in enumerate(zip(row, widths, strict=True)):
                if j == 0:
                    self.c.drawString(x, self.y, value[:40])
                else:
                    self.c.drawRightString(x + w - 4, self.y, value[:22])
                x += w
        if table.note:
            self.lines([table.note], 8)

    def chart(self, chart: Chart) -> None:
        self.room(chart.height + 8)
        top = self.y - 4
        c = self.c
        for shape in chart.shapes:
            if isinstance(shape, Rect):
                c.setFillColor(shape.fill)
                c.rect(
                    _MARGIN + shape.x, top - shape.y - shape.height, shape.width, shape.height,
                    stroke=0, fill=1,
                )  # fmt: skip
            elif isinstance(shape, Line):
                c.setStrokeColor(shape.stroke)
                c.line(_MARGIN + shape.x1, top - shape.y1, _MARGIN + shape.x2, top - shape.y2)
            elif isinstance(shape, Text):
                c.setFillColor(shape.fill)
                c.setFont("Helvetica", shape.size)
                draw = {
                    "start": c.drawString, "middle": c.drawCentredString, "end": c.drawRightString
                }[shape.anchor]  # fmt: skip
                draw(_MARGIN + shape.x, top - shape.y, shape.text)
        c.setFillColor("#222222")
        self.y = top - chart.height - 4


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            if line and len(line) + 1 + len(word) > width:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
    return out


def render_pdf(report: TransparencyReport) -> bytes:
    """The report as an A4 PDF (three sections, each starting on a new page)."""
    buffer = io.BytesIO()
    p, prof, ledger = report.period, report.profile, report.ledger
    canvas = Canvas(buffer, pagesize=A4, invariant=True, pageCompression=1)
    canvas.setTitle(f"Transparency report {report.dealer_id} {p.label}")
    canvas.setAuthor(report.dealer_id)
    charts = report_charts(report)
    out = _Pages(canvas, f"Transparency report {report.dealer_id} · {p.label}")
    out.heading("Transparency report", 18)
    out.lines(
        [
            f"Dealer {report.dealer_id} · period {p.label} (UTC) · generated "
            f"{report.generated_at.isoformat(timespec='seconds')}",
            f"Aggregates only. Cells counting 1 to {report.k_anonymity - 1} read "
            f"'{SUPPRESSED_TEXT}' (k-anonymity, k = {report.k_anonymity}); a second cell is "
            "hidden where a total would reveal one.",
        ]
    )
    out.heading("Activations")
    out.lines(["   ".join(f"{k}: {v}" for k, v in report.activation_totals.items())], 11)
    out.chart(charts["activations"])
    out.table(report.refusals)
    out.chart(charts["refusals"])
    out.table(report.features)
    out.chart(charts["features"])

    out.new_page()
    out.heading("Consent")
    out.table(report.consent)
    out.chart(charts["consent"])
    out.table(report.withdrawal_propagation)
    out.table(report.cross_border)
    out.heading("Compliance profile and data processed")
    version = "not recorded" if prof.version is None else str(prof.version)
    out.lines(
        [
            f"Market {prof.market}, data residency {prof.residency}, profile version {version}, "
            f"privacy notice {prof.notice_version}, retention {prof.retention_days} days, "
            f"cross-border transfer {prof.cross_border_mode}."
        ]
    )
    out.lines(
        [
            f"{c.category}: {c.mode}{'' if c.processed else ' (not processed)'} - {c.purpose}"
            for c in prof.categories
        ],
        8.5,
    )

    out.new_page()
    out.heading("Operators and dual reviews")
    out.table(report.operators)
    out.chart(charts["operators"])
    out.table(report.reviews_requested)
    out.lines(["Decided: " + ", ".join(f"{k} {v}" for k, v in report.reviews_decided.items())])
    out.heading("Anomaly warnings")
    out.table(report.anomalies)
    out.heading("Ledger checkpoint")
    if ledger is None:
        out.lines(["The ledger has no signed checkpoint yet."])
    else:
        out.lines(
            [
                f"Log {ledger.origin}, tree size {ledger.tree_size}, issued "
                f"{ledger.issued_at.isoformat(timespec='seconds')}"
                + (
                    " (after the period ended: every entry of the period is in its tree)."
                    if ledger.covers_period_end
                    else " (before the period ended: later entries are not yet covered)."
                ),
                f"Root hash {ledger.root_hash_b64}",
                "Signed checkpoint:",
            ]
        )
        out.lines(ledger.signed_note.strip().split("\n"), 8, "Courier")
    out.finish()
    canvas.save()
    return buffer.getvalue()
