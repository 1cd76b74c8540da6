"""Prometheus metrics of the collector: the seed's five agent signals plus ingest health.

Signals, each derived from stored events as they are committed:
- action latency: seconds from a turn's prompt to the last event of the turn, one sample per
  turn (`flightlog_action_latency_seconds`). A turn is a trace with a prompt. It ends when its
  prompt arrives with a duration (an OpenTelemetry `invoke_agent` or SDK agent run span ends
  after its children: then the later of that end and the last child), or else when the next
  prompt of the same session arrives or Claude Code's Stop hook reaches the collector. Not
  measured: turns that span a collector restart, and prompts with neither a duration nor a
  session;
- tool failure rate: `flightlog_tool_failures_total / flightlog_tool_calls_total`;
- rollback rate: `flightlog_rollbacks_total / flightlog_turns_total` (rollbacks per agent turn;
  `flightlog_commits_total` counts the agents' commits beside it);
- approval bypass attempts: approvals refused by the hook, `flightlog approve` or the approvals
  API — wrong role, another action, replayed, expired, forged, the agent's own identity
  (`flightlog_approval_bypass_attempts_total`: stored `error` events with payload.kind
  "approval_bypass_attempt"); beside it, actions refused: stored events with status denied
  other than the policy evaluation that denied them — the denied tool call, a refused approval
  (`flightlog_denied_actions_total`);
- hallucination rate: outputs failing schema validation,
  `flightlog_events_rejected_total{reason="validation"} / flightlog_events_received_total`.

Onward export (`serve --export-otlp`) is read from the forwarder at scrape time: spans sent,
failed (given up after retries, or refused) and dropped (queue full), and the queue depth.
Without export they stay 0, so the shipped alert rules always find their metrics.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from flightlog.approvals import REFUSED
from flightlog.ledger.log import PendingEntry

__all__ = ["CollectorMetrics", "ExportStats"]

_MAX_TRACKED_TRACES: Final = 10_000  # prompts remembered for the latency signal (LRU)


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


@dataclass
class _Turn:
    """What the latency signal knows of one trace while its turn runs."""

    start: float | None = None  # the prompt's time, once the prompt is stored
    last: float = 0.0  # the latest time of any other event of the trace
    ended: bool = False


class ExportStats(Protocol):
    """What /metrics reads of an onward exporter (server.export.OtlpForwarder)."""

    @property
    def sent(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def queue_depth(self) -> int: ...


class _ExportCollector:
    """Reads the forwarder's own counts when scraped: one source of truth, nothing to keep in step."""

    def __init__(self) -> None:
        self.source: ExportStats | None = None

    def describe(self) -> Iterator[Metric]:
        return self._families(None)  # lets the registry refuse a clashing name up front

    def collect(self) -> Iterator[Metric]:
        return self._families(self.source)

    @staticmethod
    def _families(source: ExportStats | None) -> Iterator[Metric]:
        for name, doc, attr in (
            ("flightlog_export_sent", "Spans the onward OTLP export delivered", "sent"),
            (
                "flightlog_export_failed",
                "Spans the onward OTLP export gave up on (refused, or still failing after retries)",
                "failed",
            ),
            ("flightlog_export_dropped", "Spans not exported because the export queue was full", "dropped"),
        ):
            yield CounterMetricFamily(name, doc, value=getattr(source, attr) if source else 0)
        yield GaugeMetricFamily(
            "flightlog_export_queue_depth",
            "Stored events waiting to be exported",
            value=source.queue_depth if source else 0,
        )


