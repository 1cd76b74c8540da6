"""Pure RFC 6962 / RFC 9162 Merkle tree math over SHA-256: hashing, proofs, verification.

Nothing here does I/O. Stored hashes come in through one callable, a `SubtreeReader`
`read(level, index)`, which returns the hash of the complete (perfect) subtree at `level`
covering leaves `[index * 2**level, (index + 1) * 2**level)`; level 0 holds the leaf hashes.
Only complete subtrees that exist in a tree of the size being worked on are ever requested,
so a store that persists every node `Frontier.append` returns (plus the leaves) can serve
every request.

Proofs are lists of 32-byte hashes, leaf side first, exactly as RFC 6962 §2.1.1 / §2.1.2
define them. Verifiers raise `ProofError` naming what failed and never return a boolean.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeAlias

from flightlog.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "SubtreeReader",
    "leaf_hash",
    "node_hash",
    "prove_consistency",
    "prove_inclusion",
    "root_from_leaf_hashes",
    "subtree_hash",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()  # RFC 6962 §2.1: MTH({}) = SHA-256()

SubtreeReader: TypeAlias = Callable[[int, int], bytes]

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Return MTH({data}) = SHA-256(0x00 || data) (RFC 6962 §2.1)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), the hash of an interior node (RFC 6962 §2.1)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _short(h: bytes) -> str:
    return h[:8].hex() + "…"


def _check_hash(what: str, h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} is {len(h)} bytes, expected {HASH_SIZE}")


def _split(n: int) -> int:
    """Return k, the largest power of two smaller than n (n >= 2), as RFC 6962 §2.1 splits."""
    return 1 << ((n - 1).bit_length() - 1)


def _read(read: SubtreeReader, level: int, index: int) -> bytes:
    h = read(level, index)
    _check_hash(f"stored hash at level {level} index {index}", h)
    return h


def _mth(start: int, end: int, read: SubtreeReader) -> bytes:
    # RFC 6962 §2.1: MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])); a range that is
    # itself a stored perfect subtree is read instead of recomputed. start < end.
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return _read(read, level, start >> level)
    k = _split(n)
    return node_hash(_mth(start, start + k, read), _mth(start + k, end, read))


def subtree_hash(start: int, end: int, read: SubtreeReader) -> bytes:
    """Return MTH(D[start:end]), the RFC 6962 hash of leaves start..end-1 as their own tree.

    Needs 0 <= start <= end; an empty range hashes to EMPTY_ROOT. Takes O(log n) reads when
    `start` is a multiple of the largest power of two below `end - start` (true of every
    range [0, size) and every subtree the RFC 6962 PATH/PROOF recursion visits); other ranges
    are still hashed correctly, with more reads.
    """
    if start < 0 or end < start:
        raise ProofError(f"bad leaf range [{start}, {end})")
    if start == end:
        return EMPTY_ROOT
    return _mth(start, end, read)


def tree_root(size: int, read: SubtreeReader) -> bytes:
    """Return MTH(D[0:size]), the root hash of the tree of the first `size` leaves."""
    if size < 0:
        raise ProofError(f"tree size {size} is negative")
    return subtree_hash(0, size, read)


def prove_inclusion(index: int, size: int, read: SubtreeReader) -> list[bytes]:
    """Return PATH(index, D[size]), the inclusion proof of leaf `index` (RFC 6962 §2.1.1).

    Needs 0 <= index < size. The proof lists sibling hashes from the leaf up to the root.
    """
    if not 0 <= index < size:
        raise ProofError(f"inclusion proof: index {index} is not in a tree of size {size}")
    # RFC 6962 §2.1.1, unrolled from the root down: for m < k, PATH(m, D[0:k]) : MTH(D[k:n]);
    # otherwise PATH(m - k, D[k:n]) : MTH(D[0:k]). Siblings are collected root first.
    siblings: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            siblings.append(_mth(mid, end, read))
            end = mid
        else:
            siblings.append(_mth(start, mid, read))
            start = mid
    siblings.reverse()
    return siblings


def prove_consistency(size1: int, size2: int, read: SubtreeReader) -> list[bytes]:
    """Return PROOF(size1, D[size2]), the consistency proof between two sizes (RFC 6962 §2.1.2).

    Needs 0 < size1 <= size2; the proof for size1 == size2 is empty.
    """
    if not 0 < size1 <= size2:
        raise ProofError(f"consistency proof: sizes {size1} -> {size2} need 0 < size1 <= size2")
    # RFC 6962 §2.1.2, unrolled: SUBPROOF(m, D[n], b) with m < n and k = _split(n) is
    # SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) if m <= k, else
    # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]); it ends at SUBPROOF(m, D[m], b), which is
    # {} when b is true (the old root itself) and {MTH(D[m])} otherwise.
    siblings: list[bytes] = []
    start, end, m, whole = 0, size2, size1, True
    while end - start != m:
        k = _split(end - start)
        if m <= k:
            siblings.append(_mth(start + k, end, read))
            end = start + k
        else:
            siblings.append(_mth(start, start + k, read))
            start += k
            m -= k
            whole = False
    proof = [] if whole else [_mth(start, end, read)]
    proof.extend(reversed(siblings))
    return proof


def _inclusion_proof_size(index: int, size: int) -> int:
    # Below the highest level where the paths to `index` and to the last leaf part, every
    # level contributes a sibling; above it, only the levels where `index` is a right child.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Return None only if `proof` proves leaf `index` of a tree of `size` hashes to `root`.

    Implements RFC 9162 §2.1.3.2. Raises ProofError on any mismatch, on an index outside
    [0, size), and on any hash that is not 32 bytes.
    """
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    for i, p in enumerate(proof):
        _check_hash(f"inclusion proof hash {i}", p)
    # 1. The index must name a leaf of the tree.
    if not 0 <= index < size:
        raise ProofError(f"inclusion proof: index {index} is not in a tree of size {size}")
    # 2. The proof must have exactly one hash per level on the path (RFC 6962 §2.1.1).
    expected = _inclusion_proof_size(index, size)
    if len(proof) != expected:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, expected {expected}")
    # 3. RFC 9162 §2.1.3.2: walk up with fn = index, sn = size - 1.
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # fn is the last node of its level: skip the levels where it has no sibling.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # 4. The walk must end at the root, with the expected hash.
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    if r != root:
        raise ProofError(f"inclusion proof: computed root {_short(r)} != expected {_short(root)}")


