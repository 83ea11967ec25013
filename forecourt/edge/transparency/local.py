"""What the command line needs around a report: the profile file, the edge's own database and
ledger key, and writing the file whole (never half-written).

The console does not use this module: it already holds the edge's sessions, ledger and profile.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from forecourt.core import ComplianceProfile
from forecourt.core.codec import from_dict
from forecourt.edge.transparency.model import ProfileInForce
from forecourt.edge.wiring import LEDGER_KEY_FILE, EdgeSettings, _ledger_signer
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.engine import create_engine_for, session_factory
from forecourt.store.ledger import LedgerCheckpoint

_REQUIRED_TABLES = frozenset(
    {"edge_activation_workflows", "edge_consent_records", "ledger_entries"}
)


class ReportSourceError(ValueError):
    """The profile file or the edge database cannot back a report (says which and why)."""


def load_profile(path: Path) -> ProfileInForce:
    """A profile as the cloud publishes it: ``{"version": n, "profile": {...}}`` (the answer of
    ``GET /v1/compliance-profiles/{market}`` or ``/v1/dealer/compliance-profile``)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportSourceError(f"profile file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ReportSourceError(f"profile file {path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("profile"), dict):
        raise ReportSourceError(f"profile file {path} has no 'profile' object")
    version = doc.get("version")
    if version is not None and not isinstance(version, int):
        raise ReportSourceError(f"profile file {path}: 'version' is not a number")
    try:
        profile = from_dict(ComplianceProfile, doc["profile"])
    except (KeyError, TypeError, ValueError) as exc:  # DomainValueError is a ValueError
        raise ReportSourceError(f"profile file {path} is not a compliance profile: {exc}") from exc
    return ProfileInForce(profile, version)


@contextmanager
def edge_database(
    settings: EdgeSettings,
) -> Iterator[tuple[sessionmaker[Session], TransparencyLog | None]]:
    """The edge's existing database (never created or migrated here) and, when the edge's
    checkpoint key is in its data directory, its ledger (to issue a covering checkpoint)."""
    if settings.database_url is None and not settings.sqlite_path.is_file():
        raise ReportSourceError(f"no edge database at {settings.sqlite_path}")
    url = settings.database_url or f"sqlite:///{settings.sqlite_path.as_posix()}"
    engine = create_engine_for(url)
    try:
        missing = _REQUIRED_TABLES - set(inspect(engine).get_table_names())
        if missing:
            raise ReportSourceError(
                f"{url.split('@')[-1]} is not an edge database (no {', '.join(sorted(missing))})"
            )
        sessions = session_factory(engine)
        log = None
        if (settings.data_dir / LEDGER_KEY_FILE).is_file():
            log = TransparencyLog(
                MerkleLogStore(engine),
                _origin(sessions, settings),
                _ledger_signer(settings.data_dir),
            )
        yield sessions, log
    finally:
        engine.dispose()


def _origin(sessions: sessionmaker[Session], settings: EdgeSettings) -> str:
    """The log's origin as its checkpoints name it (the edge may run under another edge id)."""
    with sessions() as s:
        note = s.execute(
            select(LedgerCheckpoint.note).order_by(LedgerCheckpoint.id.desc()).limit(1)
        ).scalar_one_or_none()
    return note.split("\n", 1)[0] if note else settings.origin


def write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: whole or not at all."""
    directory = path.resolve().parent
    if not directory.is_dir():
        raise ReportSourceError(f"no directory {directory} for {path.name}")
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
