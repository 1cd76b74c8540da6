"""Benchmark the web UI's page loads with 100,000 events in the ledger.

Fills a fresh data directory through the pipeline directly (the events of bench/ledger.py: 50 per
trace, ~1 KB each), builds the search index, starts `flightlog serve` on a free loopback port and
measures each page: the server's response (httpx, whole body) and, in headless Chromium (Debian's,
driven by Playwright), DOMContentLoaded and load from the Navigation Timing entry; plus, for the
trace view, the time until the browser has checked every event's inclusion proof. Medians of
--runs loads after one warm-up.

Run from the repository root: `.venv/bin/python bench/ui.py [--entries 100000] [--runs 15]
[--out bench/results/ui.json]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from flightlog.index import SearchIndex
from flightlog.ledger.log import Ledger
from flightlog.pipeline import Pipeline
from flightlog.redact import Redactor

TARGET_MS = 300
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _ledger_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_ledger", Path(__file__).with_name("ledger.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fill(home: Path, n: int) -> tuple[str, str]:
    """Store n events and index them; return (a trace id near the middle, a word to search)."""
    events, _ = _ledger_bench().make_events(n)
    ledger = Ledger.open(home)
    try:
        pipe = Pipeline(ledger, Redactor.default())
        for k in range(0, n, 1000):
            good, bad = pipe.prepare_batch(events[k : k + 1000])
            assert not bad, bad[:3]
            ledger.append(good)
        ledger.checkpoint()
    finally:
        ledger.close()
    index = SearchIndex(home / "ledger.db")
    try:
        index.catch_up()
    finally:
        index.close()
    return str(events[n // 2]["trace_id"]), "LRU"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTLOG_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flightlog", "serve", "--home", str(home), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def measure(url: str, pages: dict[str, str], runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client() as client:
        for name, path in pages.items():
            client.get(url + path)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                r = client.get(url + path)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (path, r.status_code)
            out[name] = {"path": path, "bytes": len(r.content), "server_ms": round(statistics.median(times), 1)}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for name, path in pages.items():
                page.goto(url + path)
                dcl, load, verified = [], [], []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    page.goto(url + path, wait_until="load")
                    timing = page.evaluate(
                        "(() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return [n.domContentLoadedEventEnd - n.startTime, n.loadEventEnd - n.startTime]; })()"
                    )
                    dcl.append(timing[0])
                    load.append(timing[1])
                    if name == "trace view":
                        page.wait_for_selector("#verify-summary.verified", timeout=30_000)
                        verified.append((time.perf_counter() - t0) * 1000)
                out[name]["dom_content_loaded_ms"] = round(statistics.median(dcl), 1)
                out[name]["load_ms"] = round(statistics.median(load), 1)
                if verified:
                    out[name]["all_proofs_verified_ms"] = round(statistics.median(verified), 1)
        finally:
            browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out", default="bench/results/ui.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="flightlog-bench-ui-") as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        trace, word = fill(home, args.entries)
        print(f"stored and indexed {args.entries} events in {time.perf_counter() - t0:.1f} s")
        proc, url = serve(home)
        try:
            pages = {
                "trace list": "/",
                "trace list, page 2": None,
                "trace list, filtered (agent + type)": "/?agent=aider&type=file_op",
                "trace list, filtered (file path)": "/?file_path=README.md",
                "search": f"/?q={word}",
                "trace view": f"/traces/{trace}",
            }
            cursor = httpx.get(url + "/api/v1/traces").json()["next_cursor"]
            pages["trace list, page 2"] = f"/?cursor={cursor}"
            results = measure(url, {k: v for k, v in pages.items() if v is not None}, args.runs)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    ledger = _ledger_bench()
    report = {
        "entries": args.entries,
        "traces": args.entries // 50,
        "runs": args.runs,
        "target_ms": TARGET_MS,
        "pages": results,
        "machine": ledger.machine(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for name, r in results.items():
        extra = f", all proofs verified {r['all_proofs_verified_ms']} ms" if "all_proofs_verified_ms" in r else ""
        print(
            f"{name:38} server {r['server_ms']:7.1f} ms  DOMContentLoaded {r['dom_content_loaded_ms']:7.1f} ms"
            f"  load {r['load_ms']:7.1f} ms{extra}"
        )


if __name__ == "__main__":
    main()
