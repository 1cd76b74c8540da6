"""Corrupt a real ledger in every way an attacker or a bad disk could; `verify` must catch each."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flightlog.ledger import merkle
from flightlog.ledger.checkpoint import Checkpoint, format_checkpoint, sign_note
from tests.conftest import CliRunner, jsonl, make_event

BIG = "output line\n" * 3000  # > blob threshold: stored as a blob


@pytest.fixture
def ledger_home(home: Path, flightlog: CliRunner) -> Path:
    """A ledger of 40 entries in 4 ingests (4+ checkpoints), one entry with a blob."""
    for batch in range(4):
        events = [make_event(batch * 10 + i) for i in range(10)]
        if batch == 1:
            events[3]["payload"] = {"command": "make", "stdout": BIG}
            events[3]["type"] = "shell"
        flightlog("ingest", "-", input=jsonl(events), check=True)
    assert flightlog("verify").returncode == 0
    return home


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "ledger.db", isolation_level=None)


def _flip_leaf(home: Path, index: int, rehash: bool) -> None:
    with _db(home) as db:
        (leaf,) = db.execute("SELECT leaf FROM entries WHERE idx=?", (index,)).fetchone()
        changed = leaf.replace(b"claude-code", b"claude-cod3", 1)
        assert changed != leaf
        db.execute("UPDATE entries SET leaf=? WHERE idx=?", (changed, index))
        if rehash:
            db.execute("UPDATE entries SET leaf_hash=? WHERE idx=?", (merkle.leaf_hash(changed), index))


def _rebuild_nodes(db: sqlite3.Connection) -> None:
    """What a careful attacker does after editing leaves: recompute every stored node."""
    frontier = merkle.Frontier()
    db.execute("DELETE FROM nodes")
    for (h,) in db.execute("SELECT leaf_hash FROM entries ORDER BY idx").fetchall():
        db.executemany("INSERT INTO nodes VALUES (?,?,?)", frontier.append(h))


def _expect_failure(flightlog: CliRunner, step: str, entry: int | None, *args: str) -> str:
    proc = flightlog("verify", *args)
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert f"step {step}" in proc.stderr, proc.stderr
    if entry is not None:
        assert f"(entry {entry})" in proc.stderr, proc.stderr
    return proc.stderr


def test_untouched_ledger_verifies(ledger_home: Path, flightlog: CliRunner) -> None:
    proc = flightlog("verify")
    assert proc.returncode == 0
    assert "intact: 40 entries" in proc.stdout
    assert "1 blob(s) match" in proc.stdout


def test_changed_byte_in_event(ledger_home: Path, flightlog: CliRunner) -> None:
    _flip_leaf(ledger_home, 17, rehash=False)
    _expect_failure(flightlog, "3 entries", 17)


def test_changed_event_with_recomputed_leaf_hash(ledger_home: Path, flightlog: CliRunner) -> None:
    _flip_leaf(ledger_home, 17, rehash=True)
    _expect_failure(flightlog, "4 tree", 17)


def test_changed_event_with_whole_tree_recomputed(ledger_home: Path, flightlog: CliRunner) -> None:
    _flip_leaf(ledger_home, 17, rehash=True)
    with _db(ledger_home) as db:
        _rebuild_nodes(db)
    err = _expect_failure(flightlog, "5 roots", None)
    assert "entries 10..19" in err or "entries 0..19" in err


@pytest.mark.parametrize("how", ["flip", "delete"])
def test_blob_tampering(ledger_home: Path, flightlog: CliRunner, how: str) -> None:
    blobs = [p for p in (ledger_home / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1
    if how == "flip":
        data = bytearray(blobs[0].read_bytes())
        data[100] ^= 1
        blobs[0].write_bytes(bytes(data))
    else:
        blobs[0].unlink()
    _expect_failure(flightlog, "7 blobs", 13)


def test_deleted_entry(ledger_home: Path, flightlog: CliRunner) -> None:
    with _db(ledger_home) as db:
        db.execute("DELETE FROM entries WHERE idx=25")
    err = _expect_failure(flightlog, "3 entries", 25)
    assert "missing" in err


def test_deleted_entry_renumbered(ledger_home: Path, flightlog: CliRunner) -> None:
    with _db(ledger_home) as db:
        db.execute("DELETE FROM entries WHERE idx=25")
        db.execute("UPDATE entries SET idx=idx-1 WHERE idx>25")
        _rebuild_nodes(db)
    _expect_failure(flightlog, "5 roots", None)


def test_inserted_entry(ledger_home: Path, flightlog: CliRunner) -> None:
    with _db(ledger_home) as db:
        row = db.execute("SELECT * FROM entries WHERE idx=5").fetchone()
        db.execute("UPDATE entries SET idx=-idx-1000 WHERE idx>=5")
        db.execute("UPDATE entries SET idx=-(idx+1000)+1 WHERE idx<0")
        forged = row[10].replace(row[1].encode(), b"01a20000-0000-7000-8000-000000000000")
        db.execute(
            "INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                5,
                "01a20000-0000-7000-8000-000000000000",
                *row[2:10],
                forged,
                merkle.leaf_hash(forged),
            ),
        )
        _rebuild_nodes(db)
    _expect_failure(flightlog, "5 roots", None)


def test_reordered_entries(ledger_home: Path, flightlog: CliRunner) -> None:
    with _db(ledger_home) as db:
        a = db.execute("SELECT event_id, leaf, leaf_hash FROM entries WHERE idx=31").fetchone()
        b = db.execute("SELECT event_id, leaf, leaf_hash FROM entries WHERE idx=32").fetchone()
        db.execute("UPDATE entries SET event_id='tmp' WHERE idx=32")
        db.execute("UPDATE entries SET event_id=?, leaf=?, leaf_hash=? WHERE idx=31", b)
        db.execute("UPDATE entries SET event_id=?, leaf=?, leaf_hash=? WHERE idx=32", a)
    _expect_failure(flightlog, "4 tree", None)
    with _db(ledger_home) as db:
        _rebuild_nodes(db)
    err = _expect_failure(flightlog, "5 roots", None)
    assert "entries 30..39" in err


def test_truncated_log(ledger_home: Path, flightlog: CliRunner) -> None:
    with _db(ledger_home) as db:
        db.execute("DELETE FROM entries WHERE idx>=35")
    err = _expect_failure(flightlog, "8 coverage", 35)
    assert "truncated" in err


def test_truncated_log_and_checkpoints_caught_by_kept_checkpoint(
    ledger_home: Path, flightlog: CliRunner, tmp_path: Path
) -> None:
    kept = tmp_path / "kept.note"
    kept.write_text(json.loads(flightlog("checkpoint", "--json").stdout)["note"])
    with _db(ledger_home) as db:
        db.execute("DELETE FROM entries WHERE idx>=35")
        db.execute("DELETE FROM checkpoints WHERE size>35")
        _rebuild_nodes(db)
    # Without an outside copy a rollback to an earlier state is invisible: that is why
    # checkpoints are meant to be kept elsewhere (a witness, an auditor).
    assert flightlog("verify").returncode == 0
    err = _expect_failure(flightlog, "9 trusted", 35, "--checkpoint", str(kept))
    assert "truncated" in err


def _forge(ledger_home: Path, change: Callable[[str, int, bytes], tuple[str, int, bytes]]) -> None:
    with _db(ledger_home) as db:
        cid, size, root, note = db.execute(
            "SELECT id, size, root, note FROM checkpoints ORDER BY id DESC LIMIT 1"
        ).fetchone()
        origin = note.split("\n", 1)[0]
        new_origin, new_size, new_root = change(origin, size, root)
        text = format_checkpoint(Checkpoint(new_origin, new_size, new_root))
        forged = text + note[note.index("\n\n") + 1 :]  # keep the real signature line
        db.execute(
            "UPDATE checkpoints SET note=?, size=?, root=? WHERE id=?",
            (forged, new_size, new_root, cid),
        )


def test_forged_checkpoint_root(ledger_home: Path, flightlog: CliRunner) -> None:
    _forge(ledger_home, lambda o, s, r: (o, s, hashlib.sha256(b"forged").digest()))
    err = _expect_failure(flightlog, "2 checkpoints", None)
    assert "does not verify" in err


def test_forged_checkpoint_size(ledger_home: Path, flightlog: CliRunner) -> None:
    _forge(ledger_home, lambda o, s, r: (o, s - 1, r))
    _expect_failure(flightlog, "2 checkpoints", None)


def test_checkpoint_signed_by_unknown_key(ledger_home: Path, flightlog: CliRunner) -> None:
    with _db(ledger_home) as db:
        cid, note = db.execute("SELECT id, note FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        text = note[: note.index("\n\n") + 1]
        origin = text.split("\n", 1)[0]
        forged = sign_note(text, origin, Ed25519PrivateKey.generate())
        db.execute("UPDATE checkpoints SET note=? WHERE id=?", (forged, cid))
    err = _expect_failure(flightlog, "2 checkpoints", None)
    assert "no signature by a known key" in err


def test_pinned_key_rejects_swapped_key_files(ledger_home: Path, flightlog: CliRunner) -> None:
    """An attacker who re-signs everything with a new key in keys/ is caught by a pinned key."""
    pinned = flightlog("keys", "export", check=True).stdout.split()
    other = ledger_home.parent / "other"
    proc = flightlog("--home", str(other), "keys", "export")
    assert proc.returncode == 0
    assert flightlog("verify", "--key", pinned[0]).returncode == 0
    wrong = proc.stdout.split()[0]
    _expect_failure(flightlog, "2 checkpoints", None, "--key", wrong)


def test_rotation_keeps_old_checkpoints_verifiable(ledger_home: Path, flightlog: CliRunner) -> None:
    old = flightlog("keys", "export", check=True).stdout.split()
    flightlog("keys", "rotate", check=True)
    flightlog("ingest", "-", input=jsonl([make_event(99)]), check=True)
    keys = flightlog("keys", "export", check=True).stdout.split()
    assert len(keys) == 2 and keys[0] == old[0]
    assert flightlog("verify").returncode == 0
    listing = flightlog("keys", "list", check=True).stdout
    assert "retired" in listing and "active" in listing
    assert not list((ledger_home / "keys").glob("*retired*"))
