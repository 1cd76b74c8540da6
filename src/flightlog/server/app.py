"""The collector's ASGI app: OTLP/HTTP receiver, events API, query API, auth.

Every write goes through the same `Pipeline` as `flightlog ingest`; a 2xx means the events are
durably committed (the ledger's group commit has fsynced them).

OTLP bodies are decoded, mapped and prepared (validated, redacted, canonicalized) in a worker
process, so that work runs on another core than the event loop and the ledger's writer, which
stay in this process (one writer: the flock, the group commit). A server started with its own
`Redactor`, or one where the worker cannot start or dies, prepares in threads instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import orjson
from google.rpc import status_pb2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flightlog.capture import claude_hook_events, otlp
from flightlog.errors import ConfigError, FlightlogError, ValidationError
from flightlog.index import SearchIndex, check_query
from flightlog.ledger.log import IdConflict, Ledger, PendingEntry
from flightlog.ledger.store import query_traces
from flightlog.pipeline import Pipeline, Preparer, Rejected
from flightlog.policy_stage import using_policy_url
from flightlog.redact import Redactor
from flightlog.render import tree_order
from flightlog.server.approvals_api import approvals_routes
from flightlog.server.auth import TokenStore, role_allows
from flightlog.server.body import BodyError, parse_json, read_body
from flightlog.server.browser_guard import foreign_page, loopback_client
from flightlog.server.export import OtlpForwarder
from flightlog.server.filters import MAX_CURSOR, trace_filters
from flightlog.server.hooks import claude_code_hook
from flightlog.server.metrics import CollectorMetrics
from flightlog.server.openapi import openapi_document
from flightlog.server.ui_routes import actor, ui_routes

__all__ = ["ServerSettings", "create_app"]

_PROTOBUF: Final = "application/x-protobuf"
_JSON: Final = "application/json"
_PREPARE_WORKERS: Final = 1  # processes preparing OTLP bodies; the writer's process is the other core
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """Collector settings; each is also a `flightlog serve` option."""

    max_body_bytes: int = 16 * 1024 * 1024  # after gzip decompression too
    max_event_bytes: int = 1024 * 1024  # one event's JSON, before redaction and blobs
    max_pending_events: int = 100_000  # accepted but not yet committed; over it: 503
    # Request bytes received and not yet committed (being prepared or appended); over it: 503.
    # Without it, bodies queued for the prepare worker unbounded: 60 bodies of 12 MB held 1.4 GB
    # and made a small export wait 50 s (its client gave up after 10) instead of answering 503.
    max_pending_bytes: int = 64 * 1024 * 1024
    anonymous_loopback: bool = True  # loopback clients need no token
    export_otlp: str | None = None  # forward stored events as OTLP spans to this /v1/traces URL
    export_headers: Mapping[str, str] = field(default_factory=dict)  # sent with each export (a token)
    policy_url: str | None = None  # decide hook calls with this OPA server (else $FLIGHTLOG_POLICY_URL, else regorus)


Handler = Callable[[Request], Awaitable[Response]]
# The event types Claude Code's hook and telemetry both record for one span (see `unrecorded`).
_SHARED_SPAN_TYPES: Final = frozenset({"prompt", "tool_call"})


def _error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return JSONResponse({"error": message, "details": details or []}, status, headers=headers)


class Collector:
    """The state behind the routes: ledger, pipeline, tokens, admission counter."""

    def __init__(self, home: Path, settings: ServerSettings, redactor: Redactor | None) -> None:
        self.home = home
        self.settings = settings
        self.ledger = Ledger.open(home)
        self.pipeline = Pipeline(self.ledger, redactor, source_kind="api", search_text=True)
        self.tokens = TokenStore(home)
        self.index = SearchIndex(home / "ledger.db")
        self.metrics = CollectorMetrics()
        self.forwarder = (
            OtlpForwarder(settings.export_otlp, home, headers=settings.export_headers) if settings.export_otlp else None
        )
        self.metrics.watch_export(self.forwarder)
        self._pending = 0
        self._pending_bytes = 0
        self._pending_lock = threading.Lock()
        self.index_due = asyncio.Event()  # set when entries were stored: index them soon
        # Workers build the default redactor; a server given its own prepares in threads.
        self.workers = _start_workers(_PREPARE_WORKERS) if redactor is None else None

    async def prepare_otlp(self, decode: Decoder, body: bytes, content_type: str) -> _Prepared:
        """Decode, map and prepare an OTLP body in a worker process (else in a thread)."""
        if self.workers is not None:
            future = self.workers.submit(_prepare_in_worker, decode, body, content_type)
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                _log.warning("flightlog: the prepare worker died; preparing in threads from now on")
                self.workers = None
        return await run_in_threadpool(_prepare_otlp, self.pipeline, decode, body, content_type)

    def close(self) -> None:
        """Stop the workers and close the index and the ledger."""
        if self.workers is not None:
            self.workers.shutdown(wait=True, cancel_futures=True)
        if self.forwarder is not None:
            self.forwarder.close()
        self.index.close()
        self.ledger.close()

    def authorize(self, request: Request, need: str) -> JSONResponse | None:
        """Return an error response unless the caller may do what needs role `need`."""
        host = request.client.host if request.client else ""
        header = request.headers.get("authorization", "")
        if not header:
            if self.settings.anonymous_loopback and loopback_client(host):
                refused = foreign_page(request.headers)
                return None if refused is None else _error(403, refused)
            return _error(401, "a bearer token is required (flightlog tokens create --role …)")
        scheme, _, secret = header.partition(" ")
        try:
            token = self.tokens.lookup(secret.strip()) if scheme.lower() == "bearer" else None
        except ConfigError as exc:
            # The operator's problem: said in the server log, not to a client (it names paths).
            _log.error("flightlog: %s", exc.message)
            return _error(500, "the server cannot check tokens: its token file is not valid (see the server log)")
        if token is None:
            return _error(401, "invalid token")
        if not role_allows(token.role, need):
            return _error(403, f"a {token.role} token may not do this (needs {need})")
        return None

    def origin(self, request: Request) -> str | None:
        """Who sent `request` from another machine (its address and token), or None when it came
        from this one. Stored beside what it sent: the rollback route acts only on file changes
        recorded on this machine."""
        host = request.client.host if request.client else None
        return None if loopback_client(host) else f"{host or 'unknown'} {actor(self, request)}"

    def unrecorded(self, entries: list[PendingEntry]) -> list[PendingEntry]:
        """The entries whose span (trace, span id and type) the ledger does not hold yet. Claude
        Code's hook and its telemetry both record a turn's prompt and tool calls, under the same
        ids: the first to arrive is kept (the hook's, mostly: telemetry is sent in batches)."""
        held = self.held_spans(entries)
        return [e for e in entries if (e.columns.span_id, e.columns.type) not in held]

    def held_spans(self, entries: list[PendingEntry]) -> dict[tuple[str, str], int]:
        """The (span id, type) pairs stored in the traces of these entries, with their index;
        empty when none of them is of a type both the hook and telemetry record."""
        shared = [e for e in entries if e.columns.type in _SHARED_SPAN_TYPES]
        return self.ledger.store.recorded_spans([e.columns.trace_id for e in shared]) if shared else {}

    def over_budget(self, size: int) -> bool:
        """Whether a request of `size` bytes would be refused now (checked before reading it)."""
        with self._pending_lock:
            over = bool(self._pending_bytes) and self._pending_bytes + size > self.settings.max_pending_bytes
        if over:
            self.metrics.overloaded.inc()
        return over

    @contextlib.contextmanager
    def admitted(self, size: int) -> Iterator[None]:
        """Hold `size` bytes of the pending-bytes budget while a request is prepared and stored;
        raise _Overloaded when it is spent. A request is always admitted when nothing else is
        pending (the body limit keeps one request's size in check)."""
        with self._pending_lock:
            if self._pending_bytes and self._pending_bytes + size > self.settings.max_pending_bytes:
                self.metrics.overloaded.inc()
                raise _Overloaded()
            self._pending_bytes += size
        try:
            yield
        finally:
            with self._pending_lock:
                self._pending_bytes -= size

    async def store(
        self, entries: list[PendingEntry], source: str, origin: str | None = None, *, essential: bool = False
    ) -> list[int]:
        """Append durably off the event loop, refusing work past the pending limit; `origin` as
        `origin()` gives it for the request that sent the entries. `essential` entries (a hook
        call's, an approval, a rollback: few, and the record of something done or being done)
        are never refused for load."""
        if not essential and len(entries) > self.settings.max_pending_events:  # a 503 would be retried forever
            raise _TooMany(len(entries), self.settings.max_pending_events)
        with self._pending_lock:
            if not essential and self._pending + len(entries) > self.settings.max_pending_events:
                self.metrics.overloaded.inc()
                raise _Overloaded()
            self._pending += len(entries)
            self.metrics.queue_depth.set(self._pending)
        try:
            indexes = await run_in_threadpool(self.ledger.append, entries, origin)
        finally:
            with self._pending_lock:
                self._pending -= len(entries)
                self.metrics.queue_depth.set(self._pending)
        stored = [e for e in entries if not e.duplicate]
        self.index.offer((i, e.text) for i, e in zip(indexes, entries, strict=True) if not e.duplicate)
        self.index_due.set()
        self.metrics.observe_stored(stored, source)
        if self.forwarder is not None:
            self.forwarder.notify(self.ledger.size)  # it reads the ledger itself: nothing is handed over
        return indexes


class _Overloaded(Exception):
    pass


class _TooMany(Exception):
    """A request of more events than the collector ever holds pending: split it (413)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} events in one request; the collector takes at most {limit} at once: split it")
        self.message = str(self)


Decoder = Callable[..., otlp.OtlpBatch]


@dataclass
class _Prepared:
    """An OTLP body decoded and prepared: the batch (its events dropped), the entries to
    append, the events the pipeline refused, or why the body could not be decoded."""

    batch: otlp.OtlpBatch
    good: list[PendingEntry]
    bad: list[Rejected]
    error: str | None = None


def _prepare_otlp(preparer: Preparer, decode: Decoder, body: bytes, content_type: str) -> _Prepared:
    try:
        # The preparer checks every event against the schema; the decoder need not as well.
        batch = decode(body, content_type, validate=False)
    except ValidationError as exc:
        return _Prepared(otlp.OtlpBatch(), [], [], exc.message)
    good, bad = preparer.prepare_batch(batch.events)
    batch.events = []  # not sent back: the entries hold the prepared events
    return _Prepared(batch, good, bad)


_worker_preparer: Preparer | None = None


def _start_worker(server_pid: int) -> None:
    """Set up a prepare worker: the default redactor, and an exit when the server is gone (a
    SIGKILLed server must not leave its workers behind)."""
    global _worker_preparer
    # The server decides when to stop: a Ctrl-C in the terminal reaches the whole process
    # group, and a worker dying under it failed the requests in flight with 500s. The worker
    # still ends with the server (the pool's shutdown, or the watch below).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _worker_preparer = Preparer(search_text=True)
    _settle_gc()

    def watch() -> None:
        while os.getppid() == server_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="server-watch", daemon=True).start()


def _settle_gc() -> None:
    """Exempt what start-up built from garbage collection and collect the young generation less
    often: each request makes and drops thousands of dicts, and the collector's passes over the
    long-lived modules and compiled rules took about a tenth of the time to prepare a span."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _prepare_in_worker(decode: Decoder, body: bytes, content_type: str) -> _Prepared:
    assert _worker_preparer is not None  # set by _start_worker
    return _prepare_otlp(_worker_preparer, decode, body, content_type)


def _start_workers(count: int) -> ProcessPoolExecutor | None:
    """Return a pool of `count` prepare workers (spawned: the server has threads), or None."""
    if count < 1:
        return None
    try:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(count, context, initializer=_start_worker, initargs=(os.getpid(),))
    except (OSError, ValueError) as exc:
        _log.warning("flightlog: no prepare worker (%s); preparing in threads", exc)
        return None


def _hook_event(event: dict[str, Any]) -> bool:
    source = event.get("source")
    return isinstance(source, dict) and source.get("kind") == claude_hook_events.SOURCE_KIND


def _parse_events(body: bytes, content_type: str) -> list[object]:
    """Parse a JSON array, one JSON event object (pretty-printed or not) or NDJSON; raise
    ValidationError naming the line."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("$", f"not UTF-8 (byte {exc.start})") from None
    if content_type == _JSON and text.lstrip().startswith("["):
        data = parse_json(text)
        if not isinstance(data, list):
            raise ValidationError("$", "expected a JSON array of events")
        return data
    if content_type == _JSON and text.lstrip().startswith("{"):
        with contextlib.suppress(ValidationError):  # else NDJSON sent as application/json
            return [parse_json(text)]
    return [parse_json(line, f"line {n + 1}: ") for n, line in enumerate(text.split("\n")) if line.strip()]


def _json_size(value: object) -> int:
    """The size of `value` as compact UTF-8 JSON, as a user counts an event's bytes."""
    try:
        return len(orjson.dumps(value))
    except TypeError:  # beyond orjson's 64-bit integers or 254 levels, or a lone surrogate
        pass
    try:
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    except RecursionError:
        return 0  # the pipeline refuses it by name: nested too deeply


def create_app(home: Path, settings: ServerSettings | None = None, redactor: Redactor | None = None) -> Starlette:
    """Return the collector app writing to the ledger in `home`."""
    settings = settings or ServerSettings()
    state: dict[str, Collector] = {}

    def collector() -> Collector:
        return state["c"]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        c = state["c"] = Collector(home, settings, redactor)
        _settle_gc()

        async def keep_index_current() -> None:
            # Right after a store (entries arriving meanwhile are indexed together), and every
            # 0.5 s for entries appended by other routes.
            warned = -math.inf
            while True:
                with anyio.move_on_after(0.5):
                    await c.index_due.wait()
                c.index_due.clear()
                try:
                    # The end of a burst is signed now, not at the next append.
                    await run_in_threadpool(c.ledger.sign_if_due)
                    # A step at a time, so that a search (which indexes one step itself) never
                    # waits behind a whole backlog, such as a deleted index.db being rebuilt.
                    while await run_in_threadpool(c.index.catch_up_step):
                        pass
                except (FlightlogError, sqlite3.Error, OSError) as exc:
                    # Search lags (the lag metric shows it); ingest and queries must go on.
                    if time.monotonic() - warned > 60:
                        warned = time.monotonic()
                        _log.warning("flightlog: search indexing failed, will retry: %s", exc)

        try:
            if c.workers is not None:  # start the worker now, not on the first request
                await c.prepare_otlp(otlp.traces_to_events, b"", otlp.PROTOBUF)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(keep_index_current)
                yield
                tasks.cancel_scope.cancel()
        finally:
            await run_in_threadpool(state.pop("c").close)

    async def post_events(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "ingest")) is not None:
            return denied
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        refused = c.metrics.refused_requests
        if ctype not in (_JSON, "application/x-ndjson", "application/jsonl"):
            refused.labels("api", "415").inc()
            return _error(415, "send application/json (an array) or application/x-ndjson")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and c.over_budget(int(declared)):
            return _error(503, "too many events waiting to be committed; retry later")
        try:
            body = await read_body(request, settings.max_body_bytes)
        except BodyError as exc:
            refused.labels("api", str(exc.status)).inc()
            return _error(exc.status, exc.message)
        try:
            with c.admitted(len(body)):
                return await store_events(request, c, body, ctype)
        except _Overloaded:
            return _error(503, "too many events waiting to be committed; retry later")
        except _TooMany as exc:
            refused.labels("api", "413").inc()
            return _error(413, exc.message)

    async def store_events(request: Request, c: Collector, body: bytes, ctype: str) -> Response:
        refused = c.metrics.refused_requests
        try:
            raws = _parse_events(body, ctype)
        except ValidationError as exc:
            refused.labels("api", "400").inc()
            return _error(400, "request body is not valid JSON", [{"index": None, "field": "$", "reason": exc.reason}])
        too_big = [
            {"index": i, "field": "$", "reason": f"event is over {settings.max_event_bytes} bytes"}
            for i, raw in enumerate(raws)
            if _json_size(raw) > settings.max_event_bytes
        ]
        if too_big:
            refused.labels("api", "413").inc()
            return _error(413, "event(s) too large; nothing stored", too_big)
        good, bad = await run_in_threadpool(c.pipeline.prepare_events, raws)
        c.metrics.received.labels("api").inc(len(raws))
        if bad:
            c.metrics.rejected.labels("api", "validation").inc(len(bad))
            if good:
                c.metrics.rejected.labels("api", "batch").inc(len(good))
            details = [{"index": r.index, "field": r.field, "reason": r.reason} for r in bad]
            return _error(422, f"{len(bad)} invalid event(s); nothing stored", details)
        if not good:
            return JSONResponse({"stored": 0, "duplicates": 0, "event_ids": [], "indexes": []})
        # A hook turn spooled while the collector was away (`flightlog spool flush`) that Claude
        # Code's telemetry recorded meanwhile: kept once, as the hook route and /v1/logs do, and
        # answered as a duplicate of the entry held.
        hooked = [e for e in good if _hook_event(e.event)]
        held = await run_in_threadpool(c.held_spans, hooked) if hooked else {}
        earlier = {id(e): held[k] for e in hooked if (k := (e.columns.span_id, e.columns.type)) in held}
        fresh = [e for e in good if id(e) not in earlier]
        try:
            stored = iter(await c.store(fresh, "api", c.origin(request)) if fresh else [])
        except IdConflict as exc:  # another request stored a different event under the id meanwhile
            c.metrics.rejected.labels("api", "validation").inc(len(fresh))
            index = next(i for i, e in enumerate(good) if e.columns.event_id == exc.event_id)
            details = [{"index": index, "field": exc.field, "reason": exc.reason}]
            return _error(422, "1 invalid event(s); nothing stored", details)
        indexes = [earlier[id(e)] if id(e) in earlier else next(stored) for e in good]
        duplicates = len(earlier) + sum(e.duplicate for e in fresh)
        return JSONResponse(
            {
                "stored": len(indexes) - duplicates,
                "duplicates": duplicates,
                "indexes": indexes,
                "event_ids": [e.event["event_id"] for e in good],
            }
        )

    def otlp_route(
        decode: Decoder, respond: Callable[[otlp.OtlpBatch, str], bytes], once_per_span: bool = False
    ) -> Handler:
        async def handler(request: Request) -> Response:
            c = collector()
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            refused = c.metrics.refused_requests
            if ctype not in (_PROTOBUF, _JSON):
                refused.labels("otlp", "415").inc()
                return _otlp_error(415, "Content-Type must be application/x-protobuf or application/json", _JSON)
            if (denied := c.authorize(request, "ingest")) is not None:
                return _otlp_error(denied.status_code, json.loads(bytes(denied.body))["error"], ctype)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and c.over_budget(int(declared)):
                return _otlp_error(503, "overloaded; retry later", ctype)
            try:
                body = await read_body(request, settings.max_body_bytes)
            except BodyError as exc:
                refused.labels("otlp", str(exc.status)).inc()
                return _otlp_error(exc.status, exc.message, ctype)
            try:
                with c.admitted(len(body)):
                    return await ingest(request, c, body, ctype)
            except _Overloaded:
                return _otlp_error(503, "overloaded; retry later", ctype)
            except _TooMany as exc:
                refused.labels("otlp", "413").inc()
                return _otlp_error(413, exc.message, ctype)

        async def ingest(request: Request, c: Collector, body: bytes, ctype: str) -> Response:
            refused = c.metrics.refused_requests
            prepared = await c.prepare_otlp(decode, body, ctype)
            if prepared.error is not None:
                refused.labels("otlp", "400").inc()
                return _otlp_error(400, prepared.error, ctype)
            batch, good, bad = prepared.batch, prepared.good, prepared.bad
            c.metrics.received.labels("otlp").inc(len(good) + len(bad) + batch.rejected)
            if batch.rejected:
                c.metrics.rejected.labels("otlp", "decode").inc(batch.rejected)
            if bad:
                c.metrics.rejected.labels("otlp", "validation").inc(len(bad))
            for r in bad:  # r.index counts the mapped events, not the request's items
                batch.reject(f"event {r.index}: {r.field}: {r.reason}")
            if good and once_per_span:
                good = await run_in_threadpool(c.unrecorded, good)
            if good:
                await c.store(good, "otlp", c.origin(request))
            return Response(respond(batch, ctype), media_type=ctype)

        return handler

    async def post_metrics(request: Request) -> Response:
        # Claude Code exports metrics beside logs; accepted and dropped until metrics land.
        c = collector()
        if (denied := c.authorize(request, "ingest")) is not None:
            return denied
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in (_PROTOBUF, _JSON):
            c.metrics.refused_requests.labels("otlp", "415").inc()
            return _otlp_error(415, "Content-Type must be application/x-protobuf or application/json", _JSON)
        try:
            await read_body(request, settings.max_body_bytes)
        except BodyError as exc:
            return _otlp_error(exc.status, exc.message, ctype)
        return Response(b"{}" if ctype == _JSON else b"", media_type=ctype)

    async def get_traces(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "read")) is not None:
            return denied
        q = request.query_params
        try:
            limit = min(max(int(q.get("limit", "50")), 1), 500)
            before = min(max(int(q["cursor"]), 0), MAX_CURSOR) if q.get("cursor") else None
            as_of = min(max(int(q["as_of"]), 0), MAX_CURSOR) if q.get("as_of") else c.ledger.size
        except ValueError:
            return _error(400, "limit, cursor and as_of must be integers")
        try:
            filters = trace_filters(q)
        except ValueError as exc:
            return _error(400, str(exc))
        rows = await run_in_threadpool(query_traces, c.ledger.store, filters, limit, before, as_of)
        next_cursor = rows[-1]["cursor"] if len(rows) == limit else None
        return JSONResponse({"traces": rows, "next_cursor": next_cursor, "as_of": as_of})

    async def get_trace(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "read")) is not None:
            return denied
        trace_id = request.path_params["trace_id"].lower()
        rows = await run_in_threadpool(c.ledger.store.trace_leaves, trace_id)
        if not rows:
            return _error(404, f"no trace {trace_id}")
        ordered = tree_order([(i, json.loads(leaf)) for i, leaf in rows])
        events = [{"index": i, "depth": d, "event": ev} for d, i, ev in ordered]
        return JSONResponse({"trace_id": trace_id, "events": events})

    async def get_event(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "read")) is not None:
            return denied
        event_id = request.path_params["event_id"]
        index = c.ledger.store.index_of(event_id)
        found = c.ledger.store.leaf(index) if index is not None else None
        if index is None or found is None:
            return _error(404, f"no event {event_id}")
        body: dict[str, Any] = {"index": index, "event": json.loads(found[1])}
        if request.query_params.get("proof") in ("1", "true"):
            body["proof"] = await run_in_threadpool(c.ledger.inclusion_record, index)
        return JSONResponse(body)

    async def get_checkpoint(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "read")) is not None:
            return denied
        return JSONResponse(await run_in_threadpool(c.ledger.checkpoint_record))

    async def get_search(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "read")) is not None:
            return denied
        q = request.query_params.get("q", "")
        try:
            limit = min(max(int(request.query_params.get("limit", "50")), 1), 500)
        except ValueError:
            return _error(400, "limit must be an integer")
        check_query(q)  # before a backlog is indexed, not after
        await run_in_threadpool(c.index.catch_up_step)
        hits = await run_in_threadpool(c.index.search, q, limit)
        # `indexed` < `entries`: the index is still catching up and newer matches may be missing.
        coverage = {"indexed": c.index.indexed, "entries": c.ledger.size}
        return JSONResponse({"query": q, "hits": [asdict(h) for h in hits], **coverage})

    async def get_metrics(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "read")) is not None:
            return denied
        c.metrics.ledger_entries.set(c.ledger.size)
        c.metrics.index_lag.set(max(0, c.ledger.size - c.index.indexed))
        latest = c.ledger.store.latest_checkpoint()
        c.metrics.checkpoint_size.set(latest.size if latest else 0)
        return Response(c.metrics.render(), media_type="text/plain; version=0.0.4")

    async def get_openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def post_claude_code_hook(request: Request) -> Response:
        with using_policy_url(settings.policy_url):  # the context reaches the worker thread
            return await claude_code_hook(request, collector())

    async def healthz(request: Request) -> Response:
        c = collector()
        return JSONResponse({"status": "ok", "entries": c.ledger.size, "indexed": c.index.indexed})

    routes = [
        Route("/v1/traces", otlp_route(otlp.traces_to_events, otlp.trace_response), methods=["POST"]),
        # Log records: Claude Code's telemetry, whose prompt and tool calls its hook may have sent.
        Route("/v1/logs", otlp_route(otlp.logs_to_events, otlp.logs_response, once_per_span=True), methods=["POST"]),
        Route("/v1/metrics", post_metrics, methods=["POST"]),
        Route("/api/v1/events", post_events, methods=["POST"]),
        Route("/api/v1/events/{event_id}", get_event, methods=["GET"]),
        Route("/api/v1/traces", get_traces, methods=["GET"]),
        Route("/api/v1/traces/{trace_id}", get_trace, methods=["GET"]),
        Route("/api/v1/search", get_search, methods=["GET"]),
        Route("/api/v1/checkpoint", get_checkpoint, methods=["GET"]),
        Route("/metrics", get_metrics, methods=["GET"]),
        Route("/openapi.json", get_openapi, methods=["GET"]),
        Route("/hooks/claude-code", post_claude_code_hook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    routes += approvals_routes(collector)
    routes += ui_routes(collector)  # type: ignore[arg-type]  # pages and a Mount of static files
    handlers = {FlightlogError: _flightlog_error, _Overloaded: _overloaded, _TooMany: _too_many}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    return app


async def _overloaded(request: Request, exc: Exception) -> Response:
    # The routes that store events of their own (approvals, rollback) meet a full queue too.
    return _error(503, "too many events waiting to be committed; retry later")


async def _too_many(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _TooMany)
    return _error(413, exc.message)


async def _flightlog_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FlightlogError)
    return _error(500 if exc.exit_code == 4 else 400, exc.message)


def _otlp_error(status: int, message: str, ctype: str) -> Response:
    """An OTLP failure: a google.rpc.Status body in the request's encoding."""
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    code = _GRPC_CODES.get(status, 2)  # 2: UNKNOWN
    if ctype == _PROTOBUF:
        body = status_pb2.Status(code=code, message=message).SerializeToString()
        return Response(body, status, headers=headers, media_type=_PROTOBUF)
    return JSONResponse({"code": code, "message": message}, status, headers=headers)


# The gRPC status code of each HTTP status we answer with (as in the gRPC-to-HTTP mapping): a
# Status with code 0 would read as OK to a client that only looks at the body.
_GRPC_CODES: Final = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}
