"""Kill the server with SIGKILL during sustained ingest: no acknowledged event is lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import make_event
from tests.server.conftest import Server


def test_sigkill_loses_no_acknowledged_event(serve: Callable[..., Server], home: Path) -> None:
    server = serve()
    acked: list[str] = []
    stop = threading.Event()

    def client(worker: int) -> None:
        n = 0
        with httpx.Client(timeout=10) as http:
            while not stop.is_set() and n < 100_000:
                batch = [make_event(worker * 1_000_000 + n + i) for i in range(20)]
                n += 20
                try:
                    r = http.post(server.url + "/api/v1/events", json=batch)
                except httpx.TransportError:
                    return  # the server is gone; unacknowledged batches may be lost
                if r.status_code == 200:
                    acked.extend(r.json()["event_ids"])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 2000

    restarted = serve()
    assert restarted.proc.poll() is None
    assert restarted.stop() == 0
    cli = [sys.executable, "-m", "flightlog", "--home", str(home)]
    exported = subprocess.run([*cli, "export"], capture_output=True, text=True, check=True).stdout
    stored = {json.loads(line)["event_id"] for line in exported.splitlines()}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged events lost"
    verify = subprocess.run([*cli, "verify"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
