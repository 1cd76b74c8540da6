"""Benchmark workspace snapshots against git's own way of hashing a tree.

Generates a 10,000-file tree (text of mixed sizes, some binary, a .gitignore'd build folder) in a
temporary git repository, then times side by side in one run, interleaved run by run:
- flightlog, first snapshot (a fresh data directory: every file read, hashed and stored, blobs
  made durable) and repeated snapshot (nothing changed: the stat cache answers), both as the
  library call `take_snapshot` (what `exec` and the hook do) and as the `flightlog snapshot`
  command (adds the interpreter and CLI start);
- `git add -A && git write-tree` on the same work tree, first (a fresh GIT_DIR: every file
  hashed, compressed and written as an object) and repeated (the index answers).

Run from the repository root: `.venv/bin/python bench/snapshot.py [--runs 5] [--files 10000]
[--out bench/results/snapshot.json]`. Target: the repeated snapshot faster than git's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from flightlog.snapshot import take_snapshot  # noqa: E402
from flightlog.snapshot_io import RACY_NS  # noqa: E402

_WORDS = [
    "agent",
    "trace",
    "span",
    "file",
    "patch",
    "diff",
    "commit",
    "ledger",
    "merkle",
    "blob",
    "snapshot",
    "tool",
    "model",
    "prompt",
]


def make_tree(root: Path, files: int, seed: int = 7) -> int:
    """Write `files` files under `root` (100 per folder) and return their total size: 85% text
    of 100 B–8 KiB, 10% text of 8–64 KiB, 5% binary of 1–256 KiB; plus ignored build output."""
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        folder = root / f"pkg{i // 1000:02d}" / f"mod{(i // 100) % 10:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        kind = rng.random()
        if kind < 0.05:
            data = rng.randbytes(rng.randint(1024, 256 * 1024))
            name = f"asset{i}.bin"
        else:
            size = rng.randint(100, 8 * 1024) if kind < 0.90 else rng.randint(8 * 1024, 64 * 1024)
            line = " ".join(rng.choice(_WORDS) for _ in range(12)) + "\n"
            data = (f"# file {i}\n" + line * (size // len(line) + 1)).encode()[:size]
            name = f"file{i}.py"
        (folder / name).write_bytes(data)
        total += len(data)
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "build").mkdir()
    for i in range(200):  # ignored: neither side may read these
        (root / "build" / f"out{i}.o").write_bytes(b"\0" * 4096)
    return total


def _git(args: list[str], env: dict[str, str], cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "snapshot.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="flightlog-bench-snapshot-"))
    try:
        tree = work / "tree"
        tree.mkdir()
        size = make_tree(tree, args.files)
        base_env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b"}
        base_env["GIT_COMMITTER_EMAIL"] = "b@b"
        _git(["init", "-q"], base_env, tree)  # the workspace's own repository, all files committed
        _git(["add", "-A"], base_env, tree)
        _git(["commit", "-qm", "tree"], base_env, tree)
        # Files written less than RACY_NS ago are always re-read (their stat could still change
        # within one timestamp tick); a real workspace is mostly older than that.
        time.sleep(RACY_NS / 1e9 + 0.2)
        os.sync()  # the generated tree's own dirty pages must not count against either side
        exe = Path(sys.executable).parent / "flightlog"
        cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "flightlog"]
        times: dict[str, list[float]] = {}
        counters: dict[str, Any] = {}
        for run in range(args.runs):
            home = work / f"home{run}"
            home.mkdir(mode=0o700)
            first = take_snapshot(tree, home)
            times.setdefault("flightlog first (library)", []).append(first.seconds)
            again = take_snapshot(tree, home)
            times.setdefault("flightlog repeated (library)", []).append(again.seconds)
            counters = {"files": first.files, "first_hashed": first.hashed, "repeated_hashed": again.hashed}
            counters["repeated_cached"] = again.cached
            counters["blob_bytes_first"] = first.new_bytes
            cli_home = work / f"clihome{run}"
            cmd = [*cli, "--home", str(cli_home), "snapshot", str(tree)]

            def cli_round(cmd: list[str] = cmd) -> None:
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

            times.setdefault("flightlog first (CLI)", []).append(_timed(cli_round))
            times.setdefault("flightlog repeated (CLI)", []).append(_timed(cli_round))
            env = {**base_env, "GIT_DIR": str(work / f"git{run}"), "GIT_WORK_TREE": str(tree)}
            _git(["init", "-q"], env, tree)

            def git_round(env: dict[str, str] = env) -> None:
                _git(["add", "-A"], env, tree)
                _git(["write-tree"], env, tree)

            times.setdefault("git add -A && git write-tree, first", []).append(_timed(git_round))
            times.setdefault("git add -A && git write-tree, repeated", []).append(_timed(git_round))
            shutil.rmtree(home)
            shutil.rmtree(cli_home)
            shutil.rmtree(work / f"git{run}")
        medians = {k: round(statistics.median(v) * 1000, 1) for k, v in times.items()}
        lib = medians["flightlog repeated (library)"]
        git = medians["git add -A && git write-tree, repeated"]
        result = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
            "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
            "tree": {"files": args.files, "bytes": size, "ignored_files": 200},
            "runs": args.runs,
            "median_ms": medians,
            "all_ms": {k: [round(x * 1000, 1) for x in v] for k, v in times.items()},
            "counters": counters,
            "repeated_speedup_vs_git": {
                "library": round(git / lib, 2),
                "cli": round(git / medians["flightlog repeated (CLI)"], 2),
            },
            "target_met": lib < git,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        for name, ms in medians.items():
            print(f"{name:45} {ms:9.1f} ms")
        print(json.dumps(result["repeated_speedup_vs_git"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
