"""The three formats: same figures, nothing personal, standalone HTML, a real PDF."""

from __future__ import annotations

import io
import json
import re

import pytest
from pypdf import PdfReader

from forecourt.edge.transparency import (
    SCHEMA_VERSION,
    TransparencyReport,
    UnknownFormat,
    render,
    render_html,
    render_json,
    render_pdf,
)
from tests.edge.transparency.conftest import CUSTOMERS, REFUSED_VIN, VINS, Seeded
from tests.edge.transparency.test_builder import q1_report


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def personal_strings(seeded: Seeded) -> list[str]:
    """Everything a published report must never contain."""
    return [
        *VINS,
        REFUSED_VIN,
        *CUSTOMERS,
        *(c.split(":", 1)[1] for c in CUSTOMERS),
        *seeded.subject_pseudonyms,
        *seeded.operator_ids,
        *seeded.usernames,
    ]


@pytest.fixture
def report(seeded: Seeded) -> TransparencyReport:
    return q1_report(seeded)


def test_no_vin_customer_or_operator_reaches_any_format(
    seeded: Seeded, report: TransparencyReport
) -> None:
    outputs = {
        "html": render_html(report),
        "json": render_json(report).decode(),
        "pdf": pdf_text(render_pdf(report)),
    }
    for fmt, text in outputs.items():
        for secret in personal_strings(seeded):
            assert secret not in text, f"{secret!r} in the {fmt} report"
    # the PDF bytes too (not only the text a library extracts)
    raw = render_pdf(report)
    for secret in personal_strings(seeded):
        assert secret.encode() not in raw


def test_json_has_the_stable_schema_with_suppressed_cells_marked(
    report: TransparencyReport,
) -> None:
    doc = json.loads(render_json(report))
    assert doc["schema"] == SCHEMA_VERSION
    assert doc["period"] == {"start": "2025-01-01", "end_exclusive": "2025-04-01"}
    assert doc["activations"]["totals"] == {"done": 6, "refused": 2, "failed": 1, "cancelled": 0}
    rows = {r["label"]: r for r in doc["consent"]["by_category"]["rows"]}
    assert rows["location"]["grants"] == {"value": 6, "display": "6", "suppressed": False}
    assert rows["audio_voice"]["refusals"] == {
        "value": None, "display": "< 5", "suppressed": True,
    }  # fmt: skip
    assert doc["k_anonymity"]["k"] == 5
    assert doc["compliance_profile"]["market"] == "EU"
    assert doc["compliance_profile"]["version"] == 7
    checkpoint = doc["ledger_checkpoint"]
    assert checkpoint["covers_period_end"] is True and checkpoint["tree_size"] > 0
    assert render_json(report) == render_json(report)  # byte-stable for the same report


def test_html_is_one_standalone_file_with_svg_charts_and_no_script(
    report: TransparencyReport,
) -> None:
    html = render_html(report)
    assert html.startswith("<!doctype html>")
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html  # CSS is inline
    assert html.count("<svg") == 5
    assert "Consent answers by data category" in html
    assert "&lt; 5" in html  # suppressed cells read "< 5"
    assert report.ledger is not None and report.ledger.root_hash_b64 in html


def test_pdf_is_a_three_page_document_with_the_same_figures(report: TransparencyReport) -> None:
    data = render_pdf(report)
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 3
    first, second, third = (page.extract_text() for page in reader.pages)
    assert "Activations" in first and "done: 6" in first
    assert "Consent answers by data category" in second and "< 5" in second
    assert report.ledger is not None and report.ledger.root_hash_b64 in third


def test_an_unknown_format_is_refused(report: TransparencyReport) -> None:
    with pytest.raises(UnknownFormat, match="csv"):
        render(report, "csv")
