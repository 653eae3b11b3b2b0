"""Files every node must see (uploads, exports, the stem cache) behind one small interface.

- ``DirectoryBlobs``: a directory: the data dir on one box, a shared mount (NFS, SMB,
  CephFS) on many. A write goes to a unique temporary name beside its target, is fsynced
  and renamed into place, so a reader on any node sees the whole file or none of it; no file
  locks are used (they are unreliable on network filesystems).
- ``S3Blobs``: S3-compatible object storage through boto3 (AWS, Garage, SeaweedFS, MinIO);
  one PUT is atomic. Tested against moto's stand-alone server (no S3 server installs here).

Keys are relative, ``/``-separated paths (``uploads/<job>.upload``); a key that climbs out
(``..``), is absolute or empty is refused.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator, Protocol

from engine.errors import EngineError


class BlobError(EngineError):
    code = "blob_error"


class BlobNotFound(BlobError):
    code = "blob_not_found"


def check_key(key: str) -> str:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")) or "\\" in key:
        raise BlobError(f"{key!r} is not a valid blob key (a relative path without '..')")
    return key


class BlobStore(Protocol):
    def put_file(self, key: str, source: Path) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_file(self, key: str, dest: Path) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def keys(self, prefix: str = "") -> list[str]: ...
    def describe(self) -> str: ...


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (the directory entry, not only the file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryBlobs:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def describe(self) -> str:
        return f"directory:{self.root}"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

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

    def put_file(self, key: str, source: Path) -> None:
        with open(source, "rb") as src:
            self._publish(key, lambda out: shutil.copyfileobj(src, out, 1 << 20))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._publish(key, lambda out: out.write(data))

    def get_file(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self.path(key), dest)
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {key!r} in {self.describe()}") from None

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {key!r} in {self.describe()}") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        doomed = self.keys(prefix)
        for key in doomed:
            self.delete(key)
        return len(doomed)

    def keys(self, prefix: str = "") -> list[str]:
        found = []
        for root, _, names in os.walk(self.root):
            for name in names:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue  # a write in progress
                key = (Path(root) / name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return sorted(found)


class S3Blobs:
    """One bucket (and an optional key prefix) of S3-compatible storage."""

    def __init__(self, bucket: str, *, prefix: str = "", client=None, endpoint_url: str | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url)
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _missing(self, exc) -> bool:
        return getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")

    def put_file(self, key: str, source: Path) -> None:
        self.client.upload_file(str(source), self.bucket, self._key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_file(self, key: str, dest: Path) -> None:
        with self._reading(key):
            self.client.download_file(self.bucket, self._key(key), str(dest))

    def get_bytes(self, key: str) -> bytes:
        with self._reading(key):
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    @contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """S3's errors on a read as ours: a missing object is BlobNotFound, the rest BlobError."""
        from botocore.exceptions import ClientError

        try:
            yield
        except ClientError as exc:
            if self._missing(exc):
                raise BlobNotFound(f"no blob {key!r} in {self.describe()}") from None
            raise BlobError(f"could not read {key!r} from {self.describe()}: {exc}") from exc

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if self._missing(exc):
                return False
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        doomed = self.keys(prefix)
        for start in range(0, len(doomed), 1000):
            batch = [{"Key": self.prefix + k} for k in doomed[start:start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(doomed)

    def keys(self, prefix: str = "") -> list[str]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            found += [item["Key"][len(self.prefix):] for item in page.get("Contents", [])]
        return sorted(found)


def open_blobs(location: str | Path, *, endpoint_url: str | None = None) -> BlobStore:
    """``s3://bucket/prefix`` or a directory."""
    text = str(location)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://"):].partition("/")
        return S3Blobs(bucket, prefix=prefix, endpoint_url=endpoint_url)
    return DirectoryBlobs(Path(text))
