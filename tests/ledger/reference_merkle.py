"""A slow, obviously-correct RFC 6962 §2.1 reference: MTH, PATH and PROOF as written.

Each function is a line-by-line transcription of the RFC's recursive definitions over the
list of leaf inputs D, using hashlib directly (nothing from flightlog), so the fast code in
`flightlog.ledger.merkle` can be cross-checked against it. Quadratic in places; test sizes only.
"""

from __future__ import annotations

import hashlib


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH(D[n])."""
    n = len(d)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + d[0])
    k = _k(n)
    return _sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), for 0 <= m < n."""
    n = len(d)
    if n == 1 and m == 0:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(m, D[n]), for 0 < m <= n."""
    return _subproof(m, d, True)


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, d[:k], b), mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), mth(d[:k])]


def leaf_hashes(d: list[bytes]) -> list[bytes]:
    """MTH({d_i}) for every entry: the level-0 hashes a store keeps."""
    return [_sha256(b"\x00" + x) for x in d]
