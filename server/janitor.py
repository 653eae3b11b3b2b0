"""Deleting means gone: a job's files (its upload, its exports, the stem-cache entries it
used) are removed when it is deleted, cancelled, fails, or passes its retention.

``purge()`` is the one way a job's files go. The API calls it right after a DELETE, a worker
right after a failure or an acknowledged cancel, and the janitor for everything else
(retention, jobs failed by a reclaim, cancelled jobs whose worker died) and again for
anything a crash interrupted: a job is only marked purged after its files are gone.

Stem-cache entries are shared by content, so an entry is removed when the last job that
refers to it is purged. The janitor also removes files nothing refers to: an upload whose
request died before its job row was written, an export directory from an attempt that
lost its job, a cache entry written by a job that was cancelled before it could record it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Iterable

from .settings import Settings
from .store import Job, JobStore
from .supervisor import ServiceThread

log = logging.getLogger("tft.janitor")


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def purge(store: JobStore, settings: Settings, job: Job, *, extra_cache: Iterable[str] = ()) -> None:
    """Remove every file of ``job``, then record it. ``extra_cache``: cache files the job used
    but never recorded (it was cancelled first); removed unless another job refers to them."""
    _remove(Path(job.upload_path))
    if job.exports_dir:
        _remove(Path(job.exports_dir))
    exports = settings.exports_dir
    if exports.is_dir():
        for staging in exports.glob(f".{job.id}.*"):
            _remove(staging)
    orphans = list(store.finish_purge(job.id))
    extra = [f for f in extra_cache if f not in store.referenced_cache_files()]
    for cache_file in orphans + extra:
        path = Path(cache_file)
        if _inside(path, settings.cache_dir):  # never follow a recorded path out of the cache
            _remove(path)


class Janitor(ServiceThread):
    """Retention, cancelled jobs whose worker died, and the sweep for files nothing owns."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        super().__init__("janitor")
        self.store, self.settings = store, settings
        self.interval = settings.janitor_interval_seconds

    def serve(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.sweep()
            except Exception:
                log.exception("janitor sweep failed")

    def sweep(self) -> None:
        for job in self.store.expire_jobs():
            log.info("job %s: retention over, removing its files", job.id)
        self.store.sweep_cancelled()
        self.store.prune_segments(finished_before=time.time() - 3600)  # streamed segments outlive their stream
        while batch := self.store.jobs_to_purge():
            for job in batch:
                purge(self.store, self.settings, job)
        self.sweep_orphans()

    def sweep_orphans(self) -> None:
        grace = max(60.0, 4 * self.settings.lease_seconds)
        receiving = max(grace, 2 * self.settings.upload_idle_timeout_seconds)  # an upload still arriving is younger
        remove_orphan_uploads(self.store, self.settings.uploads_dir, older_than=receiving)
        remove_orphan_exports(self.store, self.settings.exports_dir, older_than=grace)
        remove_orphan_cache(self.store, self.settings.cache_dir)


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.lstat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def remove_orphan_uploads(store: JobStore, uploads: Path, *, older_than: float) -> int:
    """Uploads with no job to run them: the request died before the job row was written, or
    the job's files were already purged. (A file still being received is younger.)"""
    if not uploads.is_dir():
        return 0
    files = {p.name.split(".", 1)[0]: p for p in uploads.iterdir()}
    live = store.unpurged_job_ids(files)
    cutoff = time.time() - older_than
    removed = 0
    for job_id, path in files.items():
        if job_id not in live and _older(path, cutoff):
            _remove(path)
            removed += 1
    return removed


def remove_orphan_exports(store: JobStore, exports: Path, *, older_than: float) -> int:
    """Export directories no live job points at: staging left by a worker killed while
    writing, or an attempt's directory whose job went to another attempt."""
    if not exports.is_dir():
        return 0
    live = store.live_exports_dirs()
    cutoff = time.time() - older_than
    removed = 0
    for path in exports.iterdir():
        if str(path) in live or not _older(path, cutoff):
            continue
        _remove(path)
        removed += 1
    return removed


def remove_orphan_cache(store: JobStore, cache: Path) -> int:
    """Cache files no live job refers to, written before every job now running started (so
    not one a running job has just produced and will record when it finishes)."""
    if not cache.is_dir():
        return 0
    oldest = store.oldest_running_claim()
    cutoff = time.time() if oldest is None else oldest
    referenced = store.referenced_cache_files()
    removed = 0
    for root, dirs, files in os.walk(cache, topdown=False):
        for name in files:
            path = Path(root) / name
            if str(path) not in referenced and _older(path, cutoff):
                _remove(path)
                removed += 1
        for name in dirs:
            path = Path(root) / name
            try:
                if not any(path.iterdir()) and _older(path, cutoff):
                    path.rmdir()
            except OSError:
                continue
    return removed
