"""The trace view (`/traces/{trace_id}`): waterfall of spans, span details, diffs, files changed.

Rendered on the server from the stored (redacted) events; `app.js` adds selection, keyboard
moves, live updates and the actions, `verify.js` checks each event's inclusion proof.
"""

from __future__ import annotations

from typing import Any

from flightlog.render import event_summary
from flightlog.server.ui.diff import diff_stats, render_diff
from flightlog.server.ui.html import STATUS_CLASSES, block, dl, esc, parse_time, short_time

__all__ = ["checkpoint_header", "trace_body"]

Row = tuple[int, int, dict[str, Any]]  # (depth, ledger index, event), in tree order


def checkpoint_header(record: dict[str, Any] | None) -> str:
    """Return the header's checkpoint box: size, root and signer key of the latest checkpoint."""
    if record is None:
        return '<div class="checkpoint" id="checkpoint">no checkpoint yet</div>'
    root, key = str(record.get("root", "")), str(record.get("verifier_key", ""))
    return (
        f'<div class="checkpoint" id="checkpoint" data-size="{esc(record.get("size"))}" data-root="{esc(root)}"'
        f' data-key="{esc(key)}">'
        f'<span>checkpoint <b id="cp-size">{esc(record.get("size"))}</b> entries</span>'
        f'<span>root <code id="cp-root" title="{esc(root)}">{esc(root[:16])}…</code></span>'
        f'<span>signer <code id="cp-key" title="{esc(key)}">{esc(key.rsplit("+", 1)[0])}</code></span>'
        f'<span id="cp-sig" class="muted"></span></div>'
    )


def _status(ev: dict[str, Any]) -> str:
    status = str(ev.get("status") or "unset")
    return status if status in STATUS_CLASSES else "unset"


def _duration(ev: dict[str, Any]) -> str:
    dur = ev.get("duration_ms")
    if not isinstance(dur, int | float) or isinstance(dur, bool):
        return ""
    return f"{dur / 1000:.2f} s" if dur >= 1000 else f"{dur:.0f} ms"


def _bounds(rows: list[Row]) -> tuple[float, float]:
    """Return (start, length) in epoch ms of the trace's time span (length at least 1 ms)."""
    starts: list[float] = []
    ends: list[float] = []
    for _, _, ev in rows:
        t = parse_time(ev.get("timestamp"))
        if t is None:
            continue
        dur = ev.get("duration_ms")
        starts.append(t)
        ends.append(t + (dur if isinstance(dur, int | float) and dur > 0 else 0))
    if not starts:
        return 0.0, 1.0
    return min(starts), max(max(ends) - min(starts), 1.0)


def _badge(ev: dict[str, Any], index: int) -> str:
    return f'<span class="badge checking" data-verify="{esc(ev.get("event_id"))}" data-index="{index}">checking…</span>'


def _span_row(depth: int, index: int, ev: dict[str, Any], start: float, length: float) -> str:
    t = parse_time(ev.get("timestamp"))
    dur = ev.get("duration_ms")
    left = 0.0 if t is None else (t - start) / length * 100
    width = (dur / length * 100) if isinstance(dur, int | float) and dur > 0 else 0.0
    left, width = min(max(left, 0.0), 99.5), max(min(width, 100.0 - left), 0.5)
    status, kind = _status(ev), esc(ev.get("type"))
    red = (
        f' <span class="redacted" title="redactions">{len(ev["redactions"])} redacted</span>'
        if ev.get("redactions")
        else ""
    )
    return (
        f'<li class="span-row status-{status}" data-index="{index}">'
        f'<button type="button" class="span" id="s-{index}" data-index="{index}" aria-controls="d-{index}"'
        f' aria-expanded="false" style="--depth:{min(depth, 12)}">'
        f'<span class="name"><span class="type type-{kind}">{kind}</span> {esc(event_summary(ev))}{red}</span>'
        f'<span class="meta"><span class="idx">#{index}</span> <span class="dur">{_duration(ev)}</span>'
        f' <span class="status">{status}</span> {_badge(ev, index)}</span>'
        f'<span class="track" aria-hidden="true"><span class="bar" style="left:{left:.2f}%;width:{width:.2f}%">'
        f"</span></span></button></li>"
    )


