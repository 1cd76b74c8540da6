"""Onward export: follow the ledger and send its (normalized, redacted) events as OTLP spans.

Teams keep their Jaeger, Tempo, Langfuse or Phoenix dashboards: `flightlog serve --export-otlp
URL` sends every committed event there as an OTLP/HTTP protobuf span. The ledger is the queue:
a background thread reads committed entries in index order from `ledger.db` (a read-only
connection, as the search index does), sends them in batches, and after each batch the backend
acknowledged (or refused for good) saves how far it got in a cursor file. So a backend that is
down for hours, or a collector restart or crash, loses nothing (a batch in flight when the
collector dies is sent again: spans keep their ids), memory holds one batch at most, and ingest
never waits for export.

Where export starts: at the cursor saved for this endpoint, else at the ledger's end when the
endpoint is first configured (the events stored before then are not sent).

Failures never fail ingest, so they must be visible elsewhere: the forwarder counts sent,
failed and dropped spans and the backlog (read by the collector's /metrics) and logs a
rate-limited warning on the "flightlog.export" logger saying why. The OTLP/HTTP retry rules
apply: a connection error, a timeout and HTTP 429, 502, 503 and 504 (the only statuses OTLP lets
a client retry) are retried until the backend takes the batch, with exponential backoff and
jitter capped at `max_delay`, or after the Retry-After it asked for (capped likewise); any other
answer refuses that batch for good: it is skipped and counted failed, and the warning names
each reason.
Warnings name the endpoint without credentials or query and never carry event content or header
values: headers usually hold the backend's token.

Spans: `export_spans`.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import re
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

import httpx
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from flightlog.errors import LedgerError
from flightlog.home import private_dir, write_private_file
from flightlog.server import export_spans

__all__ = ["OtlpForwarder", "check_endpoint", "cursor_path", "parse_headers"]

_log = logging.getLogger("flightlog.export")

_BATCH: Final = 512  # spans per request (the OpenTelemetry SDK's default batch)
# Stored bytes per request; a span repeats some content (GenAI and OpenInference names), and
# many receivers refuse bodies past 4 MiB.
_BATCH_BYTES: Final = 2 * 1024 * 1024
_POLL: Final = 1.0  # seconds between looks at the ledger when nothing says entries arrived
_RETRYABLE: Final = frozenset({429, 502, 503, 504})  # the only statuses OTLP/HTTP lets a client retry
_CURSOR_DIR: Final = "export"
_FIELD_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
# httpx encodes header values as ASCII; a control character would split or smuggle a header.
_FIELD_VALUE: Final = re.compile(r"[\t\x20-\x7e]*")
# Set by the exporter itself: a user value would break the protobuf body or the framing.
_RESERVED_HEADERS: Final = frozenset({"content-type", "content-length", "transfer-encoding", "host"})


def check_endpoint(url: str) -> str:
    """Return `url` (trimmed) if it is an http(s) URL with a host; else raise a one-line ValueError."""
    text = url.strip()
    # Never echo credentials written into the URL (user:password@, ?api_key=…).
    shown = re.sub(r"//[^/@]*@", "//***@", text).split("?")[0].split("#")[0]
    example = "e.g. http://127.0.0.1:4318/v1/traces"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - parsing the port is what raises on a bad one
        httpx.URL(text)  # what the client will accept when it sends
    except (ValueError, httpx.InvalidURL):
        raise ValueError(f"export URL {shown!r} is not a valid URL ({example})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"export URL {shown!r} must start with http:// or https:// ({example})")
    if not parts.hostname:
        raise ValueError(f"export URL {shown!r} has no host ({example})")
    return text


def parse_headers(pairs: Sequence[str]) -> dict[str, str]:
    """Return the headers written as "Key=Value" items, each also allowed to be a list "k1=v1,k2=v2".

    The list form is OTEL_EXPORTER_OTLP_HEADERS's (W3C Baggage without properties), whose values
    are percent-decoded, so a literal "," or "%" in a value is written %2C or %25. Raises a
    one-line ValueError on a malformed item; the message never repeats a value (it may be a token).
    """
    if isinstance(pairs, str):  # a lone env var value, not a sequence of one-letter items
        pairs = [pairs]
    headers: dict[str, str] = {}
    for number, item in enumerate(pairs, 1):
        members = item.split(",")
        for entry, member in enumerate(members, 1):
            if not member.strip():
                continue  # "a=b," and empty env values are harmless
            # Messages name the place, never the text: a pasted token may sit where the name goes.
            where = f"header item {number}" + (f", entry {entry}," if len(members) > 1 else "")
            raw_key, sep, raw_value = member.partition("=")
            if not sep:
                raise ValueError(f"{where} has no '=': write Key=Value (or k1=v1,k2=v2)")
            key, value = unquote(raw_key).strip(), unquote(raw_value).strip()
            if not _FIELD_NAME.fullmatch(key):
                raise ValueError(f"{where} does not start with a valid header name: write Key=Value")
            if key.lower() in _RESERVED_HEADERS:
                raise ValueError(f"{where} sets a header the exporter sets itself ({key.lower()})")
            if not value:
                raise ValueError(f"{where} has an empty value (an unset variable?)")
            if not _FIELD_VALUE.fullmatch(value):
                raise ValueError(f"{where}: the value has a control or non-ASCII character")
            for old in [k for k in headers if k.lower() == key.lower()]:
                del headers[old]  # names are case-insensitive: the last one given wins, as in a dict
            headers[key] = value
    return headers


def _display(endpoint: str) -> str:
    # The endpoint as logs show it: user:password@ and ?api_key=… may be secrets.
    parts = urlsplit(endpoint)
    port = f":{parts.port}" if parts.port else ""
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _refusal(status: int) -> str:
    if status in (401, 403):
        return f"the backend refused the credentials (HTTP {status})"
    if status in (404, 405):
        return f"HTTP {status} (is the URL the full /v1/traces path?)"
    if status == 413:
        return "HTTP 413 (the backend takes smaller requests)"
    return f"HTTP {status}"


# --- the cursor: how far export to one endpoint got ------------------------------------------


def cursor_path(home: Path, endpoint: str) -> Path:
    """Return the file that keeps export's position for `endpoint`: one per endpoint (its URL
    without credentials; the query counts, as backends such as Phoenix name a project there),
    under `home`/export/. The file is named by a digest: the query may hold a key."""
    query = urlsplit(endpoint).query
    digest = hashlib.sha256((_display(endpoint) + ("?" + query if query else "")).encode()).hexdigest()[:32]
    return home / _CURSOR_DIR / f"{digest}.json"


def _format_cursor(endpoint: str, origin: str, index: int) -> bytes:
    """The cursor file's bytes: the ledger entry to send next, in the ledger named by its origin.

    {"endpoint": "http://127.0.0.1:4318/v1/traces", "next": 1024, "origin": "flightlog.local/9f…"}
    """
    return orjson.dumps({"endpoint": _display(endpoint), "next": index, "origin": origin}, option=orjson.OPT_SORT_KEYS)


def _parse_cursor(data: bytes, origin: str) -> int | None:
    """The `next` of a cursor file written for the ledger of `origin`, or None if it is not one."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or value.get("origin") != origin:
        return None
    index = value.get("next")
    return index if type(index) is int and index >= 0 else None


