"""Files every node must see (uploads, exports; the stem cache on a shared directory) behind
one small interface.

- ``DirectoryBlobs``: a directory: the data dir on one box, a shared mount (NFS, SMB,
  CephFS) on many. A write goes to a unique temporary name beside its target, is fsynced
  and renamed into place, so a reader on any node sees the whole file or none of it; no file
  locks are used (they are unreliable on network filesystems).
- ``S3Blobs`` (s3blobs.py): S3-compatible object storage through boto3 (AWS, Garage,
  SeaweedFS, MinIO); one PUT is atomic. Tested against moto's stand-alone server (no S3
  server installs here).

Keys are relative, ``/``-separated paths (``uploads/<job>.upload``); a key that climbs out
(``..``), is absolute or empty is refused. The job store records a blob's *location*
(``location(key)``): on a directory the file's path, exactly as before blobs existed, so
rows written by older versions still resolve; on S3 ``s3://bucket/prefix/key``.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Protocol

from .errors import BlobError, BlobNotFound

__all__ = ["STAGING", "BlobEntry", "BlobError", "BlobNotFound", "BlobStore", "DirectoryBlobs", "S3Blobs",
           "blob_store", "check_key", "fsync_dir", "open_blobs"]


STAGING = "staging"  # in a node's scratch space: export sets staged before they go to S3


def check_key(key: str) -> str:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")) or "\\" in key:
        raise BlobError(f"{key!r} is not a valid blob key (a relative path without '..')")
    return key


@dataclass(frozen=True)
class BlobEntry:
    """One stored blob, for the sweeps: its key and when it was last written (epoch seconds)."""

    key: str
    modified: float


class BlobStore(Protocol):
    def put_file(self, key: str, source: Path, *, move: bool = False) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_dir(self, prefix: str, write: Callable[[Path], None]) -> None: ...
    def create_once(self, key: str, data: bytes) -> bytes: ...
    def get_file(self, key: str, dest: Path) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def keys(self, prefix: str = "") -> list[str]: ...
    def entries(self, prefix: str = "") -> list[BlobEntry]: ...
    def children(self, prefix: str) -> list[BlobEntry]: ...
    def local_path(self, key: str) -> Path | None: ...
    def location(self, key: str) -> str: ...
    def key_at(self, location: str) -> str | None: ...
    def describe(self) -> str: ...


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (the directory entry, not only the file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _staging(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _fsync_tree(root: Path) -> None:
    for base, _, names in os.walk(root):
        for name in names:
            with open(Path(base) / name, "rb+") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(base))


class DirectoryBlobs:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def describe(self) -> str:
        return f"directory:{self.root}"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_path(self, key: str) -> Path | None:
        """Readable in place: a worker on this mount needs no copy."""
        return self.path(key)

    def location(self, key: str) -> str:
        return str(self.path(key))

    def key_at(self, location: str) -> str | None:
        path = Path(location)
        if not path.is_relative_to(self.root):
            return None
        key = path.relative_to(self.root).as_posix()
        return key if key != "." else None

    def _publish(self, key: str, write) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"  # unique: no two writers share it
        try:
            with open(staging, "xb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(staging, target)  # atomic on one filesystem, NFS included
        finally:
            staging.unlink(missing_ok=True)
        fsync_dir(target.parent)

    def put_file(self, key: str, source: Path, *, move: bool = False) -> None:
        """``move``: the source is the caller's to give away; on the same filesystem it is
        renamed into place (no copy), otherwise copied and then removed."""
        if move:
            target = self.path(key)
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                with open(source, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(source, target)
                fsync_dir(target.parent)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # on another filesystem: copy instead
                    raise BlobError(f"could not store {key!r} in {self.describe()}: {exc}") from exc
        with open(source, "rb") as src:
            self._publish(key, lambda out: shutil.copyfileobj(src, out, 1 << 20))
        if move:
            Path(source).unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._publish(key, lambda out: out.write(data))

    def put_dir(self, prefix: str, write: Callable[[Path], None]) -> None:
        """``write(directory)`` fills a staging directory beside the target, which is then
        renamed into place whole: nobody ever sees part of the set. Refuses to replace."""
        target = self.path(prefix)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = target.parent / f".{target.name}.tmp"
        try:
            staging.mkdir(mode=0o700)
            write(staging)
            _fsync_tree(staging)
            os.rename(staging, target)
            fsync_dir(target.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def create_once(self, key: str, data: bytes) -> bytes:
        """Store ``data`` unless the key exists; return what is stored. Written to a private
        file and hard-linked into place (a link never replaces), so two writers agree."""
        target = self.path(key)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return target.read_bytes()

    def get_file(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self.path(key), dest)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(f"no blob {key!r} in {self.describe()}") from None

    def get_bytes(self, key: str) -> bytes:
        """Read whole through one open file: a delete racing the read either wins or loses."""
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(f"no blob {key!r} in {self.describe()}") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        """Every blob whose key starts with ``prefix`` (staging leftovers included), and the
        directories that leaves empty."""
        if prefix.endswith("/") and self.path(prefix.rstrip("/")).is_dir():  # a whole set, even an empty one
            tree = self.path(prefix.rstrip("/"))
            count = sum(len(names) for _, _, names in os.walk(tree))
            shutil.rmtree(tree, ignore_errors=True)
            return count
        doomed = [e.key for e in self.entries(prefix)]
        parents = set()
        for key in doomed:
            path = self.path(key)
            path.unlink(missing_ok=True)
            parents.add(path.parent)
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            while parent != self.root and parent.is_relative_to(self.root):
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
        return len(doomed)

    def entries(self, prefix: str = "") -> list[BlobEntry]:
        """Everything stored under ``prefix``, a write in progress or a crashed writer's
        staging included (the sweeps remove those by age). Only the directories the prefix
        can match are read: one job's files are found without walking every job's."""
        parent, _, partial = prefix.rpartition("/")
        try:
            items = list(os.scandir(self.path(parent) if parent else self.root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for item in items:
            if not item.name.startswith(partial):
                continue
            if item.is_dir(follow_symlinks=False):
                paths = [Path(base) / name for base, _, names in os.walk(item.path) for name in names]
            else:
                paths = [Path(item.path)]
            for path in paths:
                try:
                    found.append(BlobEntry(path.relative_to(self.root).as_posix(), path.lstat().st_mtime))
                except FileNotFoundError:
                    continue
        return sorted(found, key=lambda e: e.key)

    def children(self, prefix: str) -> list[BlobEntry]:
        """What sits directly under ``prefix`` (``exports/``): blobs, and sets of blobs named
        by their key without the trailing ``/`` (a directory, empty or a staging one too),
        each with its last change."""
        found = []
        try:
            listing = list(os.scandir(self.path(prefix.rstrip("/"))))
        except (FileNotFoundError, NotADirectoryError):
            return []
        for item in listing:
            try:
                found.append(BlobEntry(f"{prefix}{item.name}", item.stat(follow_symlinks=False).st_mtime))
            except FileNotFoundError:
                continue
        return sorted(found, key=lambda e: e.key)

    def keys(self, prefix: str = "") -> list[str]:
        """Complete blobs only: no write in progress, nothing inside a staging directory."""
        return [e.key for e in self.entries(prefix) if not any(_staging(part) for part in e.key.split("/"))]


def open_blobs(location: str | Path, *, endpoint_url: str | None = None, scratch: Path | None = None) -> BlobStore:
    """``s3://bucket/prefix`` or a directory."""
    text = str(location)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://"):].partition("/")
        return S3Blobs(bucket, prefix=prefix, endpoint_url=endpoint_url, scratch=scratch)
    return DirectoryBlobs(Path(text))


@functools.lru_cache(maxsize=8)
def blob_store(settings) -> BlobStore:
    """The configured store, one per process (and per Settings): ``TFT_BLOB_URL`` (S3) or the
    blob directory (``TFT_BLOB_DIR``, by default the data dir)."""
    if settings.blob_url:
        return open_blobs(settings.blob_url, endpoint_url=settings.s3_endpoint_url,
                          scratch=settings.scratch_dir / STAGING)
    return DirectoryBlobs(settings.shared_dir)


from .s3blobs import S3Blobs  # noqa: E402  (it imports the protocol's helpers from here)