def _model(model: Any) -> str:
    if not isinstance(model, dict):
        return ""
    keys = ("provider", "name", "version", "temperature", "top_p", "seed")
    return dl([(k, esc(model.get(k))) for k in keys if model.get(k) is not None])


def _payload(ev: dict[str, Any]) -> str:
    """Return the type-specific part of a span's details."""
    p = ev.get("payload")
    if not isinstance(p, dict):
        return block(p)
    kind = ev.get("type")
    if kind == "prompt":
        return block(p.get("text")) + dl(
            [("template", block(p.get("template"))), ("variables", block(p.get("variables")))]
        )
    if kind == "model_call":
        return dl(
            [
                ("request", block(p.get("request"))),
                ("response", block(p.get("response"))),
                ("usage", block(p.get("usage"))),
            ]
        )
    if kind == "tool_call":
        rows = [("tool", esc(p.get("tool_name"))), ("call id", esc(p.get("tool_call_id")))]
        rows += [("input", block(p.get("input"))), ("output", block(p.get("output"))), ("error", block(p.get("error")))]
        return dl(rows)
    if kind == "file_op":
        diff = p.get("diff")
        shown = render_diff(diff) if isinstance(diff, str) else block(diff)
        rows = [("op", esc(p.get("op"))), ("file", f"<code>{esc(p.get('file_path'))}</code>")]
        rows += [("before", esc(p.get("checksum_before"))), ("after", esc(p.get("checksum_after")))]
        return dl(rows) + (f'<div class="diff-box">{shown}</div>' if shown else "")
    if kind == "shell":
        rows = [
            ("command", block(p.get("command"))),
            ("cwd", esc(p.get("cwd"))),
            ("exit code", esc(p.get("exit_code"))),
        ]
        return dl([*rows, ("stdout", block(p.get("stdout"))), ("stderr", block(p.get("stderr")))])
    if kind == "git_op":
        keys = ("op", "repo", "ref", "commit")
        rows = [(k, esc(p.get(k))) for k in keys]
        return dl([*rows, ("parents", block(p.get("parents") or None)), ("trailers", block(p.get("trailers") or None))])
    if kind == "policy_evaluation":
        decision = esc(p.get("decision"))
        rows = [
            ("decision", f'<span class="decision decision-{decision}">{decision}</span>'),
            ("reason", esc(p.get("reason"))),
        ]
        rows += [("rules", esc(", ".join(map(str, p.get("rules") or [])))), ("bundle", esc(p.get("bundle")))]
        rows += [("engine", esc(p.get("engine"))), ("input digest", esc(p.get("input_digest")))]
        return dl([*rows, ("latency", esc(p.get("latency_ms")) + (" ms" if p.get("latency_ms") is not None else ""))])
    return block(p)  # approval, rollback, ci, replay, error: every field as stored


