"""The stem cache when nodes share no directory (``TFT_BLOB_URL``, S3).

Each worker keeps its own cache under its data directory, memory-mapped as on one box, and
shares what it separates through the blob store as ``cache/stems/<name>``: on a local miss
it looks there before separating, so a file separated on one machine is not separated again
on another (a stem is 64 KB per second of audio, 230 MB an hour; fetching it is a download,
separating it minutes of GPU or CPU time). On a directory store the cache directory is
itself shared and none of this is needed.

A job row refers to a stem it used by one name every node agrees on: the stem's path on a
directory store (as before), its blob location on S3. When the last job referring to a
stem is purged, the shared copy and this node's copy go; other nodes' copies go with their
own janitor's sweep (nothing refers to them any more).
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from .blobs import BlobStore, blob_store
from .errors import BlobError, BlobNotFound
from .settings import Settings

log = logging.getLogger("tft.stems")

PREFIX = "cache/"


class BlobStems:
    """``engine.separation.SharedStems`` over the blob store. Best effort: storage that does
    not answer costs a separation, never the job."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def fetch(self, name: str, dest: Path) -> bool:
        partial = dest.with_name(f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            self.blobs.get_file(f"{PREFIX}stems/{name}", partial)
            os.replace(partial, dest)  # whole or not at all: another job may map it meanwhile
            log.info("stem %s: fetched from %s", name, self.blobs.describe())
            return True
        except BlobNotFound:
            return False
        except BlobError as exc:
            log.warning("stem %s: could not be fetched (%s); separating it here", name, exc)
            return False
        finally:
            partial.unlink(missing_ok=True)

    def share(self, name: str, path: Path) -> None:
        try:
            self.blobs.put_file(f"{PREFIX}stems/{name}", path)
        except BlobError as exc:
            log.warning("stem %s: could not be shared (%s); other nodes will separate it themselves", name, exc)


def shared_stems(settings: Settings) -> BlobStems | None:
    return BlobStems(blob_store(settings)) if settings.blob_url else None


def cache_ref(settings: Settings, path: str) -> str:
    """What a job row records for a cache file it used (see the module's docstring)."""
    local = Path(path)
    if not settings.blob_url or not local.is_relative_to(settings.cache_dir):
        return path
    return blob_store(settings).location(PREFIX + local.relative_to(settings.cache_dir).as_posix())


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def remove_cache_file(settings: Settings, ref: str) -> None:
    """A cache file no live job refers to any more: this node's copy and, on S3, the shared
    one. A recorded path outside the cache is never followed."""
    blobs = blob_store(settings)
    key = blobs.key_at(ref) if settings.blob_url else None
    if key is not None and key.startswith(PREFIX):
        blobs.delete(key)
        path = settings.cache_dir / key[len(PREFIX):]
    else:
        path = Path(ref)
    if _inside(path, settings.cache_dir):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc)
