"""Pure pieces of the Claude Code transcript importer: unified diffs rebuilt from an edit
tool's `structuredPatch`, content checksums, and the payloads of `file_op` and `shell` events.

Nothing here reads files or knows about turns; `claude_transcript` calls these per tool call.
Inputs come straight from a transcript line, so every function accepts any JSON value and
returns None (or leaves a field null) when a value has an unexpected shape.
"""

from __future__ import annotations

import re
from typing import Any, Final

from flightlog.ledger.blobs import blob_digest

__all__ = [
    "apply_edits",
    "content_diff",
    "diff_label",
    "exit_code",
    "file_op_payload",
    "patch_diff",
    "sha256_text",
    "shell_payload",
    "text_of",
]

_EXIT_CODE: Final = re.compile(r"\bExit code (-?\d{1,9})\b")
Edit = tuple[str, str, bool]  # (old text, new text, replace every occurrence)


def sha256_text(text: str) -> str:
    """Return "sha256:<hex>" of the UTF-8 bytes of `text` (the schema's digest form)."""
    return blob_digest(text.encode("utf-8", "surrogatepass"))


def text_of(content: object) -> str | None:
    """Return a message or tool_result content as text: the string itself, or its text blocks
    joined by newlines; None when there is no text at all."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def diff_label(file_path: str, cwd: str | None) -> str:
    """Return the path shown in diff headers: relative to `cwd` when the file is inside it (as
    git shows it), else the path without its leading slash (so "a/" + label stays one path)."""
    if cwd:
        root = cwd.rstrip("/\\")
        for sep in ("/", "\\"):
            if root and file_path.startswith(root + sep):
                return file_path[len(root) + 1 :]
    return file_path.lstrip("/")


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def patch_diff(old_name: str, new_name: str, hunks: object) -> str | None:
    """Return unified diff text for `structuredPatch` hunks, or None when there is no usable hunk.

    A hunk is `{oldStart, oldLines, newStart, newLines, lines: [" ctx", "-old", "+new"]}` as
    jsdiff's `structuredPatch` makes it; the text is what jsdiff's `formatPatch` prints (without
    its "Index:" banner), e.g. for old_name "a/x.py", new_name "b/x.py":

        --- a/x.py
        +++ b/x.py
        @@ -1,2 +1,2 @@
         keep
        -old
        +new

    Counts are always printed, and an empty range starts one line earlier (the unified format
    quirk jsdiff also follows), so `patch -p1` and `git apply` accept the text. A hunk with a
    field of the wrong type is left out rather than guessed at.
    """
    if not isinstance(hunks, list):
        return None
    out = [f"--- {old_name}", f"+++ {new_name}"]
    for hunk in hunks:
        if not isinstance(hunk, dict):
            continue
        old_start, old_lines = _count(hunk.get("oldStart")), _count(hunk.get("oldLines"))
        new_start, new_lines = _count(hunk.get("newStart")), _count(hunk.get("newLines"))
        lines = hunk.get("lines")
        if old_start is None or old_lines is None or new_start is None or new_lines is None:
            continue
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            continue
        if old_lines == 0:
            old_start = max(0, old_start - 1)
        if new_lines == 0:
            new_start = max(0, new_start - 1)
        out.append(f"@@ -{old_start},{old_lines} +{new_start},{new_lines} @@")
        out.extend(lines)
    return "\n".join(out) + "\n" if len(out) > 2 else None


def content_diff(new_name: str, content: str) -> str:
    """Return the unified diff that creates a file holding `content` (old side /dev/null)."""
    out = ["--- /dev/null", f"+++ {new_name}"]
    lines = content.split("\n")
    missing_newline = lines[-1] != ""
    if not missing_newline:
        lines.pop()  # the text after the final newline is not a line
    if lines:
        out.append(f"@@ -0,0 +1,{len(lines)} @@")
        out.extend("+" + line for line in lines)
        if missing_newline:
            out.append("\\ No newline at end of file")
    return "\n".join(out) + "\n"


def apply_edits(original: str, edits: list[Edit]) -> str | None:
    """Return `original` with each (old, new, replace_all) applied in order, the way the Edit
    and MultiEdit tools apply them (first occurrence unless replace_all); None when an old
    text is not found, since then the tool did something we cannot reproduce."""
    text = original
    for old, new, replace_all in edits:
        if old == "":
            if text:  # an empty old text only creates a file; on content it is ambiguous
                return None
            text = new
            continue
        if old not in text:
            return None
        text = text.replace(old, new) if replace_all else text.replace(old, new, 1)
    return text


def _edit(item: object, old_key: str, new_key: str, all_key: str) -> Edit | None:
    if not isinstance(item, dict):
        return None
    old, new = item.get(old_key), item.get(new_key)
    if not isinstance(old, str) or not isinstance(new, str):
        return None
    return old, new, item.get(all_key) is True


def _edits(tool: str, tool_input: dict[str, Any], result: dict[str, Any]) -> list[Edit] | None:
    """The edits a tool call made, from its result (what was applied), else from its input."""
    if tool == "Edit":
        one = _edit(result, "oldString", "newString", "replaceAll") or _edit(
            tool_input, "old_string", "new_string", "replace_all"
        )
        return [one] if one else None
    items = result.get("edits")
    if not isinstance(items, list):
        items = tool_input.get("edits")
    if not isinstance(items, list):
        return None
    edits = [_edit(item, "old_string", "new_string", "replace_all") for item in items]
    return [e for e in edits if e] if all(edits) else None


def _first_str(*values: object) -> str | None:
    for value in values:
        if isinstance(value, str) and value:
            return value
    return None


def file_op_payload(tool: str, tool_input: object, result: object, cwd: str | None) -> dict[str, Any] | None:
    """Return the `file_op` payload of a successful Write/Edit/MultiEdit/NotebookEdit call, or
    None when the call names no file.

    op is "create" for a Write whose result type is "create", else "patch". checksum_before is
    the digest of the original content when the result carries it (`originalFile`,
    `originalFileContents`); checksum_after is the digest of the written content (Write) or of
    the original with the edits applied (Edit, MultiEdit), null when unknown: also when the
    user changed the proposed edit (`userModified`), since the applied text is then not in
    the transcript.
    """
    inp = tool_input if isinstance(tool_input, dict) else {}
    res = result if isinstance(result, dict) else {}
    path = _first_str(res.get("filePath"), inp.get("file_path"), inp.get("notebook_path"), res.get("notebook_path"))
    if path is None:
        return None
    label = diff_label(path, cwd)
    # An empty original is a known content too, so take the first string even when empty.
    original = next((v for v in (res.get("originalFile"), res.get("originalFileContents")) if isinstance(v, str)), None)
    op, diff, after = "patch", None, None
    if tool == "Write":
        content = res.get("content") if isinstance(res.get("content"), str) else inp.get("content")
        creates = res.get("type") == "create"
        op = "create" if creates else "patch"
        diff = patch_diff("/dev/null" if creates else f"a/{label}", f"b/{label}", res.get("structuredPatch"))
        if isinstance(content, str):
            after = sha256_text(content)
            if diff is None and creates:
                diff = content_diff(f"b/{label}", content)
        if creates:
            original = None
    elif tool in ("Edit", "MultiEdit"):
        diff = patch_diff(f"a/{label}", f"b/{label}", res.get("structuredPatch"))
        edits = _edits(tool, inp, res)
        if original is not None and edits and res.get("userModified") is not True:
            applied = apply_edits(original, edits)
            after = sha256_text(applied) if applied is not None else None
    return {
        "op": op,
        "file_path": path,
        "diff": diff,
        "checksum_before": sha256_text(original) if original is not None else None,
        "checksum_after": after,
        "tool": tool,
    }


def exit_code(text: str | None) -> int | None:
    """Return N from the first "Exit code N" in a failed command's error text, else None."""
    found = _EXIT_CODE.search(text) if text else None
    return int(found.group(1)) if found else None


def shell_payload(
    tool_input: object, result: object, status: str, error: str | None, cwd: str | None
) -> dict[str, Any]:
    """Return the `shell` payload of a Bash/PowerShell call whose tool_call has `status`.

    exit_code is 0 for a successful foreground command, N from "Exit code N" in the error of a
    failed one, and null otherwise (no result yet, or a background command still running).
    A failed command's result is only an error string, so it becomes stderr.
    """
    inp = tool_input if isinstance(tool_input, dict) else {}
    res = result if isinstance(result, dict) else {}
    command = inp.get("command")
    code: int | None = None
    if status == "ok" and not res.get("backgroundTaskId"):
        code = 0
    elif status == "error":
        code = exit_code(error)
    stdout, stderr = res.get("stdout"), res.get("stderr")
    interrupted = res.get("interrupted")
    description = inp.get("description")
    return {
        "command": command if isinstance(command, str) else "",
        "cwd": cwd,
        "exit_code": code,
        "stdout": stdout if isinstance(stdout, str) else None,
        "stderr": stderr if isinstance(stderr, str) else (error if status == "error" else None),
        "interrupted": interrupted if isinstance(interrupted, bool) else None,
        "description": description if isinstance(description, str) else None,
    }