class CollectorMetrics:
    """A registry of its own per app, so two apps in one process never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "flightlog_events_received", "Events received, before validation", ["source"], registry=r
        )
        self.stored = Counter("flightlog_events_stored", "Events durably committed", ["source", "type"], registry=r)
        self.rejected = Counter(
            "flightlog_events_rejected",
            "Events refused: validation (schema), decode (OTLP items that map to no event), batch (valid "
            "events of a request refused whole)",
            ["source", "reason"],
            registry=r,
        )
        self.refused_requests = Counter(
            "flightlog_requests_refused",
            "Ingest requests refused before their events could be counted (bad JSON or protobuf 400, "
            "too large 413, wrong content type 415)",
            ["source", "status"],
            registry=r,
        )
        self.overloaded = Counter("flightlog_overload_responses", "503 answers given under overload", registry=r)
        self.turns = Counter("flightlog_turns", "Agent turns: stored prompt events", registry=r)
        self.tool_calls = Counter("flightlog_tool_calls", "Tool call events", registry=r)
        self.tool_failures = Counter("flightlog_tool_failures", "Tool call events with status error", registry=r)
        self.rollbacks = Counter("flightlog_rollbacks", "Rollback events", registry=r)
        self.commits = Counter("flightlog_commits", "git_op commit events", registry=r)
        self.denied = Counter(
            "flightlog_denied_actions",
            "Actions refused: stored events with status denied (a denied tool call, a refused approval), "
            "not counting the policy evaluation that denied them",
            registry=r,
        )
        self.bypass_attempts = Counter(
            "flightlog_approval_bypass_attempts",
            "Refused approvals (wrong role, another action, replayed, expired, forged, the agent's own "
            'identity): stored error events with payload.kind "approval_bypass_attempt"',
            registry=r,
        )
        self.outside_allowlist = Counter(
            "flightlog_outside_allowlist_changes",
            "File changes outside a workspace's allowed folders: stored error events with payload.kind "
            '"outside_allowlist", made by `flightlog watch --allow DIR` '
            "(it records such changes, it cannot block them)",
            registry=r,
        )
        self.latency = Histogram(
            "flightlog_action_latency_seconds",
            "Seconds from a turn's prompt to its last event, one sample per turn",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.queue_depth = Gauge("flightlog_queue_depth", "Events accepted but not yet committed", registry=r)
        self.ledger_entries = Gauge("flightlog_ledger_entries", "Entries in the ledger", registry=r)
        self.index_lag = Gauge(
            "flightlog_search_index_lag",
            "Ledger entries not yet in the full-text search index (searches may miss them)",
            registry=r,
        )
        self.checkpoint_size = Gauge("flightlog_checkpoint_size", "Size of the latest signed checkpoint", registry=r)
        self._export = _ExportCollector()
        r.register(self._export)
        self._turns: OrderedDict[str, _Turn] = OrderedDict()  # by trace id, oldest first
        self._session_turn: dict[str, str] = {}  # session id -> trace id of its latest prompt

    def watch_export(self, forwarder: ExportStats | None) -> None:
        """Expose this forwarder's counts (None: export is off, they read 0)."""
        self._export.source = forwarder

    def observe_stored(self, entries: list[PendingEntry], source: str) -> None:
        """Update the signals from entries that were just committed."""
        kinds: dict[str, int] = {}
        for entry in entries:
            col = entry.columns
            kind, status = col.type, col.status
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "tool_call":
                self.tool_calls.inc()
                if status == "error":
                    self.tool_failures.inc()
            elif kind == "rollback":
                self.rollbacks.inc()
            elif kind == "git_op" and entry.event["payload"].get("op") == "commit":
                self.commits.inc()
            elif kind == "error" and entry.event["payload"].get("kind") == "outside_allowlist":
                self.outside_allowlist.inc()
            elif kind == "error" and entry.event["payload"].get("kind") == REFUSED:
                self.bypass_attempts.inc()
            if status == "denied" and kind != "policy_evaluation":
                self.denied.inc()
            if kind == "prompt":
                self.turns.inc()
                self._prompt(entry)
            elif not (turn := self._turn(col.trace_id)).ended:
                turn.last = max(turn.last, _seconds(col.timestamp))
        for kind, n in kinds.items():  # one labelled child lookup per kind, not per event
            self.stored.labels(source, kind).inc(n)

    def _turn(self, trace_id: str) -> _Turn:
        turn = self._turns.get(trace_id)
        if turn is None:
            turn = self._turns[trace_id] = _Turn()
            while len(self._turns) > _MAX_TRACKED_TRACES:
                self._turns.popitem(last=False)
        else:  # least recently seen goes first: a running turn stays
            self._turns.move_to_end(trace_id)
        return turn

    def _prompt(self, entry: PendingEntry) -> None:
        col = entry.columns
        turn = self._turn(col.trace_id)
        turn.start = _seconds(col.timestamp)
        if col.session_id is not None:
            # A new prompt ends the session's previous turn, if nothing else ended it.
            previous = self._turns.get(self._session_turn.get(col.session_id, ""))
            if previous is not None and previous is not turn:
                self._end(previous)
            self._session_turn.pop(col.session_id, None)  # re-inserted last: the newest session
            self._session_turn[col.session_id] = col.trace_id
            if len(self._session_turn) > _MAX_TRACKED_TRACES:
                self._session_turn.pop(next(iter(self._session_turn)))
        duration = entry.event.get("duration_ms")  # prompts are few: decoding one is cheap
        if isinstance(duration, int | float):
            turn.last = max(turn.last, turn.start + duration / 1000)
            self._end(turn)

    def end_session_turn(self, session_id: object) -> None:
        """The session's current turn is over (Claude Code's Stop hook reached the collector)."""
        trace = self._session_turn.get(session_id) if isinstance(session_id, str) else None
        if trace is not None and (turn := self._turns.get(trace)) is not None:
            self._end(turn)

    def _end(self, turn: _Turn) -> None:
        if not turn.ended and turn.start is not None:
            turn.ended = True
            self.latency.observe(max(turn.last - turn.start, 0.0))

    def render(self) -> bytes:
        """Return the Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
