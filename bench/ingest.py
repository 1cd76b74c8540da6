"""Side-by-side OTLP/HTTP ingest: flightlog vs Arize Phoenix vs an MLflow tracing server.

Run from the repository root: `.venv/bin/python bench/ingest.py [--spans 20000] [--runs 5]
[--peers phoenix,mlflow] [--out bench/results/ingest.json]`. One workload of agent-like traces
(20 spans each: an invoke_agent root, chat and execute_tool children with GenAI attributes and
~600 B of tool output or message text) is built once as ExportTraceServiceRequest protobuf
bodies of 500 spans, then POSTed by 4 keep-alive http.client threads to each server, round by
round (flightlog, each peer, again). "Stored spans/s" = spans / (first request -> every span
visible through the server's own query API; for flightlog, also in its search index). Peers
are pip-installed into their own venvs under ~/.cache/flightlog-bench (reused), run on SQLite
in a temporary directory on 127.0.0.1, and always stopped; a peer that cannot be installed,
started or fed is recorded as "unavailable: <reason>".
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

SPANS_PER_TRACE = 20
BATCH = 500
THREADS = 4
CACHE = Path.home() / ".cache" / "flightlog-bench"
PEER_PACKAGES = {"phoenix": "arize-phoenix", "mlflow": "mlflow"}
MODELS = ["gpt-4o-2024-08-06", "claude-sonnet-4-5", "gemini-2.5-pro"]
TOOLS = ["read_file", "run_tests", "grep", "edit_file", "shell"]
TEXT = (
    "tests/test_api.py::test_login_ok PASSED\nE   AssertionError: expected status 200, got 401\n"
    "src/app/server.py:42:def handle_request(req: Request) -> Response:\n    user = db.get_user(uid)\n"
    "    if user is None:\n        raise NotFound(uid)\nwebpack 5.91.0 compiled successfully in 2314 ms\n"
    "3 files changed, 41 insertions(+), 7 deletions(-)\nwarning: unused variable `cfg` in lru.go:88\n"
)


def _kv(key: str, value: str | int) -> KeyValue:
    v = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=v)


def build_workload(n_spans: int, seed: int = 7) -> list[bytes]:
    """Protobuf ExportTraceServiceRequest bodies of BATCH spans (whole traces) each."""
    rng = random.Random(seed)
    spans: list[Span] = []
    t0 = time.time_ns() - 3600 * 10**9
    for t in range(n_spans // SPANS_PER_TRACE):
        trace_id, root_id = rng.randbytes(16), rng.randbytes(8)
        start = t0 + t * 10**9
        conv = f"conv-{t:06d}"
        spans.append(Span(trace_id=trace_id, span_id=root_id, name="invoke_agent coder",
                          kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=start,
                          end_time_unix_nano=start + 900_000_000,
                          attributes=[_kv("gen_ai.operation.name", "invoke_agent"),
                                      _kv("gen_ai.agent.name", "coder"),
                                      _kv("gen_ai.conversation.id", conv)]))  # fmt: skip
        for i in range(1, SPANS_PER_TRACE):
            s = start + i * 40_000_000
            off = rng.randrange(len(TEXT) - 100)
            text = (TEXT[off:] + TEXT)[:600]
            if i % 2:
                model = rng.choice(MODELS)
                attrs = [_kv("gen_ai.operation.name", "chat"), _kv("gen_ai.request.model", model),
                         _kv("gen_ai.usage.input_tokens", rng.randrange(500, 9000)),
                         _kv("gen_ai.usage.output_tokens", rng.randrange(20, 800)),
                         _kv("gen_ai.output.messages", text)]  # fmt: skip
                name = f"chat {model}"
            else:
                tool = rng.choice(TOOLS)
                attrs = [_kv("gen_ai.operation.name", "execute_tool"), _kv("gen_ai.tool.name", tool),
                         _kv("gen_ai.tool.call.id", f"call_{rng.randrange(16**8):08x}"),
                         _kv("gen_ai.tool.call.result", text)]  # fmt: skip
                name = f"execute_tool {tool}"
            attrs.append(_kv("gen_ai.conversation.id", conv))
            spans.append(Span(trace_id=trace_id, span_id=rng.randbytes(8), parent_span_id=root_id,
                              name=name, kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=s,
                              end_time_unix_nano=s + 35_000_000, attributes=attrs))  # fmt: skip
    resource = Resource(attributes=[_kv("service.name", "bench-agent")])
    scope = InstrumentationScope(name="bench.ingest", version="1")
    return [
        ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=chunk)])]
        ).SerializeToString()
        for chunk in (spans[i : i + BATCH] for i in range(0, len(spans), BATCH))
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(cmd: list[str], timeout: float) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True).stdout.strip()


def ensure_venv(peer: str, timeout: float) -> Path:
    venv = CACHE / f"{peer}-venv"
    py = venv / "bin" / "python"
    pkg = PEER_PACKAGES[peer]
    try:
        run([str(py), "-c", f"import importlib.metadata as m; m.version({pkg!r})"], 60)
    except (OSError, subprocess.CalledProcessError):
        venv.parent.mkdir(parents=True, exist_ok=True)
        if not py.exists():
            run(["python3", "-m", "venv", str(venv)], 120)
        run([str(venv / "bin" / "pip"), "install", "-q", pkg], timeout)
    return venv


class Server:
    """A server subprocess in its own process group, stopped (TERM, then KILL) by stop()."""

    def __init__(self, cmd: list[str], env: dict[str, str], ready_url: str, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log.open("wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"not ready after 180 s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-300:].replace("\n", " | ")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def send_all(url: str, bodies: list[bytes], headers: dict[str, str]) -> list[str]:
    """POST every body from THREADS keep-alive clients (round-robin shares); return the failures.
    The client is the stdlib's http.client, the lightest at hand: it shares the 2 cores with the
    server under test, and httpx took a tenth of them."""
    parts = urllib.parse.urlsplit(url)
    hdrs = {"Content-Type": "application/x-protobuf", **headers}

    def worker(share: list[bytes]) -> list[str]:
        errors: list[str] = []
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=300)
        try:
            for body in share:
                try:
                    conn.request("POST", parts.path, body=body, headers=hdrs)
                    r = conn.getresponse()
                    text = r.read()
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(repr(exc))
                    conn.close()  # reconnects on the next request
                    continue
                if not 200 <= r.status < 300:
                    errors.append(f"{r.status} {text[:200]!r}")
        finally:
            conn.close()
        return errors

    with ThreadPoolExecutor(THREADS) as pool:
        shares = (bodies[i::THREADS] for i in range(THREADS))
        return [e for errors in pool.map(worker, shares) for e in errors]


def measure(
    url: str, bodies: list[bytes], n: int, count: Callable[[], int], verify: Callable[[], int], headers: dict[str, str]
) -> dict[str, Any]:
    """Time first request -> `count()` >= n (a cheap poll), then check `verify()` (an exact span count, untimed)."""
    t0 = time.perf_counter()
    errors = send_all(url, bodies, headers)
    sent = time.perf_counter() - t0
    if errors:
        return {"status": f"rejected: {len(errors)}/{len(bodies)} requests, e.g. {errors[0]}"}
    seen, deadline = 0, time.monotonic() + 600
    while (seen := count()) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    secs = time.perf_counter() - t0
    out = {"spans": n, "visible": seen, "send_seconds": round(sent, 3), "seconds": round(secs, 3)}
    out["verified_spans"] = exact = verify()
    if exact < n:
        return {**out, "status": f"incomplete: {exact}/{n} spans returned by the query API"}
    if seen < n:
        return {**out, "status": f"timeout: {seen}/{n} visible after {secs:.0f} s"}
    return {**out, "status": "ok", "stored_spans_per_s": round(n / secs)}


def bench_flightlog(tmp: Path, bodies: list[bytes], n: int) -> dict[str, Any]:
    port = free_port()
    cmd = [sys.executable, "-m", "flightlog", "serve", "--home", str(tmp / "fl"), "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    srv = Server(cmd, {}, f"{base}/healthz", tmp / "flightlog.log")
    try:

        def count() -> int:  # committed to the ledger and in the full-text index
            health = httpx.get(f"{base}/healthz").json()
            return min(int(health["entries"]), int(health["indexed"]))

        return measure(f"{base}/v1/traces", bodies, n, count, count, {})
    finally:
        srv.stop()


def bench_phoenix(venv: Path, tmp: Path, bodies: list[bytes], n: int) -> dict[str, Any]:
    port, work = free_port(), tmp / "phoenix"
    work.mkdir()
    env = {"PHOENIX_WORKING_DIR": str(work), "PHOENIX_PORT": str(port), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_SQL_DATABASE_URL": f"sqlite:///{work}/phoenix.db", "PHOENIX_GRPC_PORT": str(free_port()),
           "PHOENIX_TELEMETRY_ENABLED": "false"}  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    cmd = [str(venv / "bin" / "python"), "-m", "phoenix.server.main", "serve"]
    srv = Server(cmd, env, f"{base}/healthz", tmp / "phoenix.log")
    try:

        def count() -> int:  # GraphQL span count of the default project
            q = "{ projects { edges { node { name recordCount } } } }"
            r = httpx.post(f"{base}/graphql", json={"query": q}, timeout=60).json()
            return sum(e["node"]["recordCount"] for e in r["data"]["projects"]["edges"])

        def verify() -> int:  # REST span listing, paged with next_cursor
            total, cursor = 0, None
            with httpx.Client(timeout=120) as c:
                while True:
                    params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                    r = c.get(f"{base}/v1/projects/default/spans", params=params)
                    if r.status_code == 404:
                        return 0  # project not created yet
                    r.raise_for_status()
                    page = r.json()
                    total += len(page["data"])
                    if not (cursor := page.get("next_cursor")):
                        return total

        return measure(f"{base}/v1/traces", bodies, n, count, verify, {})
    finally:
        srv.stop()


def bench_mlflow(venv: Path, tmp: Path, bodies: list[bytes], n: int) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(venv / "bin" / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
           "--default-artifact-root", str(tmp / "mlartifacts")]  # fmt: skip
    srv = Server(cmd, {}, f"{base}/health", tmp / "mlflow.log")
    try:

        def trace_ids() -> list[str]:  # traces search API, paged
            ids: list[str] = []
            token = None
            with httpx.Client(timeout=120) as c:
                while True:
                    loc = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}
                    req: dict[str, Any] = {"locations": [loc], "max_results": 500}
                    if token:
                        req["page_token"] = token
                    r = c.post(f"{base}/api/3.0/mlflow/traces/search", json=req)
                    r.raise_for_status()
                    page = r.json()
                    ids += [info["trace_id"] for info in page.get("traces", [])]
                    if not (token := page.get("next_page_token")):
                        return ids

        def count() -> int:  # the OTLP handler stores a request's spans in one log_spans call
            return len(trace_ids()) * SPANS_PER_TRACE

        def verify() -> int:  # spans of every trace, through batchGet
            ids, total = trace_ids(), 0
            with httpx.Client(timeout=120) as c:
                for i in range(0, len(ids), 50):
                    r = c.get(f"{base}/api/3.0/mlflow/traces/batchGet", params={"trace_ids": ids[i : i + 50]})
                    r.raise_for_status()
                    total += sum(len(t.get("spans", [])) for t in r.json()["traces"])
            return total

        return measure(f"{base}/v1/traces", bodies, n, count, verify, {"x-mlflow-experiment-id": "0"})
    finally:
        srv.stop()


def interleaved(runs: int, tmp: Path, servers: dict[str, Callable[[Path], dict[str, Any]]]) -> dict[str, Any]:
    """Run every server `runs` times, round by round (flightlog, then each peer, then again), each
    run on a fresh server and directory, so that the machine's drift hits all alike. Report each
    server's median run, with every run's spans/s under "runs"; a failed run ends its series."""
    done: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for i in range(runs):
        for name, once in servers.items():
            if done[name] and done[name][-1].get("status") != "ok":
                continue
            (tmp / name / str(i)).mkdir(parents=True)
            try:
                done[name].append(once(tmp / name / str(i)))
            except Exception as exc:
                done[name].append({"status": f"unavailable: {str(exc)[:300]}"})
            print(f"round {i + 1}: {name} {done[name][-1].get('stored_spans_per_s', done[name][-1]['status'])}")
    results: dict[str, Any] = {}
    for name, series in done.items():
        if series[-1].get("status") != "ok":
            results[name] = series[-1]
            continue
        series.sort(key=lambda r: r["stored_spans_per_s"])
        results[name] = {**series[len(series) // 2], "runs": [r["stored_spans_per_s"] for r in series]}
    return results


def peer_version(venv: Path, pkg: str) -> str:
    return run([str(venv / "bin" / "python"), "-c", f"import importlib.metadata as m; print(m.version({pkg!r}))"], 60)


def machine() -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "cpu": cpu,
            "platform": platform.platform(), "date": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--peers", default="phoenix,mlflow")
    ap.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    ap.add_argument("--runs", type=int, default=1, help="runs per server; the median run is reported")
    ap.add_argument("--install-timeout", type=float, default=900)
    args = ap.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    if unknown := set(peers) - set(PEER_PACKAGES):
        ap.error(f"unknown peer(s) {sorted(unknown)}; known: {sorted(PEER_PACKAGES)}")
    n = args.spans // BATCH * BATCH
    bodies = build_workload(n)
    print(f"workload: {n} spans, {len(bodies)} requests, {sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB each")
    results: dict[str, dict[str, Any]] = {}
    versions: dict[str, str] = {}
    servers: dict[str, Callable[[Path], dict[str, Any]]] = {"flightlog": partial(bench_flightlog, bodies=bodies, n=n)}
    for peer in peers:
        t_inst = time.perf_counter()
        try:
            venv = ensure_venv(peer, args.install_timeout)
            versions[peer] = peer_version(venv, PEER_PACKAGES[peer])
        except Exception as exc:
            results[peer] = {"status": f"unavailable: install failed: {str(exc)[:300]}"}
            continue
        print(f"{peer} {versions[peer]} ready in {time.perf_counter() - t_inst:.0f} s")
        bench = bench_phoenix if peer == "phoenix" else bench_mlflow
        servers[peer] = partial(bench, venv, bodies=bodies, n=n)
    with tempfile.TemporaryDirectory(prefix="flightlog-ingest-") as d:
        results.update(interleaved(args.runs, Path(d), servers))
    fl = results["flightlog"].get("stored_spans_per_s")
    print(f"{'server':<10} {'spans':>7} {'seconds':>8} {'spans/s':>8} {'fl/peer':>8}  status")
    for name, r in results.items():
        rate = r.get("stored_spans_per_s")
        r["ratio_flightlog_over_this"] = round(fl / rate, 2) if fl and rate else None
        print(f"{name:<10} {r.get('spans', '-'):>7} {r.get('seconds', '-'):>8} {rate or '-':>8} "
              f"{r['ratio_flightlog_over_this'] or '-':>8}  {r['status']}")  # fmt: skip
    report = {"spans": n, "spans_per_trace": SPANS_PER_TRACE, "batch": BATCH, "threads": THREADS, "runs": args.runs,
              "request_bytes_mean": sum(map(len, bodies)) // len(bodies), "machine": machine(),
              "peer_versions": versions, "results": results}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
