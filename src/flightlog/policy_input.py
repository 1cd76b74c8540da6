"""What the policy stage derives from a tool call before Rego sees it: shell commands parsed into
argv, the paths an action reads, writes or deletes, secrets (by the redaction rules) and
dependency changes. Pure functions of their arguments; docs/policy.md lists every field.

Rego cannot run the RE2 redaction rules or a shell parser, so this is done here, once, in
Python; the policies only compare fields.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any, Final

__all__ = ["derive_action", "may_hold_secret", "parse_dependencies", "parse_shell", "secret_kinds"]

_SEPARATORS: Final = frozenset({"|", "||", "&&", ";", "&", "|&", ";;", "\n"})
_WRAPPERS: Final = frozenset({"sudo", "doas", "env", "nohup", "nice", "time", "command", "exec", "xargs", "timeout"})
_SHELLS: Final = frozenset({"bash", "sh", "zsh", "dash", "ksh", "fish"})
_DELETERS: Final = frozenset({"rm", "rmdir", "unlink", "shred", "srm"})
_WRITERS: Final = frozenset({"touch", "mkdir", "tee", "truncate", "chmod", "chown", "chgrp", "ln", "install"})
_MOVERS: Final = frozenset({"cp", "mv", "rsync", "scp"})
_EDIT_TOOLS: Final = {"Write": "write", "Edit": "write", "MultiEdit": "write", "NotebookEdit": "write", "Read": "read"}
_PATH_KEYS: Final = ("file_path", "notebook_path", "path")
_SUBSTITUTION: Final = re.compile(r"\$\(([^()]*)\)|`([^`]*)`")
_EMBEDDED_WORDS: Final = r"(?:curl|wget|rm|bash|sh|nc|scp|chmod|dd|git|sudo)\s"
_EMBEDDED: Final = re.compile(rf"'({_EMBEDDED_WORDS}[^']*)'|\"({_EMBEDDED_WORDS}[^\"]*)\"")
_MAX_DEPTH: Final = 3
_MAX_COMMANDS: Final = 200
_MAX_SCAN_CHARS: Final = 1_000_000


def derive_action(tool_name: str, tool_input: object, cwd: str, home: str) -> dict[str, Any]:
    """Return the derived fields of `action` for one tool call: `commands`, `paths`, `secrets`,
    `dependencies` (each a list, empty when not applicable) and `parse_error`.

    `cwd` resolves relative paths (a `cd` in a command moves it for the commands after it);
    `home` expands `~`. Paths are normalized but never resolved on disk (no I/O).
    """
    fields: dict[str, Any] = tool_input if isinstance(tool_input, dict) else {}
    commands: list[dict[str, Any]] = []
    paths: list[dict[str, Any]] = []
    parse_error = False
    texts: list[str] = []
    if tool_name == "Bash" and isinstance(fields.get("command"), str):
        command = fields["command"]
        texts.append(command)
        commands, parse_error = parse_shell(command)
        paths = _command_paths(commands, cwd, home)
    else:
        access = _EDIT_TOOLS.get(tool_name)
        for key in _PATH_KEYS:
            value = fields.get(key)
            if isinstance(value, str) and value and access is not None:
                paths.append({"path": _normalize(value, cwd, home), "access": access})
        texts.extend(_edit_texts(tool_name, fields))
        if access is None:  # any other tool: shell commands quoted inside its strings (code, scripts)
            for text in _strings(fields):
                for match in _EMBEDDED.finditer(text[:_MAX_SCAN_CHARS]):
                    found, _ = parse_shell(match.group(1) or match.group(2))
                    commands.extend({**c, "embedded": True} for c in found)
    dependencies: list[dict[str, Any]] = []
    for entry in paths:
        if entry["access"] == "write":
            dependencies.extend(parse_dependencies(entry["path"], _edit_texts(tool_name, fields)))
    return {
        "commands": commands[:_MAX_COMMANDS],
        "paths": paths,
        "secrets": secret_kinds(texts),
        "dependencies": dependencies,
        "parse_error": parse_error,
    }


# --- shell ---------------------------------------------------------------------------------------


def parse_shell(command: str, depth: int = 0) -> tuple[list[dict[str, Any]], bool]:
    """Return (the simple commands of `command`, whether it failed to parse).

    Each command is `{"argv", "prefix", "assignments", "redirects", "joined_by", "pipe_from",
    "embedded"}`: `argv` without leading `VAR=value` assignments and wrappers (`sudo`, `env`,
    `nohup`, `timeout N`, `xargs`…, which are listed in `prefix`); `redirects` are `{"op",
    "target"}`; `joined_by` is the operator before it (`|`, `&&`, `;`, …, "" for the first);
    `pipe_from` the argv[0] of the command piping into it. `bash -c STRING`, `eval`, `$(…)` and
    backticks are parsed too and added with `embedded: true`. An unparsable command (unbalanced
    quotes) is split on whitespace and flagged.
    """
    error = False
    lexer = shlex.shlex(command[:_MAX_SCAN_CHARS], posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.whitespace = " \t\r"  # a newline separates commands
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:
        tokens, error = command.split(), True
    commands: list[dict[str, Any]] = []
    current: list[str] = []
    redirects: list[dict[str, str]] = []
    joined = ""
    pending_redirect: str | None = None

    def close(next_joined: str) -> None:
        nonlocal current, redirects, joined
        words = [t for t in current if t not in ("(", ")", "{", "}")]
        if words or redirects:
            commands.append(_simple(words, redirects, joined, commands))
        current, redirects, joined = [], [], next_joined

    for token in tokens:
        if pending_redirect is not None:
            if not (pending_redirect.endswith("&") and token.isdigit()):
                redirects.append({"op": pending_redirect, "target": token})
            pending_redirect = None
        elif "\n" in token or token in _SEPARATORS:
            close(token.strip(" ") or ";")
        elif token and set(token) <= set("<>&") and ("<" in token or ">" in token):
            pending_redirect = token
            if current and current[-1].isdigit():
                current.pop()  # the file descriptor of `2>`
        elif token in ("(", ")"):
            close(joined if not current else ";")
        else:
            current.append(token)
    close("")
    if depth < _MAX_DEPTH:
        nested: list[dict[str, Any]] = []
        for c in commands:
            argv = c["argv"]
            inner = None
            if argv and os.path.basename(argv[0]) in _SHELLS and "-c" in argv[1:-1]:
                inner = argv[argv.index("-c", 1) + 1]
            elif argv and argv[0] == "eval":
                inner = " ".join(argv[1:])
            if inner:
                found, bad = parse_shell(inner, depth + 1)
                nested.extend({**f, "embedded": True} for f in found)
                error = error or bad
        for match in _SUBSTITUTION.finditer(command):
            found, bad = parse_shell(match.group(1) or match.group(2) or "", depth + 1)
            nested.extend({**f, "embedded": True} for f in found)
        commands.extend(nested)
    return commands[:_MAX_COMMANDS], error


def _simple(
    words: list[str], redirects: list[dict[str, str]], joined: str, before: list[dict[str, Any]]
) -> dict[str, Any]:
    assignments: list[str] = []
    prefix: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word, re.S):
            assignments.append(word.split("=", 1)[0])
        elif os.path.basename(word) in _WRAPPERS:
            prefix.append(os.path.basename(word))
            i += 1
            # wrapper options (sudo -u root, timeout 10, env -i, xargs -0 …)
            while i < len(words) and (words[i].startswith("-") or (prefix[-1] == "timeout" and words[i][:1].isdigit())):
                if prefix[-1] == "sudo" and words[i] in ("-u", "-g") and i + 1 < len(words):
                    i += 1
                i += 1
            continue
        else:
            break
        i += 1
    argv = words[i:]
    if argv:
        argv = [os.path.basename(argv[0]) if "/" in argv[0] else argv[0], *argv[1:]]
    git: list[str] = []
    if argv[:1] == ["git"]:
        j = 1
        while j < len(argv) and argv[j].startswith("-"):
            j += 2 if argv[j] in ("-C", "-c", "--git-dir", "--work-tree", "--namespace") else 1
        git = argv[j:]
    pipe_from = before[-1]["argv"][0] if joined in ("|", "|&") and before and before[-1]["argv"] else ""
    return {
        "argv": argv,
        "prefix": prefix,
        "assignments": assignments,
        "redirects": list(redirects),
        "joined_by": joined,
        "pipe_from": pipe_from,
        "embedded": False,
        "git": git,
    }


def _command_paths(commands: list[dict[str, Any]], cwd: str, home: str) -> list[dict[str, Any]]:
    """The paths each command touches: redirect targets (write/read), delete targets, write
    targets of file tools, and every other argument that looks like a path (read)."""
    found: list[dict[str, Any]] = []
    for c in commands:
        argv: list[str] = c["argv"]
        if argv[:1] == ["cd"] and not c["embedded"]:
            target = next((a for a in argv[1:] if not a.startswith("-")), home)
            cwd = _normalize(target, cwd, home)
            continue
        for r in c["redirects"]:
            if r["target"] != "/dev/null" and not r["target"].startswith("&"):
                found.append(
                    {"path": _normalize(r["target"], cwd, home), "access": "read" if "<" in r["op"] else "write"}
                )
        name = argv[0] if argv else ""
        operands = [a for a in argv[1:] if not a.startswith("-") and a != "--"]
        for index, arg in enumerate(operands):
            if name in _DELETERS:
                access = "delete"
            elif _writes(name, index, len(operands)):
                access = "write"
            elif name in _MOVERS and name == "mv":
                access = "delete"
            elif name == "sed" and any(a.startswith("-i") for a in argv[1:]) and index > 0:
                access = "write"
            elif _looks_like_path(arg):
                access = "read"
            else:
                continue
            if not _looks_like_path(arg) and access == "read":
                continue
            if "://" in arg or "\n" in arg:
                continue
            entry: dict[str, Any] = {"path": _normalize(arg, cwd, home), "access": access}
            if name == "rm" and access == "delete":
                entry["recursive"], entry["force"] = _rm_flags(argv[1:])
            found.append(entry)
    return found


def _writes(name: str, index: int, count: int) -> bool:
    """Whether operand `index` of `count` is written: file tools (not the mode of chmod), the
    destination of cp/mv."""
    if name in _WRITERS:
        return not (name in ("chmod", "chown", "chgrp") and index == 0)
    return name in _MOVERS and index == count - 1 and count > 1


def _rm_flags(args: list[str]) -> tuple[bool, bool]:
    short = "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--"))
    recursive = "r" in short or "R" in short or "--recursive" in args
    force = "f" in short or "--force" in args
    return recursive, force


def _looks_like_path(arg: str) -> bool:
    if not arg or any(ch.isspace() for ch in arg) or "://" in arg or arg.startswith(("@", "$", "=")):
        return False
    name = arg.rsplit("/", 1)[-1]
    return "/" in arg or arg.startswith((".", "~")) or "." in name[1:]


def _normalize(path: str, cwd: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    elif path.startswith("$HOME"):
        path = home + path[5:]
    joined = path if path.startswith("/") else f"{cwd.rstrip('/')}/{path}"
    parts: list[str] = []
    for part in PurePosixPath(joined).parts[1:]:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


# --- secrets -------------------------------------------------------------------------------------

_keywords: tuple[str, ...] | None = None


def may_hold_secret(texts: list[str]) -> bool:
    """False when no default redaction rule can match in `texts`: none of the rules' keywords
    occurs (every shipped rule has some). Read from the rule file without the TOML parser or
    RE2, so a caller with nothing to redact never loads the redactor (~40 ms per process)."""
    global _keywords
    if _keywords is None:
        # The file beside this module, not importlib.resources: that import costs the hook ~5 ms.
        rules = (Path(__file__).parent / "rules" / "default.toml").read_text("utf-8")
        found = re.findall(r"^keywords\s*=\s*\[([^\]]*)\]", rules, re.M)
        _keywords = tuple(sorted({k.lower() for line in found for k in re.findall(r"['\"]([^'\"]+)['\"]", line)}))
    # Whole texts: a caller that redacts on a True must see a secret however far in it is.
    folded = "\0".join(t for t in texts if t).lower()
    return any(k in folded for k in _keywords)


def secret_kinds(texts: list[str]) -> list[str]:
    """Return the sorted rule ids (kinds) of the secrets the redaction rules find in `texts`.

    A cheap keyword pass comes first (the rules' own keywords, read from the rule file without
    the TOML parser), so a text that cannot hold a secret never loads RE2 (~40 ms per process).
    """
    texts = [t[:_MAX_SCAN_CHARS] for t in texts if t]
    if not may_hold_secret(texts):
        return []
    from flightlog.redact import Redactor

    redactor = Redactor.default()
    kinds: set[str] = set()
    for text in texts:
        kinds.update(redactor.redact_text(text[:_MAX_SCAN_CHARS])[1])
    return sorted(kinds)


# --- dependencies --------------------------------------------------------------------------------

_REQUIREMENT: Final = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(?:[;#].*)?$")
_PACKAGE_JSON_ENTRY: Final = re.compile(r'"(@?[A-Za-z0-9._/-]+)"\s*:\s*"([^"]*)"')
_EXACT_NPM: Final = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_NPM_KEYS: Final = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")
_NOT_PACKAGES: Final = frozenset({"name", "version", "description", "main", "license", "type", "private", "author"})


def parse_dependencies(path: str, texts: list[str]) -> list[dict[str, Any]]:
    """Return the dependencies written to a dependency file: `{"file", "ecosystem", "name",
    "spec", "pinned"}` for each. `texts` is the new content (a whole file or an edit's new text).
    Pinned means one exact version (`==1.2.3`, `"1.2.3"`, `=1.2.3`; Go versions always are)."""
    name = path.rsplit("/", 1)[-1]
    text = "\n".join(texts)
    found: list[dict[str, Any]] = []

    def add(ecosystem: str, package: str, spec: str, pinned: bool) -> None:
        found.append({"file": name, "ecosystem": ecosystem, "name": package, "spec": spec, "pinned": pinned})

    if re.fullmatch(r"requirements.*\.(txt|in)", name):
        for line in text.splitlines():
            if line.strip().startswith(("#", "-")) or not line.strip():
                continue
            match = _REQUIREMENT.match(line)
            if match:
                spec = match.group(3)
                add("pypi", match.group(1).lower(), spec, re.fullmatch(r"===?\s*[\w.!+-]+", spec) is not None)
    elif name == "pyproject.toml":
        for item in re.findall(r"\"([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?\s*[^\"]*)\"", text):
            match = _REQUIREMENT.match(item)
            if match and (match.group(3) or re.search(r"(?m)^\s*\"" + re.escape(item) + r"\",?\s*$", text)):
                spec = match.group(3)
                add("pypi", match.group(1).lower(), spec, re.fullmatch(r"===?\s*[\w.!+-]+", spec) is not None)
    elif name == "package.json":
        entries: list[tuple[str, str]] = []
        try:
            data = json.loads(text)
            for key in _NPM_KEYS:
                section = data.get(key) if isinstance(data, dict) else None
                if isinstance(section, dict):
                    entries.extend((str(k), str(v)) for k, v in section.items())
        except ValueError:  # an edit's fragment
            entries = [(k, v) for k, v in _PACKAGE_JSON_ENTRY.findall(text) if k not in _NOT_PACKAGES]
        for package, spec in entries:
            add("npm", package, spec, _EXACT_NPM.match(spec) is not None)
    elif name == "go.mod":
        for package, version in re.findall(r"(?m)^\s*(?:require\s+)?([a-z0-9.-]+\.[a-z]+/\S+)\s+(v\S+)", text):
            add("go", package, version, True)
    elif name == "Cargo.toml":
        pattern = r"(?m)^\s*([A-Za-z0-9_-]+)\s*=\s*(?:\"([^\"]+)\"|\{[^}\n]*version\s*=\s*\"([^\"]+)\"[^}\n]*\})"
        for package, plain, table in re.findall(pattern, text):
            if package in ("name", "version", "edition", "authors", "license", "description", "rust-version"):
                continue
            spec = plain or table
            add("cargo", package, spec, spec.startswith("="))
    return found


def _edit_texts(tool_name: str, fields: dict[str, Any]) -> list[str]:
    """The new text an edit tool writes."""
    texts = [fields.get(k) for k in ("content", "new_string", "new_source")]
    if tool_name == "MultiEdit" and isinstance(fields.get("edits"), list):
        texts.extend(e.get("new_string") for e in fields["edits"] if isinstance(e, dict))
    return [t for t in texts if isinstance(t, str)]


def _strings(value: object, depth: int = 0) -> list[str]:
    if isinstance(value, str):
        return [value]
    if depth > 8:
        return []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v, depth + 1)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, depth + 1)]
    return []
