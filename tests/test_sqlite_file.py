"""The state directory's SQLite files open while another process writes to them (runtime/core/sqlite_file.py).

`gati serve --workers 2` failed requests with "database is locked": a worker switching a new
file to WAL while the other wrote in the old journal mode got SQLITE_BUSY at once, busy timeout
or not. Each store now waits for the other writer instead."""

import sqlite3
import threading

import pytest

from runtime.core.kv import SqliteKvStore
from runtime.core.registry import Registry
from runtime.core.sqlite_file import open_shared
from runtime.http.snapshot_store import SnapshotStore
from runtime.http.versions.store import VersionStore

STORES = {"kv": SqliteKvStore, "registry": Registry, "versions": VersionStore, "snapshots": SnapshotStore}


@pytest.mark.parametrize("store", STORES)
def test_a_store_opens_while_another_process_writes_in_the_old_journal_mode(tmp_path, store):
    path = tmp_path / f"{store}.db"
    # a file another process is writing to before anyone switched it to WAL (a new file, or one
    # left by an older gati); its write lock is given up a moment later, as a short write would
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO other VALUES (1)")
    release = threading.Timer(0.2, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        opened = STORES[store](path)
        opened.close()
    finally:
        release.join()
        writer.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_wait_is_bounded_and_names_the_lock(tmp_path):
    path = tmp_path / "held.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")  # never given up while we wait
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            open_shared(path, timeout_s=0.1)
    finally:
        writer.close()
