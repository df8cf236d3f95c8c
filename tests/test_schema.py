"""The host's schema (edge.server.schema): an older store brought up once, under the write lock, whoever opens
it; a store of another version refused in one line."""

import sqlite3
import threading

import pytest

from edge.errors import EdgeError
from edge.server import schema
from edge.server.store import open_db


def version_5(path):
    """A store as edge's store version 5 left it: rollouts without waves."""
    db = sqlite3.connect(path, isolation_level=None)
    table = next(t for t in schema.TABLES.split(";") if "TABLE IF NOT EXISTS rollouts " in t)
    db.executescript(
        schema.TABLES.replace(
            table, table.replace(",\n    waves TEXT NOT NULL DEFAULT '[]', stage INTEGER NOT NULL DEFAULT 0", "")
        )
        + ";PRAGMA user_version = 5"
    )
    db.close()


def test_processes_opening_an_old_store_at_once_migrate_it_once(tmp_path):
    path = tmp_path / "edge.db"
    version_5(path)
    start, failures = threading.Barrier(8), []

    def open_it():
        start.wait()
        try:
            open_db(path).close()
        except Exception as e:  # noqa: BLE001 (collected for the assertion)
            failures.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    assert [row[1] for row in db.execute("PRAGMA table_info(rollouts)")][-2:] == ["waves", "stage"]


@pytest.mark.parametrize("version", [1, schema.VERSION + 1])
def test_a_store_of_another_version_is_refused_and_left_as_it_is(tmp_path, version):
    path = tmp_path / "edge.db"
    open_db(path).close()
    sqlite3.connect(path, isolation_level=None).execute(f"PRAGMA user_version = {version}")
    with pytest.raises(EdgeError, match=f"store version {version}, this edge keeps {schema.VERSION}"):
        open_db(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == version
