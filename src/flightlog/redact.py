"""Secret redaction: every string of an event is scrubbed before the event is stored.

A secret is replaced by `[REDACTED:<kind>]`, where kind is the id of the rule that found it,
and the event records `{"kind", "path"}` for it, never the value. Rules are data, in the
gitleaks TOML format (`[[rules]]` with `id`, `regex`, `secretGroup`, `entropy`, `keywords`,
`[rules.allowlist]`, and a top-level `[allowlist]`); the shipped rules are in
`flightlog/rules/default.toml`, and users add their own files or an existing `.gitleaks.toml`
through `Redactor.from_files`. Loading rule files is the only I/O here.

Matching is linear in the input: every regex is compiled with RE2, which never backtracks, so
a hostile string cannot make redaction slow. A rule runs on a string only if one of its
keywords occurs in it (case-insensitively). One RE2 set of all keywords is run once over all
the strings of an event, so an event without any keyword costs one pass and no rule at all.

A marker already in the text is never redacted again, and a string is redacted until a pass
finds nothing more, so redacting twice gives the same result as redacting once.
"""

from __future__ import annotations

import math
import tomllib
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeAlias, cast

import re2

from flightlog._internal.jsonwalk import MAX_DEPTH, _format_path, _keys, _rebuild, _walk_strings
from flightlog.errors import RedactionRuleError
from flightlog.secret_fields import FIELD_KIND, is_secret_name, is_secret_value

__all__ = ["MAX_DEPTH", "Redaction", "Redactor", "shannon_entropy"]

"""Containers nested deeper than this (or cyclic) are refused by `Redactor.redact_value`."""

_Regex: TypeAlias = "re2._Regexp[str]"
_DEFAULT_RULES: Final = "default.toml"
_MARKER: Final = re2.compile(rb"\[REDACTED:[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\]")
_MARKER_TEXT: Final = re2.compile(r"\[REDACTED:[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\]")
_RULE_ID: Final = re2.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_TARGETS: Final = ("secret", "match", "line")
_SEPARATOR: Final = "\x00"  # joins an event's strings; no keyword contains it
_MAX_PASSES: Final = 16
_C_LOG_C: Final = [0.0] + [c * math.log2(c) for c in range(1, 4097)]


def shannon_entropy(text: str) -> float:
    """Return the Shannon entropy of `text` in bits per character (0.0 for "")."""
    n = len(text)
    if n == 0:
        return 0.0
    counts = Counter(text).values()
    if n >= len(_C_LOG_C):
        return -sum(c / n * math.log2(c / n) for c in counts)
    # H = log2(n) - sum(c * log2(c)) / n, with c * log2(c) from a table
    return math.log2(n) - sum(map(_C_LOG_C.__getitem__, counts)) / n


@dataclass(frozen=True)
class Redaction:
    """One secret removed from an event: the rule id that found it and where it was."""

    kind: str
    """The rule id, e.g. "aws-access-token"; the text now holds `[REDACTED:<kind>]`."""
    path: str
    """RFC 9535 normalized path of the string that held it, e.g. `$['payload']['items'][3]`."""

    def to_json(self) -> dict[str, str]:
        """Return `{"kind": ..., "path": ...}`, the form stored in an event's `redactions`."""
        return {"kind": self.kind, "path": self.path}


@dataclass(frozen=True)
class _Allowlist:
    # A finding is allowed (not a secret) if a regex matches the target or the secret contains
    # a stopword; with condition AND, every given criterion must hold. `paths` and `commits`
    # criteria never hold for text, so they make an AND allowlist inapplicable.
    patterns: tuple[str, ...]
    target: str
    stopwords: tuple[str, ...]
    require_all: bool
    never: bool
    rule_ids: frozenset[str] | None

    def allows_all(self, secret: str, targets: dict[str, bytes]) -> bool:
        if self.never or not (self.patterns or self.stopwords):
            return False
        if self.patterns and not _search(_combine(self.patterns), targets[self.target]):
            return False
        lowered = secret.lower()
        return not self.stopwords or any(word in lowered for word in self.stopwords)


