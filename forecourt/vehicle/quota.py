"""How much a tester may make the car store: a per-file bound and a per-car quota.

A RequestFileTransfer (0x38) or RequestDownload (0x34) announces its size before any byte
arrives. The car admits it only if the file fits :attr:`TransferLimits.max_file_bytes` and the
bytes every received or announced file of the car already holds, plus this one, fit
:attr:`TransferLimits.quota_bytes`; otherwise NRC 0x70 (uploadDownloadNotAccepted) and nothing is
written. Without this, an authenticated but hostile tester (or a stolen dealer key) could fill the
gateway's flash with announced 4 GiB files, and every later apply would fail.

A transfer in progress counts at its announced size (its ``.meta``), not at the bytes received
so far, so two half-finished uploads cannot together overrun the quota when they complete. A
file being replaced does not count against its own replacement. Staged and installed images
(``slots/``) are the car's, not the tester's, and are not counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from forecourt.logging import get_logger
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc

_log = get_logger("vehicle.quota")

META, PART = ".meta", ".part"


@dataclass(frozen=True)
class TransferLimits:
    """Bounds on what testers may store on one car (bytes)."""

    max_file_bytes: int = 1024**3  # 1 GiB: the largest image or map one file may carry
    quota_bytes: int = 4 * 1024**3  # 4 GiB: every received file of the car together

    def __post_init__(self) -> None:
        if not 0 < self.max_file_bytes <= self.quota_bytes:
            raise ValueError("need 0 < max_file_bytes <= quota_bytes")


def _announced(meta: Path) -> int:
    try:
        size = json.loads(meta.read_text()).get("size", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return size if isinstance(size, int) and size > 0 else 0


class StorageQuota:
    """The car-wide view over every ECU's received files (``<store>/files/<ecu>/``)."""

    def __init__(self, files_root: Path, limits: TransferLimits | None = None) -> None:
        self.files_root = files_root
        self.limits = limits or TransferLimits()

    def used(self, *, excluding: tuple[Path, str] | None = None) -> int:
        """Bytes held or announced by received files, leaving out file ``excluding``."""
        total = 0
        for entry in self.files_root.glob("*/*"):
            name = entry.name
            if name.endswith(PART) or not entry.is_file():
                continue  # a .part counts at its announced size (.meta); digests are tiny
            base = name.removesuffix(META)
            if excluding is not None and (entry.parent, base) == excluding:
                continue
            total += _announced(entry) if name.endswith(META) else entry.stat().st_size
        return total

    def admit(self, directory: Path, name: str, size: int) -> None:
        """Refuse (0x70) a file of ``size`` bytes for ``directory``/``name`` over the bounds."""
        limit = self.limits.max_file_bytes
        if not 0 < size <= limit:
            self._refuse(name, size, f"file size {size} outside 1..{limit}")
        used = self.used(excluding=(directory, name))
        if used + size > self.limits.quota_bytes:
            self._refuse(
                name,
                size,
                f"file size {size} exceeds the storage quota "
                f"({used} of {self.limits.quota_bytes} bytes in use)",
            )

    @staticmethod
    def _refuse(name: str, size: int, reason: str) -> None:
        _log.warning("file_transfer_refused", file=name, size=size, reason=reason)
        raise NegativeResponse(Nrc.UPLOAD_DOWNLOAD_NOT_ACCEPTED, reason)
