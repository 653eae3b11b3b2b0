"""The failure paths of `tft serve`, each class against a real server with one worker, each
followed by the liveness check: every thread up, a normal job still finishes, memory bounded.

Classes (issue K): hostile filenames; exceptions in export writing; a header that lies about
the length; probing before the credit check; exports racing a DELETE; a damaged job row or
webhook payload; a worker thread that dies (restarted; /healthz 503 when it stays down);
a failure that lands after a cancel.
"""

import sqlite3
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest

from corpus import flac
from harness import Server, assert_alive, client, db, rss_mb, upload, wait_for

pytestmark = [pytest.mark.model, pytest.mark.slow]

ENV = {
    "TFT_MAX_AUDIO_MINUTES": "10",
    "TFT_LEASE_SECONDS": "2",
    "TFT_JANITOR_INTERVAL_SECONDS": "0.5",
    "TFT_FAULT_EXIT_THREAD_ON": "exit-thread",
    "TFT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
    "TFT_WEBHOOK_RETRY_SCALE": "0.01",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("failure-paths"), env=ENV).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token(server):
    return server.token("fiona")


@pytest.fixture(scope="module")
def rss_bound(server, token, clips):
    """The server's memory after a first job (model loaded), plus room for one 10-minute
    decode: every liveness check holds it to this, whatever the case before it sent."""
    fox = next(c for c in clips if c.name == "quick_brown_fox").path
    assert_alive(server, token, fox)
    return rss_mb(server) + 250


def alive(server, token, fox, rss_bound):
    return assert_alive(server, token, fox, max_rss_mb=rss_bound)


@pytest.fixture(scope="module")
def fox(clips):
    return next(c for c in clips if c.name == "quick_brown_fox").path


def post_file(http: httpx.Client, filename: bytes, data: bytes) -> httpx.Response:
    """A multipart upload written byte by byte, so the filename can hold what a browser or
    curl would never send (NUL, a 250-character stem, path separators)."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode() + filename
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + data + f"\r\n--{boundary}--\r\n".encode())
    return http.post("/api/v1/transcriptions", content=body,
                     headers={"content-type": f"multipart/form-data; boundary={boundary}"})


def test_hostile_filenames_are_transcribed_and_never_reach_the_disk(server, token, fox, rss_bound):
    """A 250-character stem used to crash export writing (File name too long) outside the
    worker's error handling and kill the only worker thread."""
    http = client(server, token)
    data = fox.read_bytes()
    names = [b"A" * 250 + b".wav", b"nul\x00byte.wav", b"../../../../etc/cron.d/x.wav", b"evil\xe2\x80\xaevaw.exe",
             "é".encode() * 300 + b".wav", b"..", b"con.wav"]
    ids = []
    for name in names:
        r = post_file(http, name, data)
        assert r.status_code == 201, (name, r.text)
        ids.append(r.json()["job_id"])
    for name, job_id in zip(names, ids):
        job = wait_for(http, job_id, timeout=120)
        assert job["status"] == "done", (name, job)
        stored = job["filename"]
        assert "\x00" not in stored and "/" not in stored and "\u202e" not in stored and len(stored) <= 200, stored
        r = http.get(f"/api/v1/transcriptions/{job_id}/export", params={"format": "txt"})
        assert r.status_code == 200 and r.text.strip() == "The quick brown fox jumps over the lazy dog."
        disposition = r.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="') and "\x00" not in disposition
        on_disk = sorted(p.name for p in server.data_dir.glob(f"exports/{job_id}.*/*"))
        assert on_disk == [f"transcript.{ext}" for ext in ("json", "lrc", "srt", "txt", "vtt")]
    assert not list(Path("/etc/cron.d").glob("x.*"))
    alive(server, token, fox, rss_bound)


def test_exports_that_cannot_be_written_fail_the_job_and_the_worker_carries_on(server, token, fox, rss_bound):
    """Any exception while saving the exports (here the exports directory is replaced by a
    plain file, so even creating it fails) is one failed job, refunded, not a dead worker."""
    payer = server.token("paul", credits=3)
    http = client(server, payer)
    exports = server.data_dir / "exports"
    aside = server.data_dir / "exports-aside"
    exports.rename(aside)
    exports.write_text("not a directory")
    try:
        job = wait_for(http, upload(http, fox).json()["job_id"], timeout=120)
    finally:
        exports.unlink()
        aside.rename(exports)
    assert job["status"] == "error" and job["error"]["code"] == "internal_error", job
    assert "exports could not be saved" in job["error"]["message"]
    assert http.get("/api/v1/me").json()["credits"] == 3  # the hold was refunded
    assert not list(server.data_dir.glob(f"*/{job['job_id']}*"))  # its upload went with it
    alive(server, token, fox, rss_bound)


