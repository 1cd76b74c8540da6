"""`file_op`: a span around a change to one file, with its checksums before and after and a diff.

The mapper of the collector knows no file span yet, so a file operation is an `execute_tool`
span (tool name "file_op") whose arguments and result carry the fields of a flightlog `file_op`
event under their event names — arguments `{"op", "file_path", "old_path"}`, result
`{"checksum_before", "checksum_after", "diff"}` — and `flightlog.event.type` = "file_op" says
which event it stands for.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from flightlog.capture.workspace import MAX_DIFF_BYTES, file_diff
from flightlog.sdk._spans import clip, open_span, to_json

__all__ = ["FileOp", "file_op"]

EVENT_TYPE: Final = "flightlog.event.type"
FileOpKind = Literal["create", "patch", "delete", "rename"]
_CHUNK: Final = 1024 * 1024


class FileOp:
    """The span of one file operation; `op` is what happened, known once the block has run."""

    def __init__(self, span: trace.Span, op: FileOpKind | None) -> None:
        self.span = span
        self.op = op


def _read(path: str | os.PathLike[str]) -> tuple[str | None, bytes | None]:
    """Return ("sha256:<hex>", content) of a file; content is None past MAX_DIFF_BYTES (hashed
    in chunks, never held whole) and both are None when there is no readable file."""
    digest = hashlib.sha256()
    kept = bytearray()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                if len(kept) <= MAX_DIFF_BYTES:
                    kept += chunk
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None, None
    return "sha256:" + digest.hexdigest(), bytes(kept) if len(kept) <= MAX_DIFF_BYTES else None


@contextmanager
def file_op(
    path: str | os.PathLike[str],
    op: FileOpKind | None = None,
    *,
    old_path: str | os.PathLike[str] | None = None,
) -> Iterator[FileOp]:
    """Open a span around code that changes the file at `path` and record the change when the
    block ends (also when it raises): op (given, else create / delete / patch from whether the
    file existed before and after), both checksums ("sha256:<hex>", None for no file) and a
    unified diff (None for binary files or files over 1 MiB, clipped past MAX_TEXT). For a rename, pass op="rename"
    and `old_path`; the "before" side is then read from `old_path`."""
    file_path = os.fspath(path)
    before_path = os.fspath(old_path) if old_path is not None else file_path
    start = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "file_op", EVENT_TYPE: "file_op"}
    with open_span(f"execute_tool file_op {file_path}", SpanKind.INTERNAL, start) as span:
        recording = span.is_recording()
        before_sum, before = _read(before_path) if recording else (None, None)
        handle = FileOp(span, op)
        try:
            yield handle
        finally:
            if recording:
                after_sum, after = _read(file_path)
                if handle.op is None:
                    handle.op = "create" if before_sum is None else "delete" if after_sum is None else "patch"
                diff = None
                if (before is not None or before_sum is None) and (after is not None or after_sum is None):
                    # a/ and b/ prefixes as git writes them; an absolute path would give "a//…"
                    diff = file_diff(file_path.lstrip(os.sep), before, after)
                arguments = {"op": handle.op, "file_path": file_path}
                if old_path is not None:
                    arguments["old_path"] = before_path
                span.set_attribute("gen_ai.tool.call.arguments", to_json(arguments))
                # The diff is clipped, not the JSON around it, so the checksums always arrive.
                result = {
                    "checksum_before": before_sum,
                    "checksum_after": after_sum,
                    "diff": clip(diff) if diff else diff,
                }
                span.set_attribute("gen_ai.tool.call.result", to_json(result, limit=None))
