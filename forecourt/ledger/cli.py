"""``forecourt ledger ...``: verify proofs and exports offline, from files alone; export a log.

Every verification exits 0 when it holds and 1 otherwise, printing the reason (and, for a whole
log, the first bad index) on standard error. ``verify history`` is the buyer's and the insurer's
check of a car's whole history as the cloud serves it (``GET /v1/vehicles/{vin}/history``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from forecourt.ledger.audit import audit_log
from forecourt.ledger.checkpoint import NoteVerifier, SignedCheckpoint
from forecourt.ledger.entry import ActivityRecord
from forecourt.ledger.errors import LedgerError, TamperError
from forecourt.ledger.export import read_export, write_export
from forecourt.ledger.merkle import leaf_hash
from forecourt.ledger.repository import MerkleLogStore, leaf_input
from forecourt.ledger.wire import b64d, consistency_from_json, inclusion_from_json
from forecourt.store.engine import create_engine_for

app = typer.Typer(no_args_is_help=True)
verify_app = typer.Typer(no_args_is_help=True)
app.add_typer(
    verify_app, name="verify", help="Verify offline: inclusion, consistency, a whole log."
)

KEY_HELP = "the log's verifier key file (name+hash+base64key)"


def _key(path: Path) -> NoteVerifier:
    return NoteVerifier.from_vkey(path.read_text())


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path} is not a JSON object")
    return data


def _fail(exc: Exception) -> None:
    typer.echo(f"FAILED: {exc}", err=True)
    raise typer.Exit(1)


@verify_app.command("inclusion")
def verify_inclusion_command(
    proof_file: Path = typer.Argument(..., help="JSON: index, tree_size, hashes, payload"),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="signed checkpoint note"),
    key: Path = typer.Option(..., "--key", help=KEY_HELP),
) -> None:
    """An entry's inclusion in the log a signed checkpoint describes."""
    try:
        signed = SignedCheckpoint.open(checkpoint.read_text(), _key(key))
        d = _json(proof_file)
        proof = inclusion_from_json(d)
        if proof.size != signed.checkpoint.size:
            raise LedgerError(
                f"proof is for size {proof.size}, checkpoint is {signed.checkpoint.size}"
            )
        leaf = leaf_hash(leaf_input(proof.index, b64d(d.get("payload"), "payload")))
        proof.verify(leaf, signed.checkpoint.root_hash)
    except (LedgerError, OSError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"OK: entry {proof.index} is in {signed.checkpoint.origin} at size {proof.size}")


@verify_app.command("consistency")
def verify_consistency_command(
    old: Path = typer.Argument(..., help="the earlier signed checkpoint"),
    new: Path = typer.Argument(..., help="the later signed checkpoint"),
    proof_file: Path = typer.Option(..., "--proof", help="JSON: size1, size2, hashes"),
    key: Path = typer.Option(..., "--key", help=KEY_HELP),
) -> None:
    """Two checkpoints of one log: the later extends the earlier (no fork, no rewrite)."""
    try:
        verifier = _key(key)
        a = SignedCheckpoint.open(old.read_text(), verifier).checkpoint
        b = SignedCheckpoint.open(new.read_text(), verifier).checkpoint
        proof = consistency_from_json(_json(proof_file))
        if (proof.size1, proof.size2) != (a.size, b.size):
            raise LedgerError(
                f"proof is for sizes {proof.size1}->{proof.size2}, not {a.size}->{b.size}"
            )
        proof.verify(a.root_hash, b.root_hash)
    except (LedgerError, OSError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"OK: size {b.size} extends size {a.size}")