def test_a_header_that_lies_about_the_length_is_stopped_at_the_limit_in_bounded_memory(server, token, fox, rss_bound,
                                                                                        tmp_path):
    """A FLAC whose STREAMINFO sample count is blanked probes as 0.26 s and holds 5 hours; the
    worker used to decode all of it into memory (1.2 GB at 16 kHz) before checking."""
    lying = flac.write(tmp_path / "five_hours.flac", 5 * 3600, sound_at=[0.0, 30.0], declared_samples=0)
    http = client(server, token)
    created = upload(http, lying)
    assert created.status_code == 201, created.text  # the header claims a quarter second
    before = rss_mb(server)
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(server))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        job = wait_for(http, created.json()["job_id"], timeout=120)
    finally:
        done.set()
        sampler.join()
    print(f"\nblanked-STREAMINFO FLAC ({lying.stat().st_size / 1e6:.1f} MB, 5 h): server RSS {before:.0f} MB -> "
          f"peak {peak[0]:.0f} MB (limit 10 min = {10 * 60 * 16000 * 4 / 1e6:.0f} MB of samples)")
    assert job["status"] == "error" and job["error"]["code"] == "audio_too_long", job
    assert "'five_hours.flac' is longer than 10 minutes" in job["error"]["message"]
    assert peak[0] - before < 200, (before, peak[0])  # the whole file would be 1150 MB of samples
    alive(server, token, fox, rss_bound)


def test_probing_costs_nothing_before_the_credit_check_and_is_bounded_after_it(server, token, fox, rss_bound,
                                                                               tmp_path):
    """A 10-hour silent FLAC used to cost 7-8 s of CPU in the probe even for a user with no
    credits, who got the 402 only afterwards."""
    silent = flac.write(tmp_path / "ten_hours_silence.flac", 10 * 3600)
    blank = flac.write(tmp_path / "ten_hours_silence_blanked.flac", 10 * 3600, declared_samples=0)
    proc = psutil.Process(server.proc.pid)

    def cpu_of(http, path):
        before = sum(proc.cpu_times()[:2])
        r = upload(http, path)
        return r, sum(proc.cpu_times()[:2]) - before

    broke = client(server, server.token("bruno", credits=0))
    refused, cpu_broke = cpu_of(broke, silent)
    assert refused.status_code == 402 and "balance is 0" in refused.json()["detail"]
    paying = client(server, token)
    declared, cpu_declared = cpu_of(paying, silent)
    assert declared.status_code == 422 and "600 minutes long" in declared.json()["detail"][0]["msg"], declared.text
    scanned, cpu_scanned = cpu_of(paying, blank)
    assert scanned.status_code == 422 and "longer than 10 minutes" in scanned.json()["detail"][0]["msg"], scanned.text
    print(f"\n10 h silent FLAC: probe CPU with 0 credits {cpu_broke * 1000:.0f} ms (402), with credits "
          f"{cpu_declared * 1000:.0f} ms (422 from the header), header blanked {cpu_scanned * 1000:.0f} ms "
          "(422 after scanning to the 10-minute limit)")
    assert cpu_broke < 0.25 and cpu_declared < 0.25  # no decoding at all
    assert cpu_scanned < 2.0  # bounded by the limit, not by the 10 hours in the file
    alive(server, token, fox, rss_bound)


def test_exports_racing_a_delete_are_whole_or_refused(server, token, fox, rss_bound):
    """Exports, segments and the original audio (a Range request) while a DELETE lands:
    every answer is a complete body, 404 or 410; never a 500, never a cut body."""
    http = client(server, token)
    ids = [upload(http, fox).json()["job_id"] for _ in range(3)]
    answers: list[tuple[str, int, bool]] = []
    for job_id in ids:
        wait_for(http, job_id)
        expected = http.get(f"/api/v1/transcriptions/{job_id}/export", params={"format": "json"}).content
        original = fox.read_bytes()
        stop = threading.Event()

        def hammer():
            with client(server, token) as c:
                while not stop.is_set():
                    r = c.get(f"/api/v1/transcriptions/{job_id}/export", params={"format": "json"})
                    answers.append(("export", r.status_code, r.status_code != 200 or r.content == expected))
                    s = c.get(f"/api/v1/transcriptions/{job_id}/segments")
                    answers.append(("segments", s.status_code, s.status_code != 200 or bool(s.json()["segments"])))
                    a = c.get(f"/api/v1/transcriptions/{job_id}/audio", headers={"Range": "bytes=44-"})
                    answers.append(("audio", a.status_code, a.status_code != 206 or a.content == original[44:]))

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        assert http.delete(f"/api/v1/transcriptions/{job_id}").status_code == 200
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
    statuses = [status for _, status, _ in answers]
    print(f"\nexports racing DELETE: {len(answers)} answers: {statuses.count(200)} complete, "
          f"{statuses.count(404)} 404, {statuses.count(410)} 410")
    assert set(statuses) <= {200, 206, 404, 410} and all(whole for _, _, whole in answers)
    assert statuses.count(200) > 0 and statuses.count(404) > 0
    alive(server, token, fox, rss_bound)


