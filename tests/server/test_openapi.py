"""The served OpenAPI document describes exactly the routes the app serves, and holds together."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
from starlette.routing import Mount, Route

from flightlog.events import EVENT_TYPES, event_schema
from flightlog.server.app import create_app
from flightlog.server.openapi import openapi_document
from tests.conftest import make_event


def test_every_route_is_documented_and_every_documented_path_served(tmp_path: Path) -> None:
    app = create_app(tmp_path / "home")
    served = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route) for m in (r.methods or ()) if m != "HEAD"}
    # A Mount serves files below its path: documented as one GET with the file as a path parameter.
    served |= {(r.path + "/{path}", "get") for r in app.routes if isinstance(r, Mount)}
    assert all(isinstance(r, Route | Mount) for r in app.routes)
    documented = {(p, m) for p, ops in openapi_document()["paths"].items() for m in ops}
    assert served == documented
    assert openapi_document()["components"]["schemas"]["Event"]["title"] == "flightlog.event/v1"


def _walk(node: Any, where: str = "#") -> Iterator[tuple[str, str, Any]]:
    """(location, key, value) of every member of every object in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, key, value
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from _walk(value, f"{where}/{n}")


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    """The value a local reference ("#/a/b") points at in `doc` (RFC 6901); KeyError when none."""
    if not ref.startswith("#/"):
        raise KeyError(f"not a reference inside the document: {ref}")
    node: Any = doc
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def test_every_ref_resolves_inside_the_document() -> None:
    # A tool reading the document (schemathesis, a client generator) resolves each $ref against
    # the document itself: one that names nothing there leaves its part of the API unchecked.
    doc = openapi_document()
    refs = [(where, value) for where, key, value in _walk(doc) if key == "$ref"]
    assert refs
    unresolved = []
    for where, ref in refs:
        try:
            target = _resolve(doc, ref)
        except (KeyError, IndexError, ValueError):
            unresolved.append(f"{where}: {ref}")
            continue
        if not isinstance(target, dict):
            unresolved.append(f"{where}: {ref} names a {type(target).__name__}, not a schema")
    assert not unresolved, "\n".join(unresolved)
    # An $id would make the references below it resolve against another document, and a $schema
    # would switch a schema from OpenAPI 3.1's dialect to another: the document has neither.
    assert [f"{where}: {key}" for where, key, _ in _walk(doc) if key in ("$id", "$schema")] == []


def _event_instances() -> Iterator[Any]:
    """Events valid and not: the test events of each type, each with a member dropped or replaced
    by values of every JSON type, and with the payload of every other type."""
    wrong: list[Any] = [None, 0, -1, 1.5, "", "x" * 70, True, [], ["x"], {}, {"sha256": "0" * 64}]
    for n in range(4):
        event = make_event(n)
        yield event
        for part in ("event", "payload"):
            target = event if part == "event" else event["payload"]
            for key in target:
                dropped = copy.deepcopy(event)
                (dropped if part == "event" else dropped["payload"]).pop(key)
                yield dropped
                for value in wrong:
                    changed = copy.deepcopy(event)
                    (changed if part == "event" else changed["payload"])[key] = value
                    yield changed
        for kind in EVENT_TYPES:
            yield {**event, "type": kind}
            for other in range(4):
                yield {**event, "type": kind, "payload": make_event(other)["payload"]}


def test_the_documented_event_schema_validates_as_the_event_schema_does() -> None:
    doc = openapi_document()
    schema = event_schema()
    original = jsonschema_rs.validator_for(schema)
    documented = jsonschema_rs.validator_for(
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "#/components/schemas/Event", **doc}
    )
    verdicts = {(original.is_valid(e), documented.is_valid(e)) for e in _event_instances()}
    assert verdicts == {(True, True), (False, False)}
    # Every definition of the event schema is in the document, under its prefixed name.
    names = {f"Event_{name}" for name in schema["definitions"]}
    assert names <= set(doc["components"]["schemas"])
    # The payload rules are a oneOf by type, which generators take, not the if/then pairs.
    event = doc["components"]["schemas"]["Event"]
    assert "allOf" not in event and len(event["oneOf"]) == len(schema["allOf"])


def test_every_content_type_the_events_route_takes_is_documented() -> None:
    documented = set(openapi_document()["paths"]["/api/v1/events"]["post"]["requestBody"]["content"])
    assert documented == {"application/json", "application/x-ndjson", "application/jsonl"}