class _Checks:
    """The allowlists that apply to one rule, merged into one regex per target for speed."""

    __slots__ = ("line", "match", "secret", "stopwords", "strict")

    def __init__(self, allowlists: Iterable[_Allowlist]) -> None:
        patterns: dict[str, list[str]] = {target: [] for target in _TARGETS}
        stopwords: list[str] = []
        strict: list[_Allowlist] = []
        for allowlist in allowlists:
            if allowlist.require_all:
                strict.append(allowlist)
            else:
                patterns[allowlist.target].extend(allowlist.patterns)
                stopwords.extend(allowlist.stopwords)
        self.secret = _combine(tuple(patterns["secret"]))
        self.match = _combine(tuple(patterns["match"]))
        self.line = _combine(tuple(patterns["line"]))
        self.stopwords = tuple(dict.fromkeys(stopwords))
        self.strict = tuple(strict)

    def allows(self, secret: str, data: bytes, span: tuple[int, int], whole: tuple[int, int]) -> bool:
        if self.stopwords:
            lowered = secret.lower()
            if any(word in lowered for word in self.stopwords):
                return True
        if _search(self.secret, data[span[0] : span[1]]):
            return True
        match = data[whole[0] : whole[1]]
        if _search(self.match, match):
            return True
        if self.line or self.strict:
            start = data.rfind(b"\n", 0, whole[0]) + 1
            end = data.find(b"\n", whole[1])
            line = data[start : len(data) if end < 0 else end]
            if _search(self.line, line):
                return True
            targets = {"secret": data[span[0] : span[1]], "match": match, "line": line}
            return any(a.allows_all(secret, targets) for a in self.strict)
        return False


@cache
def _combine(patterns: tuple[str, ...]) -> tuple[_Regex, ...]:
    if not patterns:
        return ()
    try:  # one alternation is one pass; each pattern was already compiled on its own
        return (re2.compile("|".join(f"(?:{p})" for p in patterns), _options()),)
    except re2.error:
        return tuple(re2.compile(p, _options()) for p in patterns)


def _search(regexes: tuple[_Regex, ...], data: bytes) -> bool:
    return any(regex.search(data) is not None for regex in regexes)


@dataclass(frozen=True)
class _Rule:
    id: str
    regex: _Regex
    groups: int
    secret_group: int
    entropy: float
    keywords: tuple[str, ...]
    allowlists: tuple[_Allowlist, ...]


