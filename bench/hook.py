"""Benchmark `flightlog hook claude-code`: the wall time Claude Code waits on each hook call.

Side by side in one run, interleaved round by round so machine noise hits all alike:
- `python3 -c pass` (the issue's yardstick: the `python3` on PATH) and `<venv python> -c pass`
  (the interpreter the hook runs on: pure start-up cost);
- PreToolUse of a Read with a collector running on this machine: the command hook forwards the
  hook JSON to it and prints its answer (the common set-up);
- PreToolUse of a Read with no collector (the hook works offline: the built-in Rego pack
  compiles in the hook process), and with one more user policy;
- PreToolUse of a Bash (scans the workspace: `git ls-files` + stat) in a 200-file git repo;
- PostToolUse of an Edit, sent to a running collector (a durable commit per call);
- PreToolUse of a Read as a Claude Code `"type": "http"` hook: one POST to the collector's
  `/hooks/claude-code` on a new connection, no process started.

Run from the repository root: `.venv/bin/python bench/hook.py [--rounds 40]
[--out bench/results/hook.json]`. Target: PreToolUse median ≤ 2× `python3 -c pass`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0
POLICY = """package flightlog
import rego.v1

decision := {"decision": "deny", "reason": "no force push"} if {
    input.action.tool_name == "Bash"
    contains(input.action.input.command, "push --force")
}
"""


def _hook_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "flightlog"
    return (
        [str(exe), "hook", "claude-code"]
        if exe.exists()
        else [sys.executable, "-m", "flightlog", "hook", "claude-code"]
    )


def _timed(cmd: list[str], stdin: bytes, env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr.decode()[:500]}")
    return elapsed * 1000


def _post_timed(url: str, body: bytes) -> float:
    """One HTTP hook call as Claude Code makes it: a POST on a new connection."""
    parts = urlsplit(url)
    start = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    conn.request("POST", "/hooks/claude-code", body, {"Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    conn.close()
    elapsed = time.perf_counter() - start
    if answer.status != 200:
        raise SystemExit(f"HTTP hook answered {answer.status}")
    return elapsed * 1000


def _repo(folder: Path, files: int) -> Path:
    folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    for i in range(files):
        sub = folder / f"pkg{i % 10}"
        sub.mkdir(exist_ok=True)
        (sub / f"mod{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n" * 20)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flightlog", "serve", "--home", str(home), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hook.json")
    args = parser.parse_args()
    system_python = shutil.which("python3") or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        repo = _repo(base / "repo", 200)
        home_plain, home_policy, home_server = base / "home-plain", base / "home-policy", base / "home-server"
        (home_policy / "policies").mkdir(parents=True)
        (home_policy / "policies" / "force-push.rego").write_text(POLICY)
        server, url = _start_server(home_server)
        try:
            clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTLOG_", "CLAUDE_"))}

            def env(home: Path, target: str = "http://127.0.0.1:9") -> dict[str, str]:
                return {**clean, "FLIGHTLOG_HOME": str(home), "FLIGHTLOG_URL": target, "CLAUDE_PROJECT_DIR": str(repo)}

            def payload(event: str, tool: str, tool_input: dict[str, Any], n: int, **more: Any) -> bytes:
                return json.dumps(
                    {
                        "session_id": "bench-session",
                        "cwd": str(repo),
                        "hook_event_name": event,
                        "tool_name": tool,
                        "tool_input": tool_input,
                        "tool_use_id": f"toolu_{n}",
                        **more,
                    }
                ).encode()

            read = {"file_path": str(repo / "pkg1" / "mod1.py")}
            edit_path = repo / "pkg2" / "mod2.py"
            edit = {"file_path": str(edit_path), "old_string": "x + 2", "new_string": "x + 3"}
            cases: dict[str, list[float]] = {k: [] for k in CASES}
            hook = _hook_cmd()
            for n in range(args.rounds):
                cases["python3 -c pass"].append(_timed([system_python, "-c", "pass"], b"", clean, repo))
                cases["venv python -c pass"].append(_timed([sys.executable, "-c", "pass"], b"", clean, repo))
                pre_read = payload("PreToolUse", "Read", read, n)
                cases["PreToolUse Read, collector running (hook forwards)"].append(
                    _timed(hook, payload("PreToolUse", "Read", read, 40_000 + n), env(home_server, url), repo)
                )
                cases["PreToolUse Read"].append(_timed(hook, pre_read, env(home_plain), repo))
                cases["PreToolUse Read, 1 Rego policy"].append(_timed(hook, pre_read, env(home_policy), repo))
                bash = payload("PreToolUse", "Bash", {"command": "pytest -q"}, 10_000 + n)
                cases["PreToolUse Bash (200-file repo scan)"].append(_timed(hook, bash, env(home_plain), repo))
                # an Edit round trip against the running collector: Pre, the edit, then Post
                pre_edit = payload("PreToolUse", "Edit", edit, 20_000 + n)
                _timed(hook, pre_edit, env(home_server, url), repo)
                text = edit_path.read_text()
                edit_path.write_text(
                    text.replace("x + 2", "x + 3") if "x + 2" in text else text.replace("x + 3", "x + 2")
                )
                post = payload("PostToolUse", "Edit", edit, 20_000 + n, tool_response={"filePath": str(edit_path)})
                cases["PostToolUse Edit → collector"].append(_timed(hook, post, env(home_server, url), repo))
                http_pre = payload("PreToolUse", "Read", read, 30_000 + n)
                cases["PreToolUse Read, HTTP hook (no process)"].append(_post_timed(url, http_pre))
        finally:
            server.terminate()
            server.wait(timeout=30)
    medians = {k: round(statistics.median(v), 2) for k, v in cases.items()}
    baseline = medians["python3 -c pass"]
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
        "rounds": args.rounds,
        "median_ms": medians,
        "p90_ms": {k: round(statistics.quantiles(v, n=10)[-1], 2) for k, v in cases.items()},
        "ratio_to_python3_pass": {k: round(v / baseline, 2) for k, v in medians.items()},
        "ratio_to_venv_python_pass": {k: round(v / medians["venv python -c pass"], 2) for k, v in medians.items()},
        "target": f"{MAIN} median <= {TARGET_RATIO}x python3 -c pass",
        "target_met": medians[MAIN] <= TARGET_RATIO * baseline,
        # the honest yardstick when `python3` on PATH is a slow shim (pyenv): the bare interpreter
        "met_against_bare_interpreter": medians[MAIN] <= TARGET_RATIO * medians["venv python -c pass"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, medians))
    for k, v in medians.items():
        print(f"{k:<{width}}  median {v:7.2f} ms  ×{result['ratio_to_python3_pass'][k]:.2f} python3 -c pass")
    print(f"target {result['target']}: {'met' if result['target_met'] else 'NOT met'}")
    bare = "met" if result["met_against_bare_interpreter"] else "NOT met"
    print(f"against the bare interpreter start (venv python -c pass): {bare}; written to {args.out}")


MAIN = "PreToolUse Read, collector running (hook forwards)"
CASES = [
    "python3 -c pass",
    "venv python -c pass",
    "PreToolUse Read, collector running (hook forwards)",
    "PreToolUse Read",
    "PreToolUse Read, 1 Rego policy",
    "PreToolUse Bash (200-file repo scan)",
    "PostToolUse Edit → collector",
    "PreToolUse Read, HTTP hook (no process)",
]

if __name__ == "__main__":
    main()
