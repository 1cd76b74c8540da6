"""A real `flightlog serve` process on a free loopback port, stopped after each test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    home: Path
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, *args: str) -> Server:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTLOG_")}
    log = home.parent / f"server-{port}.log"
    with open(log, "w") as out:  # a file, not a pipe: a chatty server can never block on it
        proc = subprocess.Popen(
            [sys.executable, "-m", "flightlog", "serve", "--home", str(home), "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Server(url, proc, home, log)
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start in 30 s")


@pytest.fixture
def serve(home: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        server = start_server(home, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=30)
