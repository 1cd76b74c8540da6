"""The Ledger in process: group commit across threads, checkpoint cadence, reopening."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from flightlog.errors import LedgerError
from flightlog.ids import stable_event_id
from flightlog.ledger.log import Ledger, PendingEntry
from flightlog.ledger.verify import verify_ledger
from flightlog.pipeline import Pipeline
from tests.conftest import make_event


def _entries(pipeline: Pipeline, start: int, n: int) -> list[PendingEntry]:
    good, bad = pipeline.prepare_batch(make_event(i) for i in range(start, start + n))
    assert not bad
    return good


def test_concurrent_batches_share_commits_and_all_land(home: Path) -> None:
    ledger = Ledger.open(home)
    pipeline = Pipeline(ledger)
    batches = [_entries(pipeline, i * 50, 50) for i in range(16)]
    results: list[list[int]] = [[] for _ in batches]

    def worker(i: int) -> None:
        results[i] = ledger.append(batches[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = sorted(i for r in results for i in r)
    assert everything == list(range(800))
    assert all(r == list(range(r[0], r[0] + 50)) for r in results)  # each batch contiguous
    assert ledger.commits <= len(batches)
    verify_ledger(ledger)
    ledger.close()


def test_a_bad_batch_does_not_sink_the_others(home: Path) -> None:
    ledger = Ledger.open(home)
    pipeline = Pipeline(ledger)
    first = _entries(pipeline, 0, 3)
    ledger.append(first)
    with pytest.raises(LedgerError, match="nothing stored"):
        ledger.append([*_entries(pipeline, 3, 2), first[0]])  # a duplicate event id
    assert ledger.size == 3
    assert ledger.append(_entries(pipeline, 5, 2)) == [3, 4]
    verify_ledger(ledger)
    ledger.close()


def test_checkpoints_at_least_every_second_while_entries_arrive(home: Path) -> None:
    ledger = Ledger.open(home)
    pipeline = Pipeline(ledger)
    deadline = time.monotonic() + 2.6
    n = 0
    while time.monotonic() < deadline:
        ledger.append(_entries(pipeline, n, 5))
        n += 5
        time.sleep(0.05)
    sizes = [cp.size for cp in ledger.store.checkpoints()]
    assert len(sizes) >= 2 and sizes == sorted(sizes)
    ledger.close()
    assert Ledger.open(home).store.latest_checkpoint().size == n  # type: ignore[union-attr]


def test_reopen_continues_the_same_tree(home: Path) -> None:
    with Ledger.open(home) as ledger:
        pipeline = Pipeline(ledger)
        ledger.append(_entries(pipeline, 0, 7))
        root7 = ledger.root(7)
        origin = ledger.origin
    with Ledger.open(home) as ledger:
        assert ledger.origin == origin and ledger.size == 7 and ledger.root(7) == root7
        ledger.append(_entries(Pipeline(ledger), 7, 6))
        report = verify_ledger(ledger)
        assert report.entries == 13


def test_an_event_id_already_held_is_not_stored_again(home: Path) -> None:
    """Retries and re-imports send the same producer-chosen event ids: the log keeps one copy."""
    ledger = Ledger.open(home)
    pipeline = Pipeline(ledger)
    ids = [stable_event_id(f"seed-{i}", 1_700_000_000_000 + i) for i in range(3)]
    first = ledger.append(_entries_with_ids(pipeline, ids))
    assert first == [0, 1, 2]
    again = _entries_with_ids(pipeline, [ids[1], ids[1], stable_event_id("new", 1_700_000_000_500)])
    assert ledger.append(again) == [1, 1, 3]
    assert [e.duplicate for e in again] == [True, True, False]
    assert ledger.size == 4
    fresh = _entries(pipeline, 0, 2)  # pipeline-made ids are never looked up, never duplicates
    assert ledger.append(fresh) == [4, 5]
    verify_ledger(ledger)
    ledger.close()


def test_a_repeated_id_within_one_batch_is_stored_once(home: Path) -> None:
    ledger = Ledger.open(home)
    pipeline = Pipeline(ledger)
    same = stable_event_id("twice", 1_700_000_000_000)
    entries = _entries_with_ids(pipeline, [same, same])
    assert ledger.append(entries) == [0, 0]
    assert ledger.size == 1
    ledger.close()


def _entries_with_ids(pipeline: Pipeline, ids: list[str]) -> list[PendingEntry]:
    good, bad = pipeline.prepare_batch(make_event(i, event_id=e) for i, e in enumerate(ids))
    assert not bad
    return good
