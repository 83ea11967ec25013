"""What a local deployment keeps in its data directory so a second run reuses the first one's.

``state.json`` holds the facts that make the world reproducible (seed, reference time, how many
vehicles were generated, the dealer, the VINs of the fleet, the repository roots' expiry);
``secrets.json`` (mode 0600) holds the demo's generated passwords for the OEM PKI and the role
keys and the cars' factory secret. Both are demo-only conveniences: a real OEM keeps these in an
HSM and a vault, never beside the data.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from forecourt.ledger.checkpoint import SoftwareNoteSigner

STATE_FILE = "state.json"
SECRETS_FILE = "secrets.json"


class DeploymentStateError(Exception):
    """The data directory holds state this version cannot reuse (say ``--fresh``)."""


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only (created 0600, replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    temporary.replace(path)


@dataclass(frozen=True)
class DeploymentState:
    seed: int
    reference_time: datetime
    world_vehicles: int
    dealer_id: str
    vins: tuple[str, ...]
    root_expires: datetime

    def save(self, data_dir: Path) -> None:
        doc = asdict(self)
        doc["reference_time"] = self.reference_time.isoformat()
        doc["root_expires"] = self.root_expires.isoformat()
        doc["vins"] = list(self.vins)
        (data_dir / STATE_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, data_dir: Path) -> DeploymentState | None:
        path = data_dir / STATE_FILE
        if not path.exists():
            return None
        try:
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                seed=int(doc["seed"]),
                reference_time=datetime.fromisoformat(doc["reference_time"]),
                world_vehicles=int(doc["world_vehicles"]),
                dealer_id=str(doc["dealer_id"]),
                vins=tuple(str(v) for v in doc["vins"]),
                root_expires=datetime.fromisoformat(doc["root_expires"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DeploymentStateError(f"{path} is not readable ({exc}); run with --fresh") from exc


@dataclass(frozen=True)
class DeploymentSecrets:
    """Generated once per data directory; ``repr`` never shows them."""

    root_password: bytes
    ca_password: bytes
    keys_password: bytes
    oem_secret: bytes

    def __repr__(self) -> str:
        return "DeploymentSecrets([redacted])"

    @classmethod
    def load_or_create(cls, data_dir: Path) -> DeploymentSecrets:
        path = data_dir / SECRETS_FILE
        if path.exists():
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(*(bytes.fromhex(doc[k]) for k in ("root", "ca", "keys", "oem")))
        made = cls(*(secrets.token_bytes(24) for _ in range(4)))
        doc = {
            "root": made.root_password.hex(),
            "ca": made.ca_password.hex(),
            "keys": made.keys_password.hex(),
            "oem": made.oem_secret.hex(),
        }
        write_private(path, json.dumps(doc).encode())
        return made


def note_signer(path: Path) -> SoftwareNoteSigner:
    """An Ed25519 checkpoint key kept in ``path`` (created on first use, mode 0600)."""
    if path.exists():
        key = load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise DeploymentStateError(f"{path} is not an Ed25519 key")
        return SoftwareNoteSigner(key)
    signer = SoftwareNoteSigner.generate()
    write_private(
        path, signer.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    return signer
