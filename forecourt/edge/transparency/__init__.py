"""Periodic transparency reports of one store: what was activated, consented to, withdrawn and
reviewed, by whom (counts per role only), under which compliance profile, backed by a ledger
checkpoint.

:mod:`.model` holds the period, the facts and the pure :func:`build_report` with the publishing
rules (aggregates only, k-anonymity); :class:`TransparencyRepository` reads the edge database;
:mod:`.render` writes JSON, standalone HTML (inline SVG charts) and PDF;
:class:`TransparencyReports` ties them together for the command line and the console.
Operators' guide: docs/operations.md, "Transparency reports".
"""

from forecourt.edge.transparency.model import (
    K_ANONYMITY,
    SCHEMA_VERSION,
    SUPPRESSED_TEXT,
    Cell,
    Period,
    PeriodError,
    PeriodFacts,
    ProfileInForce,
    TransparencyReport,
    build_report,
    last_full_quarter,
    suppress,
)
from forecourt.edge.transparency.render import (
    FORMATS,
    MEDIA_TYPES,
    UnknownFormat,
    file_name,
    render,
    render_html,
    render_json,
    render_pdf,
    to_json,
)
from forecourt.edge.transparency.repository import TransparencyRepository
from forecourt.edge.transparency.service import TransparencyReports

__all__ = [
    "FORMATS",
    "K_ANONYMITY",
    "MEDIA_TYPES",
    "SCHEMA_VERSION",
    "SUPPRESSED_TEXT",
    "Cell",
    "Period",
    "PeriodError",
    "PeriodFacts",
    "ProfileInForce",
    "TransparencyReport",
    "TransparencyReports",
    "TransparencyRepository",
    "UnknownFormat",
    "build_report",
    "file_name",
    "last_full_quarter",
    "render",
    "render_html",
    "render_json",
    "render_pdf",
    "suppress",
    "to_json",
]
