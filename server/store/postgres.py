"""``JobStore`` on PostgreSQL (``TFT_DATABASE_URL=postgresql://...``): one database that API
nodes and workers on many machines share.

The logic is sql.py's; this module adds what many machines need:

- row locks: a job's attempt is read ``FOR UPDATE`` before it is changed, and claims (of
  jobs and of webhook deliveries) take ``FOR UPDATE SKIP LOCKED``, so concurrent workers
  never wait on, or take, the same row;
- wake-ups by LISTEN/NOTIFY (triggers in schema.py announce every change a waiter cares
  about at commit), with a slow poll behind them because NOTIFY is not replayed;
- versioned migrations under an advisory lock, so nodes starting together cannot race;
- a connection pool that checks each connection before lending it, so a restarted server
  costs a reconnection, not an error; a database that stays away is ``StoreUnavailable``
  (503) after ``connect_timeout`` seconds.
"""

from __future__ import annotations

import functools
import logging
import time
from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import StoreUnavailable
from .records import JobVersion
from .schema import POSTGRES_NOTIFY, SCHEMA_VERSION, TABLES, UPGRADES, postgres_ddl
from .sql import SQLStore

log = logging.getLogger("tft.store")

MIGRATION_LOCK = 7_204_633_811  # pg_advisory_xact_lock key: one migrating node at a time
CHANNELS = ("tft_job", "tft_work")
RECHECK_AFTER_SECONDS = 1.0  # a pooled connection idle longer is checked before it is lent


class Row(dict):
    """A row by column name (``row["id"]``) and by position (``row[0]``), as ``sqlite3.Row``."""

    __slots__ = ("_values",)

    def __getitem__(self, key):
        return self._values[key] if isinstance(key, int) else dict.__getitem__(self, key)


def _rows(cursor: psycopg.Cursor):
    names = [c.name for c in cursor.description] if cursor.description else []

    def make(values) -> Row:
        row = Row(zip(names, values))
        row._values = values
        return row

    return make


@functools.lru_cache(maxsize=512)
def _dialect(sql: str) -> str:
    """sql.py marks parameters ``?``; psycopg wants ``%s`` (no statement has a literal % or ?)."""
    return sql.replace("?", "%s")


class _Connection:
    """What sql.py calls on a connection: ``execute(sql, params)`` returning a cursor."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: tuple = ()) -> psycopg.Cursor:
        return self.raw.execute(_dialect(sql), params or None)


def safe_url(url: str) -> str:
    """The URL without its password, for logs and ``tft store check``."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparseable URL)"
    host = info.get("host") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    return f"postgresql://{user}{host}{port}/{info.get('dbname', '')}"


