"""The web UI in a real headless Chromium (Debian's, installed by scripts/setup) driven by
Playwright, against a real `flightlog serve` holding recorded data: the example session and a
Claude Code session recorded through the collector's HTTP hook (edits with diffs, a denied call)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.capture.test_claude_hook import HttpAgent, _install_policy, _script_session
from tests.conftest import TRACE, make_event
from tests.server.conftest import Server, start_server

CHROMIUM = "/usr/bin/chromium"
# As this machine's browser tests run it: no sandbox (root), nothing that reaches the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXAMPLE = Path(__file__).parents[2] / "examples" / "session.jsonl"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose ledger holds the example session and a Claude Code session."""
    base = tmp_path_factory.mktemp("ui")
    home, workspace = base / "home", base / "repo"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(workspace)], check=True)
    (workspace / "app.py").write_text("def add(a, b):\n    return a - b\n")
    (workspace / "notes.txt").write_text("old notes\n")
    (workspace / "build").mkdir()
    home.mkdir(mode=0o700)
    _install_policy(home)
    server = start_server(home)
    try:
        answer = httpx.post(
            f"{server.url}/api/v1/events",
            content=EXAMPLE.read_bytes(),
            headers={"content-type": "application/x-ndjson"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        _script_session(HttpAgent(home, workspace, server.url), workspace)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), "Chromium is missing: run scripts/setup (apt-get install chromium)"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, errors


def _hook_trace(server: Server) -> str:
    """The trace of the Claude Code session's first turn (the one with edits and a denial)."""
    traces = httpx.get(f"{server.url}/api/v1/traces", params={"type": "file_op", "agent": "claude-code"}).json()
    ids = [t["trace_id"] for t in traces["traces"] if t["trace_id"] != TRACE]
    assert ids
    return str(ids[-1])


def _save_artifact(path: Path) -> None:
    target = os.environ.get("FLIGHTLOG_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def test_list_search_open_trace_expand_span_see_diff_and_verified(recorded: Server, page: Any, tmp_path: Path) -> None:
    page.goto(recorded.url + "/")
    expect(page.locator("#traces .trace-row")).to_have_count(3)
    expect(page.locator("#cp-size")).to_have_text(str(httpx.get(recorded.url + "/healthz").json()["entries"]))

    page.fill("#f-q", "psql")
    page.press("#f-q", "Enter")
    expect(page).to_have_url(recorded.url + "/?q=psql")
    expect(page.locator("#traces .trace-row")).to_have_count(1)
    expect(page.locator("#traces mark").first).to_have_text("psql")

    page.click(f"a[href='/traces/{TRACE}']")
    expect(page).to_have_url(f"{recorded.url}/traces/{TRACE}")
    expect(page.locator("#verify-summary")).to_have_text("6 of 6 events verified")
    expect(page.locator("#waterfall .badge.verified")).to_have_count(6)
    expect(page.locator("#cp-sig")).to_have_text("signature checked in this browser")

    file_op = page.locator("#waterfall .span-row", has=page.locator(".type-file_op"))
    file_op.locator("button.span").click()
    detail = page.locator(".detail:not([hidden])")
    expect(detail.locator("h2")).to_contain_text("patch src/api.py")
    expect(detail.locator("table.diff.unified tr.add")).to_contain_text("return {}")
    expect(detail.locator("table.diff.unified tr.del")).to_contain_text("return None")
    expect(detail.locator("table.diff.split")).to_be_hidden()
    page.click("button.mode[data-mode=split]")
    expect(detail.locator("table.diff.split")).to_be_visible()
    expect(detail.locator("table.diff.split td.code.add")).to_contain_text("return {}")
    expect(detail.locator(".badge.verified")).to_have_text("verified")
    expect(page.locator(".files")).to_contain_text("src/api.py")

    # The redacted database password: kind and place shown, the value nowhere on the page.
    page.locator("#waterfall .span-row", has=page.locator(".type-tool_call")).locator("button.span").click()
    redactions = page.locator(".detail:not([hidden]) table.redactions")
    expect(redactions).to_contain_text("url-password")
    expect(redactions).to_contain_text("$['payload']['input']['command']")
    assert "Vq8xT2pLm9Rw4sYb" not in page.content()

    shot = tmp_path / "trace-view.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    _save_artifact(shot)


def test_a_recorded_claude_code_session(recorded: Server, page: Any, tmp_path: Path) -> None:
    page.goto(f"{recorded.url}/traces/{_hook_trace(recorded)}")
    expect(page.locator(".files")).to_contain_text("test_app.py")
    expect(page.locator(".files")).to_contain_text("app.py")
    page.click(".files .file-link:has-text('app.py') >> nth=0")
    expect(page.locator(".detail:not([hidden]) table.diff")).not_to_have_count(0)
    denied = page.locator("#waterfall .span-row.status-denied", has=page.locator(".type-policy_evaluation"))
    denied.locator("button.span").click()
    detail = page.locator(".detail:not([hidden])")
    expect(detail.locator(".decision-deny")).to_have_text("deny")
    expect(detail).to_contain_text("recursive delete is not allowed")
    expect(page.locator("#verify-summary")).to_contain_text("events verified")
    expect(page.locator("#waterfall .badge.failed")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "claude-code-trace.png"), full_page=True)
    _save_artifact(tmp_path / "claude-code-trace.png")


def _flip_hex(text: str) -> str:
    return ("0" if text[0] != "0" else "1") + text[1:]


def _tamper_proof(body: dict[str, Any]) -> None:
    body["proof"]["proof"][0] = _flip_hex(body["proof"]["proof"][0])


def _tamper_leaf(body: dict[str, Any]) -> None:
    leaf = base64.b64decode(body["proof"]["leaf"]).replace(b"src/api.py", b"src/evil.py")
    body["proof"]["leaf"] = base64.b64encode(leaf).decode()


def _tamper_root(body: dict[str, Any]) -> None:
    body["proof"]["root"] = _flip_hex(body["proof"]["root"])


def _tamper_signature(body: dict[str, Any]) -> None:
    note: str = body["proof"]["note"]
    head, _, sig = note.rpartition(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    body["proof"]["note"] = f"{head} {base64.b64encode(bytes(raw)).decode()}\n"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_tamper_proof, "audit path"),
        (_tamper_leaf, "leaf hash"),
        (_tamper_root, "audit path"),
        (_tamper_signature, "no valid signature"),
    ],
)
def test_a_tampered_proof_shows_not_verified(recorded: Server, page: Any, tamper: Any, reason: str) -> None:
    def intercept(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        if body["index"] == 4:
            tamper(body)
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/events/*", intercept)
    page.goto(f"{recorded.url}/traces/{TRACE}")
    expect(page.locator("#verify-summary")).to_have_text("5 of 6 events verified, 1 NOT verified")
    badge = page.locator("#s-4 .badge")
    expect(badge).to_have_text("not verified")
    assert reason in (badge.get_attribute("title") or "")
    expect(page.locator("#s-3 .badge")).to_have_text("verified")


def test_keyboard_navigation(recorded: Server, page: Any) -> None:
    page.goto(recorded.url + "/")
    links = page.locator("#traces .trace-link")
    links.first.focus()
    page.keyboard.press("ArrowDown")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(links.first).to_be_focused()
    page.keyboard.press("Tab")  # a real keyboard move, so :focus-visible applies
    page.keyboard.press("Shift+Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    target = links.first.get_attribute("href")
    page.keyboard.press("Enter")
    expect(page).to_have_url(recorded.url + str(target))

    page.goto(f"{recorded.url}/traces/{TRACE}")
    spans = page.locator("#waterfall button.span")
    spans.first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(spans.nth(2)).to_be_focused()
    page.keyboard.press("Enter")
    expect(spans.nth(2)).to_have_attribute("aria-expanded", "true")
    index = spans.nth(2).get_attribute("data-index")
    expect(page.locator(f"#d-{index}")).to_be_visible()
    page.keyboard.press("End")
    expect(spans.last).to_be_focused()


def test_narrow_window(recorded: Server, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    try:
        page.goto(recorded.url + "/")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.goto(f"{recorded.url}/traces/{TRACE}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.click("#s-4")
        details, timeline = page.locator("#details").bounding_box(), page.locator("#waterfall").bounding_box()
        assert details is not None and timeline is not None
        assert details["y"] > timeline["y"] + timeline["height"] - 1  # one column: details below the timeline
        expect(page.locator("#d-4 table.diff.unified")).to_be_visible()
    finally:
        context.close()


def test_a_running_session_updates_without_a_reload(recorded: Server, page: Any) -> None:
    trace = "5" * 32
    first = make_event(0, trace_id=trace, session_id="live-session")
    assert httpx.post(f"{recorded.url}/api/v1/events", json=[first]).status_code == 200
    page.goto(f"{recorded.url}/traces/{trace}")
    expect(page.locator("#waterfall .span-row")).to_have_count(1)
    page.evaluate("window.__not_reloaded = true")
    more = [make_event(n, trace_id=trace, session_id="live-session") for n in (1, 2, 3)]
    assert httpx.post(f"{recorded.url}/api/v1/events", json=more).status_code == 200
    expect(page.locator("#waterfall .span-row")).to_have_count(4, timeout=10_000)
    assert page.evaluate("window.__not_reloaded === true")
    expect(page.locator("#verify-summary")).to_have_text("4 of 4 events verified")
    expect(page.locator(".files")).to_contain_text("src/mod3.py")


def test_copy_replay_command_asks_first(recorded: Server, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=recorded.url)
    page = context.new_page()
    try:
        page.goto(f"{recorded.url}/traces/{TRACE}")
        page.click("#copy-replay")
        expect(page.locator("#confirm")).to_be_visible()
        expect(page.locator("#confirm-code")).to_have_text(f"flightlog rollback {TRACE} --dry-run")
        page.click("#confirm button[value=cancel]")
        expect(page.locator("#action-result")).to_have_text("")
        page.click("#copy-replay")
        page.click("#confirm-ok")
        expect(page.locator("#action-result")).to_contain_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == f"flightlog rollback {TRACE} --dry-run"
    finally:
        context.close()


def test_rollback_needs_the_approve_role(tmp_path: Path, flightlog: Any) -> None:
    home = tmp_path / "flightlog-home"
    flightlog("ingest", str(EXAMPLE), check=True)
    tokens = {
        role: flightlog("tokens", "create", "--role", role, "--name", f"{role}-user", check=True).stdout.split()[-1]
        for role in ("read", "approve")
    }
    server = start_server(home, "--require-tokens")
    try:
        url = f"{server.url}/api/v1/traces/{TRACE}/rollback"
        assert httpx.post(url, json={"dry_run": True}).status_code == 401
        auth = {"authorization": f"Bearer {tokens['read']}"}
        assert httpx.post(url, json={"dry_run": True}, headers=auth).status_code == 403
        auth = {"authorization": f"Bearer {tokens['approve']}"}
        answer = httpx.post(url, json={"dry_run": True}, headers=auth)
        # The example's file is not on this machine: refused, naming it, after the role check.
        assert answer.status_code == 409, answer.text
        assert "src/api.py" in answer.json()["error"]
    finally:
        server.stop()


def test_roll_back_from_the_ui_asks_first_and_shows_a_refusal(recorded: Server, page: Any) -> None:
    # A file the hook's session wrote was changed again since: refused, naming it.
    workspace = recorded.home.parent / "repo"
    written = workspace / "test_app.py"
    kept = written.read_bytes()
    written.write_bytes(kept + b"# edited by a human afterwards\n")
    page.goto(f"{recorded.url}/traces/{_hook_trace(recorded)}")
    page.click("#rollback")
    expect(page.locator("#action-result")).to_contain_text("Roll back is not possible")
    expect(page.locator("#action-result")).to_contain_text("changed since the trace: ")
    expect(page.locator("#action-result")).to_contain_text("test_app.py")
    assert written.exists()

    # A trace that created a file: the plan is shown, Cancel does nothing, OK deletes it.
    made = workspace / "made_by_agent.txt"
    made.write_text("made\n")
    trace = "6" * 32
    create = make_event(3, trace_id=trace, session_id="rollback-session")
    create["payload"] = {
        "op": "create",
        "file_path": str(made),
        "checksum_before": None,
        "checksum_after": "sha256:" + hashlib.sha256(b"made\n").hexdigest(),
        "diff": "--- /dev/null\n+++ b/made_by_agent.txt\n@@ -0,0 +1 @@\n+made\n",
    }
    assert httpx.post(f"{recorded.url}/api/v1/events", json=[create]).status_code == 200
    page.goto(f"{recorded.url}/traces/{trace}")
    page.click("#rollback")
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm-code")).to_contain_text("made_by_agent.txt")
    expect(page.locator("#confirm-text")).to_contain_text("anonymous@127.0.0.1")
    page.click("#confirm button[value=cancel]")
    assert made.exists()
    page.click("#rollback")
    page.click("#confirm-ok")
    expect(page.locator("#action-result")).to_contain_text("Rolled back")
    assert not made.exists()
