"""The ledger's readers: checkpoints, signed notes, verifier keys, proof JSON and export files
refuse garbage with a :class:`~forecourt.ledger.errors.LedgerError`, never another exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecourt.ledger.checkpoint import (
    Checkpoint,
    NoteVerifier,
    SignedCheckpoint,
    SignedNote,
    SoftwareNoteSigner,
    verifier_for,
)
from forecourt.ledger.errors import LedgerError, NoteError
from forecourt.ledger.export import read_export
from forecourt.ledger.wire import consistency_from_json, inclusion_from_json
from tests.fuzz.mutations import mutated_bytes, mutated_tree
from tests.fuzz.settings import fuzz

ORIGIN = "forecourt.example/ledger/d0042"
SIGNER = SoftwareNoteSigner.generate()
VERIFIER = verifier_for(ORIGIN, SIGNER)
CHECKPOINT = Checkpoint(ORIGIN, 42, bytes(range(32)))
NOTE = SignedCheckpoint.issue(CHECKPOINT, SIGNER).render()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


notes = st.one_of(
    mutated_bytes(NOTE.encode()).map(_text),
    st.text(max_size=120),
    st.sampled_from(["1" * 5000, "²", "١٢", "-1", "00"]).map(
        lambda size: NOTE.replace("\n42\n", f"\n{size}\n")
    ),
)


@fuzz(400)
@given(notes)
def test_mutated_signed_checkpoints_open_or_raise_a_note_error(text: str) -> None:
    try:
        opened = SignedCheckpoint.open(text, VERIFIER)
    except NoteError as error:
        assert str(error)
    else:
        assert opened.checkpoint == CHECKPOINT  # only the signed bytes verify


@fuzz(300)
@given(st.one_of(st.text(max_size=80), mutated_bytes(VERIFIER.to_vkey().encode()).map(_text)))
def test_mutated_verifier_keys_parse_or_raise_a_note_error(vkey: str) -> None:
    try:
        NoteVerifier.from_vkey(vkey)
    except NoteError as error:
        assert str(error)


@fuzz(300)
@given(st.one_of(st.text(max_size=80), notes))
def test_checkpoint_bodies_and_notes_parse_or_raise_a_note_error(text: str) -> None:
    for parse in (Checkpoint.parse, SignedNote.parse):
        try:
            parse(text)
        except NoteError as error:
            assert str(error)


PROOF = {"index": 3, "tree_size": 8, "size1": 3, "size2": 8, "hashes": ["AAAA", "AQID"]}


@fuzz(300)
@given(mutated_tree(PROOF))
def test_mutated_proof_json_parses_or_raises_a_ledger_error(doc: Any) -> None:
    if not isinstance(doc, dict):
        return  # the API and the export check for an object before they call these
    for parse in (inclusion_from_json, consistency_from_json):
        try:
            parse(doc)
        except LedgerError as error:
            assert str(error)


def _export() -> bytes:
    lines: list[dict[str, Any]] = [
        {"format": "forecourt-ledger-export", "version": 1, "origin": ORIGIN},
        {"index": 0, "payload": "eyJhIjoxfQ==", "leaf_hash": "AAAA"},
        {"index": 1, "payload": "eyJhIjoyfQ=="},
        {"checkpoint": NOTE},
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


EXPORT = _export()
exports = st.one_of(
    mutated_bytes(EXPORT),
    st.binary(max_size=200),
    st.sampled_from([b"\xff\xfe\n", EXPORT + b"\xff\n", EXPORT.replace(b"{", b"[" * 5000, 1)]),
)


@pytest.fixture
def export_path(tmp_path: Path) -> Path:
    return tmp_path / "export.jsonl"


@fuzz(300, fixtures=True)
@given(exports)
def test_mutated_export_files_read_or_raise_a_ledger_error(export_path: Path, raw: bytes) -> None:
    export_path.write_bytes(raw)
    try:
        export = read_export(export_path)
    except LedgerError as error:
        assert str(export_path) in str(error) or "line" in str(error)
    else:
        assert all(isinstance(e.index, int) for e in export.entries)
