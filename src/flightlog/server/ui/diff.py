"""Unified diffs as HTML for the trace view: unified and side-by-side tables, simple highlighting.

Pure functions over the diff text a `file_op` event carries; every piece of that text is escaped
before it is wrapped in markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from typing import Final

__all__ = ["DiffLine", "Hunk", "diff_stats", "highlight", "parse_diff", "render_diff"]

MAX_DIFF_LINES: Final = 5000  # past this the rest of a diff is cut (the full text stays in the ledger)
_HUNK: Final = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")
_KEYWORD_TEXT: Final = """
and as assert async await break case catch class const continue def default del do elif else enum except
export extends false False final finally fn for from func function go if impl import in interface is
lambda let match mod mut new nil None nonlocal not null or package pass pub raise return self static
struct super switch this throw true True try type typeof use var void while with yield
"""
_KEYWORDS: Final = frozenset(_KEYWORD_TEXT.split())
_TOKEN: Final = re.compile(
    r"(?P<c>#.*$|//.*$|--\s.*$)"  # line comments (Python/shell, C-like, SQL)
    r"|(?P<s>\"(?:[^\"\\]|\\.)*\"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)"  # strings (maybe unterminated on this line)
    r"|(?P<n>\b\d[\d_]*(?:\.\d+)?\b)"
    r"|(?P<w>[A-Za-z_][A-Za-z0-9_]*)"
)


@dataclass(frozen=True)
class DiffLine:
    """One line of a hunk: kind ' ', '+' or '-', old and new line numbers (None where absent)."""

    kind: str
    old: int | None
    new: int | None
    text: str


@dataclass
class Hunk:
    """A hunk header and its lines."""

    header: str
    lines: list[DiffLine] = field(default_factory=list)


def parse_diff(text: str) -> list[Hunk]:
    """Return the hunks of a unified diff; lines before the first hunk (---/+++ headers) are
    skipped, a text with no hunk header becomes one hunk of context lines."""
    hunks: list[Hunk] = []
    old = new = 0
    for count, line in enumerate(text.splitlines()):
        if count >= MAX_DIFF_LINES:
            hunks.append(Hunk(f"… cut after {MAX_DIFF_LINES} lines"))
            break
        m = _HUNK.match(line)
        if m:
            old, new = int(m.group(1)), int(m.group(2))
            hunks.append(Hunk(line))
            continue
        if not hunks:
            if line.startswith(("--- ", "+++ ", "diff ", "index ")):
                continue
            hunks.append(Hunk(""))
            old = new = 1
        hunk = hunks[-1]
        if line.startswith("+"):
            hunk.lines.append(DiffLine("+", None, new, line[1:]))
            new += 1
        elif line.startswith("-"):
            hunk.lines.append(DiffLine("-", old, None, line[1:]))
            old += 1
        elif line.startswith("\\"):
            continue  # "\ No newline at end of file"
        else:
            hunk.lines.append(DiffLine(" ", old, new, line[1:] if line.startswith(" ") else line))
            old += 1
            new += 1
    return hunks


def diff_stats(text: str) -> tuple[int, int]:
    """Return (lines added, lines removed) of a unified diff."""
    added = removed = 0
    for hunk in parse_diff(text):
        for line in hunk.lines:
            added += line.kind == "+"
            removed += line.kind == "-"
    return added, removed


def highlight(code: str) -> str:
    """Return `code` as escaped HTML with keywords, strings, numbers and comments in spans."""
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(code):
        kind = m.lastgroup
        if kind == "w" and m.group() not in _KEYWORDS:
            continue
        out.append(escape(code[pos : m.start()]))
        out.append(f'<span class="tok-{"k" if kind == "w" else kind}">{escape(m.group())}</span>')
        pos = m.end()
    out.append(escape(code[pos:]))
    return "".join(out)


def _num(n: int | None) -> str:
    return "" if n is None else str(n)


_ROW_CLASS: Final = {"+": "add", "-": "del", " ": "ctx"}


def _unified(hunks: list[Hunk]) -> str:
    rows: list[str] = []
    for hunk in hunks:
        if hunk.header:
            rows.append(f'<tr class="hunk"><td colspan="4">{escape(hunk.header)}</td></tr>')
        for ln in hunk.lines:
            numbers = f'<td class="ln">{_num(ln.old)}</td><td class="ln">{_num(ln.new)}</td>'
            rows.append(
                f'<tr class="{_ROW_CLASS[ln.kind]}">{numbers}'
                f'<td class="mark">{escape(ln.kind)}</td><td class="code">{highlight(ln.text)}</td></tr>'
            )
    return '<table class="diff unified">' + "".join(rows) + "</table>"


def _side_by_side(hunks: list[Hunk]) -> str:
    rows: list[str] = []

    def cell(ln: DiffLine | None, side: str) -> str:
        if ln is None:
            return '<td class="ln"></td><td class="code empty"></td>'
        number = ln.old if side == "old" else ln.new
        return f'<td class="ln">{_num(number)}</td><td class="code {_ROW_CLASS[ln.kind]}">{highlight(ln.text)}</td>'

    for hunk in hunks:
        if hunk.header:
            rows.append(f'<tr class="hunk"><td colspan="4">{escape(hunk.header)}</td></tr>')
        dels: list[DiffLine] = []
        adds: list[DiffLine] = []

        def flush(dels: list[DiffLine], adds: list[DiffLine]) -> None:
            for i in range(max(len(dels), len(adds))):
                left = dels[i] if i < len(dels) else None
                right = adds[i] if i < len(adds) else None
                rows.append(f"<tr>{cell(left, 'old')}{cell(right, 'new')}</tr>")
            dels.clear()
            adds.clear()

        for ln in hunk.lines:
            if ln.kind == "-":
                dels.append(ln)
            elif ln.kind == "+":
                adds.append(ln)
            else:
                flush(dels, adds)
                rows.append(f"<tr>{cell(ln, 'old')}{cell(ln, 'new')}</tr>")
        flush(dels, adds)
    return '<table class="diff split">' + "".join(rows) + "</table>"


def render_diff(text: str) -> str:
    """Return both renderings of a unified diff (the page shows one, a toggle switches)."""
    hunks = parse_diff(text)
    if not any(h.lines for h in hunks):
        return '<p class="muted">empty diff</p>'
    return f'<div class="diffs">{_unified(hunks)}{_side_by_side(hunks)}</div>'
