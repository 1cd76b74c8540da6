"""`flightlog serve` as a user starts it: the address it prints works, and a second server on
the same data directory is refused in one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx


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
