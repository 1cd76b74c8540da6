"""The one write path: validate → fill defaults → redact → move large text to blobs → append.

Every adapter hands its events to `Pipeline`; nothing else writes to the ledger. Its pure half,
`Preparer`, also runs in the server's worker processes; only the ledger's writer appends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from flightlog._internal.jsonwalk import _strings
from flightlog.errors import ValidationError
from flightlog.events import canonical_bytes, fill_defaults, validate_event
from flightlog.index import TEXT_FIELDS, event_text
from flightlog.ledger import merkle
from flightlog.ledger.blobs import blob_digest
from flightlog.ledger.log import Ledger, PendingEntry
from flightlog.redact import Redactor

__all__ = ["BLOB_THRESHOLD", "MAX_EVENT_BYTES", "Pipeline", "Preparer", "Rejected"]

BLOB_THRESHOLD: Final = 16 * 1024  # payload strings longer than this (UTF-8 bytes) become blobs
# The fields that can hold free text: the searched ones first (see `Preparer.prepare`).
_FREE_TEXT: Final = (*TEXT_FIELDS, "source", "redactions", "signatures")
MAX_EVENT_BYTES: Final = 4 * 1024 * 1024  # an event's canonical size before blobs are split off


@dataclass(frozen=True)
class Rejected:
    """One event that was refused: its position in the batch (0-based), field and reason."""

    index: int
    field: str
    reason: str


class Preparer:
    """The pure half of the pipeline: producer events to ledger entries, writing nothing (so
    it can run in another process than the ledger's writer)."""

    def __init__(
        self,
        redactor: Redactor | None = None,
        source_kind: str = "api",
        blob_threshold: int = BLOB_THRESHOLD,
        search_text: bool = False,
    ) -> None:
        self.redactor = redactor or Redactor.default()
        self.source_kind = source_kind
        self.blob_threshold = blob_threshold
        # The collector indexes what it stores right away, from this text; other writers leave
        # indexing to a later catch-up, which reads the leaves.
        self.search_text = search_text

    def prepare(self, raw: object) -> PendingEntry:
        """Return the entry that `raw` becomes, or raise ValidationError. Pure: writes nothing."""
        event = fill_defaults(validate_event(raw), self.source_kind)
        # Ids, hashes and timestamps are pinned by the schema's patterns; only the fields
        # that can hold free text are scanned (a third of the cost of the whole event).
        free = {k: event[k] for k in _FREE_TEXT if k in event}
        cleaned, found, strings = self.redactor.redact_container(free)
        assert isinstance(cleaned, dict)  # redaction keeps the shape of its input
        redacted = {**event, **cleaned}
        redacted["redactions"] = [*redacted["redactions"], *(r.to_json() for r in found)]
        blobs: dict[str, bytes] = {}
        leaf = canonical_bytes(redacted)
        # A string's canonical JSON is never shorter than its UTF-8 bytes (escapes only add),
        # so an event whose leaf is within the threshold holds no string to move to a blob.
        if len(leaf) > self.blob_threshold:
            redacted["payload"] = self._split_blobs(redacted["payload"], blobs)
            if blobs:
                leaf = canonical_bytes(redacted)
        if len(leaf) > MAX_EVENT_BYTES:
            raise ValidationError("$", f"event is {len(leaf)} bytes, over {MAX_EVENT_BYTES}")
        given_id = isinstance(raw, dict) and "event_id" in raw
        text = None
        if self.search_text:
            text = event_text(redacted) if blobs else _search_text(event, strings)
        return PendingEntry(redacted, leaf, blobs, given_id, text)

    def _split_blobs(self, value: Any, blobs: dict[str, bytes]) -> Any:
        """Replace long strings in a payload by `{"blob": digest, "size": n}` references."""
        if isinstance(value, str):
            if len(value) > self.blob_threshold // 4:  # cheap pre-check before encoding
                data = value.encode("utf-8", "surrogatepass")
                if len(data) > self.blob_threshold:
                    digest = blob_digest(data)
                    blobs[digest] = data
                    return {"blob": digest, "size": len(data), "media_type": "text/plain"}
            return value
        if isinstance(value, dict):
            return {k: self._split_blobs(v, blobs) for k, v in value.items()}
        if isinstance(value, list):
            return [self._split_blobs(v, blobs) for v in value]
        return value

    def prepare_batch(self, raws: Iterable[object]) -> tuple[list[PendingEntry], list[Rejected]]:
        """Prepare every event; return the good entries and every rejection."""
        good, bad, _ = self._prepare_all(raws)
        return good, bad

    def _prepare_all(self, raws: Iterable[object]) -> tuple[list[PendingEntry], list[Rejected], list[int]]:
        """`prepare_batch`, plus the position in the batch of each good entry."""
        good: list[PendingEntry] = []
        bad: list[Rejected] = []
        positions: list[int] = []
        for i, raw in enumerate(raws):
            try:
                good.append(self.prepare(raw))
                positions.append(i)
            except ValidationError as exc:
                bad.append(Rejected(i, exc.field, exc.reason))
        return good, bad, positions


def _search_text(event: dict[str, Any], strings: list[str]) -> str:
    """`event_text` of the prepared event, from the strings its redaction walk gathered (the
    redacted ones, in walk order): the searched fields lead `_FREE_TEXT`, so theirs are the first
    strings, all but those of the other fields (as many before redaction as after)."""
    rest = len(_strings([event.get(k) for k in _FREE_TEXT[len(TEXT_FIELDS) :]], "$"))
    return "\n".join([event["type"], *strings[: len(strings) - rest]])


class Pipeline(Preparer):
    """Turns producer events into ledger entries; a batch is stored whole or not at all."""

    def __init__(
        self,
        ledger: Ledger,
        redactor: Redactor | None = None,
        source_kind: str = "api",
        blob_threshold: int = BLOB_THRESHOLD,
        search_text: bool = False,
    ) -> None:
        super().__init__(redactor, source_kind, blob_threshold, search_text)
        self.ledger = ledger

    def prepare_events(self, raws: Iterable[object]) -> tuple[list[PendingEntry], list[Rejected]]:
        """`prepare_batch` for events whose producer names them (the events API, `ingest`): an
        event whose given id already names a different event, stored or earlier in the batch,
        is rejected too, instead of being dropped as a duplicate while its sender believes it
        stored. The same event again (a retry) is not: the ledger stores it once. Adapters that
        derive ids from a foreign record (an OTLP span, a transcript line) use `prepare_batch`
        and keep the first event stored under an id, as before."""
        good, bad, positions = self._prepare_all(raws)
        for entry in good:
            entry.strict_id = entry.given_id  # checked again in the commit: two requests may race
        conflicts = self.id_conflicts(good, positions)
        if conflicts:
            bad = sorted([*bad, *conflicts], key=lambda r: r.index)
        return good, bad

    def id_conflicts(self, entries: Sequence[PendingEntry], positions: Sequence[int]) -> list[Rejected]:
        """The entries (at these batch positions) whose producer-given event id the log already
        holds for another leaf, or that an earlier entry of the batch has with another leaf.
        Leaves are compared by leaf hash: the pipeline adds only what follows from the event
        (defaults, UTC time, redaction records, blob digests), so a true retry hashes alike."""
        named = [(e, i) for e, i in zip(entries, positions, strict=True) if e.given_id]
        if not named:
            return []
        # One query for the batch (one per id doubled the time to prepare 5,000 named events).
        stored = self.ledger.store.leaf_hashes_of([e.columns.event_id for e, _ in named])
        # event id -> the leaf hash it names: the stored entry's (position None), else that of
        # its first entry in the batch
        held: dict[str, tuple[bytes, int | None]] = {k: (h, None) for k, h in stored.items()}
        out: list[Rejected] = []
        for entry, position in named:
            event_id = entry.columns.event_id
            digest = merkle.leaf_hash(entry.leaf)
            held.setdefault(event_id, (digest, position))
            named_digest, first = held[event_id]
            if named_digest == digest:
                continue
            if first is None:
                out.append(Rejected(position, "$.event_id", "already stored with different content"))
            else:
                reason = f"used by a different event earlier in this batch (index {first})"
                out.append(Rejected(position, "$.event_id", reason))
        return out

    def ingest(self, raws: Iterable[object]) -> list[int] | list[Rejected]:
        """Store a batch whole and return its indexes, or store nothing and return rejections.
        An event whose id the log already holds is not stored twice; its old index is returned."""
        good, bad = self.prepare_batch(raws)
        if bad:
            return bad
        return self.ledger.append(good)
