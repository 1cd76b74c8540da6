"""Anonymous loopback access is for local programs, not for web pages in a local browser."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx

from flightlog.server.auth import TokenStore
from tests.conftest import make_event
from tests.server.conftest import Server

EVIL = {"host": "evil.example:4318"}  # DNS rebinding: the page's own name, resolved to 127.0.0.1
CROSS = {"origin": "http://attacker.test"}  # a page on another site, posting without a preflight


def test_pages_of_other_sites_get_nothing_without_a_token(serve: Callable[..., Server], home: Path) -> None:
    server = serve()
    assert httpx.post(server.url + "/api/v1/events", json=[make_event(0)]).status_code == 200
    trace = make_event(0)["trace_id"]
    for path in ("/api/v1/traces", f"/api/v1/traces/{trace}", "/api/v1/search?q=fix", "/", "/metrics"):
        r = httpx.get(server.url + path, headers=EVIL)
        assert r.status_code == 403, path
        assert trace not in r.text and "Host of localhost" in r.json()["error"]
    # An <img> or <script> of another page: a GET with no Origin, but the browser says where from.
    img = httpx.get(server.url + "/api/v1/search?q=fix", headers={"sec-fetch-site": "cross-site"})
    assert img.status_code == 403
    # A "simple" cross-origin POST: text/plain, so the browser sends it without asking first.
    hook = '{"session_id": "s1", "hook_event_name": "UserPromptSubmit", "prompt": "injected", "cwd": "/tmp"}'
    plain = {**CROSS, "content-type": "text/plain"}
    assert httpx.post(server.url + "/hooks/claude-code", content=hook, headers=plain).status_code == 403
    rollback = httpx.post(f"{server.url}/api/v1/traces/{trace}/rollback", content='{"dry_run": false}', headers=plain)
    assert rollback.status_code == 403
    # Another local web app (a dev server on another port) is another origin too.
    other = {"origin": "http://127.0.0.1:9", "content-type": "text/plain"}
    assert httpx.post(server.url + "/hooks/claude-code", content=hook, headers=other).status_code == 403
    assert httpx.get(server.url + "/healthz").json()["entries"] == 1  # nothing was stored
    assert httpx.get(server.url + "/api/v1/search", params={"q": "injected"}).json()["hits"] == []


def test_local_programs_and_tokens_are_still_let_in(serve: Callable[..., Server], home: Path) -> None:
    server = serve()
    port = server.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"0.0.0.0:{port}", socket.gethostname()):
        assert httpx.get(server.url + "/api/v1/traces", headers={"host": host}).status_code == 200
    same = {"origin": server.url, "sec-fetch-site": "same-origin"}  # the UI's own pages posting to their server
    assert httpx.post(server.url + "/api/v1/events", json=[make_event(0)], headers=same).status_code == 200
    secret = TokenStore(home).create("read", "guard")[1]
    token = {"authorization": f"Bearer {secret}"}
    assert httpx.get(server.url + "/api/v1/traces", headers={**EVIL, **token}).status_code == 200
