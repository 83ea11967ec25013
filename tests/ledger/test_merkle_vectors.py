"""Our RFC 9162 verifier and prover against the transparency-dev/merkle reference vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecourt.ledger.errors import ProofError
from forecourt.ledger.merkle import MemoryTree, verify_consistency, verify_inclusion
from tests.ledger.vectors import REFERENCE_LEAVES, b64, load, vector_files

INCLUSION = vector_files("inclusion")
CONSISTENCY = vector_files("consistency")


def _id(p: Path) -> str:
    return "/".join(p.parts[-3:])


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_verification_agrees_with_reference_vector(path: Path) -> None:
    v = load(path)
    args = (v["leafIdx"], v["treeSize"], b64(v["leafHash"]), [b64(p) for p in v["proof"] or []])
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args, b64(v["root"]))
    else:
        verify_inclusion(*args, b64(v["root"]))


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_verification_agrees_with_reference_vector(path: Path) -> None:
    v = load(path)
    proof = [b64(p) for p in v["proof"] or []]
    call = (v["size1"], v["size2"], b64(v["root1"]), b64(v["root2"]), proof)
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*call)
    else:
        verify_consistency(*call)


def _happy(kind: str) -> list[Path]:
    return [p for p in vector_files(kind) if p.name == "happy-path.json"]


@pytest.mark.parametrize("path", _happy("inclusion"), ids=_id)
def test_generated_inclusion_proof_equals_reference_proof(path: Path) -> None:
    v = load(path)
    tree = MemoryTree()
    for leaf in REFERENCE_LEAVES[: v["treeSize"]]:
        tree.append(leaf)
    assert tree.root() == b64(v["root"])
    proof = tree.inclusion_proof(v["leafIdx"])
    assert list(proof.hashes) == [b64(p) for p in v["proof"] or []]


@pytest.mark.parametrize("path", _happy("consistency"), ids=_id)
def test_generated_consistency_proof_equals_reference_proof(path: Path) -> None:
    v = load(path)
    tree = MemoryTree()
    for leaf in REFERENCE_LEAVES[: v["size2"]]:
        tree.append(leaf)
    assert tree.root(v["size1"]) == b64(v["root1"])
    proof = tree.consistency_proof(v["size1"])
    assert list(proof.hashes) == [b64(p) for p in v["proof"] or []]
