"""Durable state: users, tokens, jobs, credits, webhooks and their deliveries.

``JobStore`` is the interface the API and the workers use; ``SQLiteStore`` implements it on
one SQLite file (a PostgreSQL implementation can join later behind the same protocol).

SQLite is used the way it is safe under concurrency: WAL journal, ``synchronous=FULL`` (a
201 is only sent after the row is on disk), one connection per thread, autocommit mode
with explicit ``BEGIN IMMEDIATE`` for every write (so writers queue on the busy timeout
instead of failing with "database is locked" on a lock upgrade), and short transactions.

Job state machine::

    pending --claim--> processing --complete--> done --delete--> (deleted)
       |                  |   \\--fail / attempts exhausted--> error
       |                  |   \\--lease expires (worker died)--> reclaimed by claim
       \\--cancel--------- +--cancel (worker stops at its next checkpoint)--> cancelled

Credits are held at creation, kept on done, and refunded on error or cancellation; every
movement is a ledger row. Webhook deliveries are written in the same transaction as the
state change that causes them (an outbox), so a crash cannot lose or duplicate an event.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Iterator, Protocol

from .errors import InsufficientCredits

SCHEMA_VERSION = 2  # 2: job_segments

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    credits INTEGER,               -- NULL: unlimited
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,          -- sha256 of the token; the token itself is never stored
    user_id TEXT NOT NULL REFERENCES users(id),
    label TEXT NOT NULL DEFAULT '',
    prefix TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    status TEXT NOT NULL,
    filename TEXT NOT NULL,
    upload_path TEXT NOT NULL,
    options TEXT NOT NULL,
    audio_duration REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    progress_stage TEXT,
    progress_fraction REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    error_code TEXT,
    error_message TEXT,
    result TEXT,
    exports_dir TEXT,
    exports_expire_at REAL,
    exports_expired INTEGER NOT NULL DEFAULT 0,
    credits_quoted INTEGER NOT NULL DEFAULT 0,
    credits_charged INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user_id, deleted, created_at);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    job_id TEXT,
    delta INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at REAL NOT NULL,
    failing_since REAL,
    disabled_at REAL,
    disabled_reason TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,            -- the event id receivers de-duplicate on
    webhook_id TEXT NOT NULL REFERENCES webhooks(id),
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT,                   -- frozen at the first attempt; retries send the same bytes
    status TEXT NOT NULL,           -- pending | delivered | abandoned
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires REAL,
    last_error TEXT,
    last_status INTEGER,
    created_at REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_attempt_at);
CREATE TABLE IF NOT EXISTS job_segments (    -- segments published while a job runs (streaming)
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,                    -- 0, 1, 2... in decoding order
    body TEXT NOT NULL,                      -- the segment as JSON
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
"""


