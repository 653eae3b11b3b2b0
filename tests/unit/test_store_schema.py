"""Versioned schemas: an older SQLite file is brought up to date in place; PostgreSQL
migrates once under an advisory lock however many nodes start together, and refuses a
database newer than the code."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from server.errors import StoreUnavailable
from server.store import SCHEMA_VERSION, SQLiteStore
from server.store.schema import _ONCE, TABLES


def test_a_version_3_sqlite_file_is_upgraded_keeping_its_jobs(tmp_path):
    path = tmp_path / "tft.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(TABLES.replace(_ONCE, ""))
        conn.execute("INSERT INTO users (id, name, credits, created_at) VALUES ('u1', 'old', NULL, 0)")
        conn.execute("INSERT INTO jobs (id, user_id, status, filename, upload_path, options, created_at, updated_at) "
                     "VALUES ('j1', 'u1', 'pending', 'a.wav', '/x', '{}', 0, 0)")
        conn.execute("PRAGMA user_version = 3")
    store = SQLiteStore(path)
    assert store.schema_version() == SCHEMA_VERSION == 4
    job = store.claim_job("w", lease_seconds=30, max_attempts=3)
    assert job.id == "j1" and store.complete_job("j1", job.attempt_token, result={}, exports_dir="/e", expires_at=0).value == "held"
    assert store._read("SELECT COUNT(*) FROM job_completions")[0][0] == 1


def test_nodes_starting_together_migrate_once(pg_url):
    from server.store.postgres import PostgresStore

    stores, errors = [], []

    def start():
        try:
            stores.append(PostgresStore(pg_url, listen=False))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(stores) == 6
    assert {s.schema_version() for s in stores} == {SCHEMA_VERSION}
    assert stores[0]._read("SELECT COUNT(*) FROM tft_schema")[0][0] == 1
    with stores[0]._write() as conn:
        conn.execute("UPDATE tft_schema SET version = ?", (SCHEMA_VERSION + 1,))
    for s in stores:
        s.close()
    with pytest.raises(StoreUnavailable, match=f"schema is version {SCHEMA_VERSION + 1}, newer than this tft"):
        PostgresStore(pg_url, listen=False)
