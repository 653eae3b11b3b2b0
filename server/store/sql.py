"""The job store's logic in SQL that SQLite and PostgreSQL both speak; the subclasses
(sqlite.py, postgres.py) supply connections, transactions and the row locks.

Job state machine::

    pending --claim--> processing --complete--> done --delete / retention--> (purged)
       |                  |   \\--fail / attempts exhausted--> error --> (purged)
       |                  |   \\--lease expires (worker died)--> reclaimed by claim (new token)
       \\--cancel--------- +--cancel (worker stops at its next checkpoint)--> cancelled --> (purged)

Each claim draws a fresh attempt token; every later step of that attempt is conditional on
it (``WHERE id = ? AND attempt_token = ?``), read under a row lock where the database has
them. Completion, its charge and its outbox rows are one transaction, and ``job_completions``
(one row per job, by primary key) makes a second completion impossible. Credits are held at
creation, kept on done, and refunded on error or cancellation; every movement is a ledger
row. Webhook deliveries are written in the same transaction as the state change that causes
them (an outbox).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from contextlib import AbstractContextManager
from typing import Any, Iterable

from ..errors import InsufficientCredits
from .records import Job, JobStatus, LeaseState, User
from .stats import ClaimStats
from .streaming_tables import StreamingTables
from .webhook_tables import WebhookTables

# Jobs whose files must go: ended (error, cancelled), or done and deleted or past retention.
_PURGEABLE = ("purged_at IS NULL AND (status IN ('error', 'cancelled') OR "
              "(status = 'done' AND (deleted = 1 OR (exports_expire_at IS NOT NULL AND exports_expire_at <= ?))))")


def _now() -> float:
    return time.time()


class SQLStore(WebhookTables, StreamingTables):
    """The JobStore methods, over ``_write()`` (a transaction), ``_read()`` and ``_snapshot()``
    (a consistent read of several statements). ``?`` marks parameters in both dialects."""

    _lock = ""  # appended to a SELECT whose rows the transaction goes on to change (" FOR UPDATE")
    _skip_locked = ""  # appended to a claim's SELECT (" FOR UPDATE SKIP LOCKED")
    idle_poll_seconds = 0.5  # an idle worker claims again at least this often, woken or not

    def __init__(self) -> None:
        self._changes = threading.Condition()
        self._generation = 0  # bumped by every write this process commits (wait_for_change)
        # Bumped when a job may have become claimable: by PostgreSQL's NOTIFY. SQLite leaves it
        # alone: its workers claim every idle_poll_seconds, as they always have.
        self._work = 0
        self.stats = ClaimStats()  # this process's claims, for /metrics

    def _write(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _read(self, sql: str, params: tuple = ()) -> list:
        raise NotImplementedError

    def _snapshot(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _committed(self) -> None:
        """Wake this process's waiters after a commit."""
        with self._changes:
            self._generation += 1
            self._changes.notify_all()

    def ping(self) -> None:
        """Raise unless the database answers (for /healthz)."""
        self._read("SELECT 1")

    def work_generation(self) -> int:
        with self._changes:
            return self._work

    def wait_for_work(self, since: int, timeout: float) -> int:
        """Block until a job may have become claimable since ``since`` (a value of
        ``work_generation``) or ``timeout`` passes; return the current generation."""
        with self._changes:
            if self._work == since:
                self._changes.wait(timeout)
            return self._work

    # -- users and tokens ------------------------------------------------------------------

    def ensure_user(self, name: str, credits: int | None) -> User:
        with self._write() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                user_id = uuid.uuid4().hex
                # Two nodes may add the same user at once: the second insert does nothing.
                added = conn.execute("INSERT INTO users (id, name, credits, created_at) VALUES (?, ?, ?, ?) "
                                     "ON CONFLICT (name) DO NOTHING", (user_id, name, credits, _now())).rowcount == 1
                if added and credits:
                    conn.execute("INSERT INTO ledger (user_id, delta, reason, created_at) VALUES (?, ?, 'initial', ?)",
                                 (user_id, credits, _now()))
                row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
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

    # -- jobs, as the API sees them ---------------------------------------------------------

    def create_job(self, *, job_id: str, user: User, filename: str, upload_path: str, options: dict,
                   price: int, audio_duration: float | None, top_up_url: str | None) -> Job:
        now = _now()
        with self._write() as conn:
            row = conn.execute(f"SELECT credits FROM users WHERE id = ?{self._lock}", (user.id,)).fetchone()
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
        offset = min(offset, 2**62)  # integers are 64-bit; a huge page is simply empty
        if status is not None:
            where += " AND status = ?"
            params += (status,)
        with self._snapshot() as conn:  # one snapshot for the page and the total
            total = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params).fetchone()[0]
            rows = conn.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                                params + (limit, offset)).fetchall()
        return [Job.from_row(r) for r in rows], total

    def delete_job(self, job_id: str, user_id: str) -> Job | None:
        """DELETE semantics: pending/processing jobs are cancelled for real (credits refunded,
        the worker stops at its next checkpoint); finished jobs are marked deleted. Returns
        the job as it was, or None when the user has no such job."""
        now = _now()
        with self._write() as conn:
            row = conn.execute(f"SELECT * FROM jobs WHERE id = ? AND user_id = ? AND deleted = 0{self._lock}",
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
                               f"AND status IN ('pending', 'processing'){self._lock}", (job_id, user_id)).fetchone()
            if row is None:
                return None
            job = Job.from_row(row)
            status = "cancelled" if job.status is JobStatus.PENDING else "processing"
            conn.execute("UPDATE jobs SET cancel_requested = 1, deleted = 1, status = ?, updated_at = ? WHERE id = ?",
                         (status, now, job_id))
            self._refund(conn, job, "refund: cancelled", now)
            return job

    def queue_depth(self) -> dict[str, int]:
        rows = self._read("SELECT status, COUNT(*) AS n FROM jobs WHERE deleted = 0 GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def job_counts(self, user_id: str) -> dict[str, int]:
        rows = self._read("SELECT status, COUNT(*) AS n FROM jobs WHERE user_id = ? AND deleted = 0 GROUP BY status",
                          (user_id,))
        return {r["status"]: r["n"] for r in rows}

    # -- one attempt of a job ---------------------------------------------------------------

    def claim_job(self, worker_id: str, *, lease_seconds: float, max_attempts: int) -> Job | None:
        started = time.perf_counter()
        job = self._claim(worker_id, lease_seconds=lease_seconds, max_attempts=max_attempts)
        self.stats.record(time.perf_counter() - started, job)
        return job

    def _claim(self, worker_id: str, *, lease_seconds: float, max_attempts: int) -> Job | None:
        """Take the oldest pending job, or one whose worker's lease ran out (it died), under a
        fresh attempt token.

        A reclaimed job that has already used ``max_attempts`` is failed instead, so a file
        that crashes its worker every time ends in ``error`` rather than looping; so is a row
        that cannot be read back (it must not stop the queue behind it).
        """
        while True:
            now = _now()
            with self._write() as conn:
                row = conn.execute(
                    "SELECT * FROM jobs WHERE deleted = 0 AND cancel_requested = 0 AND "
                    "(status = 'pending' OR (status = 'processing' AND lease_expires < ?)) "
                    f"ORDER BY created_at, id LIMIT 1{self._skip_locked}", (now,)).fetchone()
                if row is None:
                    return None
                try:
                    job = Job.from_row(row)
                except (ValueError, TypeError, KeyError):
                    conn.execute("UPDATE jobs SET status = 'error', error_code = 'internal_error', error_message = ?, "
                                 "finished_at = ?, updated_at = ?, lease_owner = NULL, lease_expires = NULL WHERE id = ?",
                                 ("the job's record is damaged and cannot be run", now, now, row["id"]))
                    continue
                if job.status is JobStatus.PROCESSING and job.attempts >= max_attempts:
                    self._finish_error(conn, job, "worker_crashed",
                                       f"the worker processing this file stopped unexpectedly {job.attempts} times; "
                                       "the file may be triggering a crash, so it will not be retried", now)
                    continue
                token = secrets.token_hex(16)
                return Job.from_row(conn.execute(
                    "UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_owner = ?, lease_expires = ?, "
                    "attempt_token = ?, claimed_at = ?, started_at = COALESCE(started_at, ?), updated_at = ?, "
                    "progress_stage = 'queued', progress_fraction = 0 WHERE id = ? RETURNING *",
                    (worker_id, now + lease_seconds, token, now, now, now, job.id)).fetchone())

    def _hold(self, conn, job_id: str, token: str) -> tuple[Job | None, LeaseState]:
        """Whether this attempt still holds the job (read, and locked where the database locks
        rows, inside the caller's transaction)."""
        row = conn.execute(f"SELECT * FROM jobs WHERE id = ?{self._lock}", (job_id,)).fetchone()
        if row is None or row["attempt_token"] != token or row["status"] != "processing":
            return None, LeaseState.LOST
        job = Job.from_row(row)
        return job, (LeaseState.CANCELLED if job.cancel_requested else LeaseState.HELD)

    def heartbeat(self, job_id: str, token: str, *, lease_seconds: float, stage: str | None,
                  fraction: float) -> LeaseState:
        """Extend this attempt's lease and record progress, while the attempt holds the job
        (a cancelled one too: its worker is alive and removes the files at its next checkpoint,
        so the janitor must not close it under the worker)."""
        now = _now()
        with self._write() as conn:
            _, state = self._hold(conn, job_id, token)
            if state is not LeaseState.LOST:
                conn.execute(
                    "UPDATE jobs SET lease_expires = ?, progress_stage = COALESCE(?, progress_stage), "
                    "progress_fraction = ?, updated_at = ? WHERE id = ? AND attempt_token = ?",
                    (now + lease_seconds, stage, fraction, now, job_id, token))
            return state

    def complete_job(self, job_id: str, token: str, *, result: dict, exports_dir: str, expires_at: float,
                     cache_files: Iterable[str] = ()) -> LeaseState:
        """Publish this attempt's exports and mark the job done, charging its credits and
        recording the cache files it used; nothing changes unless the attempt holds the job."""
        now = _now()
        with self._write() as conn:
            job, state = self._hold(conn, job_id, token)
            if state is not LeaseState.HELD:
                return state
            conn.execute(
                "UPDATE jobs SET status = 'done', result = ?, exports_dir = ?, exports_expire_at = ?, finished_at = ?, "
                "updated_at = ?, progress_stage = 'done', progress_fraction = 1, lease_owner = NULL, "
                "lease_expires = NULL, credits_charged = credits_quoted, audio_duration = COALESCE(?, audio_duration), "
                "error_code = NULL, error_message = NULL WHERE id = ? AND attempt_token = ?",
                (json.dumps(result), exports_dir, expires_at, now, now, result.get("duration"), job_id, token))
            conn.execute("INSERT INTO job_completions (job_id, attempt_token, completed_at) VALUES (?, ?, ?)",
                         (job_id, token, now))
            for path in dict.fromkeys(cache_files):
                conn.execute("INSERT INTO cache_refs (job_id, cache_file) VALUES (?, ?)", (job_id, path))
            if job.credits_quoted:
                conn.execute("INSERT INTO ledger (user_id, job_id, delta, reason, created_at) VALUES (?, ?, 0, 'charge', ?)",
                             (job.user_id, job_id, now))
            self._enqueue_events(conn, user_id=job.user_id, job_id=job_id, event="job.done", now=now)
            return LeaseState.HELD

    def _refund(self, conn: Any, job: Job, reason: str, now: float) -> None:
        if job.credits_quoted and job.credits_charged == 0:
            conn.execute("UPDATE users SET credits = credits + ? WHERE id = ? AND credits IS NOT NULL",
                         (job.credits_quoted, job.user_id))
            conn.execute("INSERT INTO ledger (user_id, job_id, delta, reason, created_at) VALUES (?, ?, ?, ?, ?)",
                         (job.user_id, job.id, job.credits_quoted, reason, now))
            conn.execute("UPDATE jobs SET credits_quoted = 0 WHERE id = ?", (job.id,))

    def _finish_error(self, conn: Any, job: Job, code: str, message: str, now: float) -> None:
        conn.execute(
            "UPDATE jobs SET status = 'error', error_code = ?, error_message = ?, finished_at = ?, updated_at = ?, "
            "lease_owner = NULL, lease_expires = NULL WHERE id = ?", (code, message, now, now, job.id))
        self._refund(conn, job, "refund: error", now)
        self._enqueue_events(conn, user_id=job.user_id, job_id=job.id, event="job.error", now=now)

    @staticmethod
    def _close_cancelled(conn: Any, job_id: str, now: float) -> None:
        """A cancelled job ends as cancelled whatever its worker was doing: no job.error, no
        requeue (its credits were refunded when it was cancelled)."""
        conn.execute("UPDATE jobs SET status = 'cancelled', lease_owner = NULL, lease_expires = NULL, "
                     "finished_at = ?, updated_at = ? WHERE id = ? AND cancel_requested = 1", (now, now, job_id))

    def fail_job(self, job_id: str, token: str, *, code: str, message: str) -> LeaseState:
        now = _now()
        with self._write() as conn:
            job, state = self._hold(conn, job_id, token)
            if state is LeaseState.CANCELLED:
                self._close_cancelled(conn, job_id, now)
            elif state is LeaseState.HELD:
                self._finish_error(conn, job, code, message, now)
            return state

    def release_job(self, job_id: str, token: str) -> LeaseState:
        """Give a job back unfinished (graceful shutdown): pending again, the attempt not counted."""
        now = _now()
        with self._write() as conn:
            _, state = self._hold(conn, job_id, token)
            if state is LeaseState.CANCELLED:
                self._close_cancelled(conn, job_id, now)
            elif state is LeaseState.HELD:
                conn.execute(
                    "UPDATE jobs SET status = 'pending', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, "
                    "lease_owner = NULL, lease_expires = NULL, attempt_token = NULL, progress_stage = 'queued', "
                    "progress_fraction = 0, updated_at = ? WHERE id = ? AND attempt_token = ?", (now, job_id, token))
        return state

    def acknowledge_cancel(self, job_id: str, token: str) -> bool:
        now = _now()
        with self._write() as conn:
            _, state = self._hold(conn, job_id, token)
            if state is LeaseState.CANCELLED:
                self._close_cancelled(conn, job_id, now)
            return state is LeaseState.CANCELLED

    # -- housekeeping -----------------------------------------------------------------------

    def expire_jobs(self, now: float | None = None) -> list[Job]:
        """Mark done jobs whose retention ran out (their exports answer 410 from now on)."""
        now = _now() if now is None else now
        with self._write() as conn:  # RETURNING: two janitors never both expire the same job
            rows = conn.execute("UPDATE jobs SET exports_expired = 1 WHERE status = 'done' AND exports_expired = 0 AND "
                                "exports_expire_at IS NOT NULL AND exports_expire_at <= ? RETURNING *", (now,)).fetchall()
        return [Job.from_row(r) for r in rows]

    def sweep_cancelled(self) -> int:
        """Cancelled jobs whose worker died before acknowledging: close them."""
        now = _now()
        with self._write() as conn:
            return conn.execute("UPDATE jobs SET status = 'cancelled', lease_owner = NULL, finished_at = ?, "
                                "updated_at = ? WHERE cancel_requested = 1 AND status = 'processing' AND "
                                "(lease_expires IS NULL OR lease_expires < ?)", (now, now, now)).rowcount

    def jobs_to_purge(self, now: float | None = None, limit: int = 200) -> list[Job]:
        """Jobs whose files (upload, exports, cache references) must be removed now."""
        now = _now() if now is None else now
        rows = self._read(f"SELECT * FROM jobs WHERE {_PURGEABLE} ORDER BY updated_at LIMIT ?", (now, limit))
        return [Job.from_row(r) for r in rows]

    def finish_purge(self, job_id: str) -> list[str]:
        """Record that a job's files are gone and drop its cache references; returns the cache
        files no other job refers to any more (the caller removes them)."""
        with self._write() as conn:
            files = [r["cache_file"] for r in conn.execute("SELECT cache_file FROM cache_refs WHERE job_id = ?",
                                                           (job_id,))]
            conn.execute("DELETE FROM cache_refs WHERE job_id = ?", (job_id,))
            orphans = [f for f in files
                       if conn.execute("SELECT COUNT(*) FROM cache_refs WHERE cache_file = ?", (f,)).fetchone()[0] == 0]
            conn.execute("UPDATE jobs SET purged_at = COALESCE(purged_at, ?) WHERE id = ?", (_now(), job_id))
            return orphans

    def referenced_cache_files(self) -> set[str]:
        return {r["cache_file"] for r in self._read("SELECT DISTINCT cache_file FROM cache_refs")}

    def live_exports_dirs(self) -> set[str]:
        rows = self._read("SELECT exports_dir FROM jobs WHERE exports_dir IS NOT NULL AND purged_at IS NULL")
        return {r["exports_dir"] for r in rows}

    def unpurged_job_ids(self, job_ids: Iterable[str]) -> set[str]:
        ids = list(job_ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            found |= {r["id"] for r in self._read(f"SELECT id FROM jobs WHERE purged_at IS NULL AND id IN ({marks})",
                                                  tuple(chunk))}
        return found

    def unfinished_jobs(self, limit: int = 10_000) -> list[Job]:
        """Pending and processing jobs, oldest first (``tft store check`` looks for stuck ones)."""
        rows = self._read("SELECT * FROM jobs WHERE status IN ('pending', 'processing') AND deleted = 0 "
                          "ORDER BY created_at LIMIT ?", (limit,))
        return [Job.from_row(r) for r in rows]

    def oldest_running_claim(self) -> float | None:
        row = self._read("SELECT MIN(claimed_at) AS t FROM jobs WHERE status = 'processing'")
        return row[0]["t"] if row else None
