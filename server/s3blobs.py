"""``S3Blobs``: the blob store on S3-compatible object storage (AWS S3, Garage, SeaweedFS,
MinIO) through boto3. One PUT is atomic, so a reader sees a whole object or none; a set of
exports is published by the job row pointing at its prefix only after every object is in.

Every error boto3 raises is translated here, once: a missing object is ``BlobNotFound``,
anything else (an endpoint that does not answer, a denied request, a missing bucket) is
``BlobError``, which the API answers with 503. Credentials and the region come from boto3's
usual places (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
``~/.aws``); ``TFT_S3_ENDPOINT_URL`` points it at a server other than AWS.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from .blobs import BlobEntry, check_key
from .errors import BlobError, BlobNotFound

MISSING = ("404", "NoSuchKey", "NotFound")
PART_BYTES = 8 * 1024 * 1024  # multipart transfers: parts this big,
PARTS_AT_ONCE = 4  # this many in flight: a 4 GB upload costs about 32 MB of memory


def _client(endpoint_url: str | None):
    import boto3
    from botocore.config import Config

    # Fail in seconds, not minutes, when the endpoint is down: the API answers 503 meanwhile.
    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
    # A session of its own: boto3's default session is not safe to share between threads.
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


class S3Blobs:
    """One bucket (and an optional key prefix) of S3-compatible storage."""

    def __init__(self, bucket: str, *, prefix: str = "", client=None, endpoint_url: str | None = None,
                 scratch: Path | None = None) -> None:
        if not bucket:
            raise BlobError("an S3 blob URL needs a bucket: s3://bucket/optional/prefix")
        self.client = client if client is not None else _client(endpoint_url)
        self.bucket, self.prefix = bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.scratch = scratch  # where put_dir stages a set before uploading it (None: the system's temp dir)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def local_path(self, key: str) -> Path | None:
        return None  # nothing is readable in place: fetch it

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def key_at(self, location: str) -> str | None:
        head = self.describe()
        if not location.startswith(head):
            return None
        return location[len(head):] or None

    @contextmanager
    def _calling(self, key: str, doing: str) -> Iterator[None]:
        """boto3's errors as ours: a missing object is BlobNotFound, the rest BlobError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                raise BlobNotFound(f"no blob {key!r} in {self.describe()}") from None
            raise BlobError(f"could not {doing} {key!r} in {self.describe()}: {exc}") from exc
        except (BotoCoreError, OSError) as exc:  # no connection, a timeout, a local file problem
            raise BlobError(f"could not {doing} {key!r} in {self.describe()}: {exc}") from exc

    @staticmethod
    def _transfer():
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES,
                              max_concurrency=PARTS_AT_ONCE)

    def put_file(self, key: str, source: Path, *, move: bool = False) -> None:
        with self._calling(key, "store"):  # streamed from the file, a few parts at a time
            self.client.upload_file(str(source), self.bucket, self._key(key), Config=self._transfer())
        if move:
            Path(source).unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._calling(key, "store"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_dir(self, prefix: str, write: Callable[[Path], None]) -> None:
        """Stage the set locally, then upload each file under ``prefix``. Until the caller
        records the prefix (the job row), nobody reads it; a crash leaves objects the
        janitor's orphan sweep removes."""
        check_key(prefix)
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = Path(tempfile.mkdtemp(prefix=".put-", suffix=".tmp", dir=self.scratch))
        try:
            write(staging)
            for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                self.put_file(f"{prefix}/{path.relative_to(staging).as_posix()}", path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def create_once(self, key: str, data: bytes) -> bytes:
        """Store ``data`` unless the key exists (a conditional PUT, ``If-None-Match: *``, which
        AWS, Garage and MinIO honour); return what is stored."""
        try:
            return self.get_bytes(key)
        except BlobNotFound:
            pass
        try:
            with self._calling(key, "store"):
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
        except BlobError as exc:
            if "PreconditionFailed" not in str(exc) and "ConditionalRequestConflict" not in str(exc):
                raise
        return self.get_bytes(key)

    def get_file(self, key: str, dest: Path) -> None:
        with self._calling(key, "read"):
            self.client.download_file(self.bucket, self._key(key), str(dest), Config=self._transfer())

    def get_bytes(self, key: str) -> bytes:
        with self._calling(key, "read"):
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            with self._calling(key, "look for"):
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except BlobNotFound:
            return False

    def delete(self, key: str) -> None:
        with self._calling(key, "delete"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        doomed = self.keys(prefix)
        for start in range(0, len(doomed), 1000):
            batch = [{"Key": self.prefix + k} for k in doomed[start:start + 1000]]
            with self._calling(prefix, "delete"):
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(doomed)

    def entries(self, prefix: str = "") -> list[BlobEntry]:
        found = []
        with self._calling(prefix, "list"):
            listing = self.client.get_paginator("list_objects_v2")
            pages = listing.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    modified = item["LastModified"]
                    found.append(BlobEntry(item["Key"][len(self.prefix):],
                                           modified.timestamp() if isinstance(modified, datetime) else float(modified)))
        return sorted(found, key=lambda e: e.key)

    def children(self, prefix: str) -> list[BlobEntry]:
        """What sits directly under ``prefix``: objects, and sets (``exports/<job>.<token>``)
        named without the trailing ``/``, each with its newest object's time."""
        newest: dict[str, float] = {}
        for entry in self.entries(prefix):
            child = prefix + entry.key[len(prefix):].split("/", 1)[0]
            newest[child] = max(newest.get(child, 0.0), entry.modified)
        return [BlobEntry(k, t) for k, t in sorted(newest.items())]

    def keys(self, prefix: str = "") -> list[str]:
        return [e.key for e in self.entries(prefix)]
