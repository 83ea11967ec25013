"""A car's persistent state: one JSON document per car, replaced atomically.

Why one document: an activation touches several ECUs (features on the T-Box, maps on the head unit,
the counter on the gateway), and the car must come back after a power loss either wholly before or
wholly after it. Keeping every ECU's state in one file and replacing it with
write-temp + fsync + rename + fsync(dir) gives exactly that with the file system's own atomicity:
the rename is the single commit point. Large blobs (received files, staged images) live beside it
and are only *referenced* from the document, so an orphaned blob after a crash is harmless and is
swept on the next load.

Layout under ``<root>/<VIN>/``::

    state.json          the committed state (the only file that decides what the car is)
    state.json.tmp      a commit in progress; discarded on load
    keys/               private keys written at provisioning (0600)
    secure/<ecu>/       each ECU's secure storage: secrets opened at apply (0600), referenced
                        from state.json like slots, so they change with the commit
    files/<ecu>/        files received over 0x34/0x38, ``*.part`` while incomplete
    slots/<ecu>/        images staged for an apply; kept only if state.json references them
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from forecourt.logging import get_logger

_log = get_logger("vehicle.storage")

STATE_FILE = "state.json"
SCHEMA_VERSION = 1


class StateStoreError(Exception):
    """The car's state on disk is missing or unreadable."""


@dataclass
class InstalledImage:
    name: str
    version: int
    sha256: str
    length: int
    slot: str | None = None


@dataclass
class FeatureState:
    feature_id: str
    ecu_address: int
    valid_until: str | None  # ISO 8601 UTC, None = perpetual
    activation_counter: int
    valid_from: str | None = None  # ISO 8601 UTC; the grant's not_before, else the apply time


@dataclass
class EcuRecord:
    address: int
    name: str
    serial_number: str
    hardware_number: str
    software_version: str
    supplier_software_version: str
    spare_part_number: str
    repair_shop_code: str = ""
    images: dict[str, InstalledImage] = field(default_factory=dict)
    certificate_pem: str = ""
    signing_public_key_pem: str = ""
    sealing_public_key: str = ""  # hex, raw X25519
    secure_storage: str | None = None  # file of opened secrets (0600), relative to the store


@dataclass
class DtcRecord:
    code: int  # 3-byte DTC
    status: int  # ISO 14229-1 DTC status byte
    ecu_address: int
    reason: str
    recorded_at: str


@dataclass
class CarState:
    vin: str
    eid: str  # hex, 6 bytes
    gid: str  # hex, 6 bytes
    option_codes: list[str]
    ecus: dict[int, EcuRecord]
    features: list[FeatureState] = field(default_factory=list)
    activation_counter: int = 0
    used_nonces: list[str] = field(default_factory=list)
    dtcs: list[DtcRecord] = field(default_factory=list)
    last_bundle_id: str | None = None
    issued_nonces: list[str] = field(default_factory=list)  # hex, open until used once
    report_counter: int = 0  # version report counter, rises every FD04 cycle (Uptane)
    last_verified_at: str | None = None  # ISO 8601 UTC: the last time metadata verified
    oem_root_pem: str = ""
    oem_chain_pem: str = ""  # issuing CA certificate(s) under the pinned root
    crl_pem: str = ""  # the issuing CA's CRL, when the car holds one
    root_crl_pem: str = ""  # the root's CRL of revoked issuing CAs: the newest one only
    trust_state: dict[str, Any] = field(
        default_factory=dict
    )  # pinned roots etc., see trust_adapter
    generation: int = 0

    def to_json(self) -> bytes:
        doc: dict[str, Any] = asdict(self)
        doc["ecus"] = {f"{a:04X}": asdict(e) for a, e in self.ecus.items()}
        doc["schema"] = SCHEMA_VERSION
        return json.dumps(doc, sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CarState:
        try:
            doc = json.loads(raw)
            if doc.pop("schema", None) != SCHEMA_VERSION:
                raise StateStoreError("unknown state schema")
            ecus = {}
            for key, e in doc.pop("ecus").items():
                images = {n: InstalledImage(**i) for n, i in e.pop("images").items()}
                ecus[int(key, 16)] = EcuRecord(images=images, **e)
            return cls(
                ecus=ecus,
                features=[FeatureState(**f) for f in doc.pop("features")],
                dtcs=[DtcRecord(**d) for d in doc.pop("dtcs")],
                **doc,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise StateStoreError(f"unreadable car state: {exc}") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o644,
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new bytes, never a mix.

    ``before_replace`` runs between the fsynced temp file and the rename (the commit point), so
    tests can cut the power exactly there.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if before_replace is not None:
        before_replace()
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class CarStore:
    """The file store of one car; every mutation of committed state goes through :meth:`commit`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def exists(self) -> bool:
        return self.state_path.is_file()

    def files_dir(self, ecu_address: int) -> Path:
        path = self.directory / "files" / f"{ecu_address:04X}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def slots_dir(self, ecu_address: int) -> Path:
        path = self.directory / "slots" / f"{ecu_address:04X}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def keys_dir(self) -> Path:
        path = self.directory / "keys"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def secure_dir(self, ecu_address: int) -> Path:
        path = self.directory / "secure" / f"{ecu_address:04X}"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def signing_key(self, ecu_address: int) -> Ed25519PrivateKey:
        """The ECU's Ed25519 identity key (signs its version reports)."""
        key = self._private_key(ecu_address, "signing")
        if not isinstance(key, Ed25519PrivateKey):
            raise StateStoreError(f"signing key of ECU {ecu_address:04X} is not Ed25519")
        return key

    def sealing_key(self, ecu_address: int) -> bytes:
        """The ECU's raw X25519 private key (opens secrets sealed to it)."""
        key = self._private_key(ecu_address, "sealing")
        if not isinstance(key, X25519PrivateKey):
            raise StateStoreError(f"sealing key of ECU {ecu_address:04X} is not X25519")
        return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def _private_key(self, ecu_address: int, kind: str) -> object:
        path = self.keys_dir() / f"{ecu_address:04X}-{kind}.pem"
        try:
            return load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise StateStoreError(f"{kind} key of ECU {ecu_address:04X} unreadable") from exc

    def create(self, state: CarState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.commit(state)

    def load(self) -> CarState:
        """Read the committed state and sweep what an interrupted commit or apply left behind."""
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            raise StateStoreError(f"no car provisioned at {self.directory}") from None
        state = CarState.from_json(raw)
        self._sweep(state)
        return state

    def commit(self, state: CarState, before_replace: Callable[[], None] | None = None) -> None:
        state.generation += 1
        write_atomically(
            self.state_path, state.to_json(), mode=0o600, before_replace=before_replace
        )

    def _sweep(self, state: CarState) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / (STATE_FILE + ".tmp")).unlink()
        referenced = {
            img.slot for ecu in state.ecus.values() for img in ecu.images.values() if img.slot
        } | {ecu.secure_storage for ecu in state.ecus.values() if ecu.secure_storage}
        for kind in ("slots", "secure"):
            for path in (self.directory / kind).glob("*/*"):
                rel = path.relative_to(self.directory).as_posix()
                if rel not in referenced:
                    _log.info("orphan_file_removed", path=rel)
                    path.unlink()
