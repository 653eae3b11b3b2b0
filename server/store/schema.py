"""The tables, and the steps that bring an older database up to date.

Written once, in SQL both stores speak (no ``MAX(a, b)`` scalar, no ``INSERT OR``);
``postgres_ddl`` turns it into PostgreSQL's dialect (``REAL`` is 4 bytes there, so times
become ``DOUBLE PRECISION``; ``AUTOINCREMENT`` becomes an identity; ``WITHOUT ROWID`` goes).
The version lives in ``PRAGMA user_version`` on SQLite and in the ``tft_schema`` table on
PostgreSQL, where it is applied under an advisory lock (postgres.py).
"""

from __future__ import annotations

import re

# 2: job_segments (streaming); 3: attempt tokens, purge bookkeeping, cache_refs;
# 4: job_completions (one completion per job, by constraint) and one charge per job
SCHEMA_VERSION = 4

_ONCE = """
CREATE TABLE IF NOT EXISTS job_completions (  -- a job reaches done once: the primary key says so
    job_id TEXT PRIMARY KEY,
    attempt_token TEXT NOT NULL,              -- the attempt whose exports were published
    completed_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_one_charge ON ledger(job_id) WHERE reason = 'charge';
"""

_SEGMENTS = """
CREATE TABLE IF NOT EXISTS job_segments (    -- segments published while a job runs (streaming)
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,                    -- 0, 1, 2... in decoding order
    body TEXT NOT NULL,                      -- the segment as JSON
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
"""

TABLES = _SEGMENTS + """
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
    filename TEXT NOT NULL,         -- the client's name, sanitised: metadata, never a path
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
    deleted INTEGER NOT NULL DEFAULT 0,
    attempt_token TEXT,             -- fresh per claim; heartbeat/complete/fail/release name it
    claimed_at REAL,                -- when the current attempt was claimed
    purged_at REAL                  -- when upload, exports and cache references were removed
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user_id, deleted, created_at);
CREATE TABLE IF NOT EXISTS cache_refs (
    job_id TEXT NOT NULL,           -- a job that used this cache file (the stem cache)
    cache_file TEXT NOT NULL,       -- absolute path; removed when no live job refers to it
    PRIMARY KEY (job_id, cache_file)
);
CREATE INDEX IF NOT EXISTS cache_refs_file ON cache_refs(cache_file);
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
""" + _ONCE


# From version N to N + 1: 1 -> 2 added the streamed segments, 2 -> 3 attempt tokens, purge
# bookkeeping and the stem-cache references, 3 -> 4 the once-only constraints.
UPGRADES = {
    1: _SEGMENTS,
    2: """
ALTER TABLE jobs ADD COLUMN attempt_token TEXT;
ALTER TABLE jobs ADD COLUMN claimed_at REAL;
ALTER TABLE jobs ADD COLUMN purged_at REAL;
CREATE TABLE IF NOT EXISTS cache_refs (
    job_id TEXT NOT NULL,
    cache_file TEXT NOT NULL,
    PRIMARY KEY (job_id, cache_file)
);
CREATE INDEX IF NOT EXISTS cache_refs_file ON cache_refs(cache_file);
""",
    3: _ONCE,
}


def postgres_ddl(script: str) -> str:
    """The same tables in PostgreSQL's dialect."""
    script = script.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    script = script.replace(") WITHOUT ROWID;", ");")
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", script)


# PostgreSQL only: every change a waiter cares about is announced at commit. ``tft_job``
# carries the job id (status, cancellation, deletion, a published segment; heartbeats are
# not announced); ``tft_work`` says a job became claimable.
POSTGRES_NOTIFY = """
CREATE OR REPLACE FUNCTION tft_job_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
       OR NEW.cancel_requested IS DISTINCT FROM OLD.cancel_requested OR NEW.deleted IS DISTINCT FROM OLD.deleted THEN
        PERFORM pg_notify('tft_job', NEW.id);
        IF NEW.status = 'pending' THEN
            PERFORM pg_notify('tft_work', '');
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION tft_segment_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tft_job', NEW.job_id);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS jobs_notify ON jobs;
CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION tft_job_notify();
DROP TRIGGER IF EXISTS job_segments_notify ON job_segments;
CREATE TRIGGER job_segments_notify AFTER INSERT ON job_segments FOR EACH ROW EXECUTE FUNCTION tft_segment_notify();
"""