# --- the forwarder ---------------------------------------------------------------------------


class _Retry(Exception):
    """A send the backend may take later: why, and how long it asked us to wait (or None)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class _Refused(Exception):
    """A send the backend refused for good (the batch is skipped)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP-date), or None."""
    text = (value or "").strip()
    if text.isascii() and text.isdigit() and len(text) < 10:
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


class OtlpForwarder:
    """Sends the ledger in `home` to `endpoint` (a full /v1/traces URL) from a background thread.

    `sent`, `failed` (refused by the backend) and `dropped` (entries that could not be made into
    spans) count spans since this forwarder started; `queue_depth` is the backlog: entries
    stored but not yet exported. The collector's /metrics reads them at scrape time.

    `batch` spans per request at most; a retryable failure waits `backoff` seconds, doubling up
    to `max_delay` (with jitter), or what Retry-After asks, also at most `max_delay`. Warnings
    come at most once per `warn_interval` seconds, each saying what happened since the last.
    """

    def __init__(
        self,
        endpoint: str,
        home: Path,
        headers: Mapping[str, str] | None = None,
        *,
        batch: int = _BATCH,
        backoff: float = 1.0,
        max_delay: float = 60.0,
        timeout: float = 10.0,
        warn_interval: float = 60.0,
    ) -> None:
        self.endpoint = check_endpoint(endpoint)
        user = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
        self.headers = {**user, "content-type": "application/x-protobuf"}
        self.batch, self.backoff, self.max_delay, self.timeout = max(1, batch), backoff, max_delay, timeout
        self.warn_interval = warn_interval
        self.sent = self.failed = self.dropped = 0
        # The export thread and close() update counts and warnings; /metrics reads them.
        self._lock = threading.Lock()
        self._last_warning: float | None = None
        self._refused: dict[str, list[int]] = {}  # reason -> [spans, batches] since the last warning
        self._unreported_dropped = 0
        self._retries = 0  # failed attempts not yet in a warning (the batch is still pending)
        self._retry_reason = ""
        self._said_failing = False  # a warning said the backend fails: say when it answers again
        self._wake = threading.Event()
        self._closing = threading.Event()  # send what is stored, then stop; stop at a failure
        self._stop = threading.Event()  # stop after the request in flight
        db = home / "ledger.db"
        if not db.exists():
            raise LedgerError(f"no ledger in {home} to export")
        self._db = sqlite3.connect(f"file:{urllib.parse.quote(str(db))}?mode=ro", uri=True, check_same_thread=False)
        self._path = cursor_path(home, self.endpoint)
        self._saved = -1
        try:
            self._db.execute("PRAGMA busy_timeout=10000")
            row = self._db.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
            self._origin = str(row[0]) if row else ""
            self._end = self._size()
            self._next = self._start()
            private_dir(self._path.parent)
            self._save()  # at once: a restart before the first batch must not skip what came meanwhile
        except BaseException:
            self._db.close()
            raise
        self._thread = threading.Thread(target=self._run, name="otlp-export", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        """Entries stored but not yet exported (the backlog)."""
        return max(0, self._end - self._next)

    @property
    def position(self) -> int:
        """The ledger index of the next entry to send."""
        return self._next

    def notify(self, size: int | None = None) -> None:
        """Say that entries were committed (the ledger now holds `size`): export them soon.
        Never blocks."""
        if size is not None and size > self._end:
            self._end = size
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is stored while the backend takes it, for up to `timeout` seconds; then stop
        and save the position. A request still in flight is left to its daemon thread."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout)
        self._stop.set()
        self._save()
        self._warn(final=True)  # what failed since the last (rate-limited) warning
        if left := self.queue_depth:
            _log.warning(
                "flightlog export to %s: stopped with %d stored events not exported yet; export resumes with "
                "them when the collector starts again",
                _display(self.endpoint),
                left,
            )

    def _start(self) -> int:
        """Where export starts: the saved cursor, else (a new endpoint) the ledger's end."""
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return self._end
        except OSError as exc:
            data, problem = b"", exc.strerror
        else:
            problem = "it is not a cursor of this ledger"
        saved = _parse_cursor(data, self._origin)
        if saved is None:
            _log.warning(
                "flightlog export to %s: ignoring %s (%s); exporting from the ledger's end",
                _display(self.endpoint),
                self._path,
                problem,
            )
            return self._end
        return min(saved, self._end)

    def _size(self) -> int:
        row = self._db.execute("SELECT MAX(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def _save(self) -> None:
        with self._lock:
            if self._saved == self._next:
                return
            write_private_file(self._path, _format_cursor(self.endpoint, self._origin, self._next))
            self._saved = self._next

    def _rows(self) -> list[tuple[int, bytes]]:
        """The next batch of stored entries: at most `batch` of them and about _BATCH_BYTES."""
        rows: list[tuple[int, bytes]] = []
        size = 0
        cursor = self._db.execute(
            "SELECT idx, leaf FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?", (self._next, self.batch)
        )
        for idx, leaf in cursor:
            rows.append((int(idx), bytes(leaf)))
            size += len(leaf)
            if size >= _BATCH_BYTES:
                break
        cursor.close()
        return rows

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0))) as client:
                while not self._stop.is_set():
                    try:
                        rows = self._rows()
                        self._end = max(self._end, self._size())
                        if rows and not self._export(client, rows):
                            return  # closing, and the backend does not take it now
                    except Exception as exc:  # a busy or damaged ledger, a full disk: try again, never die
                        said = f": {exc}" if isinstance(exc, sqlite3.Error | OSError) else ""
                        self._note_retry(f"export itself failed, {type(exc).__name__}{said}")
                        if self._closing.wait(min(self.max_delay, 5.0)):
                            return
                        continue
                    if not rows:
                        if self._closing.is_set():
                            return
                        self._wake.wait(_POLL)
                        self._wake.clear()
        finally:
            self._db.close()

    def _export(self, client: httpx.Client, rows: list[tuple[int, bytes]]) -> bool:
        """Send one batch until the backend takes or refuses it; then move the cursor past it.
        Return False when closing cut the retries short (the cursor stays before the batch)."""
        spans: list[tuple[str, Span]] = []
        for _, leaf in rows:
            try:
                event = orjson.loads(leaf)
                spans.append((export_spans.service(event), export_spans.span(event)))
            except Exception:  # one odd entry must not hold up the rest: counted, skipped
                with self._lock:
                    self.dropped += 1
                    self._unreported_dropped += 1
        body = export_spans.request(spans).SerializeToString()
        attempt = 0
        while spans:
            try:
                rejected = self._post(client, body)
            except _Retry as retry:
                self._note_retry(retry.reason)
                delay = self.backoff * 2**attempt * random.uniform(0.5, 1.0)
                # At least the backoff: a Retry-After of 0 (or a date past) spun 1,500 requests a second.
                wait = min(self.max_delay, max(retry.wait or 0.0, delay))
                attempt = min(attempt + 1, 32)
                if self._closing.wait(wait):
                    return False
                continue
            except _Refused as refused:
                self._count(0, len(spans), refused.reason)
                break
            self._count(len(spans) - rejected, rejected, "the backend rejected them (partial success)")
            break
        with self._lock:
            self._next = rows[-1][0] + 1
        self._save()
        self._warn()
        return True

    def _post(self, client: httpx.Client, body: bytes) -> int:
        """Send `body`; return how many spans the backend says it rejected (partial success)."""
        try:
            response = client.post(self.endpoint, content=body, headers=self.headers)
        except httpx.HTTPError as exc:
            # Only the class name: some transport errors quote the offending header value.
            raise _Retry(f"could not reach the backend ({type(exc).__name__})") from None
        status = response.status_code
        if status in _RETRYABLE:
            raise _Retry(f"HTTP {status}", _retry_after(response.headers.get("retry-after")))
        if not 200 <= status < 300:
            raise _Refused(_refusal(status))  # the OTLP spec: not retried (a 401 stays a 401)
        if response.content and "protobuf" in response.headers.get("content-type", ""):
            try:
                answer = ExportTraceServiceResponse.FromString(response.content)
            except Exception:  # a 2xx with an odd body still took the spans
                return 0
            return int(answer.partial_success.rejected_spans)
        return 0

    def _note_retry(self, reason: str) -> None:
        with self._lock:
            self._retries += 1
            self._retry_reason = reason
        self._warn()

    def _count(self, sent: int, failed: int, reason: str) -> None:
        """Count a batch the backend answered: `sent` spans taken, `failed` refused for `reason`."""
        with self._lock:
            self.sent += sent
            self.failed += failed
            if failed:
                spans_batches = self._refused.setdefault(reason, [0, 0])
                spans_batches[0] += failed
                spans_batches[1] += 1
            recovered, self._said_failing = self._said_failing, False
            self._retries = 0  # the attempts before this answer: nothing was lost by them
        if recovered:
            _log.info("flightlog export to %s: the backend answers again", _display(self.endpoint))

    def _warn(self, final: bool = False) -> None:
        """Log what failed, was dropped or is being retried since the last warning, unless one
        was logged recently."""
        with self._lock:
            now = time.monotonic()
            recent = self._last_warning is not None and now - self._last_warning < self.warn_interval
            if (recent and not final) or not (self._refused or self._unreported_dropped or self._retries):
                return
            parts = [
                f"gave up on {spans} spans ({batches} batch{'es' if batches != 1 else ''}): {reason}"
                for reason, (spans, batches) in self._refused.items()
            ]
            if self._unreported_dropped:
                parts.append(f"skipped {self._unreported_dropped} stored events that could not be made into spans")
            if self._retries:
                attempts = f"{self._retries} failed attempt{'s' if self._retries != 1 else ''}"
                waiting = "" if final else f", still retrying; {self.queue_depth} stored events waiting, none lost"
                parts.append(f"{attempts} to deliver ({self._retry_reason}){waiting}")
                self._said_failing = True
            since = "since the last warning, " if self._last_warning is not None else ""
            self._refused, self._unreported_dropped, self._retries = {}, 0, 0
            self._last_warning = now
        _log.warning("flightlog export to %s: %s%s", _display(self.endpoint), since, "; ".join(parts))
