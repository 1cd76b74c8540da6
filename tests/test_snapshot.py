"""Workspace snapshots: manifest format, incremental stat cache, excludes, symlinks, modes."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flightlog.ledger.blobs import BlobStore
from flightlog.snapshot import (
    MODE_LINK,
    Entry,
    SnapshotError,
    compare_snapshots,
    format_manifest,
    load_snapshot,
    parse_manifest,
    take_snapshot,
)

from .conftest import CliRunner

SHA = "ab" * 32


def _age(root: Path) -> None:
    """Make every file older than the racy window, as most of a real workspace is."""
    old = time.time() - 60
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.utime(path, (old, old))


def _repo(root: Path) -> Path:
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _tree(root: Path) -> None:
    (root / "src").mkdir()
    (root / "src" / "a.py").write_text("print('a')\n")
    (root / "src" / "b.py").write_text("print('b')\n")
    (root / "data.bin").write_bytes(bytes(range(256)) * 4)
    (root / "README").write_text("hello\n")


# ---- manifest format ---------------------------------------------------------------------

_segment = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=12)
_path = (
    st.lists(_segment, min_size=1, max_size=4)
    .map("/".join)
    .filter(lambda p: not any(part in (".", "..") for part in p.split("/")))
)
_entry = st.builds(
    lambda path, mode, sha, size: Entry(path, mode, sha, size),
    _path,
    st.sampled_from([0o100644, 0o100755, 0o100600, MODE_LINK]),
    st.text("0123456789abcdef", min_size=64, max_size=64),
    st.integers(min_value=0, max_value=2**53),
)


@given(st.lists(_entry, max_size=20, unique_by=lambda e: e.path))
def test_manifest_round_trip(entries: list[Entry]) -> None:
    data = format_manifest(entries)
    parsed = parse_manifest(data)
    assert parsed == {e.path: e for e in entries}
    assert format_manifest(parsed.values()) == data


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d + b"\n",
        lambda d: d.replace(b'","', b'", "', 1),
        lambda d: d.replace(b'"100644"', b'"100645x"'),
        lambda d: d.replace(b'"a.txt"', b'"../a.txt"'),
        lambda d: d.replace(b'"a.txt"', b'"c.txt"'),  # out of order
        lambda d: d.replace(b'"b.txt"', b'"a.txt"'),  # duplicate
        lambda d: d.replace(b'"size":1', b'"size":1.0'),
        lambda d: d.replace(b"flightlog.snapshot/v1", b"flightlog.snapshot/v2"),
    ],
)
def test_manifest_parser_accepts_only_canonical(mutate: object) -> None:
    data = format_manifest([Entry("a.txt", 0o100644, SHA, 1), Entry("b.txt", 0o100644, SHA, 2)])
    parse_manifest(data)
    bad = mutate(data)  # type: ignore[operator]
    assert bad != data
    with pytest.raises(SnapshotError):
        parse_manifest(bad)


def test_compare_pairs_renames() -> None:
    a, b = Entry("old.txt", 0o100644, SHA, 1), Entry("new.txt", 0o100644, SHA, 1)
    c = Entry("c", 0o100644, "cd" * 32, 1)
    changes = compare_snapshots({"old.txt": a, "c": c}, {"new.txt": b, "c": Entry("c", 0o100755, "cd" * 32, 1)})
    assert [(ch.op, ch.path, ch.old_path) for ch in changes] == [("patch", "c", None), ("rename", "new.txt", "old.txt")]


# ---- taking snapshots --------------------------------------------------------------------


@pytest.mark.parametrize("git", [True, False], ids=["git-work-tree", "plain-folder"])
def test_second_snapshot_reads_no_file(tmp_path: Path, git: bool) -> None:
    root = _repo(tmp_path / "ws") if git else tmp_path / "ws"
    root.mkdir(exist_ok=True)
    _tree(root)
    _age(root)
    home = tmp_path / "home"
    first = take_snapshot(root, home)
    assert first.hashed == 4 and first.cached == 0 and first.files == 4
    second = take_snapshot(root, home)
    assert second.id == first.id
    assert second.hashed == 0 and second.cached == 4
    assert second.via_index is git  # a git work tree is answered by the private index

    (root / "src" / "a.py").write_text("print('A')\n")  # same size, new content
    third = take_snapshot(root, home)
    assert third.id != first.id and third.hashed == 1 and third.cached == 3
    assert third.entries["src/a.py"].sha256 != first.entries["src/a.py"].sha256


def test_changes_are_never_hidden_by_the_fast_path(tmp_path: Path) -> None:
    root = _repo(tmp_path / "ws")
    _tree(root)
    _age(root)
    home = tmp_path / "home"
    take_snapshot(root, home)
    take_snapshot(root, home)
    steps = [
        lambda: (root / "new.txt").write_text("new\n"),
        lambda: (root / "README").unlink(),
        lambda: os.chmod(root / "src" / "b.py", 0o755),
        lambda: (root / ".gitignore").write_text("*.txt\n"),
        lambda: (root / "src" / "b.py").write_text("print('c')\n"),
    ]
    last = take_snapshot(root, home).id
    for step in steps:
        step()
        snap = take_snapshot(root, home)
        assert snap.id != last
        assert snap.entries == parse_manifest(BlobStore(home / "blobs").get(snap.id))
        last = snap.id
    assert "new.txt" not in snap.entries and "README" not in snap.entries
    assert snap.entries["src/b.py"].mode == 0o100755


def test_gitignore_and_excludes(tmp_path: Path, home: Path, flightlog: CliRunner) -> None:
    root = _repo(tmp_path / "ws")
    _tree(root)
    (root / ".gitignore").write_text("*.log\n")
    (root / "debug.log").write_text("ignored\n")
    (root / ".env").write_text("TOKEN=1\n")
    (root / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_bytes(b"\0")
    (root / "x.tmp").write_text("tmp\n")
    out = flightlog("snapshot", str(root), "--exclude", "*.tmp", "--exclude", "build", "--json", check=True)
    summary = json.loads(out.stdout)
    names = set(load_snapshot(home, summary["id"]).entries)
    assert names == {".gitignore", "README", "data.bin", "src/a.py", "src/b.py"}
    assert summary["excluded"] == 4  # .env, key.pem, build/out.o, x.tmp (debug.log: git's own ignore)

    out = flightlog("snapshot", str(root), "--no-default-excludes", "--json", check=True)
    names = set(load_snapshot(home, json.loads(out.stdout)["id"]).entries)
    assert {".env", "key.pem", "x.tmp", "build/out.o"} <= names and "debug.log" not in names

    plain = flightlog("snapshot", str(root), check=True).stdout
    assert plain.startswith("sha256:") and "files" in plain and "stored new" in plain


@pytest.mark.parametrize("git", [True, False], ids=["git-work-tree", "plain-folder"])
def test_symlinks_are_recorded_not_followed(tmp_path: Path, git: bool) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOPSECRET-VALUE\n")
    root = _repo(tmp_path / "ws") if git else tmp_path / "ws"
    root.mkdir(exist_ok=True)
    (root / "a.txt").write_text("a\n")
    os.symlink(outside / "secret.txt", root / "link.txt")
    os.symlink(outside, root / "linkdir")
    home = tmp_path / "home"
    snap = take_snapshot(root, home)
    link = snap.entries["link.txt"]
    assert link.is_link
    assert BlobStore(home / "blobs").get(link.digest) == os.fsencode(outside / "secret.txt")
    assert snap.entries["linkdir"].is_link
    assert not any(p.startswith("linkdir/") for p in snap.entries)
    for blob in (home / "blobs").rglob("*"):
        assert not blob.is_file() or b"TOPSECRET" not in blob.read_bytes()


def test_mode_kept_and_restore_round_trip(tmp_path: Path) -> None:
    root = _repo(tmp_path / "ws")
    _tree(root)
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o755)
    os.chmod(root / "README", 0o600)
    os.symlink("src/a.py", root / "alias.py")
    home = tmp_path / "home"
    snap = take_snapshot(root, home)
    assert snap.entries["run.sh"].mode == 0o100755
    assert snap.entries["README"].mode == 0o100600
    assert snap.entries["alias.py"].mode == MODE_LINK

    loaded = load_snapshot(home, snap.id)
    assert loaded.entries == snap.entries
    store = BlobStore(home / "blobs")
    copy = tmp_path / "copy"
    for entry in loaded.entries.values():
        target = copy / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        data = store.get(entry.digest)
        if entry.is_link:
            os.symlink(os.fsdecode(data), target)
        else:
            target.write_bytes(data)
            os.chmod(target, entry.mode & 0o777)
    _repo_copy = subprocess.run(["git", "init", "-q", str(copy)], check=True)
    assert _repo_copy.returncode == 0
    again = take_snapshot(copy, tmp_path / "home2")
    assert again.id == snap.id  # same paths, modes and bytes: the same manifest


def test_load_snapshot_errors(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="missing"):
        load_snapshot(tmp_path, "sha256:" + SHA)
    digest = BlobStore(tmp_path / "blobs").put(b"not a manifest")
    with pytest.raises(SnapshotError, match="not JSON"):
        load_snapshot(tmp_path, digest)
