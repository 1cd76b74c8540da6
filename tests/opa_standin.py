"""A stand-in for an OPA server, for tests of the external policy backend.

It stands in for OPA (`opa run --server`) because OPA cannot be installed here: no OPA binary is
available from the allowed package registries. It is a real HTTP server on a loopback port
speaking the shape of OPA's REST data API, "Get a Document (with Input)": `POST
/v1/data/{path}` with `{"input": …}` answers `200 {"result": <data.path>}`, or `200 {}` when
the document is undefined, `400 {"code", "message"}` for a body that is not JSON, and adds
`provenance` (with a bundle revision) when asked with `?provenance=true`. It evaluates the same
Rego with regorus: the pack's files, its settings as `data.flightlog.settings`, and the
entrypoint a team serving the pack from OPA adds (`ENTRYPOINT`, see docs/policy.md).

`mode` makes it misbehave: "slow" (answers after `delay` seconds), "error" (500 with OPA's
error body), "garbage" (200 with a body that is not JSON), "list" (200 with a JSON array),
"bare" (200 with a result that is not a decision object).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import regorus

from flightlog.policy_stage import load_settings

ENTRYPOINT = "package flightlog\n\ndecision := data.flightlog.pack.pack_decision\n"
REVISION = "pack-test-1"


class OpaStandIn:
    """Serve `files` (policy files as `policy_files` returns them) until `close()`."""

    def __init__(self, files: list[Path], mode: str = "ok", delay: float = 0.0) -> None:
        self.mode, self.delay = mode, delay
        self.requests: list[dict[str, Any]] = []  # {"path", "body", "authorization"}
        self._policies = [(p.name, p.read_text("utf-8")) for p in files if p.suffix == ".rego"]
        self._policies.append(("opa_entrypoint.rego", ENTRYPOINT))
        self._data = json.dumps({"flightlog": {"settings": load_settings(files)}})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def evaluate(self, path: str, document: object) -> object:
        """The value of `data.<path>` for `document`, or None when undefined."""
        query = "data." + ".".join(path.strip("/").split("/"))
        engine = regorus.Engine()  # per request: a regorus engine must stay in its thread
        for name, text in self._policies:
            engine.add_policy(name, text)
        engine.add_data_json(self._data)
        engine.set_input_json(json.dumps(document))
        results = engine.eval_query(query)["result"]
        return results[0]["expressions"][0]["value"] if results else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                path, _, query = self.path.partition("?")
                standin.requests.append(
                    {"path": self.path, "body": raw, "authorization": self.headers.get("authorization")}
                )
                if standin.mode == "slow":
                    time.sleep(standin.delay)
                if standin.mode == "error":
                    return self._send(500, {"code": "internal_error", "message": "eval_conflict_error: boom"})
                if standin.mode == "garbage":
                    return self._send_raw(200, b"<html>proxy error</html>")
                if standin.mode == "list":
                    return self._send(200, [])
                if standin.mode == "bare":
                    return self._send(200, {"result": "allow"})
                if not path.startswith("/v1/data/"):
                    return self._send(404, {"code": "resource_not_found", "message": "not found"})
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    return self._send(400, {"code": "invalid_parameter", "message": "body must be JSON"})
                value = standin.evaluate(path[len("/v1/data/") :], body.get("input"))
                answer: dict[str, Any] = {} if value is None else {"result": value}
                if "provenance=true" in query:
                    answer["provenance"] = {"version": "stand-in", "bundles": {"flightlog": {"revision": REVISION}}}
                return self._send(200, answer)

            def _send(self, status: int, value: object) -> None:
                self._send_raw(status, json.dumps(value).encode())

            def _send_raw(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (a timeout test)
                    pass

        return Handler
