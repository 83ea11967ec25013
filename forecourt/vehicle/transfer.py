"""Reception of files and downloads: 0x34 / 0x38 (incl. ResumeFile) -> 0x36 ... -> 0x37.

A partially received file is kept on disk (``<name>.part`` + ``<name>.meta``) so that after a
dropped connection, a restarted tester or a restarted car, 0x38 ResumeFile (mode 0x06) answers the
filePosition of the last byte confirmed by a positive 0x36 response, and the tester continues from
there. Each block is written and ``fdatasync``-ed before the positive response is sent, so
"confirmed" means on stable storage: after a power cut or an OS crash the resume position is
exact to the block. The SHA-256 the 0x37 response carries is computed incrementally as blocks
arrive (the file is re-read only once, when a transfer resumes) and kept beside the file
(``.sha256/<name>``, a directory no tester file name can reach), so :meth:`FileReceiver.completed`
answers with a ``stat`` instead of hashing the whole file on every call.

Before anything is stored, the announced size must fit the car's per-file bound and storage quota
(:mod:`forecourt.vehicle.quota`, NRC 0x70).

Block sequence counter (ISO 14229-1 §14.5): starts at 1 after 0x34/0x38, wraps 0xFF -> 0x00; a
repetition of the last block is acknowledged again without writing; anything else is NRC 0x73.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecourt.vehicle.quota import StorageQuota
from forecourt.vehicle.storage import write_atomically
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc

MAX_BLOCK_LENGTH = 1024 * 1024 + 2  # maxNumberOfBlockLength: SID + counter + 1 MiB of data
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

ADD_FILE = 0x01
DELETE_FILE = 0x02
REPLACE_FILE = 0x03
READ_FILE = 0x04
READ_DIR = 0x05
RESUME_FILE = 0x06

_BAD_FORMAT = Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT


def _file_name(path: str) -> str:
    """Map a tester path to a flat, safe file name (no traversal, no hidden files)."""
    name = path.strip("/").replace("/", "_")
    if not _SAFE_NAME.match(name) or ".." in name:
        raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, f"file path {path!r}")
    return name


DIGESTS = ".sha256"  # per-directory folder of each complete file's SHA-256 (hex)


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    """A completely received file; ``sha256`` is the digest computed as its blocks arrived."""

    name: str
    path: Path
    length: int
    sha256: str


@dataclass
class _Active:
    name: str
    size: int
    position: int
    counter: int  # last accepted block sequence counter (0 before the first block)
    fd: int  # the .part file, open for the whole transfer
    digest: Any  # hashlib SHA-256 over the bytes written so far (no re-read at 0x37)
    complete: bool = False  # ResumeFile of a file already fully received: nothing to write


@dataclass(frozen=True, slots=True)
class _Fixed:
    """The digest of a file already received (``hashlib``'s ``digest()`` shape)."""

    hex_digest: str

    def digest(self) -> bytes:
        return bytes.fromhex(self.hex_digest)


class FileReceiver:
    """One tester's transfer state over the ECU's directory of received files.

    Every tester connection has its own receiver; ``in_progress`` (shared by the receivers of one
    ECU) names the files some tester is writing, so a second tester can neither write into nor
    delete a file another one is transferring (NRC 0x22).
    """

    def __init__(
        self,
        directory: Path,
        in_progress: set[str] | None = None,
        quota: StorageQuota | None = None,
    ) -> None:
        self.directory = directory
        self._active: _Active | None = None
        self._in_progress = in_progress if in_progress is not None else set()
        self._quota = quota or StorageQuota(directory.parent)

    @property
    def active(self) -> bool:
        return self._active is not None

    def abort(self) -> None:
        """Forget the transfer in progress (session change, reset); the .part stays for resume."""
        if self._active is not None:
            os.close(self._active.fd)
            self._in_progress.discard(self._active.name)
        self._active = None

    def _claim(self, name: str) -> None:
        """Take ``name`` for this receiver's transfer; refuse one another tester is writing."""
        mine = self._active is not None and self._active.name == name
        if name in self._in_progress and not mine:
            raise NegativeResponse(
                Nrc.CONDITIONS_NOT_CORRECT, f"file {name!r} is being transferred by another tester"
            )
        self.abort()
        self._in_progress.add(name)

    def _part(self, name: str) -> Path:
        return self.directory / f"{name}.part"

    def _meta(self, name: str) -> Path:
        return self.directory / f"{name}.meta"

    def _digest(self, name: str) -> Path:
        return self.directory / DIGESTS / name

    def completed(self, name: str) -> ReceivedFile | None:
        """The complete file ``name`` with its reception digest, or ``None``; no re-hashing.

        A file received before digests were kept is hashed once, and its digest kept.
        """
        path = self.directory / name
        if not _SAFE_NAME.match(name) or not path.is_file():
            return None
        try:
            sha256 = self._digest(name).read_text("ascii")
        except FileNotFoundError:
            sha256 = _hash_file(path)
            self._keep_digest(name, sha256)
        return ReceivedFile(name, path, path.stat().st_size, sha256)

    def _keep_digest(self, name: str, sha256: str) -> None:
        self._digest(name).parent.mkdir(exist_ok=True)
        write_atomically(self._digest(name), sha256.encode("ascii"), mode=0o600)

    def _forget(self, name: str) -> None:
        for stale in (self.directory / name, self._part(name), self._meta(name)):
            stale.unlink(missing_ok=True)
        self._digest(name).unlink(missing_ok=True)

    # 0x34 RequestDownload ---------------------------------------------------------------------
    def request_download(self, data: bytes) -> bytes:
        if len(data) < 2:
            raise NegativeResponse(_BAD_FORMAT, "short RequestDownload")
        alfid = data[1]
        size_len, addr_len = alfid >> 4, alfid & 0x0F
        if not (1 <= size_len <= 4 and 1 <= addr_len <= 4):
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, f"addressAndLengthFormat {alfid:#x}")
        if len(data) != 2 + size_len + addr_len:
            raise NegativeResponse(_BAD_FORMAT, "RequestDownload length")
        if data[0] != 0x00:
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, "compression/encryption unsupported")
        address = int.from_bytes(data[2 : 2 + addr_len], "big")
        size = int.from_bytes(data[2 + addr_len :], "big")
        self._start(f"download-{address:08X}", size)
        return bytes([0x40]) + MAX_BLOCK_LENGTH.to_bytes(4, "big")

    # 0x38 RequestFileTransfer -----------------------------------------------------------------
    def request_file_transfer(self, data: bytes) -> bytes:
        if len(data) < 4:
            raise NegativeResponse(_BAD_FORMAT, "short RequestFileTransfer")
        mode = data[0]
        (path_len,) = struct.unpack_from(">H", data, 1)
        if len(data) < 3 + path_len:
            raise NegativeResponse(_BAD_FORMAT, "path length")
        try:
            path = data[3 : 3 + path_len].decode("ascii")
        except UnicodeDecodeError:
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, "non-ASCII path") from None
        name = _file_name(path)
        rest = data[3 + path_len :]
        if mode == DELETE_FILE:
            if rest:
                raise NegativeResponse(_BAD_FORMAT, "DeleteFile takes no parameters")
            self._claim(name)
            self.abort()
            self._forget(name)
            return bytes([mode])
        if mode in (READ_FILE, READ_DIR):
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, "upload from the car not offered")
        if mode not in (ADD_FILE, REPLACE_FILE, RESUME_FILE):
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, f"modeOfOperation {mode:#x}")
        if len(rest) < 2:
            raise NegativeResponse(_BAD_FORMAT, "missing dataFormatIdentifier/fileSize")
        dfi, width = rest[0], rest[1]
        if dfi != 0x00:
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, "compression/encryption unsupported")
        if not 1 <= width <= 8 or len(rest) != 2 + 2 * width:
            raise NegativeResponse(_BAD_FORMAT, "fileSizeParameterLength")
        size = int.from_bytes(rest[2 : 2 + width], "big")
        compressed = int.from_bytes(rest[2 + width :], "big")
        if compressed != size:
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, "compressed size differs")
        header = bytes([mode, 4]) + MAX_BLOCK_LENGTH.to_bytes(4, "big") + bytes([dfi])
        if mode == RESUME_FILE:
            position = self._resume(name, size)
            return header + position.to_bytes(8, "big")
        if mode == ADD_FILE and (self.directory / name).exists():
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, "file exists; use ReplaceFile")
        self._start(name, size)
        return header

    def _start(self, name: str, size: int) -> None:
        self._quota.admit(self.directory, name, size)  # 0x70 before any byte is stored
        self._claim(name)
        write_atomically(self._meta(name), json.dumps({"size": size}).encode())
        (self.directory / name).unlink(missing_ok=True)
        self._digest(name).unlink(missing_ok=True)
        fd = os.open(self._part(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._active = _Active(name, size, 0, 0, fd, hashlib.sha256())

    def _resume(self, name: str, size: int) -> int:
        final = self.directory / name
        if not self._meta(name).exists() and final.is_file() and final.stat().st_size == size:
            # Fully received before: filePosition = fileSize, and 0x37 answers its SHA-256 so
            # the tester can tell it is the file it means before sending nothing.
            self._claim(name)
            received = self.completed(name)
            assert received is not None
            fd = os.open(final, os.O_RDONLY)
            self._active = _Active(name, size, size, 0, fd, _Fixed(received.sha256), complete=True)
            return size
        try:
            meta = json.loads(self._meta(name).read_text())
            position = self._part(name).stat().st_size
        except (FileNotFoundError, ValueError):
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, "nothing to resume") from None
        if meta.get("size") != size or position > size:
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, "resume with a different size")
        self._claim(name)
        digest = hashlib.sha256()
        with self._part(name).open("rb") as handle:  # once per resume, not per block
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        fd = os.open(self._part(name), os.O_WRONLY)
        os.lseek(fd, position, os.SEEK_SET)
        self._active = _Active(name, size, position, 0, fd, digest)
        return position

    # 0x36 TransferData ------------------------------------------------------------------------
    def transfer_data(self, data: bytes | memoryview) -> bytes:
        active = self._active
        if active is None:
            raise NegativeResponse(Nrc.REQUEST_SEQUENCE_ERROR, "TransferData without a request")
        if active.complete:
            raise NegativeResponse(Nrc.REQUEST_SEQUENCE_ERROR, "the file is already complete")
        if len(data) < 1:
            raise NegativeResponse(_BAD_FORMAT, "missing blockSequenceCounter")
        counter, block = data[0], memoryview(data)[1:]  # no copy of the block
        if counter == active.counter and active.counter != 0:
            return bytes([counter])  # repeated last block: already written, acknowledge again
        if counter != (active.counter + 1) & 0xFF:
            raise NegativeResponse(
                Nrc.WRONG_BLOCK_SEQUENCE_COUNTER,
                f"block {counter}, expected {(active.counter + 1) & 0xFF}",
            )
        if len(block) > MAX_BLOCK_LENGTH - 2:
            raise NegativeResponse(_BAD_FORMAT, "block longer than maxNumberOfBlockLength")
        if active.position + len(block) > active.size:
            raise NegativeResponse(Nrc.TRANSFER_DATA_SUSPENDED, "more data than announced")
        written = 0
        while written < len(block):
            written += os.write(active.fd, block[written:])
        os.fdatasync(active.fd)  # confirmed means on disk: a resume after an OS crash is exact
        active.digest.update(block)
        active.position += len(block)
        active.counter = counter
        return bytes([counter])

    # 0x37 RequestTransferExit -----------------------------------------------------------------
    def transfer_exit(self) -> tuple[bytes, ReceivedFile]:
        active = self._active
        if active is None:
            raise NegativeResponse(Nrc.REQUEST_SEQUENCE_ERROR, "TransferExit without a transfer")
        if active.position != active.size:
            raise NegativeResponse(
                Nrc.REQUEST_SEQUENCE_ERROR, f"{active.position} of {active.size} bytes received"
            )
        if active.complete:
            self.abort()
            digest = active.digest.digest()
            return digest, ReceivedFile(active.name, self.directory / active.name, active.size,
                                        digest.hex())  # fmt: skip
        part, final = self._part(active.name), self.directory / active.name
        os.fsync(active.fd)
        self.abort()
        digest = active.digest.digest()
        self._keep_digest(active.name, digest.hex())  # before the file appears complete
        os.replace(part, final)
        self._meta(active.name).unlink(missing_ok=True)
        return digest, ReceivedFile(active.name, final, active.size, digest.hex())


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
