"""Properties of the pure RFC 9162 code, and agreement with sigstore-python's Rekor verifier."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore.errors import VerificationError

from forecourt.ledger.errors import ProofError
from forecourt.ledger.merkle import (
    MemoryTree,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    verify_consistency,
    verify_inclusion,
)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written as the recursive definition for comparison."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def _tree(n: int) -> tuple[MemoryTree, list[bytes]]:
    leaves = [f"leaf-{i}".encode() for i in range(n)]
    tree = MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    return tree, leaves


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=70))
def test_root_at_every_size_equals_the_recursive_definition(n: int) -> None:
    tree, leaves = _tree(n)
    for size in range(n + 1):
        assert tree.root(size) == mth(leaves[:size])


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_every_generated_proof_verifies_and_a_flipped_bit_does_not(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=90))
    tree, leaves = _tree(n)
    size = data.draw(st.integers(min_value=1, max_value=n))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = tree.inclusion_proof(index, size)
    assert len(proof.hashes) <= max(1, (size - 1).bit_length())
    verify_inclusion(index, size, leaf_hash(leaves[index]), proof.hashes, tree.root(size))
    size1 = data.draw(st.integers(min_value=1, max_value=size))
    cons = tree.consistency_proof(size1, size)
    verify_consistency(size1, size, tree.root(size1), tree.root(size), cons.hashes)
    if proof.hashes:
        bad = [bytearray(h) for h in proof.hashes]
        bad[0][0] ^= 1
        with pytest.raises(ProofError):
            verify_inclusion(
                index, size, leaf_hash(leaves[index]), [bytes(b) for b in bad], tree.root(size)
            )


def test_subtree_cuts_are_aligned_and_cover_the_range() -> None:
    for begin, end in [(0, 13), (8, 13), (12, 13), (16, 21), (0, 1)]:
        cut = perfect_subtrees(begin, end)
        pos = begin
        for level, idx in cut:
            assert idx << level == pos
            pos += 1 << level
        assert pos == end


def _sigstore_entry(
    leaf_input: bytes, index: int, size: int, hashes: tuple[bytes, ...], root: bytes
) -> SimpleNamespace:
    # sigstore-python's verifier reads exactly these attributes of a Rekor log entry.
    proof = SimpleNamespace(log_index=index, tree_size=size, hashes=list(hashes), root_hash=root)
    return SimpleNamespace(
        _inner=SimpleNamespace(inclusion_proof=proof, canonicalized_body=leaf_input)
    )


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 31, 64, 100])
def test_sigstore_rekor_verifier_accepts_our_inclusion_proofs(n: int) -> None:
    tree, leaves = _tree(n)
    root = tree.root()
    for index in range(n):
        proof = tree.inclusion_proof(index)
        verify_merkle_inclusion(_sigstore_entry(leaves[index], index, n, proof.hashes, root))  # type: ignore[arg-type]


def test_sigstore_rekor_verifier_refuses_our_proof_for_another_leaf() -> None:
    tree, _ = _tree(20)
    proof = tree.inclusion_proof(5)
    with pytest.raises(VerificationError):
        verify_merkle_inclusion(_sigstore_entry(b"forged", 5, 20, proof.hashes, tree.root()))  # type: ignore[arg-type]
