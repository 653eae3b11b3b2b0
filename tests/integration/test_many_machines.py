"""Many machines on one PostgreSQL: 2 API nodes and 3 `tft worker` processes, each with its
own local data directory and one shared blob directory. 60 short jobs go in through both
APIs; workers are killed with SIGKILL 10 times (and started again) and PostgreSQL restarts
once while they run. Every job ends done exactly once: one charge, one job.done event (one
outbox row, delivered to the receiver under one event id), one complete export set."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness import Server, client, rows, upload

pytestmark = [pytest.mark.model, pytest.mark.slow]

JOBS, KILLS = 60, 10
EXPORTS = {"transcript.txt", "transcript.srt", "transcript.vtt", "transcript.lrc", "transcript.json"}


class Hooks(BaseHTTPRequestHandler):
    events: list = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with Hooks.lock:
            Hooks.events.append((self.headers["X-TFT-Event-Id"], body["event"], body["data"]["job_id"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def cluster():
    from benchmarks.pgcluster import Cluster

    own = Cluster().start()  # its own: this test restarts it
    yield own
    own.destroy()


def _done(api: Server) -> int:
    """Read from the database itself: no API request while PostgreSQL may be restarting."""
    return rows(api, "SELECT COUNT(*) AS n FROM jobs WHERE status = 'done'")[0]["n"]


def test_two_apis_three_workers_kills_and_a_database_restart(tmp_path, cluster, clips):
    fox = next(c for c in clips if c.name == "quick_brown_fox")
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    Hooks.events = []
    shared = tmp_path / "shared"
    env = {"TFT_DATABASE_URL": cluster.create_database("studio"), "TFT_BLOB_DIR": str(shared),
           "TFT_MAX_ATTEMPTS": "50", "TFT_LEASE_SECONDS": "4", "TFT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
           "TFT_JANITOR_INTERVAL_SECONDS": "2"}
    apis = [Server(tmp_path / f"api-{i}", workers=0, env=env).start() for i in range(2)]
    workers = [Server(tmp_path / f"worker-{i}", env=env).start("worker", "--concurrency", "1", wait=False)
               for i in range(3)]
    try:
        token = apis[0].token("studio", credits=100)
        hook = client(apis[1], token).post("/api/v1/webhooks", json={
            "url": f"http://127.0.0.1:{hooks.server_address[1]}/hook", "events": ["job.done"]})
        assert hook.status_code == 201, hook.text
        job_ids = []
        for i in range(JOBS):
            r = upload(client(apis[i % 2], token), fox.path)
            assert r.status_code == 201, r.text
            job_ids.append(r.json()["job_id"])

        rng = random.Random(13)
        for kill in range(KILLS):
            time.sleep(rng.uniform(1.0, 3.0))
            victim = rng.randrange(len(workers))
            workers[victim].kill()
            workers[victim] = Server(tmp_path / f"worker-{victim}", env=env).start(
                "worker", "--concurrency", "1", wait=False)
            if kill == KILLS // 2:
                cluster.restart(down_seconds=1.0)  # every process loses every connection
        deadline = time.monotonic() + 600
        while _done(apis[0]) < JOBS and time.monotonic() < deadline:
            time.sleep(1.0)
        assert _done(apis[0]) == JOBS, [w.log()[-3000:] for w in workers]
        deadline = time.monotonic() + 60
        while len({e[0] for e in Hooks.events}) < JOBS and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        for w in workers:
            w.stop(timeout=30)
        hooks.shutdown()

    probe = apis[0]
    jobs = {r["id"]: r for r in rows(probe, "SELECT * FROM jobs")}
    assert set(jobs) == set(job_ids) and all(j["status"] == "done" for j in jobs.values())
    assert max(j["attempts"] for j in jobs.values()) >= 2  # the kills really interrupted jobs
    charges = rows(probe, "SELECT job_id, COUNT(*) AS n FROM ledger WHERE reason = 'charge' GROUP BY job_id")
    assert {r["job_id"]: r["n"] for r in charges} == {j: 1 for j in job_ids}
    completions = rows(probe, "SELECT job_id, COUNT(*) AS n FROM job_completions GROUP BY job_id")
    assert {r["job_id"]: r["n"] for r in completions} == {j: 1 for j in job_ids}
    outbox = rows(probe, "SELECT job_id, COUNT(*) AS n FROM deliveries WHERE event = 'job.done' GROUP BY job_id")
    assert {r["job_id"]: r["n"] for r in outbox} == {j: 1 for j in job_ids}
    delivered = {}
    for event_id, event, job_id in Hooks.events:
        delivered.setdefault(job_id, set()).add(event_id)
    assert delivered == {j: {delivered[j].copy().pop()} for j in job_ids}  # one event id per job, all delivered
    me = client(apis[1], token).get("/api/v1/me").json()
    assert me["credits"] == 100 - JOBS
    for i, job_id in enumerate(job_ids):
        exports = shared / "exports"
        published = jobs[job_id]["exports_dir"]
        assert published.startswith(str(exports)) and {p.name for p in (exports / published.rsplit("/", 1)[1]).iterdir()} >= EXPORTS
        body = client(apis[(i + 1) % 2], token).get(f"/api/v1/transcriptions/{job_id}/export", params={"format": "txt"})
        assert body.status_code == 200 and "quick brown fox" in body.text.lower()
    for api in apis:  # both API nodes lived through the restart: reconnected, LISTENing again
        health = client(api, None).get("/healthz").json()
        assert health["database"] == {"kind": "postgresql", "reachable": True}
        assert api.stop() == 0
        assert "listening for job changes again" in api.log()


def test_health_migrate_and_store_check_on_postgres(tmp_path, cluster):
    """The console scripts, from outside the repository, against a PostgreSQL store: `tft
    migrate` reports the schema, `tft store check` finds an orphaned upload and a stuck job;
    /healthz says 503 while the database is down and 200 once it is back."""
    import os
    import subprocess
    import sys

    from server.store import SCHEMA_VERSION

    tft = str(Path(sys.executable).parent / "tft")
    env = {**os.environ, "TFT_DATABASE_URL": cluster.create_database("ops"), "TFT_DATA_DIR": str(tmp_path / "local"),
           "TFT_BLOB_DIR": str(tmp_path / "shared"), "TFT_LEASE_SECONDS": "1"}
    wrong = subprocess.run([tft, "serve"], env={**env, "TFT_DATABASE_URL": "mysql://db/tft"}, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "TFT_DATABASE_URL must be a PostgreSQL URL" in wrong.stderr, wrong.stderr
    assert "Traceback" not in wrong.stderr
    migrated = subprocess.run([tft, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert migrated.returncode == 0 and f"schema version {SCHEMA_VERSION}" in migrated.stdout, migrated.stderr
    assert "secret" not in migrated.stdout and migrated.stdout.startswith("postgresql://")
    clean = subprocess.run([tft, "store", "check"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert clean.returncode == 0 and clean.stdout.strip().endswith("ok"), clean.stdout + clean.stderr

    orphan = tmp_path / "shared" / "uploads" / "0123abcd-dead-4bee-8bee-0123456789ab.upload"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left behind")
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    from server.store.postgres import PostgresStore

    store = PostgresStore(env["TFT_DATABASE_URL"], listen=False)
    user = store.ensure_user("ops", None)
    store.create_job(job_id="stuck-1", user=user, filename="a.wav", upload_path=str(orphan.parent / "stuck-1.upload"),
                     options={}, price=0, audio_duration=1.0, top_up_url=None)
    (orphan.parent / "stuck-1.upload").write_bytes(b"audio")
    store.claim_job("a-worker-that-dies", lease_seconds=0.1, max_attempts=3)
    store.close()
    time.sleep(1.5)  # the lease, and the grace of one more lease, run out
    found = subprocess.run([tft, "store", "check", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True)
    report = json.loads(found.stdout)
    assert found.returncode == 1 and report["orphan_uploads"] == [str(orphan)], found.stdout
    assert [j["job_id"] for j in report["stuck_jobs"]] == ["stuck-1"] and "lease expired" in report["stuck_jobs"][0]["why"]

    api = Server(tmp_path / "api", workers=0, env={k: env[k] for k in ("TFT_DATABASE_URL", "TFT_BLOB_DIR")}).start()
    try:
        assert client(api, None).get("/healthz").json()["database"] == {"kind": "postgresql", "reachable": True}
        cluster.stop()
        down = client(api, None).get("/healthz")
        assert down.status_code == 503 and down.json()["database"]["reachable"] is False
        assert "cannot be reached" in down.json()["database"]["error"]
        cluster.pg_ctl_start()
        deadline = time.monotonic() + 30
        while client(api, None).get("/healthz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client(api, None).get("/healthz").json()["database"]["reachable"] is True
    finally:
        api.stop()
