"""The trace list (`/`): filters, full-text search, newest first, paged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from flightlog.events import EVENT_TYPES
from flightlog.index import MATCH_MARKS
from flightlog.server.ui.html import STATUS_CLASSES, esc, query_string, short_time

__all__ = ["FILTERS", "SearchGroup", "list_body"]

FILTERS: Final = ("q", "agent", "session", "repo", "type", "status", "since", "until", "file_path")


@dataclass
class SearchGroup:
    """The matching events of one trace in a search: newest match first."""

    trace_id: str
    agent: str
    session: str
    newest: str
    snippets: list[str] = field(default_factory=list)
    types: set[str] = field(default_factory=set)
    matches: int = 0


def _select(name: str, label: str, options: tuple[str, ...], value: str) -> str:
    opts = "".join(f"<option{' selected' if o == value else ''}>{esc(o)}</option>" for o in options)
    return (
        f'<label>{esc(label)}<select name="{name}" id="f-{name}"><option value="">any</option>{opts}</select></label>'
    )


def _input(name: str, label: str, value: str, placeholder: str = "", kind: str = "text") -> str:
    return (
        f'<label>{esc(label)}<input type="{kind}" name="{name}" id="f-{name}" value="{esc(value)}"'
        f' placeholder="{esc(placeholder)}"></label>'
    )


def _form(f: dict[str, str]) -> str:
    return (
        '<form class="filters" method="get" action="/" role="search">'
        '<div class="search-row"><label class="q">Search'
        f'<input type="search" name="q" id="f-q" value="{esc(f.get("q", ""))}"'
        ' placeholder="words in prompts, commands, output, diffs…" autocomplete="off"></label>'
        '<button type="submit">Search</button> <a href="/">clear</a></div>'
        '<details class="more"'
        + (" open" if any(f.get(k) for k in FILTERS[1:]) else "")
        + "><summary>Filters</summary>"
        '<div class="filter-grid">'
        + _input("agent", "agent", f.get("agent", ""), "claude-code")
        + _input("session", "session", f.get("session", ""))
        + _input("repo", "repo", f.get("repo", ""), "/path/to/repo")
        + _select("type", "event type", EVENT_TYPES, f.get("type", ""))
        + _select("status", "status", STATUS_CLASSES, f.get("status", ""))
        + _input("since", "since (UTC)", f.get("since", ""), "2026-11-24T17:00:00Z")
        + _input("until", "until (UTC)", f.get("until", ""), "2026-11-25T00:00:00Z")
        + _input("file_path", "file path", f.get("file_path", ""), "src/app.py")
        + '</div><button type="submit">Apply</button></details></form>'
    )


def _snippet(text: str) -> str:
    """Escape an FTS snippet (matches between MATCH_MARKS) and turn its marks into <mark>."""
    start, end = MATCH_MARKS
    return esc(text).replace(start, "<mark>").replace(end, "</mark>")


def _trace_link(trace_id: str) -> str:
    return f'<a class="trace-link" href="/traces/{esc(trace_id)}"><code>{esc(trace_id[:16])}</code>…</a>'


def _list_rows(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        errors = int(r.get("errors") or 0)
        status = (
            f'<span class="status status-error">{errors} error</span>' if errors else '<span class="status">ok</span>'
        )
        out.append(
            f'<tr class="trace-row" data-href="/traces/{esc(r["trace_id"])}" data-cursor="{esc(r.get("cursor"))}">'
            f"<td>{_trace_link(str(r['trace_id']))}</td>"
            f'<td><time datetime="{esc(r.get("last"))}">{esc(short_time(r.get("last")))}</time></td>'
            f"<td>{esc(', '.join(r.get('agents') or []))}</td>"
            f'<td class="session">{esc(", ".join(r.get("sessions") or []))}</td>'
            f'<td class="num">{esc(r.get("events"))}</td><td>{status}</td></tr>'
        )
    head = (
        "<tr><th>trace</th><th>last event (UTC)</th><th>agent</th><th>session</th><th>events</th><th>status</th></tr>"
    )
    return f'<table class="traces" id="traces"><thead>{head}</thead><tbody>{"".join(out)}</tbody></table>'


def _search_rows(groups: list[SearchGroup]) -> str:
    out = []
    for g in groups:
        snippets = "".join(f'<li class="snippet">{_snippet(s)}</li>' for s in g.snippets[:3])
        out.append(
            f'<tr class="trace-row" data-href="/traces/{esc(g.trace_id)}"><td>{_trace_link(g.trace_id)}</td>'
            f'<td><time datetime="{esc(g.newest)}">{esc(short_time(g.newest))}</time></td>'
            f'<td>{esc(g.agent)}</td><td class="session">{esc(g.session)}</td>'
            f'<td class="num">{g.matches}</td>'
            f'<td>{esc(", ".join(sorted(g.types)))}<ul class="snippets">{snippets}</ul></td></tr>'
        )
    head = (
        "<tr><th>trace</th><th>newest match (UTC)</th><th>agent</th><th>session</th><th>matches</th><th>where</th></tr>"
    )
    return f'<table class="traces search" id="traces"><thead>{head}</thead><tbody>{"".join(out)}</tbody></table>'


def list_body(
    filters: dict[str, str],
    rows: list[dict[str, Any]] | None,
    groups: list[SearchGroup] | None,
    next_cursor: int | None,
    paged: bool,
    note: str = "",
    as_of: int | None = None,
) -> str:
    """Return the list page's main content: the filter form and either the trace summaries
    (`rows`, from the query API's store function) or the search results grouped by trace.
    `as_of` (the ledger size the first page saw) goes into the next page's link."""
    if groups is not None:
        table = _search_rows(groups)
        empty = not groups
        heading = f"Traces matching “{esc(filters.get('q') or filters.get('repo'))}”"
    else:
        table = _list_rows(rows or [])
        empty = not rows
        heading = "Traces, newest first"
    nav = []
    if paged:
        nav.append(f'<a href="/{query_string(filters)}">← newest</a>')
    if next_cursor is not None:
        paging = {"cursor": str(next_cursor), **({"as_of": str(as_of)} if as_of is not None else {})}
        nav.append(f'<a rel="next" href="/{query_string({**filters, **paging})}">older →</a>')
    live = "" if paged or groups is not None else ' data-live="1"'
    newest = f' data-newest="{esc(rows[0].get("cursor"))}"' if rows and not paged else ""
    hint = '<p class="hint">Arrow keys move between traces; Enter opens one.</p>'
    content = '<p class="empty">No traces match.</p>' if empty else table + hint
    return (
        f"{_form(filters)}<h1>{heading}</h1>"
        + (f'<p class="muted">{esc(note)}</p>' if note else "")
        + f'<div class="list" id="list"{live}{newest}>{content}</div>'
        + f'<nav class="pager">{" ".join(nav)}</nav>'
    )
