"""Small HTML builders shared by the UI pages: the page frame, escaping helpers, value blocks.

Every string that comes from an event goes through `escape` (or `highlight`) before it reaches
markup; nothing here trusts event content.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any, Final
from urllib.parse import urlencode

__all__ = ["STATUS_CLASSES", "block", "dl", "esc", "page", "parse_time", "query_string", "short_time"]

STATUS_CLASSES: Final = ("ok", "error", "denied", "pending", "unset")


def _version() -> str:
    try:
        return importlib.metadata.version("flightlog")
    except importlib.metadata.PackageNotFoundError:
        return "0"


_STATIC: Final = f"/ui/static/{{name}}?v={_version()}"  # a new release is a new URL: no stale cache


def esc(value: object) -> str:
    """Return `value` as escaped HTML text (None as empty)."""
    return "" if value is None else escape(str(value))


def query_string(params: Mapping[str, str | None]) -> str:
    """Return `?a=b&…` of the non-empty params, or '' when there are none."""
    kept = {k: v for k, v in params.items() if v}
    return "?" + urlencode(kept) if kept else ""


def parse_time(text: object) -> float | None:
    """Return an RFC 3339 timestamp as epoch milliseconds, or None when it does not parse."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return None


def short_time(text: object) -> str:
    """Return an RFC 3339 UTC timestamp as 'YYYY-MM-DD HH:MM:SS' (the input when it is not one)."""
    s = str(text or "")
    return s[:19].replace("T", " ") if len(s) >= 19 else s


def dl(rows: list[tuple[str, str]]) -> str:
    """Return a definition list of (label, HTML) rows, leaving out rows whose HTML is empty."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows if v)
    return f'<dl class="kv">{items}</dl>' if items else ""


def block(value: Any) -> str:
    """Return a value as a block: text in <pre>, a blob reference as a note, anything else as
    indented JSON. None and empty strings give ''."""
    if value is None or value == "":
        return ""
    if isinstance(value, dict) and isinstance(value.get("blob"), str):
        return (
            f'<p class="blob">stored as blob <code>{esc(value["blob"])}</code> ({esc(value.get("size", "?"))} bytes,'
            " covered by the ledger through its digest)</p>"
        )
    if isinstance(value, str):
        return f"<pre>{esc(value)}</pre>"
    return f"<pre>{esc(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))}</pre>"


def page(title: str, body: str, header: str, kind: str) -> str:
    """Return a whole HTML page: the frame, the checkpoint header and `body` (already HTML)."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · flightlog</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{_STATIC.format(name="app.css")}">
<script src="{_STATIC.format(name="verify.js")}" defer></script>
<script src="{_STATIC.format(name="app.js")}" defer></script>
</head>
<body data-page="{esc(kind)}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/">flightlog</a>
{header}
</header>
<main id="main">
{body}
</main>
</body>
</html>
"""
