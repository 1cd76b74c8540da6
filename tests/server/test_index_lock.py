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
