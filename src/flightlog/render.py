"""Plain-text views of traces for the terminal: one line per event, nested by parent span."""

from __future__ import annotations

from typing import Any

__all__ = ["event_summary", "trace_tree", "tree_order"]


def _short(text: object, width: int = 72) -> str:
    if isinstance(text, dict) and "blob" in text:
        return f"<blob {text['blob'][:19]}… {text.get('size', '?')} bytes>"
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def event_summary(event: dict[str, Any]) -> str:
    """Return a one-line description of an event's payload."""
    p = event.get("payload", {})
    kind = event.get("type")
    if kind == "prompt":
        return _short(p.get("text", ""))
    if kind == "tool_call":
        failed = f" → {_short(p['error'], 40)}" if p.get("error") else ""
        return f"{p.get('tool_name')} {_short(p.get('input', ''), 56)}{failed}"
    if kind == "shell":
        code = p.get("exit_code")
        return f"$ {_short(p.get('command', ''), 60)}" + (f" → exit {code}" if code is not None else "")
    if kind == "file_op":
        return f"{p.get('op')} {p.get('file_path')}"
    if kind == "git_op":
        commit = p.get("commit") or ""
        return f"{p.get('op')} {p.get('ref') or ''} {commit[:12]}".strip()
    if kind == "span":
        return _short(p.get("name", "")) + (f" → {_short(p['error'], 40)}" if p.get("error") else "")
    if kind == "model_call":
        model = event.get("model") or {}
        return str(model.get("name") or "")
    return _short({k: v for k, v in p.items() if k != "raw"}, 60) if p else ""


def tree_order(events: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, int, dict[str, Any]]]:
    """Return (depth, index, event) with children under their parent span, in ledger order.

    Events whose parent is not in the trace are roots; every event appears exactly once.
    """
    spans = {ev["span_id"] for _, ev in events}
    children: dict[str | None, list[tuple[int, dict[str, Any]]]] = {}
    for item in events:
        parent = item[1].get("parent_span_id")
        key = parent if parent in spans and parent != item[1]["span_id"] else None
        children.setdefault(key, []).append(item)
    out: list[tuple[int, int, dict[str, Any]]] = []
    seen: set[int] = set()
    stack: list[tuple[int, int, dict[str, Any]]] = [(0, i, e) for i, e in reversed(children.get(None, []))]
    while stack:  # iterative: a deep chain of spans must not hit the recursion limit
        depth, index, ev = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        out.append((depth, index, ev))
        stack.extend((depth + 1, i, e) for i, e in reversed(children.get(ev["span_id"], [])))
    # Spans in a parent cycle are unreachable from a root: list them at the top level.
    out.extend((0, i, e) for i, e in events if i not in seen)
    return out


def trace_tree(events: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """Return the lines of a trace's tree: ledger index, time, type, status, duration, summary."""
    lines: list[str] = []
    for depth, index, ev in tree_order(events):
        dur = ev.get("duration_ms")
        took = f" {dur:.0f}ms" if isinstance(dur, int | float) else ""
        status = "" if ev.get("status") == "ok" else f" [{ev.get('status')}]"
        red = f" ({len(ev['redactions'])} redacted)" if ev.get("redactions") else ""
        lines.append(
            f"{'  ' * depth}#{index} {ev['timestamp'][11:23]} {ev['type']}{status}{took}  {event_summary(ev)}{red}"
        )
    return lines
