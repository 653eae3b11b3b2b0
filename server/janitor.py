"""Deleting means gone: a job's files (its upload, its exports, the stem-cache entries it
used) are removed when it is deleted, cancelled, fails, or passes its retention.

``purge()`` is the one way a job's files go. The API calls it right after a DELETE, a worker
right after a failure or an acknowledged cancel, and the janitor for everything else
(retention, jobs failed by a reclaim, cancelled jobs whose worker died) and again for
anything a crash interrupted: a job is only marked purged after its files are gone.

Stem-cache entries are shared by content, so an entry is removed when the last job that
refers to it is purged. The janitor also removes files nothing refers to: an upload whose
request died before its job row was written, an export directory from an attempt that
lost its job, a cache entry written by a job that was cancelled before it could record it
(orphans.py finds them, for `tft store check` too). Uploads and exports sit in the blob
store (a directory, or S3); the stem cache is a directory (shared, or this node's own).
"""

from __future__ import annotations

import logging
import time
from typing import Iterable

from . import orphans
from .errors import ServerError
from .jobfiles import remove_job_files
from .settings import Settings
from .stems import remove_cache_file
from .store import Job, JobStore
from .supervisor import ServiceThread

log = logging.getLogger("tft.janitor")

ORPHAN_SWEEP_SECONDS = 60.0  # on S3: how often the janitor lists the bucket for orphans


def purge(store: JobStore, settings: Settings, job: Job, *, extra_cache: Iterable[str] = ()) -> None:
    """Remove every file of ``job``, then record it. ``extra_cache``: cache files the job used
    but never recorded (it was cancelled first); removed unless another job refers to them.
    A blob store that cannot be reached raises (BlobError): the job stays unpurged, and the
    janitor tries again."""
    remove_job_files(settings, job)
    stale = list(store.finish_purge(job.id))
    extra = [f for f in extra_cache if f not in store.referenced_cache_files()]
    for cache_file in stale + extra:
        remove_cache_file(settings, cache_file)  # never follows a recorded path out of the cache


class Janitor(ServiceThread):
    """Retention, cancelled jobs whose worker died, and the sweep for files nothing owns."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        super().__init__("janitor")
        self.store, self.settings = store, settings
        self.interval = settings.janitor_interval_seconds
        # Orphans are rare (a crash leaves them); listing a bucket is not free, a directory is.
        self.orphan_interval = max(self.interval, ORPHAN_SWEEP_SECONDS) if settings.blob_url else 0.0
        self._orphans_swept = 0.0

    def serve(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.sweep()
            except ServerError as exc:  # the database or the blob store is away: the next sweep tries again
                log.warning("janitor sweep put off: %s", exc)
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
        if time.monotonic() - self._orphans_swept >= self.orphan_interval:
            self.sweep_orphans()
            self._orphans_swept = time.monotonic()

    def sweep_orphans(self) -> None:
        grace = max(60.0, 4 * self.settings.lease_seconds)
        receiving = max(grace, 2 * self.settings.upload_idle_timeout_seconds)  # an upload still arriving is younger
        found = orphans.find(self.store, self.settings, upload_age=receiving, export_age=grace)
        if found:
            log.info("removing files no live job owns: %d upload(s), %d export set(s), %d cache file(s)",
                     len(found.uploads), len(found.exports), len(found.cache) + len(found.shared_cache))
        orphans.remove(self.settings, found)
        orphans.sweep_scratch(self.store, self.settings, receiving=receiving)