class JobStatus(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


VISIBLE_STATUSES = ("pending", "processing", "done", "error")


@dataclass(frozen=True)
class User:
    id: str
    name: str
    credits: int | None
    created_at: float

    @property
    def unlimited(self) -> bool:
        return self.credits is None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "User":
        return cls(row["id"], row["name"], row["credits"], row["created_at"])


@dataclass(frozen=True)
class Job:
    id: str
    user_id: str
    status: JobStatus
    filename: str
    upload_path: str
    options: dict
    audio_duration: float | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    progress_stage: str | None
    progress_fraction: float
    attempts: int
    lease_owner: str | None
    lease_expires: float | None
    error_code: str | None
    error_message: str | None
    result: dict | None
    exports_dir: str | None
    exports_expire_at: float | None
    exports_expired: bool
    credits_quoted: int
    credits_charged: int
    cancel_requested: bool
    deleted: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        data = dict(row)
        data["status"] = JobStatus(data["status"])
        data["options"] = json.loads(data["options"])
        data["result"] = json.loads(data["result"]) if data["result"] else None
        for flag in ("exports_expired", "cancel_requested", "deleted"):
            data[flag] = bool(data[flag])
        return cls(**data)


@dataclass(frozen=True)
class Webhook:
    id: str
    user_id: str
    url: str
    secret: str
    events: tuple[str, ...]
    created_at: float
    failing_since: float | None
    disabled_at: float | None
    disabled_reason: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Webhook":
        return cls(row["id"], row["user_id"], row["url"], row["secret"], tuple(json.loads(row["events"])),
                   row["created_at"], row["failing_since"], row["disabled_at"], row["disabled_reason"])


@dataclass(frozen=True)
class Delivery:
    id: str
    webhook_id: str
    job_id: str
    event: str
    payload: str | None
    attempts: int
    created_at: float
    url: str
    secret: str
    user_id: str


@dataclass(frozen=True)
class JobVersion:
    """What a waiter compares: it changes when the job's status, its cancellation or its
    published segments change (progress heartbeats do not count)."""

    status: str
    cancel_requested: bool
    deleted: bool
    segments: int  # how many segments are published

    @property
    def finished(self) -> bool:
        return self.status in ("done", "error", "cancelled")


class JobStore(Protocol):
    """What the API, the workers and the webhook dispatcher need from storage."""

    def ensure_user(self, name: str, credits: int | None) -> User: ...
    def add_token(self, user_id: str, token_hash: str, *, label: str, prefix: str) -> None: ...
    def user_for_token(self, token_hash: str) -> tuple[User, str] | None: ...
    def get_user(self, user_id: str) -> User | None: ...
    def create_job(self, *, job_id: str, user: User, filename: str, upload_path: str, options: dict,
                   price: int, audio_duration: float | None, top_up_url: str | None) -> Job: ...
    def get_job(self, job_id: str, user_id: str | None = None) -> Job | None: ...
    def list_jobs(self, user_id: str, *, status: str | None, limit: int, offset: int) -> tuple[list[Job], int]: ...
    def claim_job(self, worker_id: str, *, lease_seconds: float, max_attempts: int) -> Job | None: ...
    def heartbeat(self, job_id: str, worker_id: str, *, lease_seconds: float, stage: str | None,
                  fraction: float) -> bool: ...
    def complete_job(self, job_id: str, worker_id: str, *, result: dict, exports_dir: str,
                     expires_at: float) -> bool: ...
    def fail_job(self, job_id: str, worker_id: str, *, code: str, message: str) -> bool: ...
    def release_job(self, job_id: str, worker_id: str) -> bool: ...
    def acknowledge_cancel(self, job_id: str, worker_id: str) -> None: ...
    def delete_job(self, job_id: str, user_id: str) -> Job | None: ...
    def cancel_job(self, job_id: str, user_id: str) -> Job | None: ...
    def publish_segment(self, job_id: str, worker_id: str, seq: int, segment: dict) -> bool: ...
    def job_segments(self, job_id: str, *, after: int = -1) -> list[tuple[int, dict]]: ...
    def job_version(self, job_id: str) -> JobVersion | None: ...
    def wait_for_change(self, job_id: str, since: JobVersion | None, timeout: float) -> JobVersion | None:
        """Block until the job's version differs from ``since`` or ``timeout`` passes; return
        the current version (None: no such job). Implementations wake waiters as soon as
        the change is written (SQLite: in-process writes at once, other processes' writes
        within ``change_poll_seconds``; PostgreSQL: LISTEN/NOTIFY)."""
        ...


def _now() -> float:
    return time.time()


class SQLiteStore:
    """JobStore on a single SQLite file, safe for many threads and processes."""

    change_poll_seconds = 0.5  # how soon a waiter sees a change another process wrote

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 60_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._changes = threading.Condition()
        self._generation = 0  # bumped by every write this process commits
        self._migrate()

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
        with self._changes:
            self._generation += 1
            self._changes.notify_all()

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, params).fetchall()

    def _migrate(self) -> None:
        conn = self._conn()
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- users and tokens ------------------------------------------------------------------

    def ensure_user(self, name: str, credits: int | None) -> User:
        with self._write() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                user_id = uuid.uuid4().hex
                conn.execute("INSERT INTO users (id, name, credits, created_at) VALUES (?, ?, ?, ?)",
                             (user_id, name, credits, _now()))
                if credits:
                    conn.execute("INSERT INTO ledger (user_id, delta, reason, created_at) VALUES (?, ?, 'initial', ?)",
                                 (user_id, credits, _now()))
                row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
            return User.from_row(row)

    def set_credits(self, user_id: str, credits: int | None) -> None:
        with self._write() as conn:
            conn.execute("UPDATE users SET credits = ? WHERE id = ?", (credits, user_id))

    def get_user(self, user_id: str) -> User | None:
        rows = self._read("SELECT * FROM users WHERE id = ?", (user_id,))
        return User.from_row(rows[0]) if rows else None

    def get_user_by_name(self, name: str) -> User | None:
        rows = self._read("SELECT * FROM users WHERE name = ?", (name,))
        return User.from_row(rows[0]) if rows else None

    def add_token(self, user_id: str, token_hash: str, *, label: str, prefix: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO tokens (hash, user_id, label, prefix, created_at) VALUES (?, ?, ?, ?, ?)",
                         (token_hash, user_id, label, prefix, _now()))

    def user_for_token(self, token_hash: str) -> tuple[User, str] | None:
        """The token's user and the digest as stored (for a constant-time comparison)."""
        rows = self._read(
            "SELECT users.*, tokens.hash AS token_hash FROM tokens JOIN users ON users.id = tokens.user_id "
            "WHERE tokens.hash = ? AND tokens.revoked = 0", (token_hash,))
        return (User.from_row(rows[0]), rows[0]["token_hash"]) if rows else None

    def revoke_tokens(self, user_id: str) -> int:
        with self._write() as conn:
            return conn.execute("UPDATE tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0", (user_id,)).rowcount

    # -- jobs -------------------------------------------------------------------------------

    def create_job(self, *, job_id: str, user: User, filename: str, upload_path: str, options: dict,
                   price: int, audio_duration: float | None, top_up_url: str | None) -> Job:
        now = _now()
        with self._write() as conn:
            row = conn.execute("SELECT credits FROM users WHERE id = ?", (user.id,)).fetchone()
            balance = row["credits"]
            if balance is not None:
                if balance < price:
                    raise InsufficientCredits(
                        f"this job costs {price} credit(s) and your balance is {balance}",
                        top_up_url=top_up_url, balance=balance, price=price)
                conn.execute("UPDATE users SET credits = credits - ? WHERE id = ?", (price, user.id))
                conn.execute("INSERT INTO ledger (user_id, job_id, delta, reason, created_at) VALUES (?, ?, ?, 'hold', ?)",
                             (user.id, job_id, -price, now))
            conn.execute(
                "INSERT INTO jobs (id, user_id, status, filename, upload_path, options, audio_duration, created_at, "
                "updated_at, credits_quoted) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
                (job_id, user.id, filename, upload_path, json.dumps(options), audio_duration, now, now, price))
            return Job.from_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def get_job(self, job_id: str, user_id: str | None = None) -> Job | None:
        """A job as its owner sees it: None for another user's, a deleted or a cancelled job."""
        if user_id is None:
            rows = self._read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        else:
            rows = self._read("SELECT * FROM jobs WHERE id = ? AND user_id = ? AND deleted = 0", (job_id, user_id))
        return Job.from_row(rows[0]) if rows else None

    def list_jobs(self, user_id: str, *, status: str | None, limit: int, offset: int) -> tuple[list[Job], int]:
        where = "user_id = ? AND deleted = 0"
        params: tuple = (user_id,)
        offset = min(offset, 2**62)  # SQLite integers are 64-bit; a huge page is simply empty
        if status is not None:
            where += " AND status = ?"
            params += (status,)
        conn = self._conn()
        conn.execute("BEGIN")  # one snapshot for the page and the total
        try:
            total = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params).fetchone()[0]
            rows = conn.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                                params + (limit, offset)).fetchall()
        finally:
            conn.execute("COMMIT")
        return [Job.from_row(r) for r in rows], total

    def claim_job(self, worker_id: str, *, lease_seconds: float, max_attempts: int) -> Job | None:
        """Take the oldest pending job, or one whose worker's lease ran out (it died).

        A reclaimed job that has already used ``max_attempts`` is failed instead, so a file
        that crashes its worker every time ends in ``error`` rather than looping.
        """
        while True:
            now = _now()
            with self._write() as conn:
                row = conn.execute(
                    "SELECT * FROM jobs WHERE deleted = 0 AND cancel_requested = 0 AND "
                    "(status = 'pending' OR (status = 'processing' AND lease_expires < ?)) "
                    "ORDER BY created_at, id LIMIT 1", (now,)).fetchone()
                if row is None:
                    return None
                job = Job.from_row(row)
                if job.status is JobStatus.PROCESSING and job.attempts >= max_attempts:
                    self._finish_error(conn, job, "worker_crashed",
                                       f"the worker processing this file stopped unexpectedly {job.attempts} times; "
                                       "the file may be triggering a crash, so it will not be retried", now)
                    continue
                conn.execute(
                    "UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_owner = ?, lease_expires = ?, "
                    "started_at = COALESCE(started_at, ?), updated_at = ?, progress_stage = 'queued', "
                    "progress_fraction = 0 WHERE id = ?",
                    (worker_id, now + lease_seconds, now, now, job.id))
                return Job.from_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (job.id,)).fetchone())

    def heartbeat(self, job_id: str, worker_id: str, *, lease_seconds: float, stage: str | None,
                  fraction: float) -> bool:
        """Extend the lease and record progress; False when the job is no longer ours to run."""
        now = _now()
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE jobs SET lease_expires = ?, progress_stage = COALESCE(?, progress_stage), "
                "progress_fraction = ?, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND status = 'processing' AND cancel_requested = 0",
                (now + lease_seconds, stage, fraction, now, job_id, worker_id)).rowcount
        return updated == 1

    def _enqueue_events(self, conn: sqlite3.Connection, job: Job, event: str, now: float) -> int:
        hooks = conn.execute(
            "SELECT * FROM webhooks WHERE user_id = ? AND deleted = 0 AND disabled_at IS NULL", (job.user_id,)).fetchall()
        count = 0
        for hook in hooks:
            if event not in json.loads(hook["events"]):
                continue
            conn.execute(
                "INSERT INTO deliveries (id, webhook_id, job_id, event, status, next_attempt_at, created_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (f"evt_{uuid.uuid4().hex}", hook["id"], job.id, event, now, now))
            count += 1
        return count

    def complete_job(self, job_id: str, worker_id: str, *, result: dict, exports_dir: str,
                     expires_at: float) -> bool:
        now = _now()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ? AND lease_owner = ? AND status = 'processing' "
                               "AND cancel_requested = 0", (job_id, worker_id)).fetchone()
            if row is None:
                return False
            job = Job.from_row(row)
            conn.execute(
                "UPDATE jobs SET status = 'done', result = ?, exports_dir = ?, exports_expire_at = ?, finished_at = ?, "
                "updated_at = ?, progress_stage = 'done', progress_fraction = 1, lease_owner = NULL, "
                "lease_expires = NULL, credits_charged = credits_quoted, audio_duration = COALESCE(?, audio_duration), "
                "error_code = NULL, error_message = NULL WHERE id = ?",
                (json.dumps(result), exports_dir, expires_at, now, now, result.get("duration"), job_id))
            if job.credits_quoted:
                conn.execute("INSERT INTO ledger (user_id, job_id, delta, reason, created_at) VALUES (?, ?, 0, 'charge', ?)",
                             (job.user_id, job_id, now))
            self._enqueue_events(conn, job, "job.done", now)
            return True

    def _refund(self, conn: sqlite3.Connection, job: Job, reason: str, now: float) -> None:
        if job.credits_quoted and job.credits_charged == 0:
            conn.execute("UPDATE users SET credits = credits + ? WHERE id = ? AND credits IS NOT NULL",
                         (job.credits_quoted, job.user_id))
            conn.execute("INSERT INTO ledger (user_id, job_id, delta, reason, created_at) VALUES (?, ?, ?, ?, ?)",
                         (job.user_id, job.id, job.credits_quoted, reason, now))
            conn.execute("UPDATE jobs SET credits_quoted = 0 WHERE id = ?", (job.id,))

    def _finish_error(self, conn: sqlite3.Connection, job: Job, code: str, message: str, now: float) -> None:
        conn.execute(
            "UPDATE jobs SET status = 'error', error_code = ?, error_message = ?, finished_at = ?, updated_at = ?, "
            "lease_owner = NULL, lease_expires = NULL WHERE id = ?", (code, message, now, now, job.id))
        self._refund(conn, job, "refund: error", now)
        self._enqueue_events(conn, job, "job.error", now)

    def fail_job(self, job_id: str, worker_id: str, *, code: str, message: str) -> bool:
        now = _now()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ? AND lease_owner = ? AND status = 'processing'",
                               (job_id, worker_id)).fetchone()
            if row is None:
                return False
            self._finish_error(conn, Job.from_row(row), code, message, now)
            return True

    def release_job(self, job_id: str, worker_id: str) -> bool:
        """Give a job back unfinished (graceful shutdown): pending again, the attempt not counted."""
        now = _now()
        with self._write() as conn:
            return conn.execute(
                "UPDATE jobs SET status = 'pending', attempts = MAX(attempts - 1, 0), lease_owner = NULL, "
                "lease_expires = NULL, progress_stage = 'queued', progress_fraction = 0, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND status = 'processing'", (now, job_id, worker_id)).rowcount == 1

    def acknowledge_cancel(self, job_id: str, worker_id: str) -> None:
        now = _now()
        with self._write() as conn:
            conn.execute("UPDATE jobs SET status = 'cancelled', lease_owner = NULL, lease_expires = NULL, "
                         "finished_at = ?, updated_at = ? WHERE id = ? AND cancel_requested = 1", (now, now, job_id))

    def delete_job(self, job_id: str, user_id: str) -> Job | None:
        """DELETE semantics: pending/processing jobs are cancelled for real (credits refunded,
        the worker stops at its next checkpoint); finished jobs are marked deleted. Returns
        the job as it was, or None when the user has no such job."""
        now = _now()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ? AND user_id = ? AND deleted = 0",
                               (job_id, user_id)).fetchone()
            if row is None:
                return None
            job = Job.from_row(row)
            if job.status in (JobStatus.PENDING, JobStatus.PROCESSING):
                status = "cancelled" if job.status is JobStatus.PENDING else "processing"
                conn.execute("UPDATE jobs SET cancel_requested = 1, deleted = 1, status = ?, updated_at = ? "
                             "WHERE id = ?", (status, now, job_id))
                self._refund(conn, job, "refund: cancelled", now)
            else:
                conn.execute("UPDATE jobs SET deleted = 1, updated_at = ? WHERE id = ?", (now, job_id))
            return job

    def cancel_job(self, job_id: str, user_id: str) -> Job | None:
        """Cancel a pending or processing job as DELETE does (credits refunded, the worker
        stops at its next checkpoint); a finished job is left as it is. Returns the job as
        it was, or None when nothing was cancelled."""
        now = _now()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ? AND user_id = ? AND deleted = 0 AND cancel_requested = 0 "
                               "AND status IN ('pending', 'processing')", (job_id, user_id)).fetchone()
            if row is None:
                return None
            job = Job.from_row(row)
            status = "cancelled" if job.status is JobStatus.PENDING else "processing"
            conn.execute("UPDATE jobs SET cancel_requested = 1, deleted = 1, status = ?, updated_at = ? WHERE id = ?",
                         (status, now, job_id))
            self._refund(conn, job, "refund: cancelled", now)
            return job

    def expire_exports(self, now: float | None = None) -> list[Job]:
        """Mark done jobs whose retention ran out; the caller removes their files."""
        now = _now() if now is None else now
        with self._write() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE status = 'done' AND exports_expired = 0 AND "
                                "exports_expire_at IS NOT NULL AND exports_expire_at <= ?", (now,)).fetchall()
            if rows:
                conn.execute("UPDATE jobs SET exports_expired = 1 WHERE status = 'done' AND exports_expired = 0 AND "
                             "exports_expire_at IS NOT NULL AND exports_expire_at <= ?", (now,))
        return [Job.from_row(r) for r in rows]

    def sweep_cancelled(self) -> int:
        """Cancelled jobs whose worker died before acknowledging: close them."""
        now = _now()
        with self._write() as conn:
            return conn.execute("UPDATE jobs SET status = 'cancelled', lease_owner = NULL, finished_at = ?, "
                                "updated_at = ? WHERE cancel_requested = 1 AND status = 'processing' AND "
                                "(lease_expires IS NULL OR lease_expires < ?)", (now, now, now)).rowcount

    def queue_depth(self) -> dict[str, int]:
        rows = self._read("SELECT status, COUNT(*) AS n FROM jobs WHERE deleted = 0 GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def job_counts(self, user_id: str) -> dict[str, int]:
        rows = self._read("SELECT status, COUNT(*) AS n FROM jobs WHERE user_id = ? AND deleted = 0 GROUP BY status",
                          (user_id,))
        return {r["status"]: r["n"] for r in rows}

    def add_webhook(self, *, user_id: str, url: str, secret: str, events: list[str]) -> Webhook:
        hook_id = f"wh_{uuid.uuid4().hex}"
        with self._write() as conn:
            conn.execute("INSERT INTO webhooks (id, user_id, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (hook_id, user_id, url, secret, json.dumps(events), _now()))
            return Webhook.from_row(conn.execute("SELECT * FROM webhooks WHERE id = ?", (hook_id,)).fetchone())

    def list_webhooks(self, user_id: str) -> list[Webhook]:
        rows = self._read("SELECT * FROM webhooks WHERE user_id = ? AND deleted = 0 ORDER BY created_at", (user_id,))
        return [Webhook.from_row(r) for r in rows]

    def delete_webhook(self, hook_id: str, user_id: str) -> bool:
        with self._write() as conn:
            gone = conn.execute("UPDATE webhooks SET deleted = 1 WHERE id = ? AND user_id = ? AND deleted = 0",
                                (hook_id, user_id)).rowcount == 1
            if gone:
                conn.execute("UPDATE deliveries SET status = 'abandoned', last_error = 'endpoint deleted' "
                             "WHERE webhook_id = ? AND status = 'pending'", (hook_id,))
            return gone

    def claim_delivery(self, worker_id: str, *, lease_seconds: float) -> Delivery | None:
        now = _now()
        with self._write() as conn:
            row = conn.execute(
                "SELECT d.*, w.url, w.secret, w.user_id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id "
                "WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND (d.lease_expires IS NULL OR d.lease_expires < ?) "
                "AND w.deleted = 0 AND w.disabled_at IS NULL ORDER BY d.next_attempt_at LIMIT 1", (now, now)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE deliveries SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                         (worker_id, now + lease_seconds, row["id"]))
            return Delivery(row["id"], row["webhook_id"], row["job_id"], row["event"], row["payload"], row["attempts"],
                            row["created_at"], row["url"], row["secret"], row["user_id"])

    def freeze_payload(self, delivery_id: str, payload: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE deliveries SET payload = COALESCE(payload, ?) WHERE id = ?", (payload, delivery_id))

    def claim_payload(self, delivery_id: str) -> str | None:
        rows = self._read("SELECT payload FROM deliveries WHERE id = ?", (delivery_id,))
        return rows[0]["payload"] if rows else None

    def delivery_succeeded(self, delivery: Delivery, status_code: int) -> None:
        now = _now()
        with self._write() as conn:
            conn.execute("UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_status = ?, "
                         "delivered_at = ?, lease_owner = NULL, lease_expires = NULL, last_error = NULL WHERE id = ?",
                         (status_code, now, delivery.id))
            conn.execute("UPDATE webhooks SET failing_since = NULL WHERE id = ?", (delivery.webhook_id,))

    def delivery_failed(self, delivery: Delivery, *, error: str, status_code: int | None, next_attempt_at: float | None,
                        disable_after: float) -> bool:
        """Record a failed attempt; schedule the next or abandon. Returns True if the endpoint
        has now been failing for longer than ``disable_after`` seconds and was disabled."""
        now = _now()
        with self._write() as conn:
            conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, last_status = ?, lease_owner = NULL, "
                "lease_expires = NULL, status = ?, next_attempt_at = COALESCE(?, next_attempt_at) WHERE id = ?",
                (error[:500], status_code, "pending" if next_attempt_at is not None else "abandoned", next_attempt_at,
                 delivery.id))
            conn.execute("UPDATE webhooks SET failing_since = COALESCE(failing_since, ?) WHERE id = ?",
                         (now, delivery.webhook_id))
            since = conn.execute("SELECT failing_since FROM webhooks WHERE id = ?", (delivery.webhook_id,)).fetchone()[0]
            if since is not None and now - since >= disable_after:
                conn.execute("UPDATE webhooks SET disabled_at = ?, disabled_reason = ? WHERE id = ? AND disabled_at IS NULL",
                             (now, f"every delivery failed for {int(now - since)} s (last error: {error[:200]})",
                              delivery.webhook_id))
                conn.execute("UPDATE deliveries SET status = 'abandoned' WHERE webhook_id = ? AND status = 'pending'",
                             (delivery.webhook_id,))
                return True
            return False

    # -- streaming: published segments and waiting for a job to change ---------------------

    def publish_segment(self, job_id: str, worker_id: str, seq: int, segment: dict) -> bool:
        """Record the ``seq``-th segment of a running job. Idempotent: a retried attempt that
        decodes the same segments again does not duplicate what a reader has seen."""
        with self._write() as conn:
            return conn.execute(
                "INSERT OR IGNORE INTO job_segments (job_id, seq, body, created_at) SELECT ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ? AND lease_owner = ? AND status = 'processing' "
                "AND cancel_requested = 0)",
                (job_id, seq, json.dumps(segment, ensure_ascii=False), _now(), job_id, worker_id)).rowcount == 1

    def job_segments(self, job_id: str, *, after: int = -1) -> list[tuple[int, dict]]:
        rows = self._read("SELECT seq, body FROM job_segments WHERE job_id = ? AND seq > ? ORDER BY seq",
                          (job_id, after))
        return [(r["seq"], json.loads(r["body"])) for r in rows]

    def job_version(self, job_id: str) -> JobVersion | None:
        rows = self._read(
            "SELECT status, cancel_requested, deleted, "
            "(SELECT COUNT(*) FROM job_segments WHERE job_id = jobs.id) AS segments FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        r = rows[0]
        return JobVersion(r["status"], bool(r["cancel_requested"]), bool(r["deleted"]), r["segments"])

    def wait_for_change(self, job_id: str, since: JobVersion | None, timeout: float) -> JobVersion | None:
        """In-process writes wake the waiter at once (every commit notifies); writes by other
        processes (`tft worker`) are seen by a slow poll every ``change_poll_seconds``."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._changes:
                generation = self._generation
            current = self.job_version(job_id)
            remaining = deadline - time.monotonic()
            if current != since or current is None or remaining <= 0:
                return current
            with self._changes:
                if self._generation == generation:
                    self._changes.wait(min(remaining, self.change_poll_seconds))

    def prune_segments(self, *, finished_before: float) -> int:
        """Published segments of jobs that ended before ``finished_before`` (or are gone)."""
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM job_segments WHERE job_id IN (SELECT s.job_id FROM job_segments s LEFT JOIN jobs j "
                "ON j.id = s.job_id WHERE j.id IS NULL OR (j.finished_at IS NOT NULL AND j.finished_at < ?))",
                (finished_before,)).rowcount
