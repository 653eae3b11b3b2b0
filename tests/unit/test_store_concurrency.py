"""8 processes x 500 writes on one store (a SQLite file; a PostgreSQL database): no 'database
is locked', exact counts and credits, no double claims, one completion and one charge per job."""

import multiprocessing as mp
import time

import pytest
from conftest import open_test_store

from server.store import LeaseState

pytestmark = pytest.mark.slow
WRITERS, EACH = 8, 500


def _create(spec, n, queue):
    try:
        store = open_test_store(spec)
        user = store.get_user_by_name("shared")
        for i in range(n):
            store.create_job(job_id=f"{mp.current_process().pid}-{i}", user=user, filename="a.wav", upload_path="/x",
                             options={}, price=1, audio_duration=1.0, top_up_url=None)
        queue.put(("ok", n))
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put(("error", repr(exc)))


def _claim_and_finish(spec, queue):
    try:
        store = open_test_store(spec)
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


def _count(store, sql: str, params: tuple = ()) -> int:
    return store._read(sql, params)[0][0]


def test_eight_writers_no_locks_exact_counts(store_spec, job_store):
    store = job_store
    user = store.ensure_user("shared", WRITERS * EACH + 7)
    created = _run(_create, (store_spec, EACH))
    assert sum(created) == WRITERS * EACH
    assert _count(store, "SELECT COUNT(*) FROM jobs") == WRITERS * EACH
    assert store.get_user(user.id).credits == 7
    assert _count(store, "SELECT COUNT(*) FROM ledger WHERE reason = 'hold'") == WRITERS * EACH
    claims = _run(_claim_and_finish, (store_spec,))
    flat = [job for batch in claims for job in batch]
    assert len(flat) == len(set(flat)) == WRITERS * EACH  # every job claimed exactly once
    assert sum(1 for batch in claims if batch) >= 2  # they really competed for the same rows
    assert _count(store, "SELECT COUNT(*) FROM jobs WHERE status = 'done'") == WRITERS * EACH
    assert _count(store, "SELECT COUNT(*) FROM ledger WHERE reason = 'charge'") == WRITERS * EACH
    assert _count(store, "SELECT COUNT(*) FROM job_completions") == WRITERS * EACH


def test_credits_never_go_below_zero(store_spec, job_store):
    """8 processes submit 500 jobs between them against a balance of 37: exactly 37 are
    accepted, the rest refused (402's InsufficientCredits), and the balance ends at 0."""
    store = job_store
    user = store.ensure_user("tight", 37)
    results = _run(_spend, (store_spec, 500 // WRITERS))
    accepted = sum(ok for ok, _ in results)
    refused = sum(no for _, no in results)
    assert accepted == 37 and refused == WRITERS * (500 // WRITERS) - 37
    assert store.get_user(user.id).credits == 0
    assert _count(store, "SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE user_id = ?", (user.id,)) == 0


def _spend(spec, n, queue):
    from server.errors import InsufficientCredits

    try:
        store = open_test_store(spec)
        user = store.get_user_by_name("tight")
        ok = no = 0
        for i in range(n):
            try:
                store.create_job(job_id=f"{mp.current_process().pid}-{i}", user=user, filename="a.wav",
                                 upload_path="/x", options={}, price=1, audio_duration=1.0, top_up_url=None)
                ok += 1
            except InsufficientCredits:
                no += 1
        queue.put(("ok", (ok, no)))
    except Exception as exc:
        queue.put(("error", repr(exc)))


def test_a_second_completion_is_refused_by_the_constraint(job_store):
    """Even written straight into the table (as a buggy path might), a second completion of
    the same job cannot commit."""
    store = job_store
    user = store.ensure_user("once", None)
    store.create_job(job_id="once-1", user=user, filename="a.wav", upload_path="/x", options={}, price=1,
                     audio_duration=1.0, top_up_url=None)
    job = store.claim_job("w", lease_seconds=60, max_attempts=3)
    assert store.complete_job(job.id, job.attempt_token, result={}, exports_dir="/e", expires_at=0) is LeaseState.HELD
    assert store.complete_job(job.id, job.attempt_token, result={}, exports_dir="/e", expires_at=0) is LeaseState.LOST
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        with store._write() as conn:
            conn.execute("INSERT INTO job_completions (job_id, attempt_token, completed_at) VALUES (?, ?, ?)",
                         (job.id, "another-attempt", 0.0))
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        with store._write() as conn:
            conn.execute("INSERT INTO ledger (user_id, job_id, delta, reason, created_at) VALUES (?, ?, 0, 'charge', 0)",
                         (user.id, job.id))
    assert _count(store, "SELECT COUNT(*) FROM job_completions WHERE job_id = ?", (job.id,)) == 1


def test_the_webhook_outbox_is_claimed_once_per_attempt(job_store):
    """Eight dispatchers (threads, each its own connection on PostgreSQL) drain 200 outbox
    rows: every delivery is claimed by exactly one of them and recorded once."""
    import threading

    store = job_store
    user = store.ensure_user("hooked", None)
    store.add_webhook(user_id=user.id, url="http://127.0.0.1:9/hook", secret="s", events=["job.done"], limit=5)
    for i in range(200):
        store.create_job(job_id=f"hook-{i}", user=user, filename="a.wav", upload_path="/x", options={}, price=0,
                         audio_duration=1.0, top_up_url=None)
        job = store.claim_job("w", lease_seconds=60, max_attempts=3)
        store.complete_job(job.id, job.attempt_token, result={}, exports_dir="/e", expires_at=0)
    claimed: list[str] = []
    recorded: list[bool] = []
    lock = threading.Lock()

    def dispatch(name: str) -> None:
        while (delivery := store.claim_delivery(name, lease_seconds=60)) is not None:
            ok = store.delivery_succeeded(delivery, 204)
            with lock:
                claimed.append(delivery.id)
                recorded.append(ok)

    threads = [threading.Thread(target=dispatch, args=(f"d{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 200 and all(recorded)
    assert _count(store, "SELECT COUNT(*) FROM deliveries WHERE status = 'delivered' AND attempts = 1") == 200
