"""Codex's apply_patch envelope → one change per file, with a unified diff (pure functions).

The envelope (grammar in openai/codex `codex-rs/apply-patch/src/parser.rs`)::

    *** Begin Patch
    *** Add File: docs/notes.md
    +first line
    *** Update File: src/app.py
    *** Move to: src/main.py
    @@ def run():
    -    return 1
    +    return 2
    *** Delete File: old.txt
    *** End Patch

`parse_patch` accepts what Codex accepts, including its leniencies (spaces around the marker
lines, a `<<'EOF'` heredoc wrapped around the whole text, a first update chunk without `@@`,
an empty line inside a chunk read as an empty context line). Codex rejects a malformed
envelope whole and changes nothing, so on the first error `parse_patch` returns no changes
and the reason; it never raises.

Envelope hunks locate themselves by context, not line numbers, so the `@@ -a,b +c,d @@`
headers of the diffs carry the true line counts and a placeholder start (1, or 0 for an empty
side, as diff writes it); tools that apply diffs (git apply, patch) search by context anyway.
The text after `@@ ` in the envelope is kept as the hunk's section heading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from flightlog.ledger.blobs import blob_digest

__all__ = ["FileChange", "Patch", "find_patch", "parse_patch"]

BEGIN: Final = "*** Begin Patch"
END: Final = "*** End Patch"
_ADD: Final = "*** Add File: "
_DELETE: Final = "*** Delete File: "
_UPDATE: Final = "*** Update File: "
_MOVE: Final = "*** Move to: "
_EOF: Final = "*** End of File"
_HEREDOC_OPENERS: Final = ("<<EOF", "<<'EOF'", '<<"EOF"')
MAX_PATCH_CHARS: Final = 16 * 1024 * 1024  # far above any real edit; bounds the work on hostile input
_PATCH_TOOLS: Final = frozenset({"apply_patch", "applypatch"})
_INVOKES_PATCH: Final = re.compile(r"(?<![\w-])apply_?patch(?![\w-])")

Op = Literal["create", "patch", "delete", "rename"]


@dataclass(frozen=True)
class FileChange:
    """What one envelope hunk does to one file. `diff` is None for a deletion (the envelope does
    not hold the deleted text); `content` is the whole new text, known only for a created file."""

    op: Op
    path: str
    old_path: str | None = None
    diff: str | None = None
    content: str | None = None

    @property
    def checksum_after(self) -> str | None:
        """Return "sha256:<hex>" of the file's new content when the envelope holds all of it."""
        if self.content is None:
            return None
        return blob_digest(self.content.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Patch:
    """A parsed envelope: its changes in order, or none and `error` when Codex would reject it."""

    changes: tuple[FileChange, ...] = ()
    error: str | None = None


class _Malformed(Exception):
    """Internal: stops parsing at the first line Codex would refuse."""


@dataclass
class _Chunk:
    heading: str | None
    lines: list[str]  # unified-diff lines: " ctx", "-old", "+new"


def parse_patch(text: str) -> Patch:
    """Return the file changes of an apply_patch envelope, or no changes and the reason Codex
    would have rejected it. Never raises."""
    if len(text) > MAX_PATCH_CHARS:
        return Patch(error=f"patch is {len(text)} characters, over {MAX_PATCH_CHARS}")
    # Rust's str::lines: split on "\n" and drop one trailing "\r" (not Python's splitlines,
    # which also splits on form feeds and Unicode separators).
    stripped = text.strip()
    lines = [line.removesuffix("\r") for line in stripped.split("\n")] if stripped else []
    try:
        body = _body(lines)
        return Patch(changes=tuple(_hunks(body)))
    except _Malformed as exc:
        return Patch(error=str(exc))


def find_patch(command: str | Sequence[str]) -> str | None:
    """Return the envelope passed to apply_patch by a shell command (an argv list, or a script
    string as `exec_command` and `shell_command` take), or None when the command does not run
    apply_patch with an envelope.

    Recognises `["apply_patch", ENVELOPE]` and scripts such as
    `cd sub && apply_patch <<'EOF'` … `EOF` (also inside `["bash", "-lc", SCRIPT]`)."""
    if not isinstance(command, str):
        argv = [a for a in command if isinstance(a, str)]
        if len(argv) == 2 and argv[0].rsplit("/", 1)[-1] in _PATCH_TOOLS:
            return argv[1] if BEGIN in argv[1] else None
        command = argv[-1] if argv else ""
    if not _INVOKES_PATCH.search(command):
        return None
    start = command.find(BEGIN)
    end = command.rfind(END)
    if start < 0 or end < start:
        return None
    return command[start : end + len(END)]


def _body(lines: list[str]) -> list[str]:
    """Return the lines between the Begin and End markers (Codex's lenient boundary check)."""
    if _bounded(lines):
        return lines[1:-1]
    if len(lines) >= 4 and lines[0] in _HEREDOC_OPENERS and lines[-1].endswith("EOF") and _bounded(lines[1:-1]):
        return lines[2:-2]
    if not lines or lines[0].strip() != BEGIN:
        raise _Malformed(f"the first line of the patch must be '{BEGIN}'")
    raise _Malformed(f"the last line of the patch must be '{END}'")


def _bounded(lines: list[str]) -> bool:
    return len(lines) >= 2 and lines[0].strip() == BEGIN and lines[-1].strip() == END


def _hunks(body: list[str]) -> list[FileChange]:
    changes: list[FileChange] = []
    i = 0
    while i < len(body):
        header = body[i].strip()
        where = f"line {i + 2}"  # 1-based, counting the Begin marker
        if header.startswith(_ADD):
            path = header[len(_ADD) :]
            i += 1
            added: list[str] = []
            while i < len(body) and body[i].startswith("+"):
                added.append(body[i][1:])
                i += 1
            changes.append(_created(path, added))
        elif header.startswith(_DELETE):
            changes.append(FileChange("delete", header[len(_DELETE) :]))
            i += 1
        elif header.startswith(_UPDATE):
            path = header[len(_UPDATE) :]
            i += 1
            new_path = None
            if i < len(body) and body[i].startswith(_MOVE):
                new_path = body[i][len(_MOVE) :]
                i += 1
            chunks, i = _chunks(body, i)
            if not chunks:
                raise _Malformed(f"{where}: update of '{path}' has no changes")
            if new_path is None:
                changes.append(FileChange("patch", path, diff=_diff(path, path, chunks)))
            else:
                changes.append(FileChange("rename", new_path, old_path=path, diff=_diff(path, new_path, chunks)))
        else:
            raise _Malformed(f"{where}: '{header[:80]}' is not an Add File, Delete File or Update File header")
    return changes


def _chunks(body: list[str], i: int) -> tuple[list[_Chunk], int]:
    """Parse the change chunks of one Update File hunk from body[i]; return them and the index of
    the next hunk header."""
    chunks: list[_Chunk] = []
    while i < len(body):
        line = body[i]
        if not line.strip():  # blank lines may separate chunks
            i += 1
            continue
        if line.startswith("*"):
            break
        where = f"line {i + 2}"
        if line == "@@":
            heading, i = None, i + 1
        elif line.startswith("@@ "):
            heading, i = line[3:], i + 1
        elif chunks:
            raise _Malformed(f"{where}: expected a '@@' line to start the next change, got '{line[:80]}'")
        else:
            heading = None  # the first chunk may start straight with its lines
        diff_lines: list[str] = []
        while i < len(body):
            line = body[i]
            if line == _EOF:
                if not diff_lines:
                    break
                i += 1
                break
            if line == "":
                diff_lines.append(" ")  # Codex reads an empty line as an empty context line
            elif line[0] in " +-":
                diff_lines.append(line)
            elif not diff_lines:
                raise _Malformed(f"line {i + 2}: a change line must start with ' ', '+' or '-', got '{line[:80]}'")
            else:
                break  # the start of the next chunk or hunk
            i += 1
        if not diff_lines:
            raise _Malformed(f"{where}: change has no lines")
        chunks.append(_Chunk(heading, diff_lines))
    return chunks, i


def _created(path: str, added: list[str]) -> FileChange:
    content = "".join(line + "\n" for line in added)
    diff = f"--- /dev/null\n+++ b/{path}\n"
    if added:
        diff += f"@@ -0,0 +1,{len(added)} @@\n" + "".join("+" + line + "\n" for line in added)
    return FileChange("create", path, diff=diff, content=content)


def _diff(old_path: str, new_path: str, chunks: list[_Chunk]) -> str:
    out = [f"--- a/{old_path}\n", f"+++ b/{new_path}\n"]
    for chunk in chunks:
        old = sum(1 for line in chunk.lines if line[0] != "+")
        new = sum(1 for line in chunk.lines if line[0] != "-")
        heading = f" {chunk.heading}" if chunk.heading else ""
        out.append(f"@@ -{min(old, 1)},{old} +{min(new, 1)},{new} @@{heading}\n")
        out.extend(line + "\n" for line in chunk.lines)
    return "".join(out)
