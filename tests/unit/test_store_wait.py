"""Waiting for a job to change, on the real SQLite store and on PostgreSQL: woken at once by
writes in this process, by writes from another process within the slow poll (SQLite) or at
once by NOTIFY (PostgreSQL), never by busy polling; and published segments (what a streamed
/v1 response relays)."""

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from server.store import JobStore, JobVersion, LeaseState

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(job_store):
    return job_store


def _job(store: JobStore, tmp_path: Path):
    user = store.ensure_user("wanda", None)
    job = store.create_job(job_id="11111111-1111-4111-8111-111111111111", user=user, filename="a.wav",
                           upload_path=str(tmp_path / "a.upload"), options={"stream": True}, price=1,
                           audio_duration=3.0, top_up_url=None)
    return user, job


def test_a_write_in_this_process_wakes_the_waiter_at_once(store, tmp_path):
    store.change_poll_seconds = 30.0  # so only the in-process wake-up can explain a quick return
    user, job = _job(store, tmp_path)
    first = store.wait_for_change(job.id, None, 1.0)
    assert first == JobVersion("pending", False, False, 0) and not first.finished
    woke: dict = {}

    def waiter():
        started = time.monotonic()
        woke["version"] = store.wait_for_change(job.id, first, 20.0)
        woke["after"] = time.monotonic() - started

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    claimed = store.claim_job("w1", lease_seconds=30, max_attempts=3)
    t.join(5)
    assert claimed.id == job.id and woke["version"].status == "processing"
    assert 0.25 < woke["after"] < 1.5

    # a heartbeat is not a change worth waking for; a published segment is
    token = claimed.attempt_token
    assert store.heartbeat(job.id, token, lease_seconds=30, stage="transcribe", fraction=0.5) is LeaseState.HELD
    version = store.job_version(job.id)
    assert store.wait_for_change(job.id, version, 0.2) == version  # timed out, unchanged
    assert store.publish_segment(job.id, token, 0, {"id": 0, "text": "hello"})
    assert store.wait_for_change(job.id, version, 5.0).segments == 1


def test_a_write_from_another_process_is_seen_within_the_poll(store, store_spec, tmp_path):
    """SQLite polls (0.5 s here); PostgreSQL is told by NOTIFY, so its poll is set out of reach."""
    store.change_poll_seconds = 0.5 if store_spec[0] == "sqlite" else 60.0
    user, job = _job(store, tmp_path)
    version = store.job_version(job.id)
    written = tmp_path / "written"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / "tests")!r})
        from conftest import open_test_store
        store = open_test_store({store_spec!r})
        time.sleep(0.5)
        store.claim_job("other-process", lease_seconds=30, max_attempts=3)
        open({str(written)!r}, "w").write(repr(time.time()))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    started = time.monotonic()
    changed = store.wait_for_change(job.id, version, 30.0)
    seen_at = time.time()
    waited = time.monotonic() - started
    proc.wait(30)
    assert changed.status == "processing"
    assert waited < 0.5 + 3.0  # the other process's start-up, its write, and at most one poll
    if store_spec[0] == "postgres":  # woken by the notification, not by a poll
        assert seen_at - float(written.read_text()) < 0.5


def test_publishing_is_idempotent_and_only_for_the_lease_holder(store, tmp_path):
    user, job = _job(store, tmp_path)
    assert not store.publish_segment(job.id, "", 0, {"text": "too early"})  # pending: nobody holds it
    token = store.claim_job("w1", lease_seconds=30, max_attempts=3).attempt_token
    assert not store.publish_segment(job.id, "intruder", 0, {"text": "not mine"})
    assert store.publish_segment(job.id, token, 0, {"text": "one"})
    assert store.publish_segment(job.id, token, 1, {"text": "two"})
    assert not store.publish_segment(job.id, token, 1, {"text": "two, again (a retried attempt)"})
    assert store.job_segments(job.id) == [(0, {"text": "one"}), (1, {"text": "two"})]
    assert store.job_segments(job.id, after=0) == [(1, {"text": "two"})]


def test_cancel_job_refunds_and_leaves_finished_jobs_alone(store, tmp_path):
    user = store.ensure_user("carl", 3)
    job = store.create_job(job_id="22222222-2222-4222-8222-222222222222", user=user, filename="a.wav",
                           upload_path="x", options={}, price=1, audio_duration=1.0, top_up_url=None)
    assert store.get_user(user.id).credits == 2
    store.claim_job("w1", lease_seconds=30, max_attempts=3)
    before = store.cancel_job(job.id, user.id)
    assert before.status.value == "processing" and store.get_user(user.id).credits == 3
    assert store.job_version(job.id).cancel_requested
    assert store.cancel_job(job.id, user.id) is None  # already cancelled: no second refund
    assert store.get_user(user.id).credits == 3
    done = store.create_job(job_id="33333333-3333-4333-8333-333333333333", user=user, filename="b.wav",
                            upload_path="y", options={}, price=1, audio_duration=1.0, top_up_url=None)
    token = store.claim_job("w2", lease_seconds=30, max_attempts=3).attempt_token
    assert store.complete_job(done.id, token, result={}, exports_dir="e", expires_at=time.time() + 60) is LeaseState.HELD
    assert store.cancel_job(done.id, user.id) is None and store.get_job(done.id).status.value == "done"


def test_segments_of_long_finished_jobs_are_pruned(store, tmp_path):
    user, job = _job(store, tmp_path)
    token = store.claim_job("w1", lease_seconds=30, max_attempts=3).attempt_token
    store.publish_segment(job.id, token, 0, {"text": "x"})
    store.complete_job(job.id, token, result={}, exports_dir="e", expires_at=time.time() + 60)
    assert store.prune_segments(finished_before=time.time() - 3600) == 0
    assert store.prune_segments(finished_before=time.time() + 1) == 1
    assert store.job_segments(job.id) == []