class Redactor:
    """Finds secrets with a fixed set of rules and replaces them by `[REDACTED:<kind>]`.

    Build one with `Redactor.default()` or `Redactor.from_files(...)`; it is immutable and
    safe to share between threads.
    """

    def __init__(self, rules: Sequence[_Rule], allowlists: Sequence[_Allowlist] = ()) -> None:
        """Private: use `default()` or `from_files()`."""
        self._rules = tuple(rules)
        self._checks = tuple(
            _Checks(rule.allowlists + tuple(a for a in allowlists if a.rule_ids is None or rule.id in a.rule_ids))
            for rule in self._rules
        )
        self._always = frozenset(i for i, rule in enumerate(self._rules) if not rule.keywords)
        by_keyword: dict[str, list[int]] = {}
        for i, rule in enumerate(self._rules):
            for keyword in rule.keywords:
                by_keyword.setdefault(keyword, []).append(i)
        self._keywords = tuple(by_keyword)
        self._keyword_rules = tuple(frozenset(by_keyword[k]) for k in self._keywords)
        self._keyword_set: re2.Set | None = None
        if self._keywords:
            keyword_set = re2.Set.SearchSet(_options(case_sensitive=False))
            for keyword in self._keywords:
                keyword_set.Add(re2.escape(keyword))
            keyword_set.Compile()
            self._keyword_set = keyword_set
        self._locators: dict[tuple[int, ...], _Regex] = {}

    @classmethod
    def default(cls) -> Redactor:
        """Return the redactor for the shipped rules (compiled once, then cached)."""
        return _default_redactor()

    @classmethod
    def from_files(cls, paths: Sequence[Path], include_default: bool = True) -> Redactor:
        """Return a redactor for the rules in `paths` (our TOML or a `.gitleaks.toml`).

        Rules from `paths` come first, so on a tie (two rules finding the same span) a user's
        rule names it; then the shipped rules unless `include_default` is false. A rule whose
        id is already loaded replaces that rule in place. A top-level allowlist applies to the
        rules of every file (narrowed by `targetRules`). Rules with only a `path` are skipped;
        what flightlog cannot use on text (`path`, `tags`, `[extend]`, allowlist `paths` and
        `commits`) is ignored. Raises `RedactionRuleError` naming the file (and rule) for
        unreadable TOML, a missing or ill-typed field, or a regex RE2 rejects.
        """
        shipped: dict[str, _Rule] = {}
        added: dict[str, _Rule] = {}
        allowlists: list[_Allowlist] = []
        if include_default:
            rules, default_allowlists = _default_rules()
            shipped = {rule.id: rule for rule in rules}
            allowlists.extend(default_allowlists)
        for path in paths:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RedactionRuleError(f"{path}: cannot read rule file: {exc}") from None
            file_rules, file_allowlists = _parse_rules(str(path), text)
            for rule in file_rules:
                (shipped if rule.id in shipped else added)[rule.id] = rule
            allowlists.extend(file_allowlists)
        return cls([*added.values(), *shipped.values()], allowlists)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Return the ids of the rules, in the order they were loaded."""
        return tuple(rule.id for rule in self._rules)

    def redact_text(self, text: str) -> tuple[str, list[str]]:
        """Return (text with each secret replaced by `[REDACTED:<kind>]`, the kinds in order).

        The same `text` object and [] come back when nothing is found. A marker already in
        the text is never redacted, and redacting the result again changes nothing.
        """
        selected = set(self._always)
        for index in self._hits(_unmarked(text)):
            selected |= self._keyword_rules[index]
        return self._redact(text, selected)

    def redact_value(self, value: object, path: str = "$") -> tuple[object, list[Redaction]]:
        """Return (value with every string redacted, one `Redaction` per secret, in order).

        `value` is JSON-like data (dict, list, str, int, float, bool, None; tuples are walked
        like lists); every string in it is redacted, dict keys are not. A new structure is
        built only along the paths that changed; when nothing is found the same object comes
        back. `path` is the normalized path of `value` itself. Raises `ValidationError` for
        containers nested deeper than `MAX_DEPTH` (which includes cyclic ones).
        """
        if isinstance(value, str):
            text, kinds = self.redact_text(value)
            return text, [Redaction(kind, path) for kind in kinds]
        if not isinstance(value, dict | list | tuple):
            return value, []
        redacted, records, _ = self.redact_container(value, path)
        return redacted, records

    def redact_container(
        self, value: dict[Any, Any] | list[Any] | tuple[Any, ...], path: str = "$"
    ) -> tuple[object, list[Redaction], list[str]]:
        """`redact_value` for a container, also returning the strings of the result in walk
        order (as `jsonwalk._strings` gives them): the pipeline builds the search text from
        them rather than walking the event again (4 µs an event)."""
        strings, named = _walk_strings(value, path, wanted=is_secret_name)
        if not strings:
            return value, [], strings
        joined = _unmarked(_SEPARATOR.join(strings))
        hits = self._hits(joined)
        found: dict[int, tuple[str, list[str]]] = {}
        if hits or self._always:
            marked = range(len(strings)) if self._always else self._locate(joined, strings, hits)
            for i in marked:
                text, kinds = self._redact(strings[i], self._candidates(strings[i], hits))
                if kinds:
                    found[i] = (text, kinds)
        # What is left under a secret's name (`"DB_PASSWORD": "…"`) goes whole: no text rule sees
        # the name beside the value there; unless text rules left nothing but markers and blanks.
        whole = [
            i
            for i in named
            if is_secret_value(left := found[i][0] if i in found else strings[i]) and _MARKER_TEXT.sub("", left).strip()
        ]
        if not found and not whole:
            return value, [], strings
        keys = _keys(value, [*found, *whole])
        records = [Redaction(kind, _format_path(path, value, keys[i])) for i in sorted(found) for kind in found[i][1]]
        records += [Redaction(FIELD_KIND, _format_path(path, value, keys[i])) for i in whole]
        changes = {i: text for i, (text, _) in found.items()} | dict.fromkeys(whole, f"[REDACTED:{FIELD_KIND}]")
        redacted = _rebuild(value, [(keys[i], text) for i, text in changes.items()])
        return redacted, records, [changes.get(i, text) for i, text in enumerate(strings)]

    def _hits(self, text: str) -> tuple[int, ...]:
        # Indices of the keywords that occur anywhere in text (one RE2 set pass).
        if self._keyword_set is None or not text:
            return ()
        found = cast("list[int] | None", self._keyword_set.Match(_encode(text)))
        return tuple(sorted(found)) if found else ()

    def _locate(self, joined: str, strings: list[str], hits: tuple[int, ...]) -> list[int]:
        # Indices of the strings holding one of the hit keywords: search the joined text for
        # an alternation of those keywords, then resume at the next string (no keyword holds
        # the separator, so a match never spans two strings).
        locator = self._locators.get(hits)
        if locator is None:
            if len(self._locators) >= 512:
                self._locators.clear()
            alternation = "|".join(re2.escape(self._keywords[i]) for i in hits)
            locator = self._locators[hits] = re2.compile(alternation, _options(False))
        data = _encode(joined)
        starts: list[int] = []
        offset = 0
        for text in strings:
            starts.append(offset)
            offset += (len(text) if text.isascii() else len(_encode(text))) + 1
        marked: list[int] = []
        position = 0
        while (match := locator.search(data, position)) is not None:
            index = bisect_right(starts, match.start()) - 1
            marked.append(index)
            if index + 1 == len(starts):
                break
            position = starts[index + 1]
        return marked

    def _candidates(self, text: str, hits: tuple[int, ...]) -> set[int]:
        # Rules whose keyword occurs in this text (gitleaks: lowercase both, then contains).
        selected = set(self._always)
        folded = _unmarked(text).casefold()  # covers RE2's case folding (U+017F folds to s)
        for index in hits:
            if self._keywords[index] in folded:
                selected |= self._keyword_rules[index]
        return selected

    def _redact(self, text: str, candidates: set[int]) -> tuple[str, list[str]]:
        # Passes repeat until one finds nothing, because a match can hide another behind the
        # text it consumed (say a key) until its own secret is gone; as every pass replaces
        # some text that is not yet a marker, this ends, and redacting the result again finds
        # nothing. `added` holds (offset, kind) of the markers this call added, in order.
        if not candidates:
            return text, []
        data = _encode(text)
        added: list[tuple[int, str]] = []
        for _ in range(_MAX_PASSES):
            replaced = self._pass(data, candidates)
            if not replaced:
                break
            pieces: list[bytes] = []
            shifted: list[tuple[int, str]] = []
            earlier = iter(added)
            pending = next(earlier, None)
            last = delta = 0
            for start, end, kind in replaced:
                while pending is not None and pending[0] < start:
                    shifted.append((pending[0] + delta, pending[1]))
                    pending = next(earlier, None)
                marker = b"[REDACTED:" + kind.encode() + b"]"
                pieces += (data[last:start], marker)
                shifted.append((start + delta, kind))
                delta += len(marker) - (end - start)
                last = end
            while pending is not None:
                shifted.append((pending[0] + delta, pending[1]))
                pending = next(earlier, None)
            pieces.append(data[last:])
            data, added = b"".join(pieces), shifted
        if not added:
            return text, []
        return _decode(data), [kind for _, kind in added]

    def _pass(self, data: bytes, candidates: set[int]) -> list[tuple[int, int, str]]:
        # One pass of every candidate rule: the (start, end, kind) spans to replace, in order.
        # Markers already in the text are masked with newlines while rules run: a marker (or
        # its kind, say "...api-key]") is then neither a secret nor context such as a key, and
        # a value class stops at it as it stops at a line end. A span never covers a marker.
        scan = data
        markers = [m.span() for m in _MARKER.finditer(data)] if b"[REDACTED:" in data else []
        if markers:
            masked = bytearray(data)
            for start, end in markers:
                masked[start:end] = b"\n" * (end - start)
            scan = bytes(masked)
        findings: list[tuple[int, int, int]] = []
        for index in sorted(candidates):
            findings.extend(self._find(index, scan, findings))
        return [
            (piece_start, piece_end, self._rules[index].id)
            for start, end, index in _merge(findings)
            for piece_start, piece_end in _outside(start, end, markers)
        ]

    def _find(self, index: int, data: bytes, found: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        # Findings of one rule; a span inside one already found by an earlier rule could not
        # change the result, so it is not checked.
        rule = self._rules[index]
        checks = self._checks[index]
        new: list[tuple[int, int, int]] = []
        for match in rule.regex.finditer(data):
            start, end = span = _secret_span(match, rule.groups, rule.secret_group)
            if start >= end or any(s <= start and end <= e for s, e, _ in found):
                continue
            secret = _decode(data[start:end])
            if rule.entropy and shannon_entropy(secret) < rule.entropy:
                continue
            if checks.allows(secret, data, span, match.span()):
                continue
            new.append((start, end, index))
        return new


def _outside(start: int, end: int, markers: list[tuple[int, int]]) -> list[tuple[int, int]]:
    # The parts of [start, end) not covered by a marker (markers are sorted and disjoint).
    parts: list[tuple[int, int]] = []
    for marker_start, marker_end in markers:
        if marker_end <= start or marker_start >= end:
            continue
        if marker_start > start:
            parts.append((start, marker_start))
        start = max(start, marker_end)
    if start < end:
        parts.append((start, end))
    return parts


def _options(case_sensitive: bool = True) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad user regex is reported by RedactionRuleError, not stderr
    options.case_sensitive = case_sensitive
    options.max_mem = 64 << 20
    return options


def _unmarked(text: str) -> str:
    # text with every marker blanked out (same length), for finding keywords: the kind in a
    # marker ("...api-key]") must not make a rule run that did not run on the original text.
    if "[REDACTED:" not in text:
        return text
    return _MARKER_TEXT.sub(lambda match: "\n" * len(match.group()), text)


def _encode(text: str) -> bytes:
    # surrogatepass: strings decoded from JSON may hold lone surrogates; RE2 never matches them.
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def _secret_span(match: re2._Match[bytes], groups: int, secret_group: int) -> tuple[int, int]:
    # gitleaks semantics: secretGroup if set, else the first non-empty group, else the match.
    if secret_group:
        return match.span(secret_group)
    for group in range(1, groups + 1):
        start, end = match.span(group)
        if end > start >= 0:
            return start, end
    return match.span()


def _merge(findings: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    # Overlapping findings become one replacement over their union, so no part of either
    # secret survives; its kind is that of the longest finding (then earliest, then first rule).
    if not findings:
        return []
    findings.sort()
    merged: list[tuple[int, int, int]] = []
    group = [findings[0]]
    end = findings[0][1]
    for finding in findings[1:]:
        if finding[0] < end:
            group.append(finding)
            end = max(end, finding[1])
            continue
        merged.append(_winner(group, end))
        group, end = [finding], finding[1]
    merged.append(_winner(group, end))
    return merged


def _winner(group: list[tuple[int, int, int]], end: int) -> tuple[int, int, int]:
    best = min(group, key=lambda f: (f[0] - f[1], f[0], f[2]))
    return group[0][0], end, best[2]


# --- walking JSON-like values -------------------------------------------------------------
# _strings and _keys visit the same strings in the same (document) order: dict values in
# insertion order, list and tuple items in order; dict keys are not visited.


@cache
def _default_rules() -> tuple[tuple[_Rule, ...], tuple[_Allowlist, ...]]:
    text = resources.files("flightlog.rules").joinpath(_DEFAULT_RULES).read_text("utf-8")
    rules, allowlists = _parse_rules(f"flightlog/rules/{_DEFAULT_RULES}", text)
    return tuple(rules), tuple(allowlists)


@cache
def _default_redactor() -> Redactor:
    return Redactor(*_default_rules())


def _parse_rules(name: str, text: str) -> tuple[list[_Rule], list[_Allowlist]]:
    """Return the rules and top-level allowlists of one TOML rule file (`name` is for errors)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RedactionRuleError(f"{name}: invalid TOML: {exc}") from None
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RedactionRuleError(f"{name}: 'rules' must be an array of tables ([[rules]])")
    rules = [rule for i, raw in enumerate(raw_rules) if (rule := _parse_rule(name, i, raw))]
    allowlists = [
        _parse_allowlist(f"{name}: top-level allowlist", raw, top_level=True) for raw in _allowlist_tables(name, doc)
    ]
    return rules, allowlists


