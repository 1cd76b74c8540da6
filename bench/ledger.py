"""Benchmark the recorder core: durable append (validate + redact + canonicalize + group commit)
and full `verify_ledger`, on ~1 KB agent-like events in a fresh temporary data directory.

Run from the repository root: `.venv/bin/python bench/ledger.py [--entries 100000]
[--out bench/results/ledger.json]`, or `--profile` for a cProfile of one 20,000-event append
phase (top 25 by cumulative time; writes no results). Per-batch figures time prepare_batch +
append of one batch; "p95" is the throughput of the 95th-percentile (slow) batch.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import statistics
import string
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flightlog.ledger.log import Ledger
from flightlog.ledger.verify import verify_ledger
from flightlog.pipeline import Pipeline
from flightlog.redact import Redactor

BATCH = 1000
PROFILE_ENTRIES = 20_000
TARGET_APPEND = 20_000  # durable appends/s
TARGET_VERIFY = 50_000  # verified entries/s
# fmt: off
FILES = ["src/app/server.py", "src/app/models/user.py", "tests/test_api.py", "README.md",
         "pkg/cache/lru.go", "web/src/components/Table.tsx", "docs/setup.md"]
COMMANDS = ["pytest -q tests/test_api.py -k login", "git diff --stat HEAD~1", "npm run build",
            "rg -n 'def handle_' src/", "go test ./pkg/... -run TestLRU", "make lint",
            "curl -s http://localhost:8080/healthz", "ls -la src/app"]
OUT_LINES = ["tests/test_api.py::test_login_ok PASSED", "ok  \tpkg/cache\t0.412s",
             "src/app/server.py:42:def handle_request(req: Request) -> Response:",
             "webpack 5.91.0 compiled successfully in 2314 ms", "3 files changed, 41 insertions(+)",
             "E   AssertionError: expected status 200, got 401",
             "drwxr-xr-x  5 dev dev 4096 models",
             "warning: unused variable `cfg` in pkg/cache/lru.go:88"]
CODE = ["    user = db.get_user(user_id)", "    if user is None:",
        "        raise NotFound(user_id)",
        "def test_login_ok(client):", "    resp = client.post('/login', json=creds)",
        "    return Response(status=200, body=json.dumps(data))",
        "import { useState } from 'react';",
        "func (c *LRU) Get(key string) (any, bool) {"]
PROSE = ["Fix the failing login test and keep the public API unchanged.",
         "The cache evicts entries too early; check the LRU ordering on Get.",
         "Please add pagination to the table component, 50 rows per page.",
         "Run the linter afterwards and summarise what changed in the PR description.",
         "Do not touch the migrations; only the handler and its tests."]
# fmt: on
ALNUM = string.ascii_letters + string.digits


def _fill(rng: random.Random, pool: list[str], size: int, sep: str = "\n") -> str:
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        parts.append(rng.choice(pool))
    return sep.join(parts)


def make_events(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[str]]:
    """Return n producer events (~1 KB canonical once stored) and the secrets ~1% of them hold."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 24, 17, tzinfo=UTC)
    secret_at = set(rng.sample(range(n), max(1, n // 100)))
    events: list[dict[str, Any]] = []
    secrets: list[str] = []
    trace, session, parent = "", "", None
    for i in range(n):
        if i % 50 == 0:  # a new agent run: 50 events per trace
            trace = f"{rng.getrandbits(128) | 1:032x}"
            session = f"sess-{rng.getrandbits(64):016x}"
            parent = None
        span = f"{rng.getrandbits(64) | 1:016x}"
        kind = ("shell", "tool_call", "file_op", "prompt")[i % 4]
        secret = ""
        if i in secret_at:
            secret = "ghp_" + "".join(rng.choices(ALNUM, k=36))
            secrets.append(secret)
        leak = f"\nexport GITHUB_TOKEN={secret}" if secret else ""
        if kind == "shell":
            payload: dict[str, Any] = {
                "command": rng.choice(COMMANDS),
                "cwd": "/home/dev/acme",
                "exit_code": rng.choice((0, 0, 0, 1)),
                "stdout": _fill(rng, OUT_LINES, 520) + leak,
            }
        elif kind == "tool_call":
            payload = {
                "tool_name": rng.choice(("Read", "Grep", "Edit")),
                "tool_call_id": "toolu_" + "".join(rng.choices(ALNUM, k=24)),
                "input": {"file_path": rng.choice(FILES), "limit": 200},
                "output": _fill(rng, CODE, 520) + leak,
            }
        elif kind == "file_op":
            diff = "\n".join(rng.choice("+- ") + line for line in _fill(rng, CODE, 480).split("\n"))
            payload = {
                "op": "patch",
                "file_path": rng.choice(FILES),
                "checksum_before": f"sha256:{rng.getrandbits(256):064x}",
                "checksum_after": f"sha256:{rng.getrandbits(256):064x}",
                "diff": "@@ -10,7 +10,8 @@\n" + diff + leak,
            }
        else:
            payload = {"text": _fill(rng, PROSE, 620, " ") + leak, "template": None}
        ts = start + timedelta(milliseconds=37 * i + rng.randrange(37))
        events.append(
            {
                "trace_id": trace,
                "span_id": span,
                "parent_span_id": parent,
                "type": kind,
                "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "agent_id": rng.choice(("claude-code", "codex-cli", "aider")),
                "session_id": session,
                "duration_ms": rng.randrange(5, 4000),
                "payload": payload,
            }
        )
        parent = span
    return events, secrets


def append_all(pipe: Pipeline, events: list[dict[str, Any]]) -> tuple[list[float], float, int]:
    """Prepare + append in batches of BATCH; return per-batch seconds, prepare seconds, bytes."""
    per_batch, prep, size = [], 0.0, 0
    for k in range(0, len(events), BATCH):
        t0 = time.perf_counter()
        good, bad = pipe.prepare_batch(events[k : k + BATCH])
        t1 = time.perf_counter()
        pipe.ledger.append(good)
        per_batch.append(time.perf_counter() - t0)
        prep += t1 - t0
        assert not bad, bad[:3]
        size += sum(len(e.leaf) for e in good)
    return per_batch, prep, size


def machine() -> dict[str, Any]:
    """Return facts about this machine (no paths)."""
    cpu = None
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": nproc,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run(n: int) -> dict[str, Any]:
    events, secrets = make_events(n)
    gc.freeze()  # the inputs are the bench's heap, not the recorder's: keep gen-2 GC off them
    with tempfile.TemporaryDirectory(prefix="flightlog-bench-") as tmp:
        ledger = Ledger.open(Path(tmp))
        pipe = Pipeline(ledger, Redactor.default())
        t0 = time.perf_counter()
        per_batch, prep, size = append_all(pipe, events)
        total = time.perf_counter() - t0
        ledger.checkpoint()
        leaked = redacted = 0  # untimed check: no secret reached the stored leaves
        for _, _, leaf, _ in ledger.store.iter_entries():
            leaf = bytes(leaf)
            redacted += b"[REDACTED:github-pat]" in leaf
            leaked += b"ghp_" in leaf and any(s.encode() in leaf for s in secrets)
        assert leaked == 0 and redacted == len(secrets), (leaked, redacted, len(secrets))
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            report = verify_ledger(ledger)
            runs.append(time.perf_counter() - t0)
            assert report.entries == n
        ledger.close()
    lat = sorted(per_batch)
    p95 = statistics.quantiles(lat, n=20)[18] if len(lat) > 1 else lat[0]
    verify_s = statistics.median(runs)
    return {
        "entries": n,
        "batch_size": BATCH,
        "inputs_gc_frozen": True,
        "mean_leaf_bytes": round(size / n),
        "secrets": {"events": len(secrets), "redacted": redacted, "leaked": leaked},
        "append": {
            "seconds": round(total, 3),
            "events_per_s": round(n / total),
            "target": TARGET_APPEND,
            "pass": n / total >= TARGET_APPEND,
            "prepare_share": round(prep / sum(per_batch), 3),
            "batch_ms_median": round(statistics.median(lat) * 1e3, 2),
            "batch_ms_p95": round(p95 * 1e3, 2),
            "batch_events_per_s_median": round(BATCH / statistics.median(lat)),
            "batch_events_per_s_p95": round(BATCH / p95),
        },
        "verify": {
            "runs_s": [round(r, 3) for r in runs],
            "entries_per_s": round(n / verify_s),
            "target": TARGET_VERIFY,
            "pass": n / verify_s >= TARGET_VERIFY,
        },
        "machine": machine(),
    }


def profile() -> None:
    events, _ = make_events(PROFILE_ENTRIES)
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="flightlog-bench-") as tmp:
        ledger = Ledger.open(Path(tmp))
        prof = cProfile.Profile()
        prof.runcall(append_all, Pipeline(ledger, Redactor.default()), events)
        ledger.close()
    pstats.Stats(prof).strip_dirs().sort_stats("cumulative").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/ledger.json"))
    ap.add_argument("--profile", action="store_true", help="cProfile one 20,000-event append")
    args = ap.parse_args()
    if args.profile:
        return profile()
    n = args.entries
    res = run(n)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    a, v, m = res["append"], res["verify"], res["machine"]
    print(f"{n} entries, batch {BATCH}, mean leaf {res['mean_leaf_bytes']} B, secrets {res['secrets']}")
    print(f"machine: {m['nproc']} cpu, {m['cpu']}, Python {m['python']}, {m['platform']}")
    print(f"{'metric':<32}{'result':>10}{'target':>10}  status")
    for name, val, sec in [
        ("durable append, events/s", a["events_per_s"], a),
        ("  per-batch median, events/s", a["batch_events_per_s_median"], None),
        ("  per-batch p95 (slow), events/s", a["batch_events_per_s_p95"], None),
        ("full verify, entries/s", v["entries_per_s"], v),
    ]:
        goal = f"{sec['target']:>10,}  {'PASS' if sec['pass'] else 'FAIL'}" if sec else ""
        print(f"{name:<32}{val:>10,}{goal}")
    print(f"prepare (validate+redact+canonicalize) share of append: {a['prepare_share']:.0%}")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