class PostgresStore(SQLStore):
    """JobStore on a PostgreSQL database."""

    kind = "postgresql"
    _lock = " FOR UPDATE"
    _skip_locked = " FOR UPDATE SKIP LOCKED"
    _skip_locked_deliveries = " FOR UPDATE OF d SKIP LOCKED"
    _lock_endpoint = " FOR NO KEY UPDATE"
    change_poll_seconds = 2.0  # the fallback when a notification was lost
    idle_poll_seconds = 2.0

    def __init__(self, url: str, *, pool_size: int = 20, connect_timeout: float = 15.0, listen: bool = True) -> None:
        super().__init__()
        self.url = url
        self.connect_timeout = connect_timeout
        self._watching: dict[str, int] = {}  # job id -> waiters (only their notifications are kept)
        self._job_events: dict[str, int] = {}
        self._epoch = 0  # bumped on every (re)connection of the listener: anything may have changed
        self._drops = 0  # connections the listener saw drop: every pooled connection may be stale
        self._returned: dict[int, tuple[int, float]] = {}  # id(conn) -> (drops, when) at its return
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False, name="tft",
                                   kwargs={"autocommit": True, "row_factory": _rows, "connect_timeout": 5},
                                   check=self._check, reset=self._note_return, timeout=connect_timeout)
        try:
            self.pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self.pool.close()
            raise StoreUnavailable(f"the database at {safe_url(url)} cannot be reached "
                                   f"(no connection within {connect_timeout:.0f} s)") from exc
        try:
            self._migrate()
        except BaseException:
            self.pool.close()
            raise
        self.listener = None
        if listen:
            from .pg_listen import Listener

            self.listener = Listener(url, CHANNELS, on_notify=self._notified, on_connect=self._reconnected,
                                     on_disconnect=self._dropped)

    def describe(self) -> str:
        return safe_url(self.url)

    # -- plumbing --------------------------------------------------------------------------

    def _note_return(self, conn: psycopg.Connection) -> None:
        self._returned[id(conn)] = (self._drops, time.monotonic())

    def _check(self, conn: psycopg.Connection) -> None:
        """Before lending a connection, make sure it still works (a restarted server leaves
        every pooled connection dead), unless it worked a moment ago and the listener has
        seen no connection drop since: a round trip saved on every busy claim."""
        drops, when = self._returned.get(id(conn), (-1, 0.0))
        if drops == self._drops and time.monotonic() - when < RECHECK_AFTER_SECONDS:
            return
        ConnectionPool.check_connection(conn)

    @contextmanager
    def _connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        try:
            with self.pool.connection(timeout=timeout) as conn:
                yield conn
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
            raise StoreUnavailable("the database gave this change up because of a concurrent one; "
                                   "try again") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"the database at {safe_url(self.url)} cannot be reached; try again shortly") from exc

    @contextmanager
    def _write(self) -> Iterator[_Connection]:
        with self._connection() as conn:
            with conn.transaction():
                yield _Connection(conn)
        self._committed()

    @contextmanager
    def _snapshot(self) -> Iterator[_Connection]:
        with self._connection() as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield _Connection(conn)

    def _read(self, sql: str, params: tuple = ()) -> list[Row]:
        with self._connection() as conn:
            return conn.execute(_dialect(sql), params or None).fetchall()

    def ping(self, timeout: float = 3.0) -> None:
        """Raise StoreUnavailable unless the database answers within ``timeout`` (/healthz)."""
        with self._connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")

    def schema_version(self) -> int:
        rows = self._read("SELECT version FROM tft_schema")
        return rows[0]["version"] if rows else 0

    def _migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION in one transaction, under an advisory lock: a
        node that starts meanwhile waits, then finds the work done."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS tft_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM tft_schema").fetchone()
            version = row["version"] if row else 0
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(f"the database's schema is version {version}, newer than this tft knows "
                                       f"({SCHEMA_VERSION}): upgrade tft on this machine")
            if version == SCHEMA_VERSION:
                return
            steps = [TABLES] if version == 0 else [UPGRADES[v] for v in range(version, SCHEMA_VERSION)]
            for script in steps:
                conn.execute(postgres_ddl(script))
            conn.execute(POSTGRES_NOTIFY)
            conn.execute("DELETE FROM tft_schema")
            conn.execute("INSERT INTO tft_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            log.info("database schema: version %d -> %d", version, SCHEMA_VERSION)

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.pool.close()

    # -- wake-ups --------------------------------------------------------------------------

    def _notified(self, channel: str, payload: str) -> None:
        with self._changes:
            if channel == "tft_work":
                self._work += 1
            elif payload in self._watching:
                self._job_events[payload] = self._job_events.get(payload, 0) + 1
            else:
                return
            self._changes.notify_all()

    def _dropped(self) -> None:
        self._drops += 1

    def _reconnected(self) -> None:
        with self._changes:
            self._epoch += 1
            self._work += 1
            self._changes.notify_all()

    def wait_for_change(self, job_id: str, since: JobVersion | None, timeout: float) -> JobVersion | None:
        """Woken by the job's own notifications (and by a reconnection of the listener);
        looks again every ``change_poll_seconds`` in case a notification was lost."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._changes:
            self._watching[job_id] = self._watching.get(job_id, 0) + 1
        try:
            while True:
                with self._changes:
                    seen = (self._job_events.get(job_id, 0), self._epoch)
                current = self.job_version(job_id)
                if current != since or current is None or time.monotonic() >= deadline:
                    return current
                with self._changes:
                    until = min(deadline, time.monotonic() + self.change_poll_seconds)
                    while (self._job_events.get(job_id, 0), self._epoch) == seen:
                        left = until - time.monotonic()
                        if left <= 0:
                            break
                        self._changes.wait(left)
        finally:
            with self._changes:
                self._watching[job_id] -= 1
                if not self._watching[job_id]:
                    del self._watching[job_id]
                    self._job_events.pop(job_id, None)
