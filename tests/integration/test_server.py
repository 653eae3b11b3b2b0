"""The API against a real uvicorn server on a loopback port, the real tiny.en model, and each
store: a real SQLite file, then a real PostgreSQL database (``new_db``)."""

import io
import json
import re
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Server, client, rows, upload, wait_for

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory, new_db):
    srv = Server(tmp_path_factory.mktemp("server"), env={**new_db(), "TFT_TOP_UP_URL": "https://example.test/top-up"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def alice(server):
    return server.token("alice")


@pytest.fixture(scope="module")
def fox(clips):
    return next(c for c in clips if c.name == "quick_brown_fox")


def test_full_lifecycle(server, alice, fox, clips):
    import srt
    import webvtt

    http = client(server, alice)
    created = upload(http, fox.path, timestamps="required")
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"job_id", "status", "credits_quoted"} and body["status"] == "pending"
    job = wait_for(http, body["job_id"])
    assert job["status"] == "done", job
    assert job["language"] == "en" and job["audio_duration"] == pytest.approx(2.889, abs=0.05)
    assert job["telemetry"]["model"] == "tiny.en" and job["telemetry"]["seconds_per_stage"]["transcribe"] > 0
    assert job["progress"] == {"stage": "done", "fraction": 1.0}
    assert set(job["exports"]["formats"]) == {"txt", "srt", "lrc", "json", "vtt", "lrc_plain"}
    assert job["exports"]["expires_at"]

    exports = {}
    for fmt, ctype in [("txt", "text/plain"), ("srt", "application/x-subrip"), ("vtt", "text/vtt"),
                       ("lrc", "text/plain"), ("json", "application/json")]:
        r = http.get(f"/api/v1/transcriptions/{job['job_id']}/export", params={"format": fmt})
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype), (fmt, r.headers)
        assert r.headers["content-disposition"] == f'attachment; filename="quick_brown_fox.{fmt}"'
        exports[fmt] = r.text
    assert exports["txt"].strip() == "The quick brown fox jumps over the lazy dog."
    data = json.loads(exports["json"])
    subs = list(srt.parse(exports["srt"]))
    cues = list(webvtt.from_buffer(io.StringIO(exports["vtt"])))
    lrc = [l for l in exports["lrc"].splitlines() if re.match(r"^\[\d+:\d\d\.\d\d\]\S", l)]
    assert len(subs) == len(cues) == len(lrc) == len(data["segments"]) >= 1
    assert subs[0].start.total_seconds() == pytest.approx(data["segments"][0]["start"], abs=0.001)
    segments = http.get(f"/api/v1/transcriptions/{job['job_id']}/segments").json()
    assert segments["segments"] == data["segments"]  # the endpoint and the JSON export agree
    assert segments["segments"][0]["words"]  # timestamps=required: word timings

    # pagination, newest first, and the status filter
    more = [upload(http, c.path).json()["job_id"] for c in clips if c.language == "en" and c.name != "quick_brown_fox"]
    for job_id in more:
        wait_for(http, job_id)
    page1 = http.get("/api/v1/transcriptions", params={"per_page": 2, "page": 1}).json()
    page2 = http.get("/api/v1/transcriptions", params={"per_page": 2, "page": 2}).json()
    assert page1["total"] == page2["total"] >= 3 and page1["per_page"] == 2
    ids = [j["job_id"] for j in page1["items"] + page2["items"]]
    assert ids[:2] == list(reversed(more))[:2] and len(set(ids)) == len(ids)
    done = http.get("/api/v1/transcriptions", params={"status": "done"}).json()
    assert {j["status"] for j in done["items"]} == {"done"}
    assert http.get("/api/v1/transcriptions", params={"status": "pending"}).json()["total"] == 0

    # delete: gone for good
    deleted = http.delete(f"/api/v1/transcriptions/{job['job_id']}")
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert http.get(f"/api/v1/transcriptions/{job['job_id']}").status_code == 404
    assert http.get(f"/api/v1/transcriptions/{job['job_id']}/export", params={"format": "txt"}).status_code == 404
    deadline = time.monotonic() + 10  # the DELETE's clean-up runs right after its answer
    while any(server.data_dir.glob(f"*/{job['job_id']}*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(server.data_dir.glob(f"*/{job['job_id']}*"))  # upload and exports: gone for good


def test_download_names_come_from_the_upload_but_never_touch_the_disk(server, alice, fox):
    """RFC 6266: an ASCII filename= for old clients and the exact name in filename*=; on disk
    the exports are transcript.<ext> whatever the upload was called."""
    http = client(server, alice)
    for sent, plain, exact in [("Été à Paris — démo.wav", "Ete a Paris _ demo", "%C3%89t%C3%A9%20%C3%A0%20Paris%20%E2%80%94%20d%C3%A9mo"),
                               ("歌词.wav", "transcript", "%E6%AD%8C%E8%AF%8D")]:
        with open(fox.path, "rb") as fh:
            created = http.post("/api/v1/transcriptions", files={"file": (sent, fh)})
        assert created.status_code == 201, created.text
        job = wait_for(http, created.json()["job_id"])
        assert job["status"] == "done" and job["filename"] == sent
        r = http.get(f"/api/v1/transcriptions/{job['job_id']}/export", params={"format": "srt"})
        assert r.headers["content-disposition"] == f"attachment; filename=\"{plain}.srt\"; filename*=UTF-8''{exact}.srt"
        on_disk = sorted(p.name for p in server.data_dir.glob(f"exports/{job['job_id']}.*/*"))
        assert on_disk == [f"transcript.{ext}" for ext in ("json", "lrc", "srt", "txt", "vtt")]


def test_auth_and_isolation(server, alice, fox):
    anonymous = client(server, None)
    r = anonymous.get("/api/v1/me")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    bad = client(server, "tft_pat_" + "A" * 43).get("/api/v1/me")
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Bearer")
    assert client(server, "not-a-token").get("/api/v1/me").status_code == 401

    http = client(server, alice)
    job_id = upload(http, fox.path).json()["job_id"]
    mallory = client(server, server.token("mallory"))
    for method, path in [("GET", f"/api/v1/transcriptions/{job_id}"), ("DELETE", f"/api/v1/transcriptions/{job_id}"),
                         ("GET", f"/api/v1/transcriptions/{job_id}/segments")]:
        assert mallory.request(method, path).status_code == 404
    assert job_id not in [j["job_id"] for j in mallory.get("/api/v1/transcriptions").json()["items"]]
    wait_for(http, job_id)


def test_credits_quote_charge_refund_and_402(server, fox):
    token = server.token("bob", credits=1)
    http = client(server, token)
    me = http.get("/api/v1/me").json()
    assert me["credits"] == 1 and me["unlimited"] is False and me["top_up_url"] == "https://example.test/top-up"
    first = upload(http, fox.path)
    assert first.status_code == 201 and first.json()["credits_quoted"] == 1
    second = upload(http, fox.path)
    assert second.status_code == 402
    assert second.json()["top_up_url"] == "https://example.test/top-up"
    job = wait_for(http, first.json()["job_id"])
    assert job["credits"] == {"quoted": 1, "charged": 1}
    assert http.get("/api/v1/me").json()["credits"] == 0


def test_validation_errors_have_the_contract_shape(server, alice, fox):
    http = client(server, alice)
    cases = [
        (lambda: upload(http, fox.path, timestamps="maybe"), ["body", "timestamps"]),
        (lambda: upload(http, fox.path, language="xx"), ["body", "language"]),
        (lambda: upload(http, fox.path, language="english"), ["body", "language"]),
        (lambda: upload(http, fox.path, language="fr"), ["body", "language"]),  # tiny.en is English-only
        (lambda: upload(http, fox.path, audio_type="podcast"), ["body", "audio_type"]),
        (lambda: http.post("/api/v1/transcriptions", data={"language": "en"}), ["body"]),
        (lambda: http.get("/api/v1/transcriptions", params={"page": 0}), ["query", "page"]),
        (lambda: http.get("/api/v1/transcriptions", params={"per_page": 10000}), ["query", "per_page"]),
        (lambda: http.get("/api/v1/transcriptions", params={"status": "finished"}), ["query", "status"]),
        (lambda: http.post("/api/v1/webhooks", json={"url": "ftp://x"}), ["body", "url"]),
        (lambda: http.post("/api/v1/webhooks", json={"events": ["job.done"]}), ["body", "url"]),
    ]
    for call, loc in cases:
        r = call()
        assert r.status_code == 422, (loc, r.status_code, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, list) and detail
        assert all({"loc", "msg", "type"} <= set(d) for d in detail)
        assert detail[0]["loc"][: len(loc)] == loc, (loc, detail)
    job_id = upload(http, fox.path).json()["job_id"]
    r = http.get(f"/api/v1/transcriptions/{job_id}/export", params={"format": "exe"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "format"]
    wait_for(http, job_id)


def test_bad_uploads_are_refused_before_201(server, alice, tmp_path, uploads_before):
    from corpus import synth

    http = client(server, alice)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 100)
    r = upload(http, text)
    assert r.status_code == 422 and "not an audio or video file" in r.json()["detail"][0]["msg"]
    assert "notes.wav" in r.json()["detail"][0]["msg"]
    quiet = synth.write_wav(tmp_path / "quiet.wav", synth.silence(5))
    r = upload(http, quiet)
    assert r.status_code == 422 and "only silence" in r.json()["detail"][0]["msg"]
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert upload(http, empty).status_code == 422
    # Nothing a refused upload sent stays on disk (other tests' jobs keep theirs meanwhile).
    assert set((server.data_dir / "uploads").iterdir()) <= uploads_before
    assert not any((server.data_dir / "scratch" / "incoming").iterdir())  # where uploads are received


@pytest.fixture
def uploads_before(server):
    return set((server.data_dir / "uploads").iterdir())


def test_capabilities_and_openapi(server, alice):
    http = client(server, alice)
    caps = http.get("/api/v1/capabilities").json()
    assert caps["models"]["default"] == "tiny.en" and "tiny.en" in caps["models"]["available"]
    assert caps["languages"] == ["en"] and set(caps["formats"]) == {"txt", "srt", "lrc", "json", "vtt", "lrc_plain"}
    assert caps["timestamps"] == ["auto", "required", "none"] and caps["audio_types"] == ["auto", "speech", "music"]
    assert caps["features"]["webhooks"] and caps["device"]["transcription"] == "cpu" and caps["max_upload_bytes"] > 0
    assert "available" in caps["separation"]
    ours = http.get("/api/v1/openapi.json").json()
    from server.openapi import seed

    for path, item in seed()["paths"].items():
        for method in item:
            assert method in ours["paths"][path], (path, method)
            assert set(seed()["paths"][path][method]["responses"]) <= set(ours["paths"][path][method]["responses"])
    assert ours["components"]["schemas"]["Job"]["properties"]["status"]["enum"] == ["pending", "processing", "done", "error"]


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver on loopback that refuses its first delivery."""

    received: list = []
    refuse_first = True

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        if Receiver.refuse_first and len(Receiver.received) == 1:
            self.send_response(503)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_signed_refused_then_retried_with_the_same_event_id(tmp_path, fox, new_db):
    from server.webhooks import sign, verify

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    Receiver.received = []
    srv = Server(tmp_path / "hooks", env={**new_db(), "TFT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
                                          "TFT_WEBHOOK_RETRY_SCALE": "0.02"})
    with srv.start():
        http = client(srv, srv.token("carol"))
        denied = client(srv, srv.token("dave")).post("/api/v1/webhooks", json={"url": "http://169.254.169.254/latest"})
        assert denied.status_code == 422 and "link-local" in denied.json()["detail"][0]["msg"]
        reg = http.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
                                                 "events": ["job.done", "job.error"]})
        assert reg.status_code == 201, reg.text
        secret = reg.json()["secret"]
        listed = http.get("/api/v1/webhooks").json()["items"]
        assert listed[0]["secret_preview"] == secret[:8] + "…" and "secret" not in listed[0]
        job_id = upload(http, fox.path).json()["job_id"]
        wait_for(http, job_id)
        deadline = time.monotonic() + 30
        while len(Receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    receiver.shutdown()
    assert len(Receiver.received) == 2, srv.log()
    (h1, b1), (h2, b2) = Receiver.received
    assert h1["X-TFT-Event-Id"] == h2["X-TFT-Event-Id"] and h1["X-TFT-Event"] == "job.done"
    assert b1 == b2  # the same bytes, so the same signature
    assert verify(secret, b2, h2["X-TFT-Signature"])
    ts = h2["X-TFT-Timestamp"]
    import hashlib
    import hmac

    expected = hmac.new(secret.encode(), f"{ts}.".encode() + b2, hashlib.sha256).hexdigest()
    assert h2["X-TFT-Signature-Timestamped"] == f"t={ts},sha256={expected}"
    payload = json.loads(b2)
    assert payload["id"] == h2["X-TFT-Event-Id"] and payload["event"] == "job.done"
    assert payload["data"]["job_id"] == job_id and payload["data"]["status"] == "done" and payload["created_at"]
    assert h2["X-TFT-Delivery-Attempt"] == "2"
    assert sign(secret, b2) == h2["X-TFT-Signature"]


def test_restart_with_a_pending_job(tmp_path, fox, new_db):
    db_env = new_db()
    api_only = Server(tmp_path / "restart", workers=0, env=db_env)
    api_only.start()
    token = api_only.token("erin")
    job_id = upload(client(api_only, token), fox.path).json()["job_id"]
    time.sleep(1.0)
    assert client(api_only, token).get(f"/api/v1/transcriptions/{job_id}").json()["status"] == "pending"
    assert api_only.stop() == 0
    with Server(tmp_path / "restart", workers=1, port=api_only.port, env=db_env).start() as again:
        job = wait_for(client(again, token), job_id)
        assert job["status"] == "done" and job["attempts"] == 1


def test_retention_gives_410_and_removes_the_files(tmp_path, fox, new_db):
    env = {**new_db(), "TFT_RETENTION_SECONDS": "2", "TFT_JANITOR_INTERVAL_SECONDS": "0.5"}
    with Server(tmp_path / "retention", env=env).start() as srv:
        http = client(srv, srv.token("frank"))
        job_id = upload(http, fox.path).json()["job_id"]
        wait_for(http, job_id)
        # Until the retention ends, the original upload is kept with the exports.
        assert len(list(srv.data_dir.glob(f"uploads/{job_id}*"))) == 1
        assert len(list(srv.data_dir.glob(f"exports/{job_id}*/transcript.*"))) == 5
        time.sleep(2.0)
        r = http.get(f"/api/v1/transcriptions/{job_id}/export", params={"format": "srt"})
        assert r.status_code == 410 and "retention" in r.json()["detail"]
        assert http.get(f"/api/v1/transcriptions/{job_id}/segments").status_code == 410
        job = http.get(f"/api/v1/transcriptions/{job_id}").json()
        assert job["exports"]["expired"] is True and job["exports"]["formats"] == []
        deadline = time.monotonic() + 10
        while list(srv.data_dir.glob(f"*/{job_id}*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not list(srv.data_dir.glob(f"*/{job_id}*"))  # upload and exports removed by the janitor


def test_store_is_a_real_database_holding_only_token_hashes(server, alice):
    """SQLite: a real file in WAL mode, without the token in it. PostgreSQL: the server's
    database, with no SQLite file beside it, and /healthz saying it is reachable."""
    db = server.data_dir / "tft.sqlite3"
    hashes = [r["hash"] for r in rows(server, "SELECT hash FROM tokens")]
    assert hashes and all(len(h) == 64 for h in hashes) and alice not in hashes
    assert rows(server, "SELECT COUNT(*) AS n FROM users")[0]["n"] >= 1
    health = client(server, None).get("/healthz").json()
    assert health["database"]["reachable"] is True
    if "TFT_DATABASE_URL" in server.env:
        assert health["database"]["kind"] == "postgresql" and not db.exists()
        return
    assert health["database"]["kind"] == "sqlite"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert alice.encode() not in db.read_bytes()


def test_metrics_show_the_queue_and_this_nodes_claims(server, alice, fox):
    http = client(server, alice)
    wait_for(http, upload(http, fox.path).json()["job_id"])
    text = client(server, None).get("/metrics").text

    def value(pattern: str) -> float:
        found = re.search(rf"^{pattern} (\S+)$", text, re.M)
        assert found, (pattern, text[-2000:])
        return float(found.group(1))

    claims = value("tft_claims_total")
    assert claims >= 1 and value('tft_jobs\\{status="done"\\}') >= 1 and value('tft_jobs\\{status="pending"\\}') >= 0
    assert value("tft_claim_seconds_count") >= claims and value("tft_claim_seconds_sum") > 0
    assert value("tft_queue_wait_seconds_count") >= 1
    assert value("tft_lease_expiries_total") == 0  # nobody died here


def test_cancel_mid_processing_refunds_and_moves_on(tmp_path, fox, generated_dir, new_db):
    from corpus.speech import long_form

    long, _ = long_form(generated_dir / "longform_5min.wav", words_per_minute=125)
    with Server(tmp_path / "cancel", env=new_db()).start() as srv:
        http = client(srv, srv.token("gina", credits=5))
        long_id = upload(http, long, timestamps="required").json()["job_id"]
        next_id = upload(http, fox.path).json()["job_id"]
        assert http.get("/api/v1/me").json()["credits"] == 3
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = http.get(f"/api/v1/transcriptions/{long_id}").json()
            if job["status"] == "processing" and job["progress"]["stage"] == "transcribe" and job["progress"]["fraction"] > 0:
                break
            time.sleep(0.1)
        assert job["status"] == "processing", job
        cancelled = http.delete(f"/api/v1/transcriptions/{long_id}")
        assert cancelled.status_code == 200 and cancelled.json() == {"job_id": long_id, "status": "cancelled",
                                                                     "credits_refunded": 1}
        assert http.get(f"/api/v1/transcriptions/{long_id}").status_code == 404
        assert http.get("/api/v1/me").json()["credits"] == 4  # refunded at once
        started = time.monotonic()
        finished = wait_for(http, next_id, timeout=60)
        assert finished["status"] == "done"
        # The worker dropped the long job at a checkpoint instead of finishing its 5 minutes of audio.
        assert time.monotonic() - started < 10
        assert rows(srv, "SELECT status FROM jobs WHERE id = ?", (long_id,))[0]["status"] == "cancelled"
        assert not list(srv.data_dir.glob(f"*/{long_id}*")) and not list(srv.data_dir.glob(f"*/.{long_id}*"))
        assert http.get("/api/v1/me").json()["credits"] == 4
