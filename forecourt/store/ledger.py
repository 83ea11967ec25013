"""Ledger tables: the RFC 9162 log's entries and stored subtree hashes, checkpoints, salts,
receipts (edge side of the log of logs) and peer logs (cloud side).

Entries and nodes are append-only: the application inserts them and never updates or deletes
them. Salts live apart so that erasing a person's data (deleting the salts that open their
commitments) never touches a leaf. One database holds one log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.store.base import Base, UTCDateTime


class LedgerHead(Base):
    """One row: the log's size; locking it serialises appenders across processes."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)


class LedgerEntry(Base):
    """Leaf ``index``: its payload and ``SHA-256(0x00 || uint64(index) || payload)``."""

    __tablename__ = "ledger_entries"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class LedgerNode(Base):
    """Hash of the complete subtree of ``2**level`` leaves starting at ``idx * 2**level``.

    Only even levels >= 2 are kept (odd levels are one hash away), about a third of a row per
    leaf, so that any root or proof needs O(log n) rows.
    """

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)


class LedgerCheckpoint(Base):
    """A signed checkpoint this log issued (the signed note text, as served)."""

    __tablename__ = "ledger_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class LedgerSalt(Base):
    """The salt that opens one commitment of one entry; deleting it crypto-shreds the value."""

    __tablename__ = "ledger_salts"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    field: Mapped[str] = mapped_column(String(64), primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)


class LedgerReceipt(Base):
    """Edge side of the log of logs: the cloud's proof that it logged one of our checkpoints."""

    __tablename__ = "ledger_receipts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkpoint_size: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    receipt: Mapped[str] = mapped_column(Text, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class LedgerPeerLog(Base):
    """Cloud side of the log of logs: an edge log's key and the latest checkpoint it submitted."""

    __tablename__ = "ledger_peer_logs"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    vkey: Mapped[str] = mapped_column(Text, nullable=False)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    root_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