@verify_app.command("log")
def verify_log_command(
    export: Path = typer.Argument(..., help="export file written by `forecourt ledger export`"),
    key: Path = typer.Option(..., "--key", help=KEY_HELP),
    allow_unanchored: bool = typer.Option(
        False,
        "--allow-unanchored",
        help="exit 0 even when entries after the last signed checkpoint are not covered by one",
    ),
) -> None:
    """A whole exported log against its signed checkpoints; names the first bad index.

    Entries past the last signed checkpoint are consistent with nothing anybody signed: they are
    reported, and the command exits 2 unless ``--allow-unanchored`` (tampering exits 1).
    """
    try:
        verifier = _key(key)
        data = read_export(export)
        checkpoints = [SignedCheckpoint.open(n, verifier) for n in data.checkpoints]
        report = audit_log(data.entries, checkpoints)
    except TamperError as exc:
        typer.echo(f"FAILED: {exc}", err=True)
        typer.echo(f"first bad index: {exc.index}", err=True)
        raise typer.Exit(1) from None
    except (LedgerError, OSError, ValueError) as exc:
        _fail(exc)
    if report.verified_size < report.size:
        typer.echo(
            f"UNANCHORED: {report.size} entries, {report.checkpoints} checkpoints; entries "
            f"[{report.verified_size}, {report.size}) are covered by no signed checkpoint",
            err=True,
        )
        if not allow_unanchored:
            raise typer.Exit(2)
        return
    typer.echo(
        f"OK: {report.size} entries, {report.checkpoints} checkpoints, "
        f"verified up to size {report.verified_size}"
    )


@verify_app.command("history")
def verify_history_command(
    history_file: Path = typer.Argument(
        ..., help="a car's history as the cloud serves it (GET /v1/vehicles/{vin}/history)"
    ),
    key: Path = typer.Option(..., "--key", help=KEY_HELP),
    vin: str = typer.Option(..., "--vin", help="the car the history must be about"),
) -> None:
    """A car's whole history offline: the checkpoint's signature, every record's inclusion, every
    record about VIN, each listed once, in time order; then a table of what happened when
    (activations with the features they enabled, handovers, transfers, services).

    Proves that each record shown is in the cloud's log unchanged, not that none was left out
    (that takes the whole log: ``verify log``). Owners are shown as the commitments the log holds;
    only the seller's salt opens one.
    """
    # Imported here: the ledger's own commands do not load the cloud's lifecycle module.
    from forecourt.cloud.lifecycle.history import verify_history  # noqa: PLC0415

    try:
        document = _json(history_file)
        records = verify_history(document, _key(key), vin)
        indices = [int(item["index"]) for item in document["records"]]
    except (LedgerError, OSError, ValueError) as exc:
        _fail(exc)
    console = Console(highlight=False)
    console.print(history_table(vin, indices, records))
    console.print(
        f"OK: {len(records)} records of {vin} are in {document.get('origin', 'the log')} "
        "at the signed checkpoint (records left out would not show here: verify log proves that)"
    )


def history_table(vin: str, indices: list[int], records: list[ActivityRecord]) -> Table:
    """What happened when, one verified record a row; owners only as their commitments, and the
    features an activation enabled (or a revocation ended)."""
    table = Table(title=f"History of {vin}", title_justify="left")
    columns = ("#", "date (UTC)", "kind", "what", "dealer", "owner (commitment)", "features")
    for column in columns:
        table.add_column(column, no_wrap=column not in ("owner (commitment)", "features"))
    for index, record in zip(indices, records, strict=True):
        owner = record.commitments.get("owner_ref")
        table.add_row(
            str(index),
            record.timestamp.strftime("%Y-%m-%d %H:%M"),
            record.kind.value,
            record.response_status,
            record.dealer_id,
            "-" if owner is None else f"{owner[:16]}…",
            ", ".join(record.features) or "-",
        )
    return table


@app.command("export")
def export_command(
    database: str = typer.Option(..., "--db", help="SQLAlchemy URL of the log's database"),
    origin: str = typer.Option(..., "--origin", help="the log's origin line"),
    out: Path = typer.Option(..., "--out", help="file to write"),
) -> None:
    """Export a whole log (entries and checkpoints) as JSON lines."""
    store = MerkleLogStore(create_engine_for(database))
    with out.open("w", encoding="utf-8") as f:
        n = write_export(store, origin, f)
    typer.echo(f"exported {n} entries to {out}")