def _allowlist_tables(where: str, table: dict[str, Any]) -> list[Any]:
    # gitleaks has both `[allowlist]` (one table) and, since v8.21, `[[allowlists]]`.
    found: list[Any] = []
    single = table.get("allowlist")
    if single is not None:
        found.append(single)
    many = table.get("allowlists", [])
    if not isinstance(many, list):
        raise RedactionRuleError(f"{where}: 'allowlists' must be an array of tables")
    return found + many


def _parse_rule(name: str, position: int, raw: object) -> _Rule | None:
    if not isinstance(raw, dict):
        raise RedactionRuleError(f"{name}: rule #{position + 1} is not a table")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _RULE_ID.fullmatch(rule_id):
        raise RedactionRuleError(
            f"{name}: rule #{position + 1} needs an 'id' of letters, digits, '.', '_' or '-' (got {rule_id!r})"
        )
    where = f"{name}: rule {rule_id!r}"
    pattern = raw.get("regex")
    if pattern is None:
        if "path" in raw:
            return None  # a gitleaks rule that only matches file paths; nothing to do on text
        raise RedactionRuleError(f"{where}: missing 'regex'")
    if not isinstance(pattern, str) or not pattern:
        raise RedactionRuleError(f"{where}: 'regex' must be a non-empty string")
    regex = _compile(where, "regex", pattern)
    groups = regex.groups
    secret_group = raw.get("secretGroup", 0)
    if type(secret_group) is not int or not 0 <= secret_group <= groups:
        raise RedactionRuleError(
            f"{where}: 'secretGroup' must be an integer from 0 to {groups} (the regex has "
            f"{groups} groups), got {secret_group!r}"
        )
    entropy = raw.get("entropy", 0.0)
    if type(entropy) not in (int, float) or not 0 <= entropy <= 32:
        raise RedactionRuleError(f"{where}: 'entropy' must be a number from 0 to 32")
    return _Rule(
        id=rule_id,
        regex=regex,
        groups=groups,
        secret_group=secret_group,
        entropy=float(entropy),
        keywords=tuple(dict.fromkeys(k.casefold() for k in _strings_field(where, raw, "keywords"))),
        allowlists=tuple(
            _parse_allowlist(f"{where} allowlist", table, top_level=False) for table in _allowlist_tables(where, raw)
        ),
    )


