"""The served OpenAPI document says what the collector really answers.

The app runs in process, reached from a non-loopback address so that anonymous access is refused
as it is for a remote client. Every served operation is swept with no token and with tokens of
the wrong role, and each error we can provoke is provoked on purpose; every answer's status must
be documented for its path and method, and its body must fit the documented schema. A new route,
a new status or a changed error body fails here until the document says so.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import jsonschema_rs
import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.rpc import status_pb2
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from flightlog.ledger.log import Ledger
from flightlog.server.app import ServerSettings, create_app
from flightlog.server.auth import TokenStore
from flightlog.server.openapi import openapi_document
from tests.conftest import TRACE as TRACE_OF_EVENTS
from tests.conftest import make_event

# TEST-NET-3 (RFC 5737): not loopback, so a request without a token gets the 401 a remote one gets.
REMOTE: Final = ("203.0.113.9", 40000)
LIMIT: Final = 64 * 1024
# Small limits so that 413 takes a few bytes or two events to provoke, and 503 an event held pending.
SETTINGS: Final = ServerSettings(max_body_bytes=LIMIT, max_event_bytes=2048, max_pending_events=1)
PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
# Protobuf bodies are checked against the JSON schema of their message, in the proto3 JSON form.
PROTO_MESSAGES: Final[dict[str, type[Message]]] = {"#/components/schemas/Status": status_pb2.Status}
LIMITS: Final = (0, -5, 1, 500, 501, 10**30)
PATH_SAMPLES: Final = {"trace_id": "ab" * 16, "event_id": "no-such-event", "path": "app.css"}
TRACE: Final = "5b8efff798038103d269b633813fc60c"


@dataclass(frozen=True)
class Probe:
    """One request expected to answer `expect`, sent with a token of `role` (None: no token)."""

    method: str
    path: str
    expect: int
    role: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""


@dataclass
class Running:
    """The app, a client reaching it from REMOTE, and a token secret per role."""

    app: Starlette
    client: httpx.AsyncClient
    secrets: dict[str, str]

    async def send(
        self, method: str, path: str, role: str | None, headers: dict[str, str], content: bytes
    ) -> httpx.Response:
        if role is not None:
            headers = {**headers, "authorization": f"Bearer {self.secrets[role]}"}
        return await self.client.request(method, path, headers=headers, content=content)


@asynccontextmanager
async def running(home: Path, settings: ServerSettings = SETTINGS) -> AsyncIterator[Running]:
    app = create_app(home, settings)
    async with app.router.lifespan_context(app):
        store = TokenStore(home)
        secrets = {role: store.create(role, f"openapi-{role}")[1] for role in ("ingest", "read", "approve")}
        transport = httpx.ASGITransport(app=app, client=REMOTE)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            yield Running(app, client, secrets)


def served_operations(app: Starlette) -> set[tuple[str, str]]:
    """(documented path, method) of every operation the app serves; HEAD rides along with GET."""
    ops: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route):
            ops |= {(route.path, m.lower()) for m in route.methods or () if m != "HEAD"}
        elif isinstance(route, Mount):  # static files: one GET under the mount
            ops.add((route.path + "/{path}", "get"))
        else:
            raise AssertionError(f"{route!r}: a kind of route this test cannot map to the document")
    return ops


def template_of(app: Starlette, path: str) -> str:
    """The documented path a concrete request path is served by."""
    for route in app.routes:
        if isinstance(route, Route) and route.path_regex.match(path):
            return route.path
        if isinstance(route, Mount) and path.startswith(route.path + "/"):
            return route.path + "/{path}"
    raise AssertionError(f"no route serves {path}")


def check_answer(doc: dict[str, Any], template: str, method: str, r: httpx.Response) -> list[str]:
    """Return what the document gets wrong about this answer (nothing when it is right)."""
    where = f"{method.upper()} {template} -> {r.status_code}"
    op = doc["paths"].get(template, {}).get(method)
    if op is None:
        return [f"{where}: the operation is not documented"]
    documented = op["responses"].get(str(r.status_code))
    if documented is None:
        return [f"{where}: status not documented (documented: {sorted(op['responses'])})"]
    if not r.content:
        return []
    media = r.headers.get("content-type", "").split(";")[0].strip().lower()
    content = documented.get("content", {})
    if media not in content:
        return [f"{where}: body of type {media!r} not documented (documented: {sorted(content)})"]
    schema = content[media].get("schema")
    if schema is None:
        return []
    if media == PROTOBUF:
        message = PROTO_MESSAGES.get(schema.get("$ref", ""))
        if message is None:
            return [f"{where}: no protobuf message known for schema {schema}"]
        instance: Any = MessageToDict(message.FromString(r.content), preserving_proto_field_name=True)
    else:
        instance = r.json()
    # The document's components ride along so that "#/components/…" resolves inside the schema.
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "components": doc["components"]}
    errors = [e.message for e in jsonschema_rs.validator_for(root).iter_errors(instance)]
    return [f"{where}: body {instance!r} does not fit the schema: {'; '.join(errors)}"] if errors else []


def fill(template: str) -> str:
    """A concrete path for a documented one; the samples reach the handler past its path checks."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_SAMPLES.get(m.group(1), "x"), template)


