"""The blob-store contract, on a directory and on S3 (boto3 against moto's stand-alone
server, a real HTTP S3 endpoint on loopback: no S3 server installs here)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from server.blobs import BlobError, BlobNotFound, DirectoryBlobs, S3Blobs, open_blobs


def _s3(endpoint: str, bucket: str) -> S3Blobs:
    from harness import s3_client

    client = s3_client(endpoint)
    client.create_bucket(Bucket=bucket)
    return S3Blobs(bucket, prefix="tft", client=client)


@pytest.fixture(params=["directory", "s3"])
def blobs(request, tmp_path):
    if request.param == "directory":
        return DirectoryBlobs(tmp_path / "shared")
    return _s3(request.getfixturevalue("moto_endpoint"), f"b-{os.urandom(4).hex()}")


def test_round_trip_of_files_and_bytes(blobs, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    blobs.put_file("uploads/job-1.upload", source)
    blobs.put_bytes("exports/job-1.tok/transcript.txt", "héllo\n".encode())
    assert blobs.exists("uploads/job-1.upload") and not blobs.exists("uploads/job-2.upload")
    out = tmp_path / "out.bin"
    blobs.get_file("uploads/job-1.upload", out)
    assert out.read_bytes() == data
    assert blobs.get_bytes("exports/job-1.tok/transcript.txt").decode() == "héllo\n"
    assert blobs.keys() == ["exports/job-1.tok/transcript.txt", "uploads/job-1.upload"]
    assert blobs.keys("exports/") == ["exports/job-1.tok/transcript.txt"]


def test_missing_blobs_and_deletes(blobs, tmp_path):
    with pytest.raises(BlobNotFound, match="no blob 'uploads/nope'"):
        blobs.get_bytes("uploads/nope")
    with pytest.raises(BlobNotFound):
        blobs.get_file("uploads/nope", tmp_path / "x")
    blobs.delete("uploads/nope")  # deleting what is not there is fine
    for i in range(5):
        blobs.put_bytes(f"exports/job-9.t/{i}.txt", b"x")
    blobs.put_bytes("exports/job-10.t/0.txt", b"y")
    assert blobs.delete_prefix("exports/job-9.") == 5
    assert blobs.keys() == ["exports/job-10.t/0.txt"]
    blobs.delete("exports/job-10.t/0.txt")
    assert blobs.keys() == []


@pytest.mark.parametrize("key", ["", "../etc/passwd", "/abs", "a/../../b", "a//b", "a\\b", "./a"])
def test_keys_cannot_climb_out(blobs, key):
    with pytest.raises(BlobError, match="not a valid blob key"):
        blobs.put_bytes(key, b"x")


def test_concurrent_writers_leave_one_whole_version(blobs):
    """Eight writers replace the same key at once: a reader always sees one writer's whole
    content, never a mix or a partial file, and no temporary file is left behind."""
    versions = [bytes([i]) * (512 * 1024) for i in range(8)]
    seen: list[bytes] = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            try:
                seen.append(blobs.get_bytes("exports/same"))
            except BlobNotFound:
                pass

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=blobs.put_bytes, args=("exports/same", v)) for v in versions]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    assert blobs.get_bytes("exports/same") in versions
    assert all(s in versions for s in seen)
    assert blobs.keys() == ["exports/same"]


def test_open_blobs_picks_the_backend(tmp_path):
    assert isinstance(open_blobs(tmp_path / "d"), DirectoryBlobs)
    s3 = open_blobs("s3://studio-bucket/tft", endpoint_url="http://127.0.0.1:9")
    assert isinstance(s3, S3Blobs) and s3.describe() == "s3://studio-bucket/tft/"
