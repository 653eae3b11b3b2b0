"""Deleting means gone: every way a job ends removes its files, and a stem-cache entry goes
with the last live job that used it. Real SQLite and PostgreSQL, real files, the real janitor sweep."""

import os
import time
from pathlib import Path

import pytest

from conftest import open_test_store

from server.janitor import Janitor, purge
from server.settings import Settings


@pytest.fixture
def env(tmp_path, store_spec):
    settings = Settings(data_dir=tmp_path / "data", retention_seconds=60)
    for d in (settings.uploads_dir, settings.exports_dir, settings.cache_dir / "stems"):
        d.mkdir(parents=True)
    store = open_test_store(("sqlite", str(settings.database)) if store_spec[0] == "sqlite" else store_spec)
    user = store.ensure_user("pia", None)
    yield settings, store, user
    store.close()


def _job(settings, store, user, job_id: str):
    upload = settings.uploads_dir / f"{job_id}.upload"
    upload.write_bytes(b"audio")
    store.create_job(job_id=job_id, user=user, filename="a.wav", upload_path=str(upload), options={}, price=0,
                     audio_duration=1.0, top_up_url=None)
    return upload


def _finish(settings, store, job_id: str, cache_files=(), expires_in: float = 60.0) -> Path:
    claimed = store.claim_job("w", lease_seconds=60, max_attempts=3)
    assert claimed.id == job_id
    exports = settings.exports_dir / f"{job_id}.{claimed.attempt_token}"
    exports.mkdir()
    (exports / "transcript.txt").write_text("words")
    store.complete_job(job_id, claimed.attempt_token, result={}, exports_dir=str(exports),
                       expires_at=time.time() + expires_in, cache_files=cache_files)
    return exports


def test_a_shared_cache_entry_goes_with_the_last_job_that_used_it(env):
    settings, store, user = env
    stem = settings.cache_dir / "stems" / "abc.npy"
    stem.write_bytes(b"vocals")
    up1, up2 = _job(settings, store, user, "j1"), _job(settings, store, user, "j2")
    ex1 = _finish(settings, store, "j1", [str(stem)])
    ex2 = _finish(settings, store, "j2", [str(stem)])
    assert store.referenced_cache_files() == {str(stem)}
    purge(store, settings, store.delete_job("j1", user.id))
    assert not up1.exists() and not ex1.exists() and stem.exists()  # j2 still uses the stem
    purge(store, settings, store.delete_job("j2", user.id))
    assert not up2.exists() and not ex2.exists() and not stem.exists()
    assert store.jobs_to_purge() == []


def test_retention_removes_upload_exports_and_cache(env):
    settings, store, user = env
    stem = settings.cache_dir / "stems" / "old.npy"
    stem.write_bytes(b"vocals")
    upload = _job(settings, store, user, "old")
    exports = _finish(settings, store, "old", [str(stem)], expires_in=-1)
    Janitor(store, settings).sweep()
    assert not upload.exists() and not exports.exists() and not stem.exists()
    job = store.get_job("old")
    assert job.exports_expired and job.purged_at is not None


def test_failed_swept_and_exhausted_jobs_lose_their_uploads(env):
    settings, store, user = env
    exhausted = _job(settings, store, user, "poison")
    for _ in range(3):  # each attempt's worker dies: the lease runs out
        store.claim_job("w", lease_seconds=-1, max_attempts=3)
    assert store.claim_job("w", lease_seconds=-1, max_attempts=3) is None
    assert store.get_job("poison").status.value == "error"
    swept = _job(settings, store, user, "cancelled")
    store.claim_job("w", lease_seconds=-1, max_attempts=3)
    store.delete_job("cancelled", user.id)  # its worker died before it could acknowledge
    Janitor(store, settings).sweep()
    assert store.get_job("cancelled").status.value == "cancelled"
    assert not exhausted.exists() and not swept.exists()


def test_the_sweep_removes_what_no_job_owns_but_not_what_a_running_job_just_wrote(env):
    settings, store, user = env
    old = time.time() - 3600
    orphan_upload = settings.uploads_dir / "0000.upload"  # the request died before its job row
    orphan_exports = settings.exports_dir / "gone.deadbeef"  # an attempt that lost its job
    orphan_staging = settings.exports_dir / ".gone.cafe.tmp"
    orphan_stem = settings.cache_dir / "stems" / "nobody.npy"
    for path in (orphan_upload, orphan_stem):
        path.write_bytes(b"x")
    for path in (orphan_exports, orphan_staging):
        path.mkdir()
    for path in (orphan_upload, orphan_exports, orphan_staging, orphan_stem):
        os.utime(path, (old, old))
    fresh_upload = settings.uploads_dir / "1111.upload"  # still being received
    fresh_upload.write_bytes(b"x")
    _job(settings, store, user, "running")
    store.claim_job("w", lease_seconds=60, max_attempts=3)
    being_written = settings.cache_dir / "stems" / "running.npy"  # the running job's, not yet recorded
    being_written.write_bytes(b"x")
    Janitor(store, settings).sweep()
    assert not orphan_upload.exists() and not orphan_exports.exists() and not orphan_staging.exists()
    assert not orphan_stem.exists()
    assert fresh_upload.exists() and being_written.exists()
    assert (settings.uploads_dir / "running.upload").exists()


def test_a_recorded_path_outside_the_cache_is_never_removed(env, tmp_path):
    settings, store, user = env
    precious = tmp_path / "precious.txt"
    precious.write_text("not a cache file")
    _job(settings, store, user, "j")
    _finish(settings, store, "j", [str(precious)])
    purge(store, settings, store.delete_job("j", user.id))
    assert precious.exists()


def test_the_data_directory_is_private(env):
    from server.datadir import prepare_data_dir

    settings, store, user = env
    os.chmod(settings.data_dir, 0o755)
    prepare_data_dir(settings)
    assert settings.data_dir.stat().st_mode & 0o777 == 0o700
    if store.kind != "sqlite":
        return
    assert settings.database.stat().st_mode & 0o777 == 0o600
    for suffix in ("-wal", "-shm"):
        assert Path(f"{settings.database}{suffix}").stat().st_mode & 0o777 == 0o600
