"""`flightlog serve` as a user starts it: the address it prints works, and a second server on
the same data directory is refused in one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

PROTOBUF = "application/x-protobuf"


def test_printed_address_is_the_bound_one_and_a_busy_home_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTLOG_")}
    # An export token kept in the shell's profile is read only when exporting: serve still starts.
    env["FLIGHTLOG_EXPORT_HEADERS"] = "Authorization=Bearer%20abc"
    cli = [sys.executable, "-m", "flightlog", "serve", "--home", str(tmp_path / "home"), "--port", "0"]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.match(r"flightlog listening on (http://127\.0\.0\.1:(\d+)) ", first)
        assert match and match.group(2) != "0", first
        assert httpx.get(match.group(1) + "/healthz", timeout=10).json()["status"] == "ok"

        second = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 1
        assert "Traceback" not in second.stderr + second.stdout
        assert second.stderr.strip().splitlines() == [
            f"Error: the ledger in {tmp_path / 'home'} is in use by another flightlog process "
            "(a running `flightlog serve`?); send events to it instead"
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped; every acknowledged event is committed" in rest


def test_ctrl_c_under_load_finishes_requests_in_flight(tmp_path: Path) -> None:
    # Ctrl-C signals the terminal's whole process group: the server and its prepare worker.
    import threading

    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    from ingest import build_workload  # the bench's agent-like OTLP bodies

    bodies = build_workload(20_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTLOG_")}
    cli = [sys.executable, "-m", "flightlog", "serve", "--home", str(tmp_path / "home"), "--port", "0"]
    proc = subprocess.Popen(
        cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    assert proc.stdout is not None
    url = re.match(r"flightlog listening on (\S+) ", proc.stdout.readline())
    assert url
    statuses: list[int] = []

    def send() -> None:
        with httpx.Client(timeout=30) as client:
            for body in bodies * 3:
                try:
                    r = client.post(url.group(1) + "/v1/traces", content=body, headers={"content-type": PROTOBUF})
                except httpx.TransportError:
                    return  # the server has stopped listening
                statuses.append(r.status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    while len(statuses) < 8:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    for t in threads:
        t.join(timeout=60)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert "Traceback" not in rest and "stopped; every acknowledged event is committed" in rest


def test_a_home_open_to_other_users_is_warned_about(tmp_path: Path) -> None:
    home = tmp_path / "shared"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTLOG_")}
    cli = [sys.executable, "-m", "flightlog", "serve", "--home", str(home), "--port", "0"]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == f"warning: {home} is open to other users (mode 755); chmod 700 it\n"
        assert proc.stdout.readline().startswith("flightlog listening on ")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
