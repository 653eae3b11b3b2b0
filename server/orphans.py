"""Files no live job owns: found the same way by the janitor (which removes them) and by
`tft store check` (which reports them).

- an upload whose request died before its job row was written, or whose job was purged;
- an export set no live job points at: a crashed attempt's staging, or the set of an
  attempt that lost its job to another;
- a stem-cache file no live job refers to, written before every job now running started
  (so not one a running job has just produced and will record when it finishes);
- in this node's scratch space: an upload still being received long after the request
  died, a fetched upload of an attempt this node no longer runs, a staged set left by a
  crash.

Ages come from the store itself (a file's or an object's last change), so an upload still
arriving, or a set being written, is never taken.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .blobs import blob_store
from .jobfiles import FETCHED, INCOMING, STAGING
from .settings import Settings
from .stems import PREFIX, cache_ref
from .store import JobStore

STAGING_MAX_AGE_SECONDS = 3600.0  # a set is staged for the seconds it takes to upload it


@dataclass(frozen=True)
class Orphans:
    uploads: tuple[str, ...]  # blob keys
    exports: tuple[str, ...]  # keys of export sets
    cache: tuple[Path, ...]  # this node's stem cache
    shared_cache: tuple[str, ...] = ()  # keys of stems shared through S3
    cache_cutoff: float = 0.0  # an empty cache directory older than this goes too

    def __bool__(self) -> bool:
        return bool(self.uploads or self.exports or self.cache or self.shared_cache)


def _uploads(store: JobStore, settings: Settings, cutoff: float) -> list[str]:
    entries = blob_store(settings).children("uploads/")
    owners = {e.key: e.key.rsplit("/", 1)[1].split(".", 1)[0] for e in entries}
    live = store.unpurged_job_ids(set(owners.values()))
    return [e.key for e in entries if owners[e.key] not in live and e.modified < cutoff]


def _exports(store: JobStore, settings: Settings, cutoff: float) -> list[str]:
    blobs = blob_store(settings)
    live = store.live_exports_dirs()
    return [e.key for e in blobs.children("exports/") if blobs.location(e.key) not in live and e.modified < cutoff]


def _cache(store: JobStore, settings: Settings, cutoff: float) -> list[Path]:
    cache = settings.cache_dir
    if not cache.is_dir():
        return []
    referenced = store.referenced_cache_files()
    found = []
    for root, _, names in os.walk(cache):
        for name in names:
            path = Path(root) / name
            if cache_ref(settings, str(path)) not in referenced and _older(path, cutoff):
                found.append(path)
    return sorted(found)


def _shared_cache(store: JobStore, settings: Settings, cutoff: float) -> list[str]:
    if not settings.blob_url:
        return []  # the cache directory is the shared one
    blobs = blob_store(settings)
    referenced = store.referenced_cache_files()
    return [e.key for e in blobs.entries(PREFIX) if blobs.location(e.key) not in referenced and e.modified < cutoff]


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.lstat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def find(store: JobStore, settings: Settings, *, upload_age: float, export_age: float) -> Orphans:
    now = time.time()
    oldest = store.oldest_running_claim()
    cutoff = now if oldest is None else oldest
    return Orphans(tuple(_uploads(store, settings, now - upload_age)),
                   tuple(_exports(store, settings, now - export_age)),
                   tuple(_cache(store, settings, cutoff)), tuple(_shared_cache(store, settings, cutoff)), cutoff)


def remove(settings: Settings, orphans: Orphans) -> None:
    blobs = blob_store(settings)
    for key in orphans.uploads:
        blobs.delete(key)
    for key in orphans.exports:
        blobs.delete_prefix(key + "/")
    for path in orphans.cache:
        path.unlink(missing_ok=True)
    for key in orphans.shared_cache:
        blobs.delete(key)
    _prune_empty_dirs(settings.cache_dir, orphans.cache_cutoff)


def _prune_empty_dirs(root: Path, cutoff: float) -> None:
    if not root.is_dir():
        return
    for base, dirs, _ in os.walk(root, topdown=False):
        for name in dirs:
            path = Path(base) / name
            try:
                if not any(path.iterdir()) and _older(path, cutoff):
                    path.rmdir()
            except OSError:
                continue


def sweep_scratch(store: JobStore, settings: Settings, *, receiving: float) -> int:
    """This node's scratch space: what a crash (of the API mid-upload, of a worker mid-job)
    left behind. A fetched upload is kept while its attempt still runs."""
    now, removed = time.time(), 0
    incoming = settings.scratch_dir / INCOMING
    for path in incoming.iterdir() if incoming.is_dir() else ():
        if _older(path, now - receiving):
            path.unlink(missing_ok=True)
            removed += 1
    fetched = settings.scratch_dir / FETCHED
    for path in fetched.iterdir() if fetched.is_dir() else ():
        job_id, _, rest = path.name.partition(".")
        job = store.get_job(job_id)
        running = job is not None and job.status.value == "processing" and rest.startswith(f"{job.attempt_token}.")
        if not running and _older(path, now - 60):
            path.unlink(missing_ok=True)
            removed += 1
    staging = settings.scratch_dir / STAGING
    for path in staging.iterdir() if staging.is_dir() else ():
        if _older(path, now - STAGING_MAX_AGE_SECONDS):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
