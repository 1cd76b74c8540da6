"""A tiny real OTLP/HTTP backend on 127.0.0.1 for export tests: records requests, answers as told."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    span_count: int
    request: ExportTraceServiceRequest
    at: float  # time.monotonic() when it arrived
    status: int  # what it was answered


@dataclass
class Backend:
    url: str  # the /v1/traces URL to export to
    status: int = 200  # what requests are answered with; tests change it
    statuses: list[int] = field(default_factory=list)  # answers for the next requests, before `status`
    retry_after: str | None = None  # a Retry-After header sent with every answer, when set
    requests: list[Received] = field(default_factory=list)
    # Cleared, it holds every answer back: the exporter is then busy.
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def spans(self) -> int:
        return sum(r.span_count for r in self.requests)

    def accepted(self) -> list[tuple[str, Span]]:
        """(service.name, span) of every span in a request answered 2xx, in arrival order."""
        found: list[tuple[str, Span]] = []
        for received in list(self.requests):
            if 200 <= received.status < 300:
                for rs in received.request.resource_spans:
                    service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                    found.extend((service, span) for ss in rs.scope_spans for span in ss.spans)
        return found


@contextmanager
def recording_backend(status: int = 200) -> Iterator[Backend]:
    """Serve on a free loopback port until the block ends, then shut the server down."""
    backend = Backend(url="", status=status)
    backend.release.set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches to
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            request = ExportTraceServiceRequest.FromString(body)
            spans = sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)
            with lock:
                status = backend.statuses.pop(0) if backend.statuses else backend.status
                headers = {k.lower(): v for k, v in self.headers.items()}
                backend.requests.append(Received(self.path, headers, spans, request, time.monotonic(), status))
            backend.arrived.set()
            backend.release.wait(30)
            self.send_response(status)
            if backend.retry_after is not None:
                self.send_header("retry-after", backend.retry_after)
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
