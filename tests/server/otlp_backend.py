"""A tiny real OTLP/HTTP backend on 127.0.0.1 for export tests: records requests, answers as told."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    span_count: int


@dataclass
class Backend:
    url: str  # the /v1/traces URL to export to
    status: int = 200  # what every request is answered with; tests change it
    requests: list[Received] = field(default_factory=list)
    # Cleared, it holds every answer back: the exporter is then busy, and its queue fills.
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def spans(self) -> int:
        return sum(r.span_count for r in self.requests)


@contextmanager
def recording_backend(status: int = 200) -> Iterator[Backend]:
    """Serve on a free loopback port until the block ends, then shut the server down."""
    backend = Backend(url="", status=status)
    backend.release.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches to
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            request = ExportTraceServiceRequest.FromString(body)
            spans = sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)
            backend.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, spans))
            backend.arrived.set()
            backend.release.wait(30)
            self.send_response(backend.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="otlp-backend", daemon=True)
    thread.start()
    backend.url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    try:
        yield backend
    finally:
        backend.release.set()  # a held answer must not keep shutdown waiting
        server.shutdown()
        server.server_close()
        thread.join(10)
