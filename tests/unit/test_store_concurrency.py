"""8 processes x 500 writes on one SQLite file: no 'database is locked', exact counts, no double claims."""

import multiprocessing as mp
import sqlite3
import time

import pytest

from server.store import LeaseState, SQLiteStore

pytestmark = pytest.mark.slow
WRITERS, EACH = 8, 500


def _create(path, n, queue):
    try:
        store = SQLiteStore(path)
        user = store.get_user_by_name("shared")
        for i in range(n):
            store.create_job(job_id=f"{mp.current_process().pid}-{i}", user=user, filename="a.wav", upload_path="/x",
                             options={}, price=1, audio_duration=1.0, top_up_url=None)
        queue.put(("ok", n))
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put(("error", repr(exc)))


def _claim_and_finish(path, queue):
    try:
        store = SQLiteStore(path)
        worker = f"w{mp.current_process().pid}"
        claimed = []
        while (job := store.claim_job(worker, lease_seconds=600, max_attempts=3)) is not None:
            held = LeaseState.HELD
            assert store.heartbeat(job.id, job.attempt_token, lease_seconds=600, stage="transcribe", fraction=0.5) is held
            assert store.complete_job(job.id, job.attempt_token, result={"duration": 1.0}, exports_dir="/e",
                                      expires_at=0) is held
            claimed.append(job.id)
            time.sleep(0.001)  # a worker does some work between claims
        queue.put(("ok", claimed))
    except Exception as exc:
        queue.put(("error", repr(exc)))


def _run(target, args):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, queue)) for _ in range(WRITERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r for r in results if r[0] == "error"]
    assert not errors, errors
    return [r[1] for r in results]


def test_eight_writers_no_locks_exact_counts(tmp_path):
    path = tmp_path / "tft.sqlite3"
    store = SQLiteStore(path)
    user = store.ensure_user("shared", WRITERS * EACH + 7)
    created = _run(_create, (path, EACH))
    assert sum(created) == WRITERS * EACH
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == WRITERS * EACH
        assert conn.execute("SELECT credits FROM users WHERE id = ?", (user.id,)).fetchone()[0] == 7
        assert conn.execute("SELECT COUNT(*) FROM ledger WHERE reason = 'hold'").fetchone()[0] == WRITERS * EACH
    claims = _run(_claim_and_finish, (path,))
    flat = [job for batch in claims for job in batch]
    assert len(flat) == len(set(flat)) == WRITERS * EACH  # every job claimed exactly once
    assert sum(1 for batch in claims if batch) >= 2  # they really competed for the same rows
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'done'").fetchone()[0] == WRITERS * EACH
        assert conn.execute("SELECT COUNT(*) FROM ledger WHERE reason = 'charge'").fetchone()[0] == WRITERS * EACH
