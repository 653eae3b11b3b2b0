"""A job's files in the blob store: where each goes, and the few ways they move.

- The upload arrives in this node's scratch space (streamed, never held in memory), is probed
  there, then put into the store as ``uploads/<job>.upload`` before the job row exists: a
  worker that claims the job always finds it.
- A worker reads the upload in place when the store is a directory it can see, and fetches
  it into its own scratch space otherwise (S3): it needs nothing from the API node's disk.
- Exports are written as one set under ``exports/<job>.<attempt token>``; the job row
  records that set (``complete_job``, which checks the token) only once all of it is in.

The job store records locations (``BlobStore.location``), which on a directory are the very
paths it recorded before the blob store existed.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import anyio
import anyio.to_thread

from .blobs import STAGING, BlobNotFound, BlobStore, blob_store
from .filenames import EXPORT_STEM
from .responses import open_held
from .settings import Settings
from .store import Job

log = logging.getLogger("tft.files")

INCOMING = "incoming"  # scratch: uploads being received by this API node
FETCHED = "jobs"  # scratch: uploads fetched by this node's workers


def upload_key(job_id: str) -> str:
    return f"uploads/{job_id}.upload"


def exports_prefix(job_id: str, token: str) -> str:
    return f"exports/{job_id}.{token}"


def incoming_path(settings: Settings, job_id: str) -> Path:
    """Where an upload is received: this node's own disk, whatever the store is."""
    directory = settings.scratch_dir / INCOMING
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory / f"{job_id}.upload"


def store_upload(settings: Settings, job_id: str, received: Path) -> str:
    """Give the received file to the blob store (a rename on the same filesystem); returns the
    location the job row records."""
    blobs = blob_store(settings)
    key = upload_key(job_id)
    blobs.put_file(key, received, move=True)
    return blobs.location(key)


async def forget_upload(settings: Settings, job_id: str, received: Path, *, stored: bool) -> None:
    """The request failed (or its client went away): neither the received file nor its
    stored copy stays. Shielded: it runs to the end even when the request was cancelled."""
    received.unlink(missing_ok=True)
    if not stored:
        return
    with anyio.CancelScope(shield=True):
        try:
            await anyio.to_thread.run_sync(blob_store(settings).delete, upload_key(job_id))
        except Exception as exc:  # the orphan sweep removes it later
            log.warning("could not remove the upload of failed request %s: %s", job_id, exc)


def _key(blobs: BlobStore, location: str | None) -> str | None:
    return blobs.key_at(location) if location else None


@contextmanager
def local_upload(settings: Settings, job: Job, token: str) -> Iterator[Path]:
    """The job's upload as a local file for the engine: in place on a directory store,
    fetched into scratch (and removed afterwards) otherwise. ``BlobNotFound`` when it is gone."""
    blobs = blob_store(settings)
    key = _key(blobs, job.upload_path)
    if key is None:
        raise BlobNotFound(f"the upload of job {job.id} is not in {blobs.describe()}")
    in_place = blobs.local_path(key)
    if in_place is not None:
        if not in_place.is_file():
            raise BlobNotFound(f"no blob {key!r} in {blobs.describe()}")
        yield in_place
        return
    directory = settings.scratch_dir / FETCHED
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    local = directory / f"{job.id}.{token}.upload"
    try:
        blobs.get_file(key, local)
        yield local
    finally:
        local.unlink(missing_ok=True)


@dataclass(frozen=True)
class HeldUpload:
    """An open descriptor on the job's upload (a DELETE meanwhile cannot cut the answer);
    ``fetched``: a copy in scratch, which the caller unlinks once it no longer needs the path."""

    fd: int
    path: Path
    fetched: bool


def hold_upload(settings: Settings, job: Job) -> HeldUpload | None:
    """The job's upload held open for serving; None when it is gone. On S3 it is fetched into
    scratch first (Range requests need a seekable file)."""
    blobs = blob_store(settings)
    key = _key(blobs, job.upload_path)
    if key is None:
        return None
    in_place = blobs.local_path(key)
    if in_place is not None:
        fd = open_held(in_place)
        return HeldUpload(fd, in_place, False) if fd is not None else None
    directory = settings.scratch_dir / FETCHED
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    local = directory / f"{job.id}.serve-{uuid.uuid4().hex}.upload"
    try:
        blobs.get_file(key, local)
        fd = open_held(local)
    except BlobNotFound:
        fd = None
    if fd is None:
        local.unlink(missing_ok=True)
        return None
    return HeldUpload(fd, local, True)


def publish_exports(settings: Settings, job: Job, token: str, write: Callable[[Path], None]) -> str:
    """Write this attempt's exports as one set (``write(directory)``); returns the location
    ``complete_job`` records. Nothing is replaced: each attempt has its own prefix."""
    blobs = blob_store(settings)
    prefix = exports_prefix(job.id, token)
    blobs.put_dir(prefix, write)
    return blobs.location(prefix)


def read_export(settings: Settings, job: Job, extension: str) -> bytes | None:
    """One export's bytes, read whole (a DELETE racing the read either wins or loses); None
    when it is gone."""
    blobs = blob_store(settings)
    prefix = _key(blobs, job.exports_dir)
    if prefix is None:
        return None
    try:
        return blobs.get_bytes(f"{prefix}/{EXPORT_STEM}.{extension}")
    except BlobNotFound:
        pass
    legacy = [k for k in blobs.keys(prefix + "/") if k.endswith(f".{extension}")]  # named after the upload
    if len(legacy) != 1:
        return None
    try:
        return blobs.get_bytes(legacy[0])
    except BlobNotFound:
        return None


def remove_job_files(settings: Settings, job: Job) -> None:
    """The job's upload, its published exports, and any export set an attempt of it staged."""
    blobs = blob_store(settings)
    upload = _key(blobs, job.upload_path)
    if upload is not None:
        blobs.delete(upload)
    exports = _key(blobs, job.exports_dir)
    if exports is not None:
        blobs.delete_prefix(exports + "/")
    blobs.delete_prefix(f"exports/.{job.id}.")  # a directory store's staging of an attempt that died
    blobs.delete_prefix(f"exports/{job.id}.")  # sets of attempts that lost the job
