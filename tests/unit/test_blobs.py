"""The blob-store contract, on a directory and on S3 (boto3 against moto's stand-alone
server, a real HTTP S3 endpoint on loopback: no S3 server installs here)."""

from __future__ import annotations

import os
import threading
import time

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


def test_a_set_is_published_whole_and_swept_as_one(blobs, tmp_path):
    """put_dir: nothing of a set is visible until all of it is in (a directory renames the
    staged set into place; S3 objects are only pointed at afterwards); children() names the
    set, with its last change; delete_prefix removes it."""
    seen_during: list[list[str]] = []

    def write(directory):
        (directory / "transcript.txt").write_text("words")
        (directory / "transcript.json").write_text("{}")
        seen_during.append(blobs.keys("exports/job-1.tok/"))

    blobs.put_dir("exports/job-1.tok", write)
    assert seen_during == [[]]
    assert blobs.keys("exports/") == ["exports/job-1.tok/transcript.json", "exports/job-1.tok/transcript.txt"]
    blobs.put_bytes("uploads/job-1.upload", b"a")
    children = blobs.children("exports/")
    assert [c.key for c in children] == ["exports/job-1.tok"] and abs(children[0].modified - time.time()) < 60
    assert [c.key for c in blobs.children("uploads/")] == ["uploads/job-1.upload"]
    assert blobs.delete_prefix("exports/job-1.tok/") == 2
    assert blobs.children("exports/") == [] and blobs.keys() == ["uploads/job-1.upload"]


def test_a_failed_set_leaves_nothing(blobs):
    def write(directory):
        (directory / "transcript.txt").write_text("half")
        raise RuntimeError("the disk filled up")

    with pytest.raises(RuntimeError):
        blobs.put_dir("exports/job-2.tok", write)
    assert blobs.keys() == [] and blobs.children("exports/") == []


def test_locations_round_trip_and_moves(blobs, tmp_path):
    """What the job store records (a path on a directory, s3://bucket/key on S3) leads back
    to the key, and only for this store; a moved file is gone from where it was."""
    location = blobs.location("uploads/job-3.upload")
    assert blobs.key_at(location) == "uploads/job-3.upload"
    assert blobs.key_at("/somewhere/else/uploads/job-3.upload") is None
    assert blobs.key_at("s3://another-bucket/tft/uploads/job-3.upload") is None
    source = tmp_path / "received"
    source.write_bytes(b"audio")
    blobs.put_file("uploads/job-3.upload", source, move=True)
    assert not source.exists() and blobs.get_bytes("uploads/job-3.upload") == b"audio"
    local = blobs.local_path("uploads/job-3.upload")
    assert local is None or local.read_bytes() == b"audio"  # read in place on a directory, fetched from S3


def test_create_once_keeps_the_first_writers_bytes(blobs):
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda i=i: results.append(blobs.create_once("audio-link.key", bytes([i]) * 32)))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = blobs.get_bytes("audio-link.key")
    assert len(set(results)) == 1 and results[0] == stored


def test_an_unreachable_endpoint_is_a_blob_error_in_seconds(monkeypatch):
    from harness import free_port

    for name, value in (("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)  # credentials are there: what fails is the connection

    s3 = open_blobs("s3://nowhere/tft", endpoint_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    started = time.monotonic()
    with pytest.raises(BlobError, match="could not read 'uploads/x' in s3://nowhere/tft/: Could not connect") as caught:
        s3.get_bytes("uploads/x")
    assert not isinstance(caught.value, BlobNotFound) and caught.value.status == 503
    with pytest.raises(BlobError, match="could not store"):
        s3.put_bytes("uploads/x", b"x")
    assert time.monotonic() - started < 30


def test_a_missing_bucket_is_a_blob_error(moto_endpoint):
    s3 = _s3(moto_endpoint, f"b-{os.urandom(4).hex()}")
    gone = S3Blobs(f"never-made-{os.urandom(4).hex()}", client=s3.client)
    with pytest.raises(BlobError, match="NoSuchBucket"):
        gone.put_bytes("uploads/x", b"x")
    with pytest.raises(BlobError, match="NoSuchBucket"):
        gone.keys("uploads/.reachable")  # what `tft serve` and `tft worker` look at when they start


def test_the_settings_pick_the_store(tmp_path):
    from engine.errors import InvalidOptionError
    from server.blobs import blob_store
    from server.settings import Settings

    local = Settings.from_environ({"TFT_DATA_DIR": str(tmp_path / "data")})
    assert isinstance(blob_store(local), DirectoryBlobs) and blob_store(local).root == tmp_path / "data"
    assert local.cache_dir == tmp_path / "data" / "cache" and local.uploads_dir == tmp_path / "data" / "uploads"
    shared = Settings.from_environ({"TFT_DATA_DIR": str(tmp_path / "data"), "TFT_BLOB_DIR": str(tmp_path / "nfs")})
    assert blob_store(shared).root == tmp_path / "nfs" and shared.cache_dir == tmp_path / "nfs" / "cache"
    s3 = Settings.from_environ({"TFT_DATA_DIR": str(tmp_path / "data"), "TFT_BLOB_URL": "s3://studio/tft",
                                "TFT_S3_ENDPOINT_URL": "http://127.0.0.1:3900"})
    assert blob_store(s3).describe() == "s3://studio/tft/" and s3.s3_endpoint_url == "http://127.0.0.1:3900"
    assert s3.cache_dir == tmp_path / "data" / "cache"  # each node's own stem cache
    with pytest.raises(InvalidOptionError, match="TFT_BLOB_URL must be an S3 URL with a bucket"):
        Settings.from_environ({"TFT_BLOB_URL": "https://studio.example/tft"})
    with pytest.raises(InvalidOptionError, match="not both"):
        Settings.from_environ({"TFT_BLOB_URL": "s3://studio", "TFT_BLOB_DIR": str(tmp_path)})


def test_prefixes_find_one_jobs_files(blobs):
    for name in ("exports/job-1.a/t.txt", "exports/job-1.b/t.txt", "exports/job-10.a/t.txt", "uploads/job-1.upload"):
        blobs.put_bytes(name, b"x")
    assert [e.key for e in blobs.entries("exports/job-1.")] == ["exports/job-1.a/t.txt", "exports/job-1.b/t.txt"]
    assert blobs.delete_prefix("exports/job-1.") == 2 and blobs.keys() == ["exports/job-10.a/t.txt", "uploads/job-1.upload"]


def test_a_directorys_staging_is_listed_for_the_sweeps_but_is_not_a_blob(tmp_path):
    blobs = DirectoryBlobs(tmp_path / "shared")
    (tmp_path / "shared" / "exports" / ".job-1.c.tmp").mkdir(parents=True)
    (tmp_path / "shared" / "exports" / ".job-1.c.tmp" / "t.txt").write_text("half")
    assert [e.key for e in blobs.entries("exports/.job-1.")] == ["exports/.job-1.c.tmp/t.txt"]
    assert blobs.keys("exports/") == [] and [c.key for c in blobs.children("exports/")] == ["exports/.job-1.c.tmp"]
    assert blobs.delete_prefix("exports/.job-1.") == 1 and blobs.children("exports/") == []
