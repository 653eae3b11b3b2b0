"""Real processes killed with real signals: nothing lost, nothing done twice, nothing stuck."""

import json
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from harness import Server, client, upload, wait_for
from harness import rows as store_rows

pytestmark = [pytest.mark.model, pytest.mark.slow]
LEASE = 3.0


@pytest.fixture(scope="module")
def material(clips, long_speech, generated_dir):
    from corpus.speech import long_form

    five, _ = long_form(generated_dir / "longform_5min.wav", words_per_minute=125)
    short = [c.path for c in clips if c.language == "en"]
    return [five, long_speech[0], *short, long_speech[0]]


def db(srv: Server) -> sqlite3.Connection:
    conn = sqlite3.connect(srv.data_dir / "tft.sqlite3", timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def check_exactly_once(srv: Server, job_ids: list[str], *, no_other_exports: bool = False) -> dict:
    """Every job done, charged once, announced once, with one complete set of exports (and,
    with ``no_other_exports``, no other attempt's files at all: a process killed between
    writing and publishing leaves a directory the janitor removes a minute later)."""
    rows = {r["id"]: r for r in store_rows(srv, "SELECT * FROM jobs")}
    charges = store_rows(srv, "SELECT job_id, COUNT(*) AS n FROM ledger WHERE reason = 'charge' GROUP BY job_id")
    events = store_rows(srv, "SELECT job_id, event, COUNT(*) AS n FROM deliveries GROUP BY job_id, event")
    assert set(job_ids) <= set(rows)
    for job_id in job_ids:
        row = rows[job_id]
        assert row["status"] == "done", dict(row)
        published = Path(row["exports_dir"])
        assert published.name == f"{job_id}.{row['attempt_token']}"  # the attempt that completed it
        files = sorted(p.name for p in published.iterdir())
        assert files == [f"transcript.{ext}" for ext in ("json", "lrc", "srt", "txt", "vtt")], files
        data = json.loads((published / "transcript.json").read_text())
        assert data["segments"], job_id
        if no_other_exports:
            assert list(srv.data_dir.glob(f"exports/*{job_id}*")) == [published]
    assert {r["job_id"]: r["n"] for r in charges} == {j: 1 for j in job_ids}
    assert all(r["event"] == "job.done" and r["n"] == 1 for r in events)
    assert {r["job_id"] for r in events} == set(job_ids)
    return {j: rows[j]["attempts"] for j in job_ids}


def register_dead_webhook(http) -> None:
    """A receiver that is never up: deliveries are still recorded, once per event."""
    r = http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 201, r.text


def reclaim_seconds(srv: Server, job_id: str, attempts_before: int, restarted_at: float, timeout: float = 60) -> float:
    while time.monotonic() - restarted_at < timeout:
        with db(srv) as conn:
            row = conn.execute("SELECT attempts, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row["attempts"] > attempts_before or row["status"] in ("done", "error"):
            return time.monotonic() - restarted_at
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not reclaimed within {timeout} s of the restart")


def processing_job(srv: Server):
    with db(srv) as conn:
        row = conn.execute("SELECT id, attempts FROM jobs WHERE status = 'processing'").fetchone()
    return (row["id"], row["attempts"]) if row else None


# Ten kills can land on the same long job; attempts are capped above that here (the default
# cap, 3, is what stops a file that crashes its worker every time: see the poison test).
ENV = {"TFT_LEASE_SECONDS": str(LEASE), "TFT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8", "TFT_WEBHOOK_RETRY_SCALE": "0.01",
       "TFT_MAX_ATTEMPTS": "12"}


def test_kill_9_the_server_ten_times(tmp_path, material):
    rng = random.Random(1128)
    srv = Server(tmp_path / "kill-server", env=ENV).start()
    token = srv.token("kim")
    http = client(srv, token)
    register_dead_webhook(http)
    job_ids = [upload(http, path).json()["job_id"] for path in material]
    kills, reclaims = 0, []
    try:
        for _ in range(10):
            time.sleep(rng.uniform(0.5, 4.0))
            in_flight = processing_job(srv)
            srv.kill()
            kills += 1
            restarted = time.monotonic()
            srv.start()
            if in_flight is not None:
                reclaims.append(reclaim_seconds(srv, *in_flight, restarted_at=restarted))
        for job_id in job_ids:
            wait_for(http, job_id, timeout=300)
        attempts = check_exactly_once(srv, job_ids)
    finally:
        srv.stop()
    print(f"\nserver kill -9 x{kills}: {len(job_ids)} jobs done exactly once; attempts {sorted(attempts.values())}; "
          f"in-flight jobs reclaimed after {', '.join(f'{r:.1f}' for r in reclaims)} s")
    assert kills == 10 and reclaims and max(reclaims) <= 60
    assert max(attempts.values()) > 1  # the kills really landed mid-job


def test_kill_9_a_worker_process_ten_times(tmp_path, material):
    rng = random.Random(2811)
    api = Server(tmp_path / "kill-worker", workers=0, env=ENV).start()
    worker = Server(tmp_path / "kill-worker", workers=1, env=ENV, port=api.port)
    token = api.token("walt")
    http = client(api, token)
    register_dead_webhook(http)
    job_ids = [upload(http, path).json()["job_id"] for path in material]
    reclaims = []
    try:
        worker.start("worker", wait=False)
        for _ in range(10):
            time.sleep(rng.uniform(1.5, 4.0))
            in_flight = processing_job(api)
            worker.kill()
            restarted = time.monotonic()
            worker.start("worker", wait=False)
            if in_flight is not None:
                reclaims.append(reclaim_seconds(api, *in_flight, restarted_at=restarted))
        for job_id in job_ids:
            wait_for(http, job_id, timeout=300)
        attempts = check_exactly_once(api, job_ids)
        assert worker.stop() == 0  # SIGTERM: a clean exit
    finally:
        worker.kill()
        api.stop()
    print(f"\n`tft worker` kill -9 x10: {len(job_ids)} jobs done exactly once; attempts {sorted(attempts.values())}; "
          f"reclaimed after {', '.join(f'{r:.1f}' for r in reclaims)} s")
    assert reclaims and max(reclaims) <= 60 and max(attempts.values()) > 1


def test_a_file_that_crashes_its_worker_every_time_ends_in_error(tmp_path, clips):
    from corpus import synth
    from engine.audio import decode

    clip = next(c for c in clips if c.name == "counting")
    poison = synth.write_wav(tmp_path / "poison.wav", decode(clip.path))
    env = {**ENV, "TFT_FAULT_CRASH_ON": "poison", "TFT_MAX_ATTEMPTS": "3", "TFT_LEASE_SECONDS": "2"}
    # Both files are queued, poison first, before any worker runs: a worker that took the poison
    # file at once would kill the process under the second upload (a flake CI once hit).
    queue = Server(tmp_path / "poison", env=env, workers=0).start()
    token = queue.token("pat", credits=3)
    http = client(queue, token)
    poison_id = upload(http, poison).json()["job_id"]
    healthy_id = upload(http, clip.path).json()["job_id"]
    assert queue.stop() == 0
    srv = Server(tmp_path / "poison", env=env, port=queue.port).start(wait=False)  # it may die before it is ready
    http = client(srv, token)
    restarts = 0
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            if srv.proc.poll() is not None:  # a supervisor (systemd, docker) would restart it
                assert srv.proc.returncode == -signal.SIGKILL
                restarts += 1
                srv.start(wait=False)
                http = client(srv, token)
            try:
                job = http.get(f"/api/v1/transcriptions/{poison_id}").json()
            except Exception:
                time.sleep(0.2)
                continue
            if job.get("status") == "error":
                break
            time.sleep(0.2)
        assert job["status"] == "error", job
        assert job["error"]["code"] == "worker_crashed" and "3 times" in job["error"]["message"]
        assert job["attempts"] == 3 and restarts == 3
        assert job["credits"]["charged"] == 0
        assert wait_for(http, healthy_id, timeout=120)["status"] == "done"
        assert http.get("/api/v1/me").json()["credits"] == 2  # one refunded, one charged
    finally:
        srv.stop()
    print(f"\npoison file: worker died {restarts} times, then the job ended in error: {job['error']['message']}")


@pytest.mark.parametrize("role", ["serve", "worker"])
def test_sigterm_releases_the_running_job_and_exits_0(tmp_path, material, role):
    env = {**ENV, "TFT_SHUTDOWN_GRACE_SECONDS": "1"}
    api = Server(tmp_path / f"term-{role}", workers=1 if role == "serve" else 0, env=env).start()
    token = api.token("tess")
    http = client(api, token)
    job_id = upload(http, material[0], timestamps="required").json()["job_id"]  # 5 minutes of speech
    proc = api
    if role == "worker":
        proc = Server(tmp_path / f"term-{role}", workers=1, env=env, port=api.port)
        proc.start("worker", wait=False)
    deadline = time.monotonic() + 60
    while http.get(f"/api/v1/transcriptions/{job_id}").json()["progress"]["stage"] != "transcribe":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    started = time.monotonic()
    code = proc.stop(timeout=30)
    elapsed = time.monotonic() - started
    assert code == 0 and elapsed < 15, (code, elapsed, proc.log()[-2000:])
    with db(api) as conn:
        row = conn.execute("SELECT status, attempts, lease_owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert row["status"] == "pending" and row["attempts"] == 0 and row["lease_owner"] is None  # released, not lost
    if role == "serve":
        api = Server(tmp_path / f"term-{role}", workers=1, env=env, port=api.port).start()
    else:
        proc.start("worker", wait=False)
    try:
        done = wait_for(client(api, token), job_id, timeout=300)
        assert done["status"] == "done" and done["attempts"] == 1
    finally:
        proc.stop()
        api.stop()
    print(f"\nSIGTERM to `tft {role}` mid-job: exit 0 after {elapsed:.1f} s, job released and finished after restart")


def test_a_201_survives_an_immediate_kill_9(tmp_path, clips):
    clip = next(c for c in clips if c.name == "hello_world")
    srv = Server(tmp_path / "durable", workers=0).start()
    token = srv.token("dora")
    accepted = []
    try:
        for _ in range(5):
            r = upload(client(srv, token), clip.path)
            assert r.status_code == 201
            srv.kill()  # right after the acknowledgement
            accepted.append(r.json()["job_id"])
            srv.start()
        http = client(srv, token)
        for job_id in accepted:
            assert http.get(f"/api/v1/transcriptions/{job_id}").json()["status"] == "pending"
        assert http.get("/api/v1/transcriptions").json()["total"] == len(accepted)
    finally:
        srv.stop()


def test_a_worker_that_lost_its_lease_stops_without_touching_files(tmp_path, long_speech, new_db):
    """Worker A is frozen (SIGSTOP) mid-job until its lease runs out and worker B reclaims the
    job under a new attempt token; A is then thawed. A must notice at its next heartbeat and
    stop: no cancellation, no deleted upload, no exports, no event. B finishes exactly once.
    On SQLite and on PostgreSQL (where the claim skips a row the frozen A has locked)."""
    env = {**ENV, **new_db(), "TFT_LEASE_SECONDS": "2"}
    api = Server(tmp_path / "lease", workers=0, env=env).start()
    a = Server(tmp_path / "lease", workers=1, env=env, port=api.port)
    b = Server(tmp_path / "lease", workers=1, env=env, port=api.port)
    for name, worker in (("a", a), ("b", b)):  # one log each (the default is one per port)
        worker.log_path = tmp_path / "lease" / f"worker-{name}.log"
        Server.logs.append(worker.log_path)
    token = api.token("lena")
    http = client(api, token)
    register_dead_webhook(http)
    job_id = upload(http, long_speech[0], timestamps="required").json()["job_id"]
    try:
        a.start("worker", wait=False)
        deadline = time.monotonic() + 120
        while http.get(f"/api/v1/transcriptions/{job_id}").json()["progress"]["stage"] != "transcribe":
            assert time.monotonic() < deadline, a.log()[-2000:]
            time.sleep(0.05)
        first = _row(api, job_id)
        for _ in range(3):  # a freeze inside one of A's write transactions would hold B off: thaw, retry
            os.kill(a.proc.pid, signal.SIGSTOP)
            if b.proc is None:
                b.start("worker", wait=False)
            reclaimed = _wait_for_attempt(api, job_id, first["attempts"] + 1, timeout=20)
            if reclaimed:
                break
            os.kill(a.proc.pid, signal.SIGCONT)
            time.sleep(0.5)
        assert reclaimed, b.log()[-2000:]
        upload_path = Path(_row(api, job_id)["upload_path"])
        os.kill(a.proc.pid, signal.SIGCONT)
        done = wait_for(http, job_id, timeout=180)
        deadline = time.monotonic() + 20
        while "lease lost" not in a.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done["status"] == "done" and done["attempts"] == first["attempts"] + 1
        check_exactly_once(api, [job_id], no_other_exports=True)
        assert upload_path.exists()  # kept until the retention ends, and A never deleted it under B
        assert "lease lost (another worker holds the job now); stopped without touching its files" in a.log()
        assert f"job {job_id}: done" in b.log() and f"job {job_id}: done" not in a.log()
        assert _row(api, job_id)["attempt_token"] != first["attempt_token"]
    finally:
        for proc in (a, b):
            if proc.proc is not None and proc.proc.poll() is None:
                os.kill(proc.proc.pid, signal.SIGCONT)
            proc.stop()
        api.stop()
    print(f"\nlost lease: worker A frozen past its lease, B reclaimed job {job_id[:8]} and finished it; "
          "A stopped without touching its files")


def _row(srv: Server, job_id: str):
    return store_rows(srv, "SELECT * FROM jobs WHERE id = ?", (job_id,))[0]


def _wait_for_attempt(srv: Server, job_id: str, attempt: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _row(srv, job_id)["attempts"] >= attempt:
                return True
        except sqlite3.OperationalError:  # locked by the frozen worker
            pass
        time.sleep(0.1)
    return False
