"""Sending events to a running collector (`$FLIGHTLOG_URL`, default http://127.0.0.1:4318).

Written on a raw socket rather than urllib or http.client: the Claude Code hook sends on every
tool call and those modules cost more to import than the request takes on loopback. It speaks
just the HTTP/1.1 this needs: one POST, `Connection: close`, a status line back.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["DEFAULT_URL", "SendError", "collector_url", "post_events"]

DEFAULT_URL: Final = "http://127.0.0.1:4318"
EVENTS_PATH: Final = "/api/v1/events"


class SendError(Exception):
    """The collector could not take the events: `retry` is true when sending later may work
    (not reachable, overloaded), false when the collector refused them (4xx)."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def collector_url() -> str:
    """Return $FLIGHTLOG_URL, or the default local collector."""
    return os.environ.get("FLIGHTLOG_URL") or DEFAULT_URL


def post_events(events: Sequence[dict[str, Any]], url: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """POST events as NDJSON to the collector's events API and return its JSON answer; a 2xx
    means they are durably stored. Raises SendError otherwise. Uses $FLIGHTLOG_TOKEN as the
    bearer token when set."""
    parts = urlsplit(url or collector_url())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SendError(f"FLIGHTLOG_URL must be an http(s) URL, got {parts.scheme or 'nothing'}:", retry=False)
    body = b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    head = [
        f"POST {parts.path.rstrip('/')}{EVENTS_PATH} HTTP/1.1",
        f"Host: {host_header}",
        "Content-Type: application/x-ndjson",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    token = os.environ.get("FLIGHTLOG_TOKEN")
    if token:
        head.append(f"Authorization: Bearer {token}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout) as raw:
            sock: socket.socket = raw
            if parts.scheme == "https":
                import ssl  # only for remote collectors; loopback stays plain and fast

                sock = ssl.create_default_context().wrap_socket(raw, server_hostname=parts.hostname)
            sock.sendall(request)
            answer = _read_all(sock)
    except OSError as exc:
        raise SendError(f"collector at {parts.scheme}://{host_header} not reachable ({exc})", retry=True) from None
    status, payload = _parse_response(answer)
    if 200 <= status < 300:
        return payload
    message = payload.get("error") if isinstance(payload.get("error"), str) else f"HTTP {status}"
    raise SendError(f"collector refused the events: {message}", retry=status in (408, 429) or status >= 500)


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _parse_response(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise SendError("collector sent a malformed HTTP response", retry=True)
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        payload = {}
    return int(status_line[1]), payload if isinstance(payload, dict) else {}


def _unchunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)
