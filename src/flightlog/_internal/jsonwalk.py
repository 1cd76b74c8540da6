"""Walking JSON-like values for redaction: collect strings with their keys, rebuild changed
copies, and format RFC 9535 normalized paths. Split from redact.py to keep it one concept."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from flightlog.errors import ValidationError

# An event nested deeper is refused. Agent events nest a few levels; the bound keeps every
# later recursive step (canonical JSON, reading the event back for a page) far from Python's
# recursion limit, which a 985-level event reached inside the server's stack.
MAX_DEPTH: Final = 200
_CONTAINERS: Final = (dict, list, tuple)


def _strings(value: dict[Any, Any] | list[Any] | tuple[Any, ...], path: str, limit: int = MAX_DEPTH) -> list[str]:
    return _walk_strings(value, path, limit)[0]


def _walk_strings(
    value: dict[Any, Any] | list[Any] | tuple[Any, ...],
    path: str,
    limit: int = MAX_DEPTH,
    wanted: Callable[[str], bool] | None = None,
) -> tuple[list[str], list[int]]:
    # Every string in `value`, and the indices of those at or below a dict member whose name
    # `wanted` accepts (`_keys` turns indices into paths): one walk for both, as redaction
    # needs both (a second walk for the names cost 2 µs an event).
    # isinstance with a tuple, not a `|` union: this walk runs over every event's free text,
    # and the union form took twice as long.
    found: list[str] = []
    append = found.append
    named: list[int] = []
    under = [False]  # per open container: is it at or below a wanted name?
    stack: list[Iterator[tuple[Any, object]]] = [_items(value)]
    while stack:
        for key, child in stack[-1]:
            if isinstance(child, str):
                if wanted is not None and (under[-1] or (isinstance(key, str) and wanted(key))):
                    named.append(len(found))
                append(child)
            elif isinstance(child, _CONTAINERS):
                if len(stack) >= limit:
                    raise ValidationError(path, f"nested deeper than {limit} levels")
                # a list of header values under "Authorization", say
                under.append(wanted is not None and (under[-1] or (isinstance(key, str) and wanted(key))))
                stack.append(_items(child))
                break
        else:
            stack.pop()
            under.pop()
    return found, named


def _items(node: Any) -> Iterator[tuple[Any, object]]:
    return iter(node.items()) if isinstance(node, dict) else enumerate(node)


def _keys(value: object, wanted: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    # The keys from value down to each wanted string (by its index in _strings order).
    wanted = set(wanted)
    found: dict[int, tuple[Any, ...]] = {}
    keys: list[Any] = []
    stack = [_items(value)]
    index = 0
    while stack and len(found) < len(wanted):
        for key, child in stack[-1]:
            if isinstance(child, str):
                if index in wanted:
                    found[index] = (*keys, key)
                index += 1
            elif isinstance(child, dict | list | tuple):
                keys.append(key)
                stack.append(_items(child))
                break
        else:
            stack.pop()
            if keys:
                keys.pop()
    return found


def _rebuild(value: object, changes: list[tuple[tuple[Any, ...], str]]) -> object:
    # Copy-on-write along the changed paths; untouched subtrees are shared with value.
    copies: dict[tuple[Any, ...], Any] = {}
    tuples: list[tuple[Any, ...]] = []

    def copy_of(keys: tuple[Any, ...], original: Any) -> Any:
        if keys not in copies:
            if isinstance(original, tuple):
                tuples.append(keys)
                copies[keys] = list(original)
            else:
                copies[keys] = original.copy()
        return copies[keys]

    for keys, text in changes:
        node: Any = copy_of((), value)
        original: Any = value
        for depth, key in enumerate(keys[:-1]):
            original = original[key]
            child = copy_of(keys[: depth + 1], original)
            node[key] = child
            node = child
        node[keys[-1]] = text
    for keys in sorted(tuples, key=len, reverse=True):
        if keys:
            copies[keys[:-1]][keys[-1]] = tuple(copies[keys])
        else:
            copies[()] = tuple(copies[()])
    return copies[()]


_NAME_ESCAPES: Final = {
    **{c: f"\\u{c:04x}" for c in (*range(0x20), *range(0xD800, 0xE000))},
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0C: "\\f",
    0x0D: "\\r",
    0x27: "\\'",
    0x5C: "\\\\",
}


def _format_path(base: str, value: object, keys: tuple[Any, ...]) -> str:
    """Return the RFC 9535 normalized path of value[keys[0]][keys[1]]... below `base`.

    Member names use the normalized name selector (§2.7): `['a\\'b']`, control characters as
    `\\b \\f \\n \\r \\t` or `\\u00xx`; list items use `[3]`. Example: `$['payload']['items'][3]`.
    """
    parts = [base]
    node: Any = value
    for key in keys:
        if isinstance(node, dict):
            parts.append("['" + str(key).translate(_NAME_ESCAPES) + "']")
        else:
            parts.append(f"[{key}]")
        node = node[key]
    return "".join(parts)


# --- loading rules --------------------------------------------------------------------------