def _redactions(ev: dict[str, Any]) -> str:
    items = ev.get("redactions")
    if not isinstance(items, list) or not items:
        return ""
    rows = "".join(
        f"<tr><td>{esc(r.get('kind'))}</td><td><code>{esc(r.get('path'))}</code></td></tr>"
        for r in items
        if isinstance(r, dict)
    )
    return (
        '<h3>Redactions</h3><p class="muted">Removed before storage; the value was never recorded.</p>'
        f'<table class="redactions"><thead><tr><th>kind</th><th>place</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _detail(index: int, ev: dict[str, Any]) -> str:
    status = _status(ev)
    user = ev.get("user_context") if isinstance(ev.get("user_context"), dict) else {}
    source = ev.get("source") if isinstance(ev.get("source"), dict) else {}
    meta = dl(
        [
            ("ledger index", f'#{index} {_badge(ev, index)} <span class="leaf-hash" data-leaf="{index}"></span>'),
            ("status", f'<span class="status status-{status}">{status}</span>'),
            ("time", esc(ev.get("timestamp"))),
            ("duration", esc(_duration(ev))),
            ("agent", esc(ev.get("agent_id"))),
            ("session", esc(ev.get("session_id"))),
            ("user", esc(" · ".join(str(v) for v in (user or {}).values() if v))),
            ("source", esc(" ".join(str(v) for v in (source or {}).values() if v))),
            ("event id", f"<code>{esc(ev.get('event_id'))}</code>"),
            ("span", f"<code>{esc(ev.get('span_id'))}</code> ← <code>{esc(ev.get('parent_span_id') or '—')}</code>"),
        ]
    )
    model = _model(ev.get("model"))
    return (
        f'<section class="detail" id="d-{index}" data-index="{index}" hidden tabindex="-1"'
        f' aria-labelledby="dh-{index}">'
        f'<h2 id="dh-{index}"><span class="type type-{esc(ev.get("type"))}">{esc(ev.get("type"))}</span>'
        f" {esc(event_summary(ev))}</h2>{meta}"
        + (f"<h3>Model</h3>{model}" if model else "")
        + f"<h3>Payload</h3>{_payload(ev)}{_redactions(ev)}</section>"
    )


def _files_changed(rows: list[Row]) -> str:
    items: list[str] = []
    for _, index, ev in rows:
        p = ev.get("payload")
        if ev.get("type") != "file_op" or not isinstance(p, dict):
            continue
        diff = p.get("diff")
        added, removed = diff_stats(diff) if isinstance(diff, str) else (0, 0)
        counts = (
            f'<span class="add">+{added}</span> <span class="del">−{removed}</span>' if isinstance(diff, str) else ""
        )
        items.append(
            f'<li><button type="button" class="file-link" data-index="{index}"><code>{esc(p.get("file_path"))}</code>'
            f' <span class="muted">{esc(p.get("op"))}</span> {counts}</button></li>'
        )
    if not items:
        return ""
    heading = f'<h2 id="files-h">Files changed ({len(items)})</h2>'
    return f'<section class="files" aria-labelledby="files-h">{heading}<ul>{"".join(items)}</ul></section>'


def trace_body(trace_id: str, rows: list[Row]) -> str:
    """Return the trace view's main content for the events of one trace (tree order)."""
    start, length = _bounds(rows)
    events = [ev for _, _, ev in rows]
    agents = sorted({str(e.get("agent_id")) for e in events})
    sessions = sorted({str(e.get("session_id")) for e in events if e.get("session_id")})
    errors = sum(_status(e) in ("error", "denied") for e in events)
    first = min((str(e.get("timestamp")) for e in events), default="")
    length_text = f"{length / 1000:.2f} s" if length >= 1000 else f"{length:.0f} ms"
    summary = dl(
        [
            ("agent", esc(", ".join(agents))),
            ("session", esc(", ".join(sessions))),
            ("started", esc(short_time(first)) + " UTC"),
            ("duration", length_text),
            ("events", f'<span id="event-count">{len(rows)}</span>'),
            ("errors / denied", str(errors) if errors else ""),
            ("verified", '<span id="verify-summary">checking…</span>'),
        ]
    )
    spans = "".join(_span_row(d, i, ev, start, length) for d, i, ev in rows)
    details = "".join(_detail(i, ev) for _, i, ev in rows)
    return f"""<div class="trace" id="trace" data-trace-id="{esc(trace_id)}" data-events="{len(rows)}">
<div class="trace-head">
<h1>Trace <code>{esc(trace_id)}</code></h1>
<div class="actions">
<button type="button" id="copy-replay" class="action">Copy replay command</button>
<button type="button" id="rollback" class="action danger">Roll back…</button>
<span class="diff-mode" role="group" aria-label="diff layout">
<button type="button" class="mode" data-mode="unified" aria-pressed="true">Unified</button>
<button type="button" class="mode" data-mode="split" aria-pressed="false">Side by side</button>
</span>
<span id="live" class="muted" aria-live="polite"></span>
</div>
{summary}
</div>
<div id="trace-live">
{_files_changed(rows)}
<div class="trace-grid">
<section class="waterfall-box" aria-labelledby="wf-h">
<h2 id="wf-h">Timeline</h2>
<ol class="waterfall" id="waterfall">{spans}</ol>
</section>
<section class="details" id="details" aria-label="span details">
<p class="hint" id="hint">Select a span (click, or arrow keys and Enter) to see its details.</p>
{details}
</section>
</div>
</div>
<p id="action-result" role="status" aria-live="polite"></p>
<dialog id="confirm">
<form method="dialog">
<h2 id="confirm-title"></h2>
<p id="confirm-text"></p>
<pre id="confirm-code" hidden></pre>
<div class="dialog-buttons">
<button value="cancel" type="submit">Cancel</button>
<button value="ok" type="submit" id="confirm-ok" class="danger">OK</button>
</div>
</form>
</dialog>
</div>"""
