"""The web UI of `flightlog serve`: trace list at `/`, trace view at `/traces/{trace_id}`, static
files under `/ui/static/`, and the rollback action `POST /api/v1/traces/{trace_id}/rollback`.

Pages are rendered on the server from the same store functions as the query API (so they need
the `read` role, like the API); the browser checks every event's inclusion proof itself.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from flightlog.errors import FlightlogError, ValidationError
from flightlog.index import MATCH_MARKS, check_query
from flightlog.ledger.store import query_traces
from flightlog.render import tree_order
from flightlog.rollback import local_changes, rollback_files
from flightlog.server.body import BodyError, parse_json, read_body
from flightlog.server.filters import MAX_CURSOR, trace_filters
from flightlog.server.ui.html import esc, page
from flightlog.server.ui.list_page import FILTERS, SearchGroup, list_body
from flightlog.server.ui.trace_page import checkpoint_header, trace_body
from flightlog.snapshot_io import snapshot_roots

if TYPE_CHECKING:
    from flightlog.server.app import Collector

__all__ = ["actor", "ui_routes"]

PAGE_SIZE: Final = 50
SEARCH_HITS: Final = 500  # a search groups the newest this many matching events by trace
STATIC_DIR: Final = Path(__file__).parent / "ui" / "static"
# Everything from this server; style attributes only for the waterfall bars' positions.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
_HEADERS: Final = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
_TRACE_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_MAX_ROLLBACK_BYTES: Final = 4096  # {"dry_run": false}


def actor(c: Collector, request: Request) -> str:
    """Return who is calling, for the record: the token's id and name, or the anonymous client."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    token = c.tokens.lookup(secret.strip()) if scheme.lower() == "bearer" and secret.strip() else None
    if token is not None:
        return f"token:{token.token_id}" + (f" ({token.name})" if token.name else "") + f" role {token.role}"
    return f"anonymous@{request.client.host if request.client else 'unknown'}"


def _matches(ev: dict[str, Any], f: dict[str, str]) -> bool:
    """Return whether one event passes every list filter (the search path's filter)."""
    pairs = (("agent", "agent_id"), ("session", "session_id"), ("type", "type"), ("status", "status"))
    if any(f[key] and ev.get(field) != f[key] for key, field in pairs):
        return False
    ts = str(ev.get("timestamp", ""))
    if (f["since"] and ts < f["since"]) or (f["until"] and ts >= f["until"]):
        return False
    payload = ev.get("payload")
    p: dict[str, Any] = payload if isinstance(payload, dict) else {}
    if f["file_path"] and p.get("file_path") != f["file_path"]:
        return False
    if f["repo"]:
        repo = f["repo"].rstrip("/")
        places = [str(p.get(k)) for k in ("repo", "cwd", "file_path") if isinstance(p.get(k), str)]
        return any(x == repo or x.startswith(repo + "/") for x in places)
    return True


def _search(c: Collector, f: dict[str, str]) -> list[SearchGroup]:
    """Return the traces with an event that holds every word (of `q` and `repo`) and passes
    every filter, grouped by trace, newest match first."""
    words = " ".join(x for x in (f["q"], f["repo"]) if x)
    check_query(words)
    c.index.catch_up_step()
    groups: dict[str, SearchGroup] = {}
    for hit in c.index.search(words, SEARCH_HITS, MATCH_MARKS):
        found = c.ledger.store.leaf(hit.index)
        if found is None:
            continue
        ev = json.loads(found[1])
        if not _matches(ev, f):
            continue
        g = groups.get(hit.trace_id)
        if g is None:
            g = groups[hit.trace_id] = SearchGroup(
                hit.trace_id, str(ev.get("agent_id", "")), str(ev.get("session_id") or ""), str(ev.get("timestamp", ""))
            )
        g.matches += 1
        g.types.add(hit.type)
        g.snippets.append(hit.snippet)
    return list(groups.values())[:PAGE_SIZE]


def _index_param(text: str) -> int | None:
    """A ledger index from a link's query (cursor, as_of), or None when it is not one; at most
    MAX_CURSOR (int() refuses over 4,300 digits: a long one answered 500)."""
    if not (text.isascii() and text.isdigit()):
        return None
    return MAX_CURSOR if len(text.lstrip("0")) > 19 else min(int(text), MAX_CURSOR)


def _checkpoint(c: Collector) -> dict[str, Any] | None:
    try:
        return c.ledger.checkpoint_record()
    except FlightlogError:
        return None


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status, headers=_HEADERS)


