"""RFC 9162 §2.1 Merkle tree hashing, proof shapes and proof verification (pure, no I/O).

Hashing: ``MTH({}) = SHA-256()``, a leaf is ``SHA-256(0x00 || d)``, an interior node is
``SHA-256(0x01 || left || right)``, and a tree of ``n`` leaves splits at ``k``, the largest power
of two smaller than ``n``.

Proof *generation* is split in two so that storage can serve proofs in O(log n) reads:

* :func:`inclusion_path_ranges` / :func:`consistency_path_ranges` follow the RFC's ``PATH`` and
  ``SUBPROOF`` recursions but return, instead of hashes, the leaf ranges ``[begin, end)`` whose
  ``MTH`` makes up each proof element (at most ``ceil(log2 n)`` of them);
* :func:`perfect_subtrees` cuts each range into complete, aligned subtrees ``(level, index)``,
  which a store keeps as rows; :func:`fold_subtrees` folds their hashes back into the range's hash.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) is the RFC 9162 §2.1.3.2 and
§2.1.4.2 algorithms, step by step; every refusal raises :class:`ProofError` with the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from forecourt.ledger.errors import ProofError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: A complete subtree of ``2**level`` leaves starting at leaf ``index * 2**level``.
NodeId = tuple[int, int]
#: Half-open leaf range ``[begin, end)``.
LeafRange = tuple[int, int]


def leaf_hash(leaf_input: bytes) -> bytes:
    """``MTH({d}) = SHA-256(0x00 || d)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(LEAF_PREFIX + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """``k``: the largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    if n < 2:
        raise ValueError(f"no split point for a tree of {n} leaves")
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """``MTH(D[n])`` of a list of leaf hashes, in memory (reference and bulk use)."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    # Bottom-up pairing gives the RFC tree: an odd node out is promoted unchanged, which is
    # exactly what the largest-power-of-two split produces on the right border.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def perfect_subtrees(begin: int, end: int) -> list[NodeId]:
    """Cut ``[begin, end)`` into the fewest complete aligned subtrees, left to right.

    For the ranges the RFC recursions produce (``begin`` aligned to a power of two at least
    ``end - begin``) the sizes strictly decrease, so folding them right-to-left gives ``MTH``.
    """
    if not 0 <= begin <= end:
        raise ValueError(f"bad leaf range [{begin}, {end})")
    out: list[NodeId] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        out.append((level, begin >> level))
        begin += 1 << level
    return out


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """Hash of a range from its :func:`perfect_subtrees` hashes: ``h0 . (h1 . (h2 ...))``."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_path_ranges(index: int, size: int) -> list[LeafRange]:
    """Ranges of ``PATH(m, D[n])`` (RFC 9162 §2.1.3.1), leaf to root."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} outside a tree of size {size}")
    out: list[LeafRange] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index - lo < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo = lo + k
    out.reverse()
    return out


def consistency_path_ranges(size1: int, size2: int) -> list[LeafRange]:
    """Ranges of ``PROOF(m, D[n])`` (RFC 9162 §2.1.4.1), for ``0 < m <= n``."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    out: list[LeafRange] = []
    m, lo, hi, complete = size1, 0, size2, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                out.append((lo, hi))
            break
        k = split_point(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            m, lo, complete = m - k, lo + k, False
    out.reverse()
    return out


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 steps 1-4: the root a proof leads to (step 5 compares it)."""
    _check_hash("leaf hash", leaf)
    for i, p in enumerate(proof):
        _check_hash(f"proof element {i}", p)
    if index >= size or index < 0:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` sits at ``index`` in the tree ``(size, root)``."""
    _check_hash("root hash", root)
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that tree ``(size2, root2)`` extends tree ``(size1, root1)`` (RFC 9162 §2.1.4.2).

    ``size1 == 0`` is refused: the RFC defines no proof from the empty tree, and a verifier that
    accepted one would have checked nothing.
    """
    if size1 < 1 or size2 < size1:
        raise ProofError(f"no consistency from size {size1} to size {size2}")
    if size1 == size2:
        # Like the reference verifier: one size, so the roots must be the very same bytes.
        if proof:
            raise ProofError("equal sizes need an empty consistency proof")
        if root1 != root2:
            raise ProofError(f"two different roots for tree size {size1}")
        return
    _check_hash("first root", root1)
    _check_hash("second root", root2)
    for i, p in enumerate(proof):
        _check_hash(f"proof element {i}", p)
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the tree is deep")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """``PATH(index, D[size])`` with the hashes, leaf to root."""

    index: int
    size: int
    hashes: tuple[bytes, ...]

    def verify(self, leaf: bytes, root: bytes) -> None:
        verify_inclusion(self.index, self.size, leaf, self.hashes, root)


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """``PROOF(size1, D[size2])`` with the hashes."""

    size1: int
    size2: int
    hashes: tuple[bytes, ...]

    def verify(self, root1: bytes, root2: bytes) -> None:
        verify_consistency(self.size1, self.size2, root1, root2, self.hashes)


NodeReader = Callable[[Sequence[NodeId]], Sequence[bytes]]
"""Reads the hashes of complete subtrees, in the order asked (one batched read)."""


def _range_hashes(ranges: Sequence[LeafRange], read: NodeReader) -> tuple[bytes, ...]:
    cuts = [perfect_subtrees(b, e) for b, e in ranges]
    flat = [node for cut in cuts for node in cut]
    hashes = list(read(flat))
    if len(hashes) != len(flat):
        raise ProofError(f"asked for {len(flat)} subtree hashes, got {len(hashes)}")
    out: list[bytes] = []
    pos = 0
    for cut in cuts:
        out.append(fold_subtrees(hashes[pos : pos + len(cut)]))
        pos += len(cut)
    return tuple(out)


def root_at(size: int, read: NodeReader) -> bytes:
    """``MTH(D[size])`` from O(log n) stored complete-subtree hashes."""
    if size == 0:
        return EMPTY_ROOT
    return _range_hashes([(0, size)], read)[0]


def build_inclusion_proof(index: int, size: int, read: NodeReader) -> InclusionProof:
    return InclusionProof(index, size, _range_hashes(inclusion_path_ranges(index, size), read))


def build_consistency_proof(size1: int, size2: int, read: NodeReader) -> ConsistencyProof:
    return ConsistencyProof(
        size1, size2, _range_hashes(consistency_path_ranges(size1, size2), read)
    )


class MemoryTree:
    """A whole tree in memory: every level kept, for verifiers and tests (not for big logs)."""

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append_hash(self, h: bytes) -> None:
        _check_hash("leaf hash", h)
        self._levels[0].append(h)
        level = 0
        while len(self._levels[level]) % 2 == 0:
            row = self._levels[level]
            parent = node_hash(row[-2], row[-1])
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._levels[level + 1].append(parent)
            level += 1

    def append(self, leaf_input: bytes) -> None:
        self.append_hash(leaf_hash(leaf_input))

    def read(self, nodes: Sequence[NodeId]) -> list[bytes]:
        return [self._levels[level][index] for level, index in nodes]

    def root(self, size: int | None = None) -> bytes:
        return root_at(self.size if size is None else size, self.read)

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        return build_inclusion_proof(index, self.size if size is None else size, self.read)

    def consistency_proof(self, size1: int, size2: int | None = None) -> ConsistencyProof:
        return build_consistency_proof(size1, self.size if size2 is None else size2, self.read)
