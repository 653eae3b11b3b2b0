"""A worker whose blob store does not answer gives the job back to the queue (not lost, not
charged, no traceback); one whose upload is gone fails it with a sentence and a refund.
A real SQLite store and boto3 against a port where nothing listens."""

from __future__ import annotations

import logging

import pytest

from server.settings import Settings
from server.store import JobStatus, SQLiteStore
from server.worker import EngineContext, Worker


@pytest.fixture
def s3_settings(tmp_path, monkeypatch):
    from harness import free_port

    for name, value in (("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("server.worker.STORAGE_RETRY_SECONDS", 0.1)
    return Settings(data_dir=tmp_path / "node", blob_url="s3://studio/tft", s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
                    lease_seconds=30)


def _claimed(settings, location: str):
    store = SQLiteStore(settings.database)
    user = store.ensure_user("pia", 5)
    store.create_job(job_id="job-1", user=user, filename="song.mp3", upload_path=location, options={}, price=1,
                     audio_duration=1.0, top_up_url=None)
    return store, store.claim_job("w", lease_seconds=30, max_attempts=3)


def test_storage_that_does_not_answer_puts_the_job_back(s3_settings, caplog):
    s3_settings.data_dir.mkdir(parents=True)
    store, job = _claimed(s3_settings, "s3://studio/tft/uploads/job-1.upload")
    worker = Worker(store, s3_settings, EngineContext(s3_settings), name="worker-0")
    with caplog.at_level(logging.WARNING, logger="tft.worker"):
        worker.process(job)
    back = store.get_job("job-1")
    assert back.status is JobStatus.PENDING and back.attempts == 0 and back.attempt_token is None
    assert store.get_user(job.user_id).credits == 4  # still held for the job, not charged, not refunded
    assert "could not fetch its upload" in caplog.text and "giving it back to the queue" in caplog.text
    assert "Traceback" not in caplog.text


def test_an_upload_that_is_not_in_the_store_fails_the_job_with_a_sentence(tmp_path):
    settings = Settings(data_dir=tmp_path / "node")
    settings.data_dir.mkdir(parents=True)
    store, job = _claimed(settings, str(settings.uploads_dir / "job-1.upload"))  # never written
    Worker(store, settings, EngineContext(settings), name="worker-0").process(job)
    failed = store.get_job("job-1")
    assert failed.status is JobStatus.ERROR and failed.error_code == "upload_missing"
    assert failed.error_message == "the uploaded file 'song.mp3' is no longer in storage; submit it again"
    assert store.get_user(job.user_id).credits == 5  # refunded
