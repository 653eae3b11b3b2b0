"""``JobStore`` on one SQLite file, safe for many threads and processes (on one machine).

SQLite is used the way it is safe under concurrency: WAL journal, ``synchronous=FULL`` (a
201 is only sent after the row is on disk), one connection per thread, autocommit mode
with explicit ``BEGIN IMMEDIATE`` for every write (so writers queue on the busy timeout
instead of failing with "database is locked" on a lock upgrade), and short transactions.
A write transaction holds the whole database, so the row locks PostgreSQL needs are not
needed here. The file is created 0600: it holds webhook secrets. The logic is sql.py's.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .schema import SCHEMA_VERSION, TABLES, UPGRADES
from .sql import SQLStore

__all__ = ["SQLiteStore", "SCHEMA_VERSION"]


def _statements(script: str) -> Iterator[str]:
    """One statement at a time (``executescript`` would commit the caller's transaction)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (its -wal and -shm files take
    the database file's mode), and tighten one created by an older version."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    for suffix in ("", "-wal", "-shm"):
        try:
            os.chmod(f"{path}{suffix}", 0o600)
        except FileNotFoundError:
            continue


class SQLiteStore(SQLStore):
    """JobStore on a single SQLite file."""

    kind = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 60_000) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _create_private(self.path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._migrate()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    # -- plumbing --------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_ms / 1000,
                                   check_same_thread=True)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._committed()

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, params).fetchall()

    def schema_version(self) -> int:
        return self._conn().execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        if self.schema_version() >= SCHEMA_VERSION:
            return
        with self._write() as tx:
            version = tx.execute("PRAGMA user_version").fetchone()[0]  # another process may have done it
            if version == 0:
                steps = [TABLES]
            else:
                steps = [UPGRADES[v] for v in range(version, SCHEMA_VERSION)]
            for script in steps:
                for statement in _statements(script):
                    tx.execute(statement)
            tx.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
