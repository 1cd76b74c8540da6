"""Prometheus metrics of the collector: the seed's five agent signals plus ingest health.

Signals, each derived from stored events as they are committed:
- action latency: seconds from a turn's prompt to the end of the turn, one sample per turn
  (`flightlog_action_latency_seconds`). A turn is a trace with a prompt; an event ends at its
  timestamp plus its `duration_ms` (a hook's tool call is stamped when it started), except an
  OTLP log record, which is stamped when it was emitted, at the end of what it reports. The
  turn ends when its prompt arrives with a duration (an OpenTelemetry `invoke_agent` or SDK
  agent run span ends after its children: then the later of that end and the last child's),
  when Claude Code's Stop hook reaches the collector (at the later of that moment and the last
  event's end: the hook input carries no time of its own), or else at the session's next prompt
  (at the last event's end). Events that arrive after their turn ended (telemetry comes in
  batches) change nothing, and a prompt older than its session's current turn ends nothing. Not
  measured: turns that span a collector restart, and prompts with neither a duration nor a
  session;
- tool failure rate: `flightlog_tool_failures_total / flightlog_tool_calls_total`;
- rollback rate: `flightlog_rollbacks_total / flightlog_turns_total` (rollbacks per agent turn;
  `flightlog_commits_total` counts the agents' commits beside it);
- approval bypass attempts: approvals refused by the hook, `flightlog approve` or the approvals
  API — wrong role, another action, replayed, expired, forged, the agent's own identity
  (`flightlog_approval_bypass_attempts_total`: stored `error` events with payload.kind
  "approval_bypass_attempt"); beside it, actions refused (`flightlog_denied_actions_total`):
  stored events with status denied — the tool call a gate denied, a refused approval, the
  agent's own permission refusal (Claude Code's `tool_decision` reject, a policy evaluation
  with decision "reject") — but not a gate's policy evaluation (decision "deny": the action
  it denied is counted), and one tool call (session and tool call id) only once, whichever
  source reported it;
- hallucination rate: agent outputs failing validation,
  `flightlog_agent_outputs_invalid_total / flightlog_agent_outputs_checked_total`. The outputs
  checked are the tool calls the model emitted (stored `tool_call` events); an invalid one
  failed with an error that says the model's call did not fit the tool: its input failed the
  tool's schema (Claude Code's "InputValidationError"), it named no such tool ("No such tool
  available"), or its arguments did not parse (Codex's "failed to parse function arguments").
  No agent reports model outputs checked against a declared response schema yet, so none are
  counted. Producers' events that fail flightlog's own schema are
  `flightlog_events_rejected_total{reason="validation"}`, an ingest-health metric.

Every labelled series exists from the start at 0 (each known source, type, reason and status),
so `rate()` and `increase()` see the first events after a restart.

Onward export (`serve --export-otlp`) is read from the forwarder at scrape time: spans sent,
failed (refused by the backend for good: not retried), dropped (stored events that could not be
made into spans) and the backlog (stored events not yet exported: a backend that is down shows
here, as export retries until it takes them).
Without export they stay 0, so the shipped alert rules always find their metrics.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from flightlog.approvals import REFUSED
from flightlog.events import EVENT_TYPES
from flightlog.ledger.log import PendingEntry

__all__ = ["RECEIVING_SOURCES", "SOURCES", "CollectorMetrics", "ExportStats"]

# Every value of the `source` label: the collector's write paths (events API, OTLP, Claude Code's
# HTTP hook, the approvals API, and the UI's rollback route, which stores its own events).
SOURCES: Final = ("api", "otlp", "claude-code-hook", "approvals-api", "ui")
RECEIVING_SOURCES: Final = SOURCES[:4]  # the ones that receive events from outside
_REJECT_REASONS: Final = ("validation", "decode", "batch")
_REFUSED_STATUSES: Final = ("400", "413", "415")
_MAX_TRACKED: Final = 10_000  # turns (by trace) and denied tool calls remembered (LRU)
# How an agent says a tool call the model emitted did not fit the tool: Claude Code's
# "InputValidationError: …" (the input failed the tool's schema) and "Error: No such tool
# available: X" (hook input, telemetry, or a transcript's "<tool_use_error>…"), Codex's "failed
# to parse function arguments: …". At the start of the error: a command's output may quote them.
_INVALID_OUTPUT: Final = re.compile(
    r"\s*(?:<tool_use_error>\s*)?"
    r"(?:InputValidationError\b|(?:Error:\s*)?No such tool available\b|failed to parse function arguments\b)",
    re.IGNORECASE,
)
_ERROR_HEAD: Final = 200  # characters of an error read for those: errors can be 256 KiB


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def _end(event: dict[str, Any], start: float) -> float:
    """Return when `event` (stamped `start`) ended: its timestamp plus its duration, except for an
    OTLP log record, stamped when it was emitted (after what it reports, e.g. a model call)."""
    duration = event.get("duration_ms")
    if not isinstance(duration, int | float) or isinstance(duration, bool):
        return start
    payload = event.get("payload")
    raw = payload.get("raw") if isinstance(payload, dict) else None
    if isinstance(raw, dict) and "event_name" in raw:  # otlp_map keeps a record's name there
        return start
    return start + duration / 1000


def _invalid_output(payload: dict[str, Any]) -> bool:
    error = payload.get("error")
    return isinstance(error, str) and _INVALID_OUTPUT.match(error[:_ERROR_HEAD]) is not None


@dataclass
class _Turn:
    """What the latency signal knows of one trace while its turn runs."""

    start: float | None = None  # the prompt's time, once the prompt is stored
    last: float = 0.0  # the latest end of any other event of the trace
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
                "Spans the onward OTLP export's backend refused for good (not retried)",
                "failed",
            ),
            ("flightlog_export_dropped", "Stored events the onward OTLP export could not make into spans", "dropped"),
        ):
            yield CounterMetricFamily(name, doc, value=getattr(source, attr) if source else 0)
        yield GaugeMetricFamily(
            "flightlog_export_queue_depth",
            "Stored events not yet exported (the backlog: grows while the backend is down)",
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
            "Events refused: validation (flightlog's event schema: a producer's mistake, not the agent's), "
            "decode (OTLP items that map to no event), batch (valid events of a request refused whole)",
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
        self.outputs_checked = Counter(
            "flightlog_agent_outputs_checked",
            "Agent outputs checked against what they must fit: the tool calls the model emitted (stored "
            "tool_call events)",
            ["source"],
            registry=r,
        )
        self.outputs_invalid = Counter(
            "flightlog_agent_outputs_invalid",
            "Agent outputs failing validation (hallucinations): tool calls that failed because the model's "
            'call did not fit the tool — input failing its schema ("InputValidationError"), a tool that '
            'does not exist ("No such tool available"), arguments that do not parse ("failed to parse '
            'function arguments")',
            ["source"],
            registry=r,
        )
        self.rollbacks = Counter("flightlog_rollbacks", "Rollback events", registry=r)
        self.commits = Counter("flightlog_commits", "git_op commit events", registry=r)
        self.denied = Counter(
            "flightlog_denied_actions",
            "Actions refused: stored events with status denied (a tool call a gate denied, a refused "
            "approval, the agent's own permission refusal such as Claude Code's tool_decision reject), "
            "not counting a gate's policy evaluation (decision deny) beside the action it denied, and "
            "one tool call once whichever source reported it",
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
            "Seconds from a turn's prompt to its end (its last event's end, or Claude Code's Stop hook), "
            "one sample per turn",
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
        # Every series from the start, at 0: a counter that first appears at 1 is a rise that
        # rate() and increase() cannot see, so the first burst after a restart would go unseen.
        for source in SOURCES:
            for kind in EVENT_TYPES:
                self.stored.labels(source, kind)
        for source in RECEIVING_SOURCES:
            self.received.labels(source)
            self.outputs_checked.labels(source)
            self.outputs_invalid.labels(source)
            for reason in _REJECT_REASONS:
                self.rejected.labels(source, reason)
            for status in _REFUSED_STATUSES:
                self.refused_requests.labels(source, status)
        self._turns: OrderedDict[str, _Turn] = OrderedDict()  # by trace id, oldest first
        self._session_turn: dict[str, str] = {}  # session id -> trace id of its latest prompt
        self._denied_calls: OrderedDict[tuple[str, str], None] = OrderedDict()  # (session, tool call id)

    def watch_export(self, forwarder: ExportStats | None) -> None:
        """Expose this forwarder's counts (None: export is off, they read 0)."""
        self._export.source = forwarder

    def observe_stored(self, entries: list[PendingEntry], source: str) -> None:
        """Update the signals from entries that were just committed through `source`."""
        kinds: dict[str, int] = {}
        checked = invalid = 0
        for entry in entries:
            col = entry.columns
            kind, status = col.type, col.status
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "tool_call":
                self.tool_calls.inc()
                checked += 1
                if status == "error":
                    self.tool_failures.inc()
                    invalid += _invalid_output(entry.event["payload"])
            elif kind == "rollback":
                self.rollbacks.inc()
            elif kind == "git_op" and entry.event["payload"].get("op") == "commit":
                self.commits.inc()
            elif kind == "error" and entry.event["payload"].get("kind") == "outside_allowlist":
                self.outside_allowlist.inc()
            elif kind == "error" and entry.event["payload"].get("kind") == REFUSED:
                self.bypass_attempts.inc()
            if status == "denied" and self._newly_refused(entry):
                self.denied.inc()
            if kind == "prompt":
                self.turns.inc()
                self._prompt(entry)
            elif not (turn := self._turn(col.trace_id)).ended:
                start = _seconds(col.timestamp)
                # Decoded only inside a running turn: most OTLP spans belong to none.
                end = _end(entry.event, start) if turn.start is not None else start
                turn.last = max(turn.last, end)
        for kind, n in kinds.items():  # one labelled child lookup per kind, not per event
            self.stored.labels(source, kind).inc(n)
        if checked:
            self.outputs_checked.labels(source).inc(checked)
        if invalid:
            self.outputs_invalid.labels(source).inc(invalid)

    def _newly_refused(self, entry: PendingEntry) -> bool:
        """Whether a denied event is an action refused not counted yet. A gate's policy
        evaluation (decision "deny") is not: the action it denied is its own event. Claude Code
        reports the hook's deny again as a `tool_decision` reject of the same tool call: one tool
        call (session, tool call id) counts once."""
        payload = entry.event["payload"]
        if entry.columns.type == "policy_evaluation" and payload.get("decision") != "reject":
            return False
        call = payload.get("tool_call_id")
        if not isinstance(call, str) or not call:
            return True
        key = (entry.columns.session_id or "", call)
        if key in self._denied_calls:
            return False
        self._denied_calls[key] = None
        if len(self._denied_calls) > _MAX_TRACKED:
            self._denied_calls.popitem(last=False)
        return True

    def _turn(self, trace_id: str) -> _Turn:
        turn = self._turns.get(trace_id)
        if turn is None:
            turn = self._turns[trace_id] = _Turn()
            while len(self._turns) > _MAX_TRACKED:
                self._turns.popitem(last=False)
        else:  # least recently seen goes first: a running turn stays
            self._turns.move_to_end(trace_id)
        return turn

    def _prompt(self, entry: PendingEntry) -> None:
        col = entry.columns
        turn = self._turn(col.trace_id)
        if turn.start is not None or turn.ended:
            return  # the turn's prompt again (another source, a retry): the first one counts
        turn.start = _seconds(col.timestamp)
        if col.session_id is not None:
            current = self._turns.get(self._session_turn.get(col.session_id, ""))
            if current is not None and current.start is not None and current.start > turn.start:
                pass  # a late prompt (telemetry comes in batches): the session has moved on
            else:
                # A new prompt ends the session's previous turn, if nothing else ended it.
                if current is not None:
                    self._end_turn(current)
                self._session_turn.pop(col.session_id, None)  # re-inserted last: the newest session
                self._session_turn[col.session_id] = col.trace_id
                if len(self._session_turn) > _MAX_TRACKED:
                    self._session_turn.pop(next(iter(self._session_turn)))
        duration = entry.event.get("duration_ms")  # prompts are few: decoding one is cheap
        if isinstance(duration, int | float) and not isinstance(duration, bool):
            turn.last = max(turn.last, turn.start + duration / 1000)
            self._end_turn(turn)

    def end_session_turn(self, session_id: object, at: float | None = None) -> None:
        """End the session's current turn at `at` (Unix seconds; default now) or at its last
        event's end if later: Claude Code's Stop hook reached the collector. Call it after
        storing the Stop hook's own events."""
        trace = self._session_turn.get(session_id) if isinstance(session_id, str) else None
        turn = self._turns.get(trace) if trace is not None else None
        if turn is not None and not turn.ended and turn.start is not None:
            turn.last = max(turn.last, time.time() if at is None else at)
            self._end_turn(turn)

    def _end_turn(self, turn: _Turn) -> None:
        if not turn.ended and turn.start is not None:
            turn.ended = True
            self.latency.observe(max(turn.last - turn.start, 0.0))

    def render(self) -> bytes:
        """Return the Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
