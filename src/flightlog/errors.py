"""Errors that know how to explain themselves to a CLI user.

Every error flightlog raises on purpose derives from `FlightlogError`; the CLI prints its
`message` on one line and exits with its `exit_code`, never a traceback.
"""

from __future__ import annotations

__all__ = [
    "BlobError",
    "CheckpointError",
    "ConfigError",
    "FlightlogError",
    "KeyError_",
    "LedgerError",
    "ProofError",
    "RedactionRuleError",
    "ValidationError",
    "VerificationError",
]


class FlightlogError(Exception):
    """Base of every deliberate flightlog error; `exit_code` is what the CLI exits with."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(FlightlogError):
    """Bad settings, a home directory that cannot be used, or unusable files in it."""

    exit_code = 2


class ValidationError(FlightlogError):
    """An event does not match schema flightlog.event/v1; `field` is a JSON path."""

    exit_code = 3

    def __init__(self, field: str, reason: str, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{field}: {reason}")
        self.field = field
        self.reason = reason
        self.line = line


class RedactionRuleError(ConfigError):
    """A redaction rule file or rule cannot be loaded (bad TOML, bad regex, missing field)."""


class LedgerError(FlightlogError):
    """The ledger cannot be read or written (fails closed)."""

    exit_code = 4


class BlobError(LedgerError):
    """A blob is missing, unreadable or does not hash to its digest."""


class KeyError_(ConfigError):
    """A signing key is missing, malformed or has unsafe permissions."""


class CheckpointError(FlightlogError):
    """A checkpoint or signed note is malformed or its signature does not verify."""

    exit_code = 5


class ProofError(FlightlogError):
    """A Merkle proof cannot be produced or does not verify."""

    exit_code = 5


class VerificationError(FlightlogError):
    """`flightlog verify` found the ledger not intact; names the step and the first bad entry."""

    exit_code = 6

    def __init__(self, step: str, message: str, index: int | None = None) -> None:
        where = f" (entry {index})" if index is not None else ""
        super().__init__(f"step {step} failed{where}: {message}")
        self.step = step
        self.index = index
