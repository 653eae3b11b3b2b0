"""Hostile and broken input against a real server: a clear 4xx for each, and it keeps serving."""

import asyncio
import socket
import time

import httpx
import psutil
import pytest

from corpus import hostile
from harness import Server, client, upload

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("hostile"), workers=0,
                 env={"TFT_MAX_UPLOAD_MB": "8", "TFT_UPLOAD_IDLE_TIMEOUT_SECONDS": "2",
                      "TFT_AUTH_FAILURES_PER_MINUTE": "1000"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token(server):
    return server.token("hostile")


def send(http: httpx.Client, case: hostile.Case) -> httpx.Response:
    headers = dict(case.headers)
    if case.file is not None:
        fields = {k: v for k, v in case.fields.items() if not k.startswith("__")}
        with open(case.file, "rb") as fh:
            data = fh.read()
        files = [(case.file_field, (case.filename or case.file.name, data, "application/octet-stream"))]
        if "__second_file__" in case.fields:
            files.append(("file", ("second.wav", data, "application/octet-stream")))
        return http.request(case.method, case.path, files=files, data=fields, params=case.params, headers=headers)
    if case.raw_body is not None:
        return http.request(case.method, case.path, content=case.raw_body, params=case.params, headers=headers)
    if case.json_body is not None:
        return http.request(case.method, case.path, json=case.json_body, params=case.params, headers=headers)
    return http.request(case.method, case.path, params=case.params, headers=headers)


def test_corpus_each_gets_a_clear_4xx(server, token, clips, generated_dir):
    clip = next(c for c in clips if c.name == "quick_brown_fox")
    cases = hostile.build(generated_dir / "hostile", valid_clip=clip.path)
    assert len(cases) >= 30
    http = client(server, token)
    outcomes = {}
    for case in cases:
        r = send(http, case)
        assert r.status_code in case.expect, (case.name, r.status_code, r.text[:300])
        body = r.json()
        detail = body["detail"]
        message = detail if isinstance(detail, str) else " ".join(d["msg"] for d in detail)
        assert message and "Traceback" not in r.text and "sqlite" not in r.text.lower(), (case.name, r.text[:300])
        assert case.phrase.lower() in message.lower(), (case.name, message)
        outcomes[case.name] = (r.status_code, message[:90])
        assert http.get("/healthz").status_code == 200, f"server stopped serving after {case.name}"
    print(f"\nhostile corpus: {len(cases)} cases")
    for name, (status, message) in outcomes.items():
        print(f"  {status}  {name}: {message}")
    assert upload(http, clip.path).status_code == 201  # and it still takes real work
    assert "Traceback" not in server.log()


def _read_response(sock) -> str:
    """Read until the response body has arrived (or the server closed the connection)."""
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def test_oversize_body_gets_413_before_it_is_sent(server, token):
    """Content-Length over the limit: answered from the headers alone."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(10)
        head = (f"POST /api/v1/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {200 * 1024 * 1024}\r\n\r\n")
        sock.sendall(head.encode() + b"--b\r\n")
        started = time.monotonic()
        answer = _read_response(sock)
        assert answer.startswith("HTTP/1.1 413"), answer[:200]
        assert time.monotonic() - started < 5
        assert "8 MB at most" in answer


def test_oversize_streamed_body_is_cut_off_at_the_limit(server, token):
    """No Content-Length (chunked): counted while streaming, refused at the limit."""
    sent = {"bytes": 0}

    def body():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n\r\n"
        for _ in range(64):  # up to 64 MB
            sent["bytes"] += 1 << 20
            yield b"\0" * (1 << 20)

    http = client(server, token)
    try:
        r = http.post("/api/v1/transcriptions", content=body(),
                      headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413
    except httpx.HTTPError:
        pass  # the server may close the connection while we are still sending: also a refusal
    assert sent["bytes"] < 40 * (1 << 20)
    assert client(server, token).get("/healthz").status_code == 200


def test_slow_loris_times_out_without_blocking_others(server, token):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(15)
        sock.sendall((f"POST /api/v1/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                      "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n").encode())
        # While this client dawdles, others are served at once.
        http = client(server, token)
        for _ in range(5):
            started = time.monotonic()
            assert http.get("/api/v1/me").status_code == 200
            assert time.monotonic() - started < 1.0
            sock.sendall(b"C")  # one byte at a time, not often enough
            time.sleep(0.5)
        started = time.monotonic()
        answer = _read_response(sock)
        assert answer.startswith("HTTP/1.1 408"), answer[:200]
        assert "stalled" in answer
        assert time.monotonic() - started < 10


def test_hundred_concurrent_uploads(server, token, clips):
    clip = next(c for c in clips if c.name == "hello_world")
    data = clip.path.read_bytes()

    async def one(c: httpx.AsyncClient, i: int) -> int:
        r = await c.post("/api/v1/transcriptions", files={"file": (f"c{i}.wav", data)})
        return r.status_code

    async def run():
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=120, limits=limits) as c:
            return await asyncio.gather(*[one(c, i) for i in range(100)])

    statuses = asyncio.run(run())
    assert statuses.count(201) == 100, statuses
    listed = client(server, token).get("/api/v1/transcriptions", params={"per_page": 200}).json()
    assert sum(1 for j in listed["items"] if j["filename"].startswith("c")) == 100


@pytest.mark.parametrize("storage", ["directory", "s3"])
def test_large_upload_streams_to_disk_with_bounded_memory(tmp_path, clips, storage, request):
    """A 300 MB upload: the server's RSS grows by a small, fixed amount, not by the file size,
    whether it stays on disk or goes on to S3 (moto's server) in parts."""
    import numpy as np

    from corpus import synth

    env = {"TFT_MAX_UPLOAD_MB": "400"}
    if storage == "s3":
        from harness import s3_client

        endpoint = request.getfixturevalue("moto_endpoint")
        s3_client(endpoint).create_bucket(Bucket="big-uploads")
        env.update({"TFT_BLOB_URL": "s3://big-uploads/tft", "TFT_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
                    "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"})
    with Server(tmp_path / "big", workers=0, env=env).start() as srv:
        token = srv.token("big")
        big = tmp_path / "big.wav"
        seconds = 300 * 1024 * 1024 // 32000
        tone = 0.2 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)
        synth.write_wav(big, np.resize(tone, 16000 * seconds).astype(np.float32))
        proc = psutil.Process(srv.proc.pid)
        before = proc.memory_info().rss
        peak = [before]
        done = {"flag": False}

        def sample():
            while not done["flag"]:
                peak[0] = max(peak[0], proc.memory_info().rss)
                time.sleep(0.05)

        import threading

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        r = upload(client(srv, token), big)
        done["flag"] = True
        sampler.join()
        assert r.status_code == 201, r.text
        growth = (peak[0] - before) / 1e6
        print(f"\n300 MB upload ({storage}): server RSS {before / 1e6:.0f} MB -> peak {peak[0] / 1e6:.0f} MB "
              f"(+{growth:.0f} MB)")
        assert growth < 64
        if storage == "s3":
            from harness import s3_client

            stored = s3_client(env["TFT_S3_ENDPOINT_URL"]).list_objects_v2(Bucket="big-uploads")["Contents"]
            assert len(stored) == 1 and stored[0]["Size"] == big.stat().st_size
            assert not any((srv.data_dir / "scratch" / "incoming").iterdir())  # received here, then moved on
            return
        stored = list((srv.data_dir / "uploads").glob("*.upload"))
        assert len(stored) == 1 and stored[0].stat().st_size == big.stat().st_size