def _parse_allowlist(where: str, raw: object, top_level: bool) -> _Allowlist:
    if not isinstance(raw, dict):
        raise RedactionRuleError(f"{where}: must be a table")
    target = raw.get("regexTarget", "secret")
    if target not in _TARGETS:
        raise RedactionRuleError(f"{where}: 'regexTarget' must be one of {', '.join(_TARGETS)}")
    condition = str(raw.get("condition", "OR")).upper()
    if condition not in ("OR", "AND"):
        raise RedactionRuleError(f"{where}: 'condition' must be OR or AND")
    patterns = tuple(_strings_field(where, raw, "regexes"))
    for pattern in patterns:
        _compile(where, "regexes", pattern)  # each on its own, so an error names the bad one
    targets = _strings_field(where, raw, "targetRules") if top_level else []
    return _Allowlist(
        patterns=patterns,
        target=str(target),
        stopwords=tuple(w.lower() for w in _strings_field(where, raw, "stopwords")),
        require_all=condition == "AND",
        never=condition == "AND" and bool(raw.get("paths") or raw.get("commits")),
        rule_ids=frozenset(targets) if targets else None,
    )


def _strings_field(where: str, raw: dict[str, Any], field: str) -> list[str]:
    values = raw.get(field, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RedactionRuleError(f"{where}: {field!r} must be a list of strings")
    return [v for v in values if v]


def _compile(where: str, field: str, pattern: str) -> _Regex:
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RedactionRuleError(f"{where}: {field} is not a valid RE2 regular expression ({reason})") from None
