"""Which JSON member names hold secrets: a value under `password`, `DB_PASSWORD`,
`x-api-key`, `aws.secret_access_key` or `Authorization` is a secret whatever it looks like.

The text rules (gitleaks format, `redact.py`) find secrets by their shape or by a keyword next
to them in text; in structured data such as an environment or a header map the name is in the
key, not in the text, so those rules see a bare value and let a plain password through. Like
the field scrubbers of error trackers, names are matched by whole words (`author` is not
`auth`, `input_tokens` is not `token`), written in any case, separated by `_ - . :` or
camelCase.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Final

__all__ = ["FIELD_KIND", "is_secret_name", "is_secret_value"]

FIELD_KIND: Final = "secret-field"  # the marker kind: [REDACTED:secret-field]
_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SECRET_WORDS: Final = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "authorization",
        "auth",
        "bearer",
        "cookie",
        "privatekey",
    }
)
# Two words that name a secret together, though neither does alone ("key" is also a map key).
_SECRET_PAIRS: Final = frozenset(
    {("api", "key"), ("private", "key"), ("access", "key"), ("signing", "key"), ("session", "key"), ("client", "key")}
)
# The shell's current and previous directory in an environment map, not a password ("pwd").
_SHELL_DIRS: Final = frozenset({"pwd", "oldpwd"})
# Values that are not the secret itself: empty, a placeholder, a reference to one kept elsewhere.
_NOT_SECRET: Final = frozenset({"", "true", "false", "null", "none", "redacted", "***", "xxx", "changeme"})
_REFERENCE: Final = re.compile(r"^(\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|<[^>]*>|\*+|x+)$")


class _Decisions(dict[str, bool]):
    # Member names repeat across events (attribute names): each is decided once, and a known one
    # costs a dict lookup in C (`__getitem__`), not a Python call: the check runs on every member.
    def __missing__(self, name: str) -> bool:
        words = [w.lower() for w in _WORD.findall(name)]
        known = any(w in _SECRET_WORDS for w in words) or any(p in _SECRET_PAIRS for p in itertools.pairwise(words))
        known = known and name.lower() not in _SHELL_DIRS
        if len(self) < 65_536:
            self[name] = known
        return known


is_secret_name: Final[Callable[[str], bool]] = _Decisions().__getitem__
"""True when a member called `name` holds a secret (by whole words, any case)."""


def is_secret_value(text: str) -> bool:
    """True unless `text` under a secret name is plainly not the secret (a placeholder, a
    `${VAR}` reference, a boolean), so that the record keeps those."""
    return text.strip().lower() not in _NOT_SECRET and not _REFERENCE.match(text.strip())