def ui_routes(collector: Callable[[], Collector]) -> list[BaseRoute]:
    """Return the UI's routes for the collector that `collector()` returns while serving."""

    async def list_page(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "read")) is not None:
            return denied
        q = request.query_params
        # The form keeps what was typed. `q` is never cut: a word cut short finds other events;
        # the search itself refuses a query of too many words.
        shown = {k: q.get(k, "").strip() if k == "q" else q.get(k, "").strip()[:500] for k in FILTERS}
        f = dict(shown)
        cursor_text = q.get("cursor", "")
        cursor = _index_param(cursor_text)
        as_of = _index_param(q.get("as_of", ""))
        as_of = c.ledger.size if as_of is None else as_of
        header = checkpoint_header(await run_in_threadpool(_checkpoint, c))
        try:
            filters = trace_filters(f)
        except ValueError as exc:
            return _html(page("Traces", list_body(shown, [], None, None, False, str(exc)), header, "list"), 400)
        f.update((k, v or "") for k, v in filters.items())  # for the search path's own filter
        if f["q"] or f["repo"]:
            try:
                groups = await run_in_threadpool(_search, c, f)
            except ValidationError as exc:
                return _html(page("Traces", list_body(shown, [], None, None, False, exc.message), header, "list"), 400)
            note = f"Traces of the newest {SEARCH_HITS} matching events, every filter applied to the matching event."
            body = list_body(shown, None, groups, None, False, note)
        else:
            rows = await run_in_threadpool(query_traces, c.ledger.store, filters, PAGE_SIZE, cursor, as_of)
            next_cursor = rows[-1]["cursor"] if len(rows) == PAGE_SIZE else None
            next_page = next_cursor if isinstance(next_cursor, int) else None
            body = list_body(shown, rows, None, next_page, cursor is not None, as_of=as_of)
        return _html(page("Traces", body, header, "list"))

    async def trace_page(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "read")) is not None:
            return denied
        trace_id = request.path_params["trace_id"].lower()
        header = checkpoint_header(await run_in_threadpool(_checkpoint, c))
        rows = await run_in_threadpool(c.ledger.store.trace_leaves, trace_id) if _TRACE_ID.match(trace_id) else []
        if not rows:
            body = f'<h1>No trace <code>{esc(trace_id)}</code></h1><p><a href="/">All traces</a></p>'
            return _html(page("Not found", body, header, "missing"), 404)
        ordered = tree_order([(i, json.loads(leaf)) for i, leaf in rows])
        return _html(page(f"Trace {trace_id[:8]}", trace_body(trace_id, ordered), header, "trace"))

    async def post_rollback(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "approve")) is not None:
            return denied
        trace_id = request.path_params["trace_id"].lower()
        if not _TRACE_ID.match(trace_id):
            return JSONResponse({"error": "trace_id must be 32 lowercase hex digits", "details": []}, 400)
        usage = 'body must be JSON: {"dry_run": true|false}'
        try:
            body = parse_json(await read_body(request, _MAX_ROLLBACK_BYTES), unique_members=True)
        except BodyError as exc:
            return JSONResponse({"error": exc.message, "details": []}, exc.status)
        except ValidationError as exc:
            return JSONResponse({"error": f"{usage} ({exc.reason})", "details": []}, 400)
        # Said outright: a missing or mistyped flag ("true", 1) must not mean a real rollback.
        dry_run = body.get("dry_run") if isinstance(body, dict) else None
        if not isinstance(dry_run, bool):
            return JSONResponse({"error": usage, "details": []}, 400)
        return await _rollback(c, trace_id, dry_run, actor(c, request), c.origin(request))

    return [
        Route("/", list_page, methods=["GET"]),
        Route("/traces/{trace_id}", trace_page, methods=["GET"]),
        Route("/api/v1/traces/{trace_id}/rollback", post_rollback, methods=["POST"]),
        Mount("/ui/static", app=StaticFiles(directory=STATIC_DIR), name="ui-static"),
    ]


async def _rollback(c: Collector, trace_id: str, dry_run: bool, by: str, origin: str | None) -> Response:
    """Roll back a trace's files and store the rollback event through the collector's own write
    path (so metrics and onward export see it)."""
    rows = await run_in_threadpool(c.ledger.store.trace_leaves, trace_id)
    remote = await run_in_threadpool(c.ledger.store.remote_origins, [i for i, _ in rows])
    events, elsewhere = local_changes(rows, remote)
    if elsewhere and not any(e.get("type") == "file_op" for e in events):
        message = (
            "the file changes of this trace were sent by another machine; roll them back there"
            " (flightlog rollback on that machine)"
        )
        return JSONResponse({"error": message, "details": []}, 409)
    try:
        # Only inside workspaces this collector snapshotted itself: the events name the paths and
        # the earlier content, and an ingest token (another machine's agent) may store events.
        roots = await run_in_threadpool(snapshot_roots, c.home)
        result, event = await run_in_threadpool(
            functools.partial(rollback_files, events, c.home, dry_run=dry_run, actor=by, roots=roots)
        )
    except FlightlogError as exc:
        return JSONResponse({"error": exc.message, "details": []}, 409)
    if event is not None:
        good, bad = await run_in_threadpool(c.pipeline.prepare_batch, [event])
        if bad:
            return JSONResponse({"error": f"rollback done but not recorded: {bad[0].reason}", "details": []}, 500)
        await c.store(good, "ui", origin, essential=True)
        result["recorded"] = "ledger"
    if elsewhere:
        result["left_alone"] = sorted(elsewhere)  # changes another machine sent, not made here
    return JSONResponse({"trace_id": trace_id, "dry_run": dry_run, "actor": by, "result": result})