def test_a_damaged_job_row_or_payload_stops_neither_the_worker_nor_the_dispatcher(server, token, fox, rss_bound):
    received: list[tuple[str, float]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["X-TFT-Event-Id"], time.time()))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    hooks = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    try:
        victim, other = client(server, server.token("vera")), client(server, server.token("otto"))
        url = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
        for http in (victim, other):
            assert http.post("/api/v1/webhooks", json={"url": url, "events": ["job.done", "job.error"]}).status_code == 201
        victim_id = victim.get("/api/v1/me").json()["user_id"]
        damaged = str(uuid.uuid4())
        with db(server) as conn:  # a row the store cannot read back, as a bug or a bad restore could leave
            conn.execute("INSERT INTO jobs (id, user_id, status, filename, upload_path, options, created_at, updated_at) "
                         "VALUES (?, ?, 'pending', 'x.wav', '/nonexistent', '{not json', ?, ?)",
                         (damaged, victim_id, time.time() - 3600, time.time()))
            hook = conn.execute("SELECT id FROM webhooks WHERE user_id = ?", (victim_id,)).fetchone()[0]
            conn.execute("INSERT INTO deliveries (id, webhook_id, job_id, event, status, next_attempt_at, created_at) "
                         "VALUES (?, ?, ?, 'job.done', 'pending', ?, ?)", (f"evt_{uuid.uuid4().hex}", hook, damaged,
                                                                          time.time(), time.time()))
        job = wait_for(other, upload(other, fox).json()["job_id"])
        assert job["status"] == "done"
        deadline = time.monotonic() + 20
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(received) == 1  # the other tenant's event arrived; the damaged one did not
        with db(server) as conn:
            row = conn.execute("SELECT status, error_message FROM jobs WHERE id = ?", (damaged,)).fetchone()
            bad = conn.execute("SELECT attempts, last_error FROM deliveries WHERE job_id = ?", (damaged,)).fetchone()
        assert row["status"] == "error" and "damaged" in row["error_message"]
        assert bad["attempts"] >= 1 and bad["last_error"]
    finally:
        hooks.shutdown()
    alive(server, token, fox, rss_bound)


def test_a_worker_thread_that_dies_is_restarted_and_its_poison_job_ends_in_error(server, token, fox, rss_bound,
                                                                                 tmp_path):
    """SystemExit from inside a job ends the thread (nothing catches it on purpose): the
    supervisor logs it and starts a new worker; the job, which kills its worker every time,
    ends in error after TFT_MAX_ATTEMPTS like a file that crashes the whole process."""
    poison = tmp_path / "exit-thread.wav"
    poison.write_bytes(fox.read_bytes())
    http = client(server, token)
    job = wait_for(http, upload(http, poison).json()["job_id"], timeout=120)
    assert job["status"] == "error" and job["error"]["code"] == "worker_crashed", job
    log = server.log()
    assert log.count("thread worker-0 died: SystemExit") == 3 and "starting a new one (restart 3)" in log
    health = http.get("/healthz").json()
    assert health["threads"]["worker-0"] == {"state": "alive", "restarts": 3}
    alive(server, token, fox, rss_bound)


def test_healthz_is_503_while_a_worker_or_the_dispatcher_is_dead(tmp_path, fox):
    env = {**ENV, "TFT_THREAD_RESTART_LIMIT": "0"}
    with Server(tmp_path / "dead-threads", env=env).start() as srv:
        http = client(srv, srv.token("hugo"))
        assert http.get("/healthz").status_code == 200
        assert http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/exit-thread"}).status_code == 201
        assert wait_for(http, upload(http, fox).json()["job_id"])["status"] == "done"
        health = _wait_health(http, lambda h: h["threads"]["webhooks"]["state"] == "dead")
        assert health["status"] == "unhealthy" and "SystemExit" in health["threads"]["webhooks"]["error"]
        assert health["threads"]["worker-0"]["state"] == "alive"
        poison = tmp_path / "exit-thread.wav"
        poison.write_bytes(fox.read_bytes())
        upload(http, poison)
        health = _wait_health(http, lambda h: h["threads"]["worker-0"].get("restarting") is False)
        assert health["threads"]["worker-0"]["state"] == "dead" and health["threads"]["webhooks"]["state"] == "dead"
        assert http.get("/healthz").status_code == 503
        assert "not restarting it. /healthz reports unhealthy" in srv.log()


