"""An ECU's secure storage: the secrets opened at apply, on disk beside the committed state.

Why a file per apply rather than a field of ``state.json``: the state document is read by
diagnostics and copied around in tests; secrets are not. Each apply writes a new file (0600,
fsynced) holding the ECU's whole set of secrets, and the new state references it; the previous
file becomes an orphan swept at the next load (see :mod:`forecourt.vehicle.storage`). So secrets
change exactly with the commit, all ECUs together, and a power cut leaves the old set.
Values are never logged; only names are.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path


class SecureStorageError(Exception):
    """An ECU's secure storage file is unreadable (corrupt or removed behind the car's back)."""


def write_secrets(path: Path, secrets: Mapping[str, bytes]) -> None:
    """Write ``secrets`` to a new file readable by the car's user only, fsynced."""
    doc = {name: base64.b64encode(value).decode() for name, value in sorted(secrets.items())}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, json.dumps(doc, sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secrets(path: Path | None) -> dict[str, bytes]:
    if path is None:
        return {}
    try:
        doc = json.loads(path.read_bytes())
        return {str(name): base64.b64decode(value, validate=True) for name, value in doc.items()}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise SecureStorageError(f"secure storage {path.name} unreadable") from exc
