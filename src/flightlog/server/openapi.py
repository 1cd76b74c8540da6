"""The OpenAPI 3.1 document of the collector's HTTP API (served at /openapi.json).

Written by hand, next to the routes it describes; tests/server/test_openapi.py checks that every
route is in it and every documented path is served.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flightlog.approvals import APPROVAL_FIELDS
from flightlog.events import event_schema

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
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


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "bad request",
        401: "token missing or invalid",
        403: "token role not allowed",
        404: "not found",
        413: "body or event too large",
        415: "unsupported content type or encoding",
        422: "invalid events; nothing stored",
        503: "overloaded; Retry-After given",
    }
    return {
        str(c): {
            "description": text[c],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for c in codes
    }


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind},
    }


def _otlp(signal: str, message: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": f"OTLP/HTTP {signal} receiver ({message})",
            "description": "Protobuf or OTLP JSON, optionally gzip. Answers with the matching "
            "Export…ServiceResponse (partial_success for rejected items) in the request's encoding.",
            "security": [{"bearer": []}, {}],
            "requestBody": {
                "required": True,
                "content": {"application/x-protobuf": {}, "application/json": {}},
            },
            "responses": {
                "200": {"description": f"Export{message}Response"},
                **_errors(400, 401, 403, 413, 415, 503),
            },
        }
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document."""
    event = {"$ref": "#/components/schemas/Event"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "flightlog collector", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Event": event_schema(), "Error": _ERROR},
        },
        "paths": {
            "/v1/traces": _otlp("traces", "TraceService"),
            "/v1/logs": _otlp("logs", "LogsService"),
            "/v1/metrics": {
                "post": {
                    "summary": "OTLP/HTTP metrics: accepted and not stored yet",
                    "responses": {"200": {"description": "empty ExportMetricsServiceResponse"}},
                }
            },
            "/api/v1/events": {
                "post": {
                    "summary": "Store events (role ingest). A 2xx means durably committed.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": event}},
                            "application/x-ndjson": {"schema": event},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "stored",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
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
                        **_errors(400, 401, 403, 413, 415, 422, 503),
                    },
                }
            },
            "/api/v1/events/{event_id}": {
                "get": {
                    "summary": "One event and its ledger index; ?proof=1 adds inclusion proof and checkpoint",
                    "parameters": [
                        {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        _query("proof", "1 to include the inclusion proof"),
                    ],
                    "responses": {"200": {"description": "the event"}, **_errors(401, 403, 404)},
                }
            },
            "/api/v1/traces": {
                "get": {
                    "summary": "Traces with an event matching every filter, newest first",
                    "parameters": [
                        _query("agent", "agent_id"),
                        _query("session", "session_id"),
                        _query("type", "event type"),
                        _query("status", "ok, error, denied, pending, unset"),
                        _query("since", "RFC 3339 UTC, inclusive"),
                        _query("until", "RFC 3339 UTC, exclusive"),
                        _query("file_path", "payload.file_path of a file_op"),
                        _query("limit", "1-500, default 50", "integer"),
                        _query("cursor", "next_cursor of the previous page", "integer"),
                    ],
                    "responses": {"200": {"description": "{traces, next_cursor}"}, **_errors(400, 401, 403)},
                }
            },
            "/api/v1/traces/{trace_id}": {
                "get": {
                    "summary": "A trace's events in tree order (depth, ledger index, event)",
                    "parameters": [{"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "{trace_id, events}"}, **_errors(401, 403, 404)},
                }
            },
            "/api/v1/search": {
                "get": {
                    "summary": "Full-text search over redacted events (every word must occur), newest first",
                    "parameters": [_query("q", "words to find"), _query("limit", "1-500, default 50", "integer")],
                    "responses": {
                        "200": {
                            "description": "{query, hits: [{index, event_id, trace_id, type, snippet}], indexed, "
                            "entries}: while indexed < entries the index is catching up (newer events may be missing)"
                        }
                    },
                }
            },
            "/api/v1/checkpoint": {
                "get": {
                    "summary": "The latest signed checkpoint and the log's verifier keys",
                    "responses": {"200": {"description": "{origin, size, root, note, verifier_key, verifier_keys}"}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics: agent signals and ingest health (role read)",
                    "responses": {"200": {"description": "Prometheus text format"}, **_errors(401, 403)},
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
                        **_errors(400, 401, 403, 413),
                    },
                }
            },
            "/api/v1/approvals": {
                "get": {
                    "summary": "Pending approval requests of ask decisions (role approve)",
                    "responses": {
                        "200": {"description": "{pending: [{event_id, action_digest, roles, reason, tool_name, …}]}"},
                        **_errors(401, 403),
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
                        "200": {"description": "{approved: true, event_id (of the approval event), expires_at}"},
                        "422": {"description": "refused and recorded: {error, reason, event_id (of the error event)}"},
                        **_errors(400, 401, 403, 404, 413),
                    },
                },
            },
            "/api/v1/traces/{trace_id}/rollback": {
                "post": {
                    "summary": "Roll back the files a trace changed (role approve); records who did it",
                    "description": "Body: {dry_run: bool}. A dry run answers the plan and changes nothing. The "
                    "rollback itself is recorded as a `rollback` event naming the caller (token id and name, or "
                    "the anonymous loopback client).",
                    "parameters": [{"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "properties": {"dry_run": {"type": "boolean"}}}
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "{trace_id, dry_run, actor, result: {mode, actions, unchanged, …}}"},
                        "409": {"description": "refused: files changed since the trace, earlier content not stored"},
                        "501": {"description": "rollback is not available in this build"},
                        **_errors(400, 401, 403),
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "Web UI: the trace list (HTML), with search and the filters of /api/v1/traces "
                    "plus q and repo (role read)",
                    "responses": {
                        "200": {"description": "HTML page", "content": {"text/html": {}}},
                        **_errors(401, 403),
                    },
                }
            },
            "/traces/{trace_id}": {
                "get": {
                    "summary": "Web UI: one trace's timeline, span details, diffs and proof badges (HTML, role read)",
                    "parameters": [{"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "HTML page", "content": {"text/html": {}}},
                        "404": {"description": "no such trace (HTML page)"},
                        **_errors(401, 403),
                    },
                }
            },
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}},
            "/healthz": {
                "get": {
                    "summary": "Liveness: `entries` in the ledger and how many are `indexed` for search",
                    "responses": {"200": {"description": "ok"}},
                }
            },
        },
    }
