"""The fast path of `flightlog hook claude-code`: hand the hook JSON, unparsed, to a collector
running on this machine (its `/hooks/claude-code` endpoint does the recording and the policy
decision with everything already loaded) and print its answer. Only when no local collector
answers does the hook load its own machinery (`claude_hook.run_hook`) and work offline, spooling.

Only the C socket module is imported here: a Python start is most of what a
command hook costs Claude Code on every tool call, and every module imported adds to it.
"""

from __future__ import annotations

import _socket  # the C socket layer: socket.py would pull in selectors and enum (~4 ms a call)
import os
import sys

__all__ = ["run"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def run(home: str | None) -> int:
    """Answer one hook call from stdin; return the exit code. Never raises. (A local collector,
    when one answers, records into its own data directory; `home` matters only offline.)"""
    raw = sys.stdin.buffer.read()
    target = _local_collector(os.environ.get("FLIGHTLOG_URL") or "http://127.0.0.1:4318")
    if target is not None:
        conn = _socket.socket(_socket.AF_INET6 if ":" in target[0] else _socket.AF_INET, _socket.SOCK_STREAM)
        try:
            # connect() on a numeric address, not create_connection(): getaddrinfo would load the
            # idna codec, a few milliseconds on every tool call
            conn.settimeout(0.5)
            conn.connect(target)
        except OSError:
            conn.close()  # no collector here: record offline below
        else:
            answered = _delegate(conn, raw, target)
            if answered is not None:
                return answered
    import io
    from pathlib import Path  # pathlib alone costs more than the forwarding above

    from flightlog.capture.claude_hook import run_hook

    return run_hook(Path(home).expanduser() if home else None, stdin=io.BytesIO(raw))


def _local_collector(url: str) -> tuple[str, int] | None:
    """(host, port) of an http:// URL on this machine, else None (a remote collector cannot read
    this workspace, so the hook must do the work itself)."""
    if not url.startswith("http://"):
        return None
    hostport = url[7:].split("/", 1)[0]
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = hostport.partition(":")
    if host not in _LOOPBACK or (port and not port.isdigit()):
        return None
    return ("127.0.0.1" if host == "localhost" else host), int(port or 80)


def _delegate(conn: _socket.socket, raw: bytes, target: tuple[str, int]) -> int | None:
    """Forward the call and print the collector's answer; None when the collector did not take
    it (refused the token, or it is some other server on the port): then the hook must record
    and decide offline, as with no collector at all, or the call would go unrecorded and ungated."""
    head = [
        "POST /hooks/claude-code HTTP/1.1",
        f"Host: {target[0]}:{target[1]}",
        "Content-Type: application/json",
        f"Content-Length: {len(raw)}",
        "Connection: close",
    ]
    project = os.environ.get("CLAUDE_PROJECT_DIR")
    if project:  # the collector cannot see this process's environment
        head.append(f"Flightlog-Project-Dir: {project.encode('utf-8', 'surrogateescape').hex()}")
    token = os.environ.get("FLIGHTLOG_TOKEN")
    if token:
        head.append(f"Authorization: Bearer {token}")
    try:
        conn.settimeout(600)  # an `ask` may wait for a human's approval
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    except OSError:
        return 0  # fail open: the agent must not notice a collector that went away mid-call
    finally:
        conn.close()
    answer = b"".join(chunks)
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    parts = status_line.split()
    if len(parts) < 2 or parts[1] != b"200":
        return None
    if body.strip():
        sys.stdout.write(body.decode("utf-8", "replace") + "\n")
    return 0