def otlp_spans(count: int) -> bytes:
    now = str(time.time_ns())
    spans = [
        {
            "traceId": TRACE,
            "spanId": f"{n + 1:016x}",
            "name": f"step {n}",
            "startTimeUnixNano": now,
            "endTimeUnixNano": now,
        }
        for n in range(count)
    ]
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}).encode()


def otlp_prompts(count: int) -> bytes:
    def attr(k: str, v: str) -> dict[str, Any]:
        return {"key": k, "value": {"stringValue": v}}

    now = str(time.time_ns())
    records = [
        {
            "timeUnixNano": now,
            "body": {"stringValue": "claude_code.user_prompt"},
            "attributes": [
                attr("event.name", "user_prompt"),
                attr("session.id", "s-openapi"),
                attr("prompt.id", f"p-{n}"),
                attr("prompt", "fix the build"),
            ],
        }
        for n in range(count)
    ]
    scope = {"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": records}
    resource = {"attributes": [attr("service.name", "claude-code")]}
    return json.dumps({"resourceLogs": [{"resource": resource, "scopeLogs": [scope]}]}).encode()


def probes() -> list[Probe]:
    """Requests that each provoke one error (or an open route's answer) on purpose."""
    pb, js = {"content-type": PROTOBUF}, {"content-type": JSON}
    brotli = {"content-encoding": "br"}
    big = b"x" * (LIMIT + 1)
    found: list[Probe] = []
    for path, two in (("/v1/traces", otlp_spans(2)), ("/v1/logs", otlp_prompts(2))):
        found += [
            Probe("POST", path, 415, "ingest", {"content-type": "text/plain"}, b"{}"),
            Probe("POST", path, 415, "ingest", {**pb, **brotli}, b"\x00"),
            Probe("POST", path, 415, "ingest", {**js, **brotli}, b"{}"),
            Probe("POST", path, 401, None, pb, b""),
            Probe("POST", path, 401, None, js, b"{}"),
            Probe("POST", path, 403, "read", pb, b""),
            Probe("POST", path, 403, "read", js, b"{}"),
            Probe("POST", path, 400, "ingest", pb, b"\xff\xff\xff"),
            Probe("POST", path, 400, "ingest", js, b"{not json"),
            Probe("POST", path, 400, "ingest", {**js, "content-encoding": "gzip"}, b"not gzip"),
            Probe("POST", path, 413, "ingest", pb, big),
            Probe("POST", path, 413, "ingest", js, big),
            Probe("POST", path, 413, "ingest", js, two),  # more events than may ever wait
        ]
    found += [
        Probe("POST", "/v1/metrics", 401, None, pb),
        Probe("POST", "/v1/metrics", 403, "read", pb),
        Probe("POST", "/v1/metrics", 400, "ingest", {**pb, "content-encoding": "gzip"}, b"not gzip"),
        Probe("POST", "/v1/metrics", 413, "ingest", js, big),
        Probe("POST", "/v1/metrics", 415, "ingest", {**pb, **brotli}, b"\x00"),
        Probe("POST", "/api/v1/events", 415, "ingest", {"content-type": "text/plain"}, b"[]"),
        Probe("POST", "/api/v1/events", 415, "ingest", {**js, **brotli}, b"[]"),
        Probe("POST", "/api/v1/events", 400, "ingest", js, b"[{"),
        Probe("POST", "/api/v1/events", 413, "ingest", js, big),
        Probe("POST", "/api/v1/events", 413, "ingest", js, json.dumps([make_event(0) | {"x": "y" * 4096}]).encode()),
        Probe("POST", "/api/v1/events", 422, "ingest", js, b'[{"type": "prompt"}]'),
        Probe("POST", "/api/v1/events", 413, "ingest", js, json.dumps([make_event(0), make_event(1)]).encode()),
        Probe("GET", "/api/v1/events/no-such-event", 404, "read"),
        Probe("GET", "/api/v1/traces?limit=many", 400, "read"),
        Probe("GET", "/api/v1/traces?cursor=last", 400, "read"),
        Probe("GET", "/api/v1/traces?status=weird", 400, "read"),
        Probe("GET", "/?since=yesterday", 400, "read"),
        Probe("GET", f"/api/v1/traces/{TRACE}", 404, "read"),
        Probe("GET", "/api/v1/search?q=psql&limit=many", 400, "read"),
        # Out of range is not refused: pulled into 1-500, as the parameter's description says.
        *(
            Probe("GET", f"{path}?limit={n}", 200, "read")
            for path in ("/api/v1/traces", "/api/v1/search")
            for n in LIMITS
        ),
        Probe("GET", "/api/v1/traces?cursor=-1", 200, "read"),
        Probe("GET", f"/api/v1/traces?cursor={2**70}", 200, "read"),
        Probe("GET", "/api/v1/traces?as_of=-1", 200, "read"),
        Probe("GET", f"/api/v1/traces?as_of={2**70}", 200, "read"),
        Probe("GET", "/api/v1/traces?as_of=then", 400, "read"),
        Probe("POST", "/hooks/claude-code", 400, "ingest", js, b"{not json"),
        Probe("POST", "/hooks/claude-code", 400, "ingest", js, b"[]"),
        Probe("POST", "/hooks/claude-code", 413, "ingest", js, b"x" * (4 * 1024 * 1024 + 1)),
        Probe("POST", "/hooks/claude-code", 415, "ingest", {**js, **brotli}, b"{}"),
        Probe("POST", "/api/v1/approvals", 400, "approve", js, b"{not json"),
        Probe("POST", "/api/v1/approvals", 400, "approve", js, b'{"event_id": 1}'),
        Probe("POST", "/api/v1/approvals", 400, "approve", js, b"[" * 5000 + b"]" * 5000),
        Probe("POST", "/api/v1/approvals", 404, "approve", js, b'{"event_id": "e", "approval": {}}'),
        Probe("POST", "/api/v1/approvals", 400, "approve", js, b'{"event_id": "e", "approval": {"a": 1, "a": 2}}'),
        Probe("POST", "/api/v1/approvals", 413, "approve", js, b"x" * (16 * 1024 + 1)),
        Probe("POST", "/api/v1/approvals", 415, "approve", {**js, **brotli}, b"{}"),
        Probe("POST", "/api/v1/traces/not-hex/rollback", 400, "approve", js, b"{}"),
        Probe("POST", f"/api/v1/traces/{TRACE}/rollback", 400, "approve", js, b"{not json"),
        Probe("POST", f"/api/v1/traces/{TRACE}/rollback", 409, "approve", js, b'{"dry_run": true}'),
        Probe("POST", f"/api/v1/traces/{TRACE}/rollback", 400, "approve", js, b'{"dry_run": "true"}'),
        Probe("POST", f"/api/v1/traces/{TRACE}/rollback", 400, "approve", js, b"{}"),
        # Which one counts differs between parsers: an acting body must say it once.
        Probe("POST", f"/api/v1/traces/{TRACE}/rollback", 400, "approve", js, b'{"dry_run": true, "dry_run": false}'),
        Probe("POST", f"/api/v1/traces/{TRACE}/rollback", 400, "approve", js, b"[" * 2000 + b"]" * 2000),
        Probe("POST", f"/api/v1/traces/{TRACE}/rollback", 413, "approve", js, b" " * 5000),
        Probe("GET", f"/traces/{TRACE}", 404, "read"),
        Probe("GET", "/ui/static/no-such-file.css", 404),
        Probe("GET", "/ui/static/app.css", 200),
        Probe("GET", "/healthz", 200),
        Probe("GET", "/openapi.json", 200),
    ]
    return found


