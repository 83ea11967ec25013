"""The ledger's exceptions, grouped under one root so callers can catch the area as a whole.

::

    LedgerError
    ├── ProofError            a Merkle proof does not verify (or cannot exist)
    ├── EntryError            an entry is malformed or refuses its canonical form
    ├── NoteError             a signed note / checkpoint is malformed or its signature is bad
    │   └── UnknownKeyError   no trusted key for the note's origin or signer
    ├── ConsistencyError      a checkpoint does not extend the previous one (fork, rollback)
    ├── TamperError           stored or exported entries do not match the log (names the index)
    └── ExportFormatError     an export file cannot be read
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every ledger error."""


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof failed, or was asked for out of range."""


class EntryError(LedgerError):
    """An entry is malformed: wrong field, wrong type, or not in canonical form."""


class NoteError(LedgerError):
    """A signed note or checkpoint is malformed, or no trusted signature verifies."""


class UnknownKeyError(NoteError):
    """The note names an origin or signer we hold no key for."""


class ConsistencyError(LedgerError):
    """Two checkpoints of one log disagree: a fork, a rollback, or a broken extension."""


class TamperError(LedgerError):
    """Entries do not match the tree or the checkpoints; ``index`` is the first bad one.

    ``index`` is exact when the evidence pins it (a stored leaf or node hash, a gap, a
    misplaced sequence number); ``range_end`` is set when only a checkpoint bounds it, meaning
    "the first alteration lies in ``[index, range_end)``".
    """

    def __init__(self, index: int, reason: str, range_end: int | None = None) -> None:
        self.index = index
        self.reason = reason
        self.range_end = range_end
        where = f"index {index}" if range_end is None else f"indices [{index}, {range_end})"
        super().__init__(f"first bad entry at {where}: {reason}")


class ExportFormatError(LedgerError):
    """An export file is not in the format ``forecourt ledger export`` writes."""
