"""`flightlog verify`: recompute the whole ledger from raw stored bytes and check every claim.

The checks, numbered as the CLI prints them:
  1. keys        every known verifier key parses (or the pinned ones given by the caller)
  2. checkpoints every stored checkpoint is a signed note by a known key, for this log's origin
  3. entries     indexes run 0..n-1 with no gap; each leaf hash recomputed from the stored bytes
  4. tree        every stored Merkle node equals the one recomputed from the leaves
  5. roots       the recomputed root at each checkpoint's size equals the signed root
  6. consistency each checkpoint is consistent with the next (proof from the stored tree)
  7. blobs       every blob an entry references exists and hashes to its digest
  8. coverage    no checkpoint claims more entries than the log holds (truncation)
  9. trusted     an externally kept checkpoint, if given, matches the log
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from flightlog.errors import (
    BlobError,
    CheckpointError,
    FlightlogError,
    ProofError,
    VerificationError,
)
from flightlog.ledger import merkle
from flightlog.ledger.checkpoint import parse_checkpoint, parse_verifier_key, verify_note
from flightlog.ledger.log import Ledger

__all__ = ["VerifyReport", "verify_ledger"]

_BLOB_REF: Final = re.compile(rb'"blob":"(sha256:[0-9a-f]{64})"')


@dataclass
class VerifyReport:
    """What `verify_ledger` checked: entries, checkpoints, blobs, and steps passed in order."""

    entries: int = 0
    checkpoints: int = 0
    blobs: int = 0
    uncovered: int = 0
    steps: list[tuple[str, str]] = field(default_factory=list)


def verify_ledger(
    ledger: Ledger,
    pinned_keys: list[str] | None = None,
    trusted_notes: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Return a report if the ledger is intact; raise VerificationError at the first failure.

    `pinned_keys` replaces the keys read from the data directory (an auditor's own copy).
    """
    report = VerifyReport()
    store = ledger.store

    def passed(step: str, detail: str) -> None:
        report.steps.append((step, detail))

    # 1. keys
    keys = pinned_keys if pinned_keys is not None else ledger.keys.verifier_keys()
    try:
        for vkey in keys:
            parse_verifier_key(vkey)
    except CheckpointError as exc:
        raise VerificationError("1 keys", exc.message) from None
    if not keys:
        raise VerificationError("1 keys", "no verifier key known for this log")
    passed("1 keys", f"{len(keys)} verifier key(s)")

    # 2. checkpoints
    checkpoints = store.checkpoints()
    signed: list[tuple[int, bytes]] = []
    for n, cp in enumerate(checkpoints):
        try:
            text, _ = verify_note(cp.note, keys)
            parsed = parse_checkpoint(text)
        except CheckpointError as exc:
            raise VerificationError("2 checkpoints", f"checkpoint #{n + 1}: {exc.message}") from None
        if parsed.origin != ledger.origin:
            raise VerificationError("2 checkpoints", f"checkpoint #{n + 1} is for {parsed.origin}")
        if (parsed.size, parsed.root) != (cp.size, cp.root):
            raise VerificationError("2 checkpoints", f"checkpoint #{n + 1}: columns differ from note")
        if signed and parsed.size < signed[-1][0]:
            raise VerificationError("2 checkpoints", f"checkpoint #{n + 1} shrinks the tree")
        signed.append((parsed.size, parsed.root))
    report.checkpoints = len(signed)
    passed("2 checkpoints", f"{len(signed)} signed checkpoint(s)")

    # 3.–5. entries, tree, roots, in one pass over the stored bytes
    stored_nodes = {(lvl, i): bytes(h) for lvl, i, h in store.iter_nodes()}
    want_roots: dict[int, list[bytes]] = {}
    for size, root in signed:
        want_roots.setdefault(size, []).append(root)
    frontier = merkle.Frontier()
    digests: dict[str, int] = {}
    last_good = 0
    if 0 in want_roots:
        _check_roots(0, merkle.EMPTY_ROOT, want_roots[0], last_good)
    sha256 = hashlib.sha256
    for index, _event_id, leaf, stored_hash in store.iter_entries():
        if index != frontier.size:
            raise VerificationError("3 entries", f"entry {frontier.size} is missing", frontier.size)
        leaf = bytes(leaf)
        h = sha256(b"\x00" + leaf).digest()
        if h != stored_hash:
            raise VerificationError("3 entries", "stored bytes do not match the leaf hash", index)
        for level, i, node in frontier.append(h):
            if stored_nodes.get((level, i)) != node:
                raise VerificationError("4 tree", f"stored Merkle node (level {level}, index {i}) is wrong", index)
        if b'"blob":"sha256:' in leaf:
            for digest in _BLOB_REF.findall(leaf):
                digests.setdefault(digest.decode(), index)
        size = frontier.size
        if size in want_roots:
            _check_roots(size, frontier.root(), want_roots[size], last_good)
            last_good = size
        if progress is not None and size % 10000 == 0:
            progress(size)
    report.entries = frontier.size
    passed("3 entries", f"{report.entries} leaf hash(es) recomputed from stored bytes")
    passed("4 tree", f"{len(stored_nodes)} stored Merkle node(s) match")

    # 8 is checked before 5's summary: a checkpoint beyond the log means entries were cut off.
    beyond = [s for s, _ in signed if s > frontier.size]
    if beyond:
        raise VerificationError(
            "8 coverage",
            f"a signed checkpoint covers {max(beyond)} entries but the log has only "
            f"{frontier.size}: the log was truncated",
            frontier.size,
        )
    passed("5 roots", f"{len(signed)} signed root(s) equal the recomputed roots")

    # 6. consistency between consecutive checkpoints, proved from the stored tree
    for (s1, r1), (s2, r2) in itertools.pairwise(signed):
        if s1 == 0:
            continue
        try:
            merkle.verify_consistency(s1, s2, ledger.prove_consistency(s1, s2), r1, r2)
        except (ProofError, FlightlogError) as exc:
            raise VerificationError("6 consistency", f"{s1} -> {s2}: {exc.message}") from None
    passed("6 consistency", f"{max(len(signed) - 1, 0)} checkpoint pair(s) consistent")

    # 7. blobs
    for digest, index in digests.items():
        try:
            ledger.blobs.get(digest)
        except BlobError as exc:
            raise VerificationError("7 blobs", exc.message, index) from None
    report.blobs = len(digests)
    passed("7 blobs", f"{len(digests)} blob(s) match their digests")

    report.uncovered = frontier.size - (signed[-1][0] if signed else 0)
    passed("8 coverage", f"{report.uncovered} entr(y/ies) after the latest checkpoint")

    # 9. checkpoints the caller kept elsewhere (a witness, an auditor's copy)
    for note in trusted_notes or []:
        try:
            kept = parse_checkpoint(verify_note(note, keys)[0])
        except CheckpointError as exc:
            raise VerificationError("9 trusted", exc.message) from None
        if kept.origin != ledger.origin:
            raise VerificationError("9 trusted", f"checkpoint is for another log ({kept.origin})")
        if kept.size > frontier.size:
            raise VerificationError(
                "9 trusted",
                f"trusted checkpoint covers {kept.size} entries, the log has {frontier.size}: the log was truncated",
                frontier.size,
            )
        if ledger.root(kept.size) != kept.root:
            raise VerificationError("9 trusted", f"root of the first {kept.size} entries differs")
    if trusted_notes:
        passed("9 trusted", f"{len(trusted_notes)} trusted checkpoint(s) match")
    return report


def _check_roots(size: int, root: bytes, wanted: list[bytes], last_good: int) -> None:
    for want in wanted:
        if want != root:
            raise VerificationError(
                "5 roots",
                f"the first {size} entries do not match the signed checkpoint of that size: "
                f"entries {last_good}..{size - 1} were changed, inserted, deleted or reordered",
                last_good,
            )
