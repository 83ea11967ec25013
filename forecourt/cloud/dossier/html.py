"""The dossier as one standalone HTML page a used-car buyer can open and read.

No script, no external file: the CSS is inline and every value is escaped, so the page shows the
same on any machine and a value from the registry cannot inject markup. The page is a view of
the JSON document (:func:`forecourt.cloud.dossier.document.build_dossier`), never other data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;
padding:0 1rem;color:#1d2329;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:2px solid #d0d7de;padding-bottom:.2rem}
.sub{color:#57606a;margin-top:0}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fbfcfd}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}
dd{margin:0}code{font-size:.8rem;word-break:break-all}.none{color:#57606a;font-style:italic}
.warn{color:#a40e26;font-weight:600}
"""


def _when(text: str) -> str | None:
    """An ISO 8601 instant as a reader writes it (``2026-05-30 14:05 UTC``); ``None`` if
    ``text`` is no instant."""
    if len(text) < 19 or text[10] != "T":
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if instant.tzinfo is None:
        return None
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(value: Any) -> str:
    if isinstance(value, str) and (when := _when(value)) is not None:
        return escape(when)
    if value is None or value == "":
        return '<span class="none">—</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return escape(", ".join(str(v) for v in value)) or '<span class="none">—</span>'
    if isinstance(value, Mapping):
        return escape(", ".join(f"{k}: {v}" for k, v in value.items()))
    text = escape(str(value))
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return f"<code>{text}</code>"  # a SHA-256: monospace, so it can be compared by eye
    return text


def _facts(pairs: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{_text(v)}</dd>" for k, v in pairs)
    return f"<dl>{rows}</dl>"


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    if not rows:
        return '<p class="none">None recorded.</p>'
    head = "".join(f"<th>{escape(title)}</th>" for _key, title in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_text(row.get(key))}</td>" for key, _title in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _timeline_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for event in document["timeline"]:
        ledger = event.get("ledger")
        where = None
        if ledger:
            state = "anchored" if ledger["anchored"] else "not yet anchored"
            where = f"{ledger['origin'] or 'unregistered log'} #{ledger['index']} ({state})"
        rows.append({**event, "kind": str(event["kind"]).replace("_", " "), "ledger": where})
    return rows


def _software_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            **change,
            "from": change["before"].get("software_version"),
            "to": change["after"].get("software_version"),
        }
        for change in document["software_history"]
    ]


def render_html(document: Mapping[str, Any]) -> str:
    """The page for ``document`` (a dossier of ``dossier_version`` 1)."""
    factory, lifecycle = document["factory"], document["lifecycle"]
    dealer = lifecycle["dealer"]
    double_uses = [p for p in document["offline_packages"] if p["double_use"]]
    sections = [
        f"<h1>Vehicle dossier {escape(document['vin'])}</h1>",
        f'<p class="sub">{escape(str(factory["model"]))} {escape(str(factory["model_year"]))}'
        f" · generated {_text(document['generated_at'])} · dossier version "
        f"{escape(str(document['dossier_version']))}</p>",
        "<h2>Factory record</h2>",
        _facts(
            [
                ("Model", factory["model"]),
                ("Model year", factory["model_year"]),
                ("Plant", factory["plant"]),
                ("Build date", factory["build_date"]),
                ("Market", factory["market"]),
                ("Option codes", factory["option_codes"]),
                ("VIN check digit valid", factory["vin_check_digit_valid"]),
                ("Factory record SHA-256", factory["factory_record_sha256"]),
            ]
        ),
        "<h2>Lifecycle</h2>",
        _facts(
            [
                ("State", lifecycle["state"]),
                (
                    "Dealer",
                    None
                    if dealer is None
                    else f"{dealer['dealer_id']} {dealer['name'] or ''}, "
                    f"{dealer['city'] or ''} {dealer['country'] or ''}",
                ),
                ("Ownership reference", lifecycle["owner_ref"]),
                ("Activations signed (counter)", lifecycle["activation_counter"]),
                ("Offline packages issued (counter)", lifecycle["offline_counter"]),
            ]
        ),
        "<h2>Timeline</h2>",
        _table(
            _timeline_rows(document),
            [("at", "When"), ("kind", "What"), ("summary", "Detail"), ("ledger", "Ledger")],
        ),
        "<h2>Control units</h2>",
        _table(
            document["ecus"],
            [
                ("role", "Role"),
                ("serial", "Serial"),
                ("hardware_number", "Hardware"),
                ("software_version", "Software"),
                ("signing_key_sha256", "Signing key SHA-256"),
            ],
        ),
        "<h2>Features and rights</h2>",
        _table(
            document["entitlements"],
            [
                ("feature", "Feature"),
                ("source", "Source"),
                ("valid_from", "From"),
                ("valid_until", "Until"),
                ("status", "Status"),
            ],
        ),
        "<h2>Activations</h2>",
        _table(
            document["activations"],
            [
                ("created_at", "Requested"),
                ("dealer_id", "Dealer"),
                ("status", "Status"),
                ("activation_counter", "Counter"),
                ("features", "Features"),
                ("refusal_codes", "Refused for"),
                ("bundle_sha256", "Bundle SHA-256"),
                ("ledger_index", "Ledger #"),
            ],
        ),
        "<h2>Offline packages</h2>",
        (
            f'<p class="warn">{len(double_uses)} offline package(s) used more than once.</p>'
            if double_uses
            else ""
        ),
        _table(
            document["offline_packages"],
            [
                ("issued_at", "Issued"),
                ("dealer_id", "Dealer"),
                ("counter", "Counter"),
                ("used_at", "Used"),
                ("use_count", "Uses"),
                ("bundle_sha256", "Bundle SHA-256"),
            ],
        ),
        "<h2>Software history (UNECE R156)</h2>",
        _table(
            _software_rows(document),
            [
                ("changed_at", "When"),
                ("ecu_serial", "ECU"),
                ("from", "Before"),
                ("to", "After"),
                ("dealer_id", "Dealer"),
                ("offline", "Offline"),
            ],
        ),
        "<h2>Privacy choices</h2>",
        _table(
            document["consent_records"],
            [
                ("captured_at", "When"),
                ("category", "Category"),
                ("choice", "Choice"),
                ("notice_version", "Notice version"),
                ("region", "Region"),
                ("propagation", "Reached"),
            ],
        ),
        "<h2>Ledger</h2>",
        "<p>Workflow steps carry the index of their entry in the dealer edge's tamper-evident "
        "log. An entry marked anchored is covered by a checkpoint the carmaker's log of logs "
        "holds; ask for its inclusion proof to check it independently.</p>",
        _table(
            document["ledger"]["logs"],
            [("origin", "Log"), ("anchored_size", "Entries anchored")],
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Vehicle dossier {escape(document['vin'])}</title>"
        f"<style>{_CSS}</style></head><body>" + "\n".join(sections) + "</body></html>\n"
    )