def _wait_health(http, condition, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = http.get("/healthz")
        if condition(r.json()):
            assert r.status_code == 503
            return r.json()
        time.sleep(0.1)
    raise AssertionError(f"/healthz never showed the expected state: {r.json()}")


def test_a_failure_after_a_cancel_is_a_cancel(tmp_path, fox):
    """DELETE lands while the worker decodes; the decode then fails (too long). The job must
    end cancelled: no job.error event, one refund, no requeue, no files."""
    env = {**ENV, "TFT_MAX_AUDIO_MINUTES": "90"}
    lying = flac.write(tmp_path / "three_hours.flac", 3 * 3600, sound_at=[0.0], declared_samples=0)
    with Server(tmp_path / "fail-after-cancel", env=env).start() as srv:
        http = client(srv, srv.token("cara", credits=2))
        assert http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook",
                                                   "events": ["job.done", "job.error"]}).status_code == 201
        job_id = upload(http, lying).json()["job_id"]
        deadline = time.monotonic() + 30
        while http.get(f"/api/v1/transcriptions/{job_id}").json()["progress"]["stage"] != "decode":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert http.delete(f"/api/v1/transcriptions/{job_id}").json()["status"] == "cancelled"
        deadline = time.monotonic() + 60
        while True:
            with db(srv) as conn:
                row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row["status"] != "processing" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        log = srv.log()
        with db(srv) as conn:
            events = conn.execute("SELECT event FROM deliveries WHERE job_id = ?", (job_id,)).fetchall()
            refunds = conn.execute("SELECT COUNT(*) FROM ledger WHERE job_id = ? AND reason LIKE 'refund%'",
                                   (job_id,)).fetchone()[0]
        assert "it failed after the cancellation: audio_too_long" in log  # the failure did land after the cancel
        assert row["status"] == "cancelled" and row["error_code"] is None, dict(row)
        assert events == [] and refunds == 1
        assert http.get("/api/v1/me").json()["credits"] == 2
        assert not list(srv.data_dir.glob(f"*/{job_id}*"))
        time.sleep(2.5)  # longer than the lease: a cancelled job is never claimed again
        with db(srv) as conn:
            assert conn.execute("SELECT status, attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()[:] == ("cancelled", 1)


def test_store_steps_after_a_cancel_never_requeue_or_announce(tmp_path):
    """The store's half of the rule, for each way an attempt can end after DELETE."""
    from server.store import LeaseState, SQLiteStore

    store = SQLiteStore(tmp_path / "db.sqlite3")
    user = store.ensure_user("ana", 10)
    conn = sqlite3.connect(tmp_path / "db.sqlite3")
    store.add_webhook(user_id=user.id, url="http://example.com/", secret="s", events=["job.done", "job.error"], limit=5)
    for step in ("fail", "release", "complete"):
        job_id = f"job-{step}"
        store.create_job(job_id=job_id, user=user, filename="a.wav", upload_path="/x", options={}, price=1,
                         audio_duration=1.0, top_up_url=None)
        claimed = store.claim_job("w", lease_seconds=60, max_attempts=3)
        store.delete_job(job_id, user.id)
        token = claimed.attempt_token
        if step == "fail":
            state = store.fail_job(job_id, token, code="x", message="boom")
        elif step == "release":
            state = store.release_job(job_id, token)
        else:
            state = store.complete_job(job_id, token, result={}, exports_dir="/e", expires_at=0)
        assert state is LeaseState.CANCELLED, step
        if step != "complete":
            assert store.get_job(job_id).status.value == "cancelled", step
        assert store.claim_job("w2", lease_seconds=60, max_attempts=3) is None
        assert conn.execute("SELECT COUNT(*) FROM deliveries WHERE job_id = ?", (job_id,)).fetchone()[0] == 0
    assert store.get_user(user.id).credits == 10  # every hold refunded once
    # ...and an attempt whose token is not the job's current one changes nothing at all.
    store.create_job(job_id="stale", user=user, filename="a.wav", upload_path="/x", options={}, price=1,
                     audio_duration=1.0, top_up_url=None)
    first = store.claim_job("w", lease_seconds=-1, max_attempts=3)  # its lease is over at once
    second = store.claim_job("w2", lease_seconds=60, max_attempts=3)
    assert second.id == first.id == "stale" and second.attempt_token != first.attempt_token
    for call in (lambda t: store.heartbeat("stale", t, lease_seconds=60, stage=None, fraction=0),
                 lambda t: store.fail_job("stale", t, code="x", message="y"), lambda t: store.release_job("stale", t),
                 lambda t: store.complete_job("stale", t, result={}, exports_dir="/stale", expires_at=0)):
        assert call(first.attempt_token) is LeaseState.LOST
    row = store.get_job("stale")
    assert row.status.value == "processing" and row.attempt_token == second.attempt_token and row.exports_dir is None
