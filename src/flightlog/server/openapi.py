"""The OpenAPI 3.1 document of the collector's HTTP API (served at /openapi.json).

Written by hand, next to the routes it describes; tests/server/test_openapi.py checks that every
route is in it and every documented path is served, and tests/server/test_openapi_accuracy.py
provokes each error it can and checks the status is documented and the body fits its schema.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flightlog.approvals import APPROVAL_FIELDS
from flightlog.events import EVENT_TYPES, STATUSES, event_schema

__all__ = ["openapi_document"]

_AUTH = (
    "Every operation needs a bearer token (`flightlog tokens create --role ingest|read|approve|admin`) "
    "unless it says `security: []`, with one exception that is on by default: a client on loopback "
    "(127.0.0.0/8, ::1) that sends no Authorization header is let in anonymously with every role "
    "(`flightlog serve --anonymous-loopback`, the default; `--require-tokens` turns it off), as long as it "
    "looks like a local program and not a web page: its Host is localhost, an IP address or this machine's "
    "name (not a DNS name a page could rebind), a Sec-Fetch-Site header, if sent, is same-origin or none, "
    "and an Origin, if sent, is that same host and port (a page of another site or of another local web "
    "server gets 403). "
    "Clients from any other address always need a token, and a token that is sent is always checked. 401: "
    "the token is missing or unknown; 403: its role does not grant what the operation needs (an admin "
    "token grants everything, approve grants read), or an anonymous request came from a web page. A "
    "FlightlogError inside a handler answers 400, or 500 for an internal one, with an Error body."
)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": ["integer", "null"]},
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}

# The OTLP/HTTP spec has failures answered with a google.rpc.Status in the request's encoding, and
# exporters decode them as one; so the OTLP routes answer that, never an Error.
_STATUS = {
    "type": "object",
    "description": "google.rpc.Status: protobuf for an application/x-protobuf request, its proto3 JSON form "
    "otherwise. `code` is the gRPC status code, never 0 (OK), e.g. 3 INVALID_ARGUMENT for a bad body.",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer", "minimum": 1, "maximum": 16},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}

_REASONS = {
    400: "bad request",
    404: "not found",
    409: "conflict",
    413: "body or event too large, or more events in one request than the collector holds pending",
    415: "unsupported content type or encoding",
    422: "invalid events; nothing stored",
    500: "internal error",
    503: "overloaded; Retry-After given",
}
_JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_OTLP_STATUS = {
    "application/x-protobuf": {"schema": {"$ref": "#/components/schemas/Status"}},
    "application/json": {"schema": {"$ref": "#/components/schemas/Status"}},
}
_OPEN: dict[str, Any] = {"security": []}  # no token asked, from any address


def _errors(*codes: int, content: dict[str, Any] = _JSON_ERROR) -> dict[str, Any]:
    return {str(c): {"description": _REASONS[c], "content": content} for c in codes}


def _auth(role: str, content: dict[str, Any] = _JSON_ERROR) -> dict[str, Any]:
    """The 401 and 403 of an operation that needs a token granting `role` (see _AUTH)."""
    return {
        "401": {"description": "token missing (and not an anonymous loopback client) or invalid", "content": content},
        "403": {
            "description": f"the token's role does not grant {role}, or an anonymous loopback request came "
            "from a web page (a Host or Origin that is not a loopback name)",
            "content": content,
        },
    }


def _ok(description: str, *keys: str) -> dict[str, Any]:
    """A 200 with a JSON object body holding at least `keys` (the description says what they are)."""
    schema = {"type": "object", "required": list(keys)}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, kind: str = "string", **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind, **schema},
    }


def _time_filter(name: str, description: str) -> dict[str, Any]:
    """`since` or `until`: an RFC 3339 date-time, a date, or empty (no filter)."""
    return _query(
        name,
        f"{description}: an RFC 3339 date-time (converted to UTC; one without an offset is taken as UTC), or "
        "a date (its midnight UTC); empty: no filter",
        anyOf=[{"format": "date-time"}, {"format": "date"}, {"const": ""}],
    )


def _limit() -> dict[str, Any]:
    """The `limit` query parameter of a list: any integer is taken, pulled into 1-500."""
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Most results to answer, default 50. Any integer is taken and pulled into 1-500, never "
        "refused: below 1 (0, -5) counts as 1, above 500 as 500. Not an integer: 400.",
        "schema": {"type": "integer", "default": 50},
    }


def _event_schemas() -> dict[str, Any]:
    """The event JSON Schema as components: `Event`, and `Event_<name>` for each of its definitions.

    The schema file is a draft-07 document with its own `$id`, referring to its parts as
    `#/definitions/<name>`; inside this document such a reference would name this document's root,
    where there are no definitions. So the definitions move into components/schemas beside Event,
    the references are rewritten to point at them, and `$schema` and `$id` go (an `$id` would make
    every reference inside resolve against the schema file instead of this document). The schema
    uses no keyword whose meaning differs between draft-07 and 2020-12, OpenAPI 3.1's dialect, and
    its payload-per-type `if`/`then` list is said as a `oneOf` by type (see _one_of_by_type):
    tests/server/test_openapi.py checks both validate events alike."""
    # A copy: event_schema() is cached, and validation uses the original.
    schema = {k: v for k, v in event_schema().items() if k not in ("$schema", "$id", "definitions")}
    schema = _one_of_by_type(schema)
    definitions: dict[str, Any] = event_schema().get("definitions", {})
    names = {f"#/definitions/{name}": f"#/components/schemas/Event_{name}" for name in definitions}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: names[v] if k == "$ref" else rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    parts = {f"Event_{name}": rewrite(part) for name, part in definitions.items()}
    return {"Event": rewrite(schema), **parts}


def _one_of_by_type(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `allOf` of "if type is T then payload is P" said as a `oneOf` of "type is T
    and payload is P", plus one branch for the types that have no such rule. The two mean the same
    (type is required and one of an enum), but generators take a oneOf and give up on a dozen
    if/then pairs (schemathesis: "does not support this part of it"). Unchanged unless every
    member of the allOf has that shape."""
    rules = schema.get("allOf", [])
    branches = []
    for rule in rules:
        when, then = rule.get("if", {}), rule.get("then", {})
        kind = when.get("properties", {}).get("type", {})
        if set(rule) != {"if", "then"} or set(when) != {"properties", "required"} or set(kind) != {"const"}:
            return schema
        if when["required"] != ["type"] or set(when["properties"]) != {"type"} or set(then) != {"properties"}:
            return schema
        branches.append({"properties": {"type": kind, **then["properties"]}})
    if not branches:
        return schema
    ruled = [b["properties"]["type"]["const"] for b in branches]
    if len(set(ruled)) < len(ruled):  # two rules for one type: both apply, one branch would not do
        return schema
    rest = [t for t in schema.get("properties", {}).get("type", {}).get("enum", []) if t not in ruled]
    if rest:
        branches.append({"properties": {"type": {"enum": rest}}})
    return {**{k: v for k, v in schema.items() if k != "allOf"}, "oneOf": branches}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _otlp(signal: str, message: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": f"OTLP/HTTP {signal} receiver ({message}, role ingest)",
            "description": "Protobuf or OTLP JSON, optionally gzip. Answers with the matching "
            "Export…ServiceResponse (partial_success for rejected items) in the request's encoding, and "
            "fails with a google.rpc.Status in the request's encoding (JSON when the Content-Type is "
            "neither).",
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-protobuf": {},
                    "application/json": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "200": {
                    "description": f"Export{message}Response",
                    "content": {"application/x-protobuf": {}, "application/json": {"schema": {"type": "object"}}},
                },
                **_errors(400, 413, 415, 503, content=_OTLP_STATUS),
                **_auth("ingest", _OTLP_STATUS),
            },
        }
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document."""
    event = {"$ref": "#/components/schemas/Event"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "flightlog collector", "version": "1", "description": _AUTH},
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `flightlog tokens create`; optional for loopback clients "
                    "unless the server runs with --require-tokens.",
                }
            },
            "schemas": {**_event_schemas(), "Error": _ERROR, "Status": _STATUS},
        },
        "paths": {
            "/v1/traces": _otlp("traces", "TraceService"),
            "/v1/logs": _otlp("logs", "LogsService"),
            "/v1/metrics": {
                "post": {
                    "summary": "OTLP/HTTP metrics: accepted and not stored yet (role ingest)",
                    "description": "The body is read (size limit, gzip) but not decoded: any body is accepted. "
                    "Answers an empty ExportMetricsServiceResponse in the request's encoding. Body failures "
                    "answer a google.rpc.Status in the request's encoding; a refused token answers an Error.",
                    "requestBody": {
                        "required": False,
                        "content": {"application/x-protobuf": {}, "application/json": {}},
                    },
                    "responses": {
                        "200": {
                            "description": "empty ExportMetricsServiceResponse",
                            "content": {
                                "application/x-protobuf": {},
                                "application/json": {"schema": {"type": "object"}},
                            },
                        },
                        **_errors(400, 413, 415, content=_OTLP_STATUS),
                        **_auth("ingest"),
                    },
                }
            },
            "/api/v1/events": {
                "post": {
                    "summary": "Store events (role ingest). A 2xx means durably committed.",
                    "description": "All or nothing: one invalid event refuses the whole batch (422). "
                    "application/json: an array of events, or one event object (pretty-printed or not); "
                    "any other body is read as NDJSON. A different event under an event_id already stored (or "
                    "used earlier in the batch) is a 422; the same event again is a duplicate. A request of "
                    "more events than the collector holds pending is a 413. application/x-ndjson and "
                    "application/jsonl: one event per line, each line fitting "
                    "the schema given; blank lines are skipped. An empty batch stores nothing and answers 200.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"oneOf": [{"type": "array", "items": event}, event]}},
                            "application/x-ndjson": {"schema": event},
                            "application/jsonl": {"schema": event},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "stored",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["stored", "duplicates", "indexes", "event_ids"],
                                        "properties": {
                                            "stored": {"type": "integer"},
                                            "duplicates": {
                                                "type": "integer",
                                                "description": "events whose event_id the log already held; "
                                                "not stored again (their old index is in indexes)",
                                            },
                                            "indexes": {"type": "array", "items": {"type": "integer"}},
                                            "event_ids": {"type": "array", "items": {"type": "string"}},
                                        },
                                    }
                                }
                            },
                        },
                        **_errors(400, 413, 415, 422, 503),
                        **_auth("ingest"),
                    },
                }
            },
            "/api/v1/events/{event_id}": {
                "get": {
                    "summary": "One event and its ledger index; ?proof=1 adds inclusion proof and checkpoint "
                    "(role read)",
                    "parameters": [_path("event_id"), _query("proof", "1 to include the inclusion proof")],
                    "responses": {
                        "200": _ok("{index, event, proof (with ?proof=1)}", "index", "event"),
                        **_errors(404),
                        **_auth("read"),
                    },
                }
            },
            "/api/v1/traces": {
                "get": {
                    "summary": "Traces with an event matching every filter, newest first (role read)",
                    "description": "Ordered by each trace's newest matching event (without filters: its newest "
                    "event), which is also its `cursor`; a summary covers the whole trace.",
                    "parameters": [
                        _query("agent", "agent_id"),
                        _query("session", "session_id"),
                        _query("type", "event type; empty: no filter", enum=[*EVENT_TYPES, ""]),
                        _query("status", "event status; empty: no filter", enum=[*STATUSES, ""]),
                        _time_filter("since", "inclusive"),
                        _time_filter("until", "exclusive"),
                        _query("file_path", "payload.file_path of a file_op"),
                        _limit(),
                        _query(
                            "cursor",
                            "next_cursor of the previous page: traces whose cursor is below it (one above "
                            "2^63-1 counts as 2^63-1; a negative one finds none)",
                            "integer",
                        ),
                        _query(
                            "as_of",
                            "as_of of the first page, for the pages after it: they see the log as it was then "
                            "(entries below that index), so a trace that gets new events meanwhile is listed once. "
                            "Default: the log's size now. One above 2^63-1 counts as 2^63-1; a negative one finds "
                            "none.",
                            "integer",
                        ),
                    ],
                    "responses": {
                        "200": _ok(
                            "{traces, next_cursor, as_of (the log size the page was made at)}",
                            "traces",
                            "next_cursor",
                            "as_of",
                        ),
                        "400": {
                            "description": "limit, cursor or as_of is not an integer, or a type, status, since or "
                            "until filter is not a valid one",
                            "content": _JSON_ERROR,
                        },
                        **_auth("read"),
                    },
                }
            },
            "/api/v1/traces/{trace_id}": {
                "get": {
                    "summary": "A trace's events in tree order (depth, ledger index, event) (role read)",
                    "parameters": [_path("trace_id")],
                    "responses": {
                        "200": _ok("{trace_id, events}", "trace_id", "events"),
                        **_errors(404),
                        **_auth("read"),
                    },
                }
            },
            "/api/v1/search": {
                "get": {
                    "summary": "Full-text search over redacted events (every word must occur), newest first "
                    "(role read)",
                    "parameters": [
                        _query("q", "words to find; none finds nothing"),
                        _limit(),
                    ],
                    "responses": {
                        "200": _ok(
                            "{query, hits: [{index, event_id, trace_id, type, snippet}], indexed, entries}: while "
                            "indexed < entries the index is catching up (newer events may be missing)",
                            "query",
                            "hits",
                            "indexed",
                            "entries",
                        ),
                        "400": {
                            "description": "limit is not an integer, or the query has more than 32 different words",
                            "content": _JSON_ERROR,
                        },
                        **_auth("read"),
                    },
                }
            },
            "/api/v1/checkpoint": {
                "get": {
                    "summary": "The latest signed checkpoint and the log's verifier keys (role read)",
                    "responses": {
                        "200": _ok(
                            "{origin, size, root, note, verifier_key, verifier_keys}",
                            "origin",
                            "size",
                            "root",
                            "note",
                            "verifier_key",
                            "verifier_keys",
                        ),
                        **_auth("read"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics: agent signals and ingest health (role read)",
                    "responses": {
                        "200": {"description": "Prometheus text format", "content": {"text/plain": {}}},
                        **_auth("read"),
                    },
                }
            },
            "/hooks/claude-code": {
                "post": {
                    "summary": "Claude Code HTTP hook: record the hook event and answer it (role ingest)",
                    "description": "Body: the hook input JSON exactly as Claude Code sends it. The answer is Claude "
                    "Code's hook output JSON (e.g. a PreToolUse permissionDecision), or an empty 200 when there is "
                    "nothing to say. Fails open: an internal failure answers an empty 200.",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "200": {
                            "description": "hook output JSON, or empty",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_errors(400, 413, 415),
                        **_auth("ingest"),
                    },
                }
            },
            "/api/v1/approvals": {
                "get": {
                    "summary": "Pending approval requests of ask decisions (role approve)",
                    "responses": {
                        "200": _ok("{pending: [{event_id, action_digest, roles, reason, tool_name, …}]}", "pending"),
                        **_auth("approve"),
                    },
                },
                "post": {
                    "summary": "Record a signed approval of an ask (role approve); refusals are recorded too",
                    "description": "Body: {event_id, approval}, the approval signed with the approver's Ed25519 key "
                    "on the approver's machine, exactly as `flightlog approve` signs it (the collector holds only "
                    "public keys). Checked like the hook checks it: registered key, signature, role, same event "
                    "and action digest, not expired, not the agent's own identity, not replayed. Accepted: an "
                    "`approval` event, and the approval goes to the waiting ask. Refused: an `error` event "
                    "(payload kind approval_bypass_attempt) and 422.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["event_id", "approval"],
                                    "properties": {
                                        "event_id": {"type": "string"},
                                        "approval": {
                                            "type": "object",
                                            "required": [f for f in APPROVAL_FIELDS if f != "kind"],
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _ok(
                            "{approved: true, event_id (of the approval event), expires_at}",
                            "approved",
                            "event_id",
                            "expires_at",
                        ),
                        "404": {"description": "no pending approval request for event_id", "content": _JSON_ERROR},
                        "422": {
                            "description": "refused and recorded: Error plus reason and event_id (of the error event)",
                            "content": _JSON_ERROR,
                        },
                        **_errors(400, 413, 415, 500),
                        **_auth("approve"),
                    },
                },
            },
            "/api/v1/traces/{trace_id}/rollback": {
                "post": {
                    "summary": "Roll back the files a trace changed (role approve); records who did it",
                    "description": "Body: {dry_run: bool}, required (no default: a real rollback is asked for "
                    "by name). A dry run answers the plan and changes nothing. The "
                    "rollback itself is recorded as a `rollback` event naming the caller (token id and name, or "
                    "the anonymous loopback client).",
                    "parameters": [{**_path("trace_id"), "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["dry_run"],
                                    "properties": {"dry_run": {"type": "boolean"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _ok(
                            "{trace_id, dry_run, actor, result: {mode, actions, unchanged, …}}",
                            "trace_id",
                            "dry_run",
                            "actor",
                            "result",
                        ),
                        "400": {
                            "description": "trace_id is not 32 hex digits, or the body is not JSON with a "
                            "boolean dry_run (a member named twice is refused)",
                            "content": _JSON_ERROR,
                        },
                        "409": {
                            "description": "refused: no such trace, files changed since the trace and their "
                            "earlier content is not stored, a path outside the workspaces this collector "
                            "snapshotted itself (or in .git), or every file change of the trace was sent by "
                            "another machine (those are never acted on here: `result.left_alone` lists them "
                            "when the trace has changes of this machine too)",
                            "content": _JSON_ERROR,
                        },
                        "500": {
                            "description": "rolled back, but the rollback event was refused",
                            "content": _JSON_ERROR,
                        },
                        **_errors(413, 415),
                        **_auth("approve"),
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "Web UI: the trace list (HTML), with search and the filters of /api/v1/traces "
                    "plus q and repo (role read)",
                    "responses": {
                        "200": {"description": "HTML page", "content": {"text/html": {}}},
                        "400": {
                            "description": "a filter is not valid, or the search has more than 32 different "
                            "words (HTML page saying which)",
                            "content": {"text/html": {}},
                        },
                        **_auth("read"),
                    },
                }
            },
            "/traces/{trace_id}": {
                "get": {
                    "summary": "Web UI: one trace's timeline, span details, diffs and proof badges (HTML, role read)",
                    "parameters": [_path("trace_id")],
                    "responses": {
                        "200": {"description": "HTML page", "content": {"text/html": {}}},
                        "404": {"description": "no such trace (HTML page)", "content": {"text/html": {}}},
                        **_auth("read"),
                    },
                }
            },
            "/ui/static/{path}": {
                "get": {
                    "summary": "Web UI: static scripts and styles (the pages that use them need role read)",
                    **_OPEN,
                    "parameters": [_path("path")],
                    "responses": {
                        "200": {
                            "description": "the file",
                            # The type comes from the host's mimetypes table, which names JavaScript either way.
                            "content": {"text/css": {}, "text/javascript": {}, "application/javascript": {}},
                        },
                        "404": {"description": "no such file", "content": {"text/plain": {}}},
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    **_OPEN,
                    "responses": {"200": {"description": "OpenAPI", "content": {"application/json": {}}}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: `entries` in the ledger and how many are `indexed` for search",
                    **_OPEN,
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status", "entries", "indexed"],
                                        "properties": {
                                            "status": {"const": "ok"},
                                            "entries": {"type": "integer"},
                                            "indexed": {"type": "integer"},
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
        },
    }
