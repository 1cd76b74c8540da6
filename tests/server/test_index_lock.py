"""Search indexing writes its own database file, so it never holds up a ledger append."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flightlog.index import INDEX_FILE, SearchIndex
from flightlog.ledger.log import Ledger
from flightlog.pipeline import Pipeline
from tests.conftest import make_event


def test_an_index_transaction_never_blocks_an_append(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        pipeline = Pipeline(ledger)
        assert pipeline.ingest([make_event(0, payload={"text": "flux capacitor"})]) == [0]
        index = SearchIndex(ledger.store.path)
        assert index.catch_up() == 1
        other = sqlite3.connect(tmp_path / INDEX_FILE, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another indexer is writing
        ledger.store.conn.execute("PRAGMA busy_timeout=0")  # a wait for any lock fails at once
        assert pipeline.ingest([make_event(4, payload={"text": "flux again"})]) == [1]
        other.execute("ROLLBACK")
        other.close()
        assert index.catch_up() == 1
        assert [h.index for h in index.search("flux")] == [1, 0]
        index.close()


def test_offered_texts_with_gaps_still_index_every_entry_once(tmp_path: Path) -> None:
    # The collector offers the text of what it just stored; entries appended elsewhere (a gap)
    # are read from the ledger, and an offer for an entry already indexed changes nothing.
    with Ledger.open(tmp_path) as ledger:
        pipeline = Pipeline(ledger, search_text=True)
        entries = [pipeline.prepare(make_event(0, payload={"text": f"warp core {i}"})) for i in range(5)]
        assert ledger.append(entries) == [0, 1, 2, 3, 4]
        index = SearchIndex(ledger.store.path)
        assert index.indexed == 0
        index.offer([(0, entries[0].text), (1, entries[1].text), (3, entries[3].text)])
        assert index.catch_up() == 5
        assert index.indexed == 5
        index.offer([(2, entries[2].text)])  # late: already indexed from the ledger
        assert index.catch_up() == 0
        assert sorted(h.index for h in index.search("warp core")) == [0, 1, 2, 3, 4]
        assert [h.index for h in index.search("3")] == [3]
        index.close()


def test_catch_up_in_steps_indexes_at_most_a_step(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        assert Pipeline(ledger).ingest([make_event(0, payload={"text": f"step {i}"}) for i in range(5)]) == [
            0,
            1,
            2,
            3,
            4,
        ]
        index = SearchIndex(ledger.store.path)
        assert index.catch_up(batch=2, limit=2) == 2 and index.indexed == 2
        assert index.catch_up(batch=2, limit=2) == 2 and index.indexed == 4
        assert index.catch_up() == 1 and index.indexed == 5
        index.close()