def _consistency_proof_size(size1: int, size2: int) -> int:
    # The inclusion path of leaf size1 - 1 in D[size2], minus the levels inside the perfect
    # subtree that ends at size1 (its root is sent instead), plus that root unless it is the
    # whole old tree (size1 a power of two, where the verifier already knows it: root1).
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> inner).bit_count()
    shift = (size1 & -size1).bit_length() - 1
    return (0 if size1 == 1 << shift else 1) + inner - shift + border


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Return None only if `proof` proves the tree (size1, root1) is a prefix of (size2, root2).

    Implements RFC 9162 §2.1.4.2. Needs 0 < size1 <= size2: a proof from size 0 is rejected
    (an empty tree is trivially consistent; the caller decides whether to accept that). For
    size1 == size2 the proof must be empty and the roots equal. Raises ProofError on any
    mismatch and on any hash that is not 32 bytes.
    """
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    for i, p in enumerate(proof):
        _check_hash(f"consistency proof hash {i}", p)
    # 1. Sizes must be ordered and the old tree non-empty.
    if not 0 < size1 <= size2:
        raise ProofError(f"consistency proof: sizes {size1} -> {size2} need 0 < size1 <= size2")
    # 2. Equal sizes: PROOF(m, D[m]) is empty and the roots must be the same.
    if size1 == size2:
        if proof:
            raise ProofError(f"consistency proof has {len(proof)} hashes, expected 0")
        if root1 != root2:
            raise ProofError(
                f"consistency proof: roots differ at equal size {size1}: {_short(root1)} != {_short(root2)}"
            )
        return
    # 3. The proof must have exactly the hashes PROOF(size1, D[size2]) has.
    expected = _consistency_proof_size(size1, size2)
    if len(proof) != expected:
        raise ProofError(f"consistency proof has {len(proof)} hashes, expected {expected}")
    # 4. RFC 9162 §2.1.4.2: if size1 is a power of two, root1 is the first node of the path.
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the root")
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
    # 5. Both recomputed roots must match, and the walk must have reached the top.
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the root")
    if fr != root1:
        raise ProofError(f"consistency proof: computed root1 {_short(fr)} != expected {_short(root1)}")
    if sr != root2:
        raise ProofError(f"consistency proof: computed root2 {_short(sr)} != expected {_short(root2)}")


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH of the leaves with these hashes; EMPTY_ROOT for none.

    Hashes level by level, carrying an unpaired last node up unchanged, which yields the
    RFC 6962 §2.1 tree: its left subtrees are exactly the perfect ones. Every hash must be
    32 bytes.
    """
    for i, h in enumerate(leaf_hashes):
        if len(h) != HASH_SIZE:
            _check_hash(f"leaf hash {i}", h)
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    sha256, prefix = _sha256, _NODE_PREFIX
    while len(level) > 1:
        paired = [sha256(prefix + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=False)]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


class Frontier:
    """The compact range [0, size): roots of the perfect subtrees of size's binary decomposition.

    Hashes are kept largest subtree first; appending a leaf is O(log n) and the root is the
    RFC 6962 fold of these hashes from the right.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree roots of [0, size), largest (leftmost) first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Return the new complete subtrees (level >= 1) created by appending `leaf_hash`.

        Each is `(level, index, hash)` in the `SubtreeReader` addressing, lowest level first,
        so a store can persist them; the leaf itself (level 0) is the caller's to store.
        """
        _check_hash("leaf hash", leaf_hash)
        new_size = self._size + 1
        created: list[tuple[int, int, bytes]] = []
        h, carry, level = leaf_hash, self._size, 0
        # Each trailing 1 bit of the old size is a perfect subtree of the same height as the
        # new one on its left: merge them, like a binary increment.
        while carry & 1:
            h = node_hash(self._hashes.pop(), h)
            carry >>= 1
            level += 1
            created.append((level, (new_size >> level) - 1, h))
        self._hashes.append(h)
        self._size = new_size
        return created

    def root(self) -> bytes:
        """Return MTH(D[0:size]); EMPTY_ROOT for an empty frontier."""
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    @classmethod
    def from_reader(cls, size: int, read: SubtreeReader) -> Frontier:
        """Return the frontier of a stored tree of `size` leaves, from O(log n) reads."""
        if size < 0:
            raise ProofError(f"tree size {size} is negative")
        frontier = cls()
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                frontier._hashes.append(_read(read, level, start >> level))
                start += 1 << level
        frontier._size = size
        return frontier

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"