def test_provoked_answers_are_documented_and_fit_their_schemas(home: Path) -> None:
    async def run() -> list[str]:
        async with running(home) as c:
            doc = (await c.client.get("/openapi.json")).json()
            wrong: list[str] = []
            for p in probes():
                r = await c.send(p.method, p.path, p.role, p.headers, p.content)
                template = template_of(c.app, p.path.split("?")[0])
                if r.status_code != p.expect:  # the probe no longer provokes what it is here for
                    wrong.append(f"{p.method} {p.path} ({p.role}): {r.status_code}, not {p.expect}: {r.text[:200]}")
                wrong += check_answer(doc, template, p.method.lower(), r)
            return wrong

    wrong = asyncio.run(run())
    assert not wrong, "\n".join(wrong)


@contextmanager
def appends_held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Make the ledger's append wait: (entered, release) tell when one is waiting and let it go."""
    entered, release = threading.Event(), threading.Event()
    append = Ledger.append

    def held(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(30)
        return append(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(Ledger, "append", held)
        try:
            yield entered, release
        finally:
            release.set()


def test_overloaded_answers_are_documented_and_fit_their_schemas(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One event waits in the ledger's append: with max_pending_events=1 every other is refused.
    one_event = json.dumps([make_event(0)]).encode()
    sends = [
        ("/v1/traces", {"content-type": JSON}, otlp_spans(1)),
        ("/v1/logs", {"content-type": JSON}, otlp_prompts(1)),
        ("/api/v1/events", {"content-type": JSON}, json.dumps([make_event(1)]).encode()),
    ]

    async def run() -> list[str]:
        async with running(home) as c:
            doc = (await c.client.get("/openapi.json")).json()
            wrong: list[str] = []
            with appends_held(monkeypatch) as (entered, release):
                first = asyncio.create_task(
                    c.send("POST", "/api/v1/events", "ingest", {"content-type": JSON}, one_event)
                )
                assert await asyncio.to_thread(entered.wait, 30)
                for path, headers, body in sends:
                    r = await c.send("POST", path, "ingest", headers, body)
                    if r.status_code != 503 or r.headers.get("retry-after") != "1":
                        wrong.append(f"POST {path}: {r.status_code} {r.headers}, not 503 with Retry-After")
                    wrong += check_answer(doc, path, "post", r)
                release.set()
                assert (await first).status_code == 200
            return wrong

    wrong = asyncio.run(run())
    assert not wrong, "\n".join(wrong)


def _lines(body: bytes) -> list[Any]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_every_documented_events_content_type_is_taken_and_its_schema_fits_what_is_taken(home: Path) -> None:
    events = [make_event(n) for n in range(4)]
    ndjson = "".join(json.dumps(e) + "\n" for e in events).encode()
    sent = {
        "application/json": json.dumps(events).encode(),
        "application/x-ndjson": ndjson,
        "application/jsonl": ndjson,
    }

    async def run() -> tuple[dict[str, Any], list[str]]:
        async with running(home, ServerSettings()) as c:  # four events at once are let in
            doc = (await c.client.get("/openapi.json")).json()
            wrong: list[str] = []
            for n, (media, body) in enumerate(sent.items()):
                # Each sent to another trace: the same events again would be duplicates.
                body = body.replace(TRACE_OF_EVENTS.encode(), f"{n + 1:032x}".encode())
                r = await c.send("POST", "/api/v1/events", "ingest", {"content-type": media}, body)
                if r.status_code != 200 or r.json()["stored"] != len(events):
                    wrong.append(f"{media}: {r.status_code} {r.text[:200]}")
                wrong += check_answer(doc, "/api/v1/events", "post", r)
            return doc, wrong

    doc, wrong = asyncio.run(run())
    assert not wrong, "\n".join(wrong)
    content = doc["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]
    assert set(content) == set(sent)
    for media, body in sent.items():
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **content[media]["schema"], **doc}
        validator = jsonschema_rs.validator_for(root)
        # JSON: the body is the instance; NDJSON and JSON Lines: each line is.
        instances = [json.loads(body)] if media == JSON else _lines(body)
        assert all(validator.is_valid(i) for i in instances), media
        assert not validator.is_valid([{"type": "prompt"}] if media == JSON else {"type": "prompt"})


def test_accepted_query_values_fit_their_documented_schemas() -> None:
    # `limit` out of 1-500 is answered, not refused: the documented schema must take it too.
    for path in ("/api/v1/traces", "/api/v1/search"):
        (limit,) = [p for p in openapi_document()["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        validator = jsonschema_rs.validator_for(limit["schema"])
        assert all(validator.is_valid(n) for n in LIMITS), limit
        assert not validator.is_valid("many")
        assert "1-500" in limit["description"] and "never refused" in limit["description"]


def test_metrics_without_an_otlp_content_type_is_refused(home: Path) -> None:
    async def run() -> list[int]:
        async with running(home) as c:
            return [
                (await c.send("POST", "/v1/metrics", "ingest", headers, b"")).status_code
                for headers in ({}, {"content-type": "text/plain"})
            ]

    assert asyncio.run(run()) == [415, 415]


def test_a_cursor_below_any_sqlite_integer_is_answered(home: Path) -> None:
    async def run() -> list[tuple[int, Any]]:
        async with running(home) as c:
            answers = [
                await c.send("GET", f"/api/v1/traces?{p}={-(2**70)}", "read", {}, b"") for p in ("cursor", "as_of")
            ]
            return [(r.status_code, r.json()["traces"]) for r in answers]

    assert asyncio.run(run()) == [(200, []), (200, [])]


def test_every_operation_answers_as_documented_without_a_token_and_with_the_wrong_role(home: Path) -> None:
    async def run() -> list[str]:
        async with running(home) as c:
            doc = (await c.client.get("/openapi.json")).json()
            ops = served_operations(c.app)
            documented = {(p, m) for p, item in doc["paths"].items() for m in item}
            wrong = [f"{m.upper()} {p}: served, not documented" for p, m in sorted(ops - documented)]
            wrong += [f"{m.upper()} {p}: documented, not served" for p, m in sorted(documented - ops)]
            for template, method in sorted(ops & documented):
                op = doc["paths"][template][method]
                guarded = op.get("security", doc["security"]) != []
                headers = {"content-type": JSON} if method == "post" else {}
                content = b"{}" if method == "post" else b""
                statuses = []
                # An ingest route refuses a read token, and every other route an ingest token.
                for role in (None, "ingest", "read"):
                    r = await c.send(method.upper(), fill(template), role, headers, content)
                    statuses.append(r.status_code)
                    wrong += check_answer(doc, template, method, r)
                where = f"{method.upper()} {template}"
                if guarded and (statuses[0] != 401 or 403 not in statuses[1:]):
                    wrong.append(f"{where}: documented as needing a token, answered {statuses}")
                if not guarded and {401, 403} & set(statuses):
                    wrong.append(f"{where}: documented as open (security: []), answered {statuses}")
            return wrong

    wrong = asyncio.run(run())
    assert not wrong, "\n".join(wrong)


def test_bearer_is_the_global_security_and_loopback_anonymity_is_explained(home: Path) -> None:
    async def run() -> tuple[dict[str, Any], tuple[int, int]]:
        async with running(home) as c:
            doc = dict((await c.client.get("/openapi.json")).json())
            # What the description promises: no token needed on loopback, by default.
            transport = httpx.ASGITransport(app=c.app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:4318") as local:
                ok = (await local.get("/api/v1/checkpoint")).status_code
                # ... unless it names another host, as a page in a browser would (DNS rebinding).
                page = (await local.get("/api/v1/checkpoint", headers={"host": "collector.example"})).status_code
                return doc, (ok, page)

    doc, loopback_status = asyncio.run(run())
    assert loopback_status == (200, 403)
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "loopback" in doc["info"]["description"] and "--require-tokens" in doc["info"]["description"]
    open_ops = {(p, m) for p, item in doc["paths"].items() for m, op in item.items() if op.get("security") == []}
    assert open_ops == {("/healthz", "get"), ("/openapi.json", "get"), ("/ui/static/{path}", "get")}
