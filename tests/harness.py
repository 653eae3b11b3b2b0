"""The server subprocess harness lives with the benchmarks, which use it too. The checks the
failure-path tests share live here: is the server still alive, and does anything on disk
outlive the job it belonged to."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil

from benchmarks.serverproc import Server, client, free_port, upload, wait_for  # noqa: F401

class ScriptServer(Server):
    """A server or worker run as a user runs it: the installed console script (`tft`), from
    its own data directory, outside the repository."""

    def start(self, *command: str, wait: bool = True) -> "ScriptServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        cmd = command or ("serve",)
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "tft"), *cmd], env=self.env, cwd=self.data_dir,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait and cmd[0] == "serve":
            self.wait_ready()
        return self


def start_moto() -> tuple[str, subprocess.Popen]:
    """moto's stand-alone S3 server on a loopback port (no S3 server installs here): its URL
    and process."""
    import httpx

    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return url, proc
        except httpx.HTTPError:
            assert time.monotonic() < deadline and proc.poll() is None, "moto_server did not start"
            time.sleep(0.2)


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


SERVER_ERROR = re.compile(r'"[A-Z]+ [^"]*" 5\d\d\b|unhandled error')


def server_errors(log: str) -> list[str]:
    """Access-log lines of 5xx answers, and the app's own 'unhandled error' lines."""
    return [line for line in log.splitlines() if SERVER_ERROR.search(line)]


def db(srv: Server) -> sqlite3.Connection:
    conn = sqlite3.connect(srv.data_dir / "tft.sqlite3", timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def rows(srv: Server, sql: str, params: tuple = ()) -> list:
    """Rows straight from the server's store, whichever it is (``?`` marks parameters)."""
    url = srv.env.get("TFT_DATABASE_URL")
    if not url:
        with db(srv) as conn:
            return conn.execute(sql, params).fetchall()
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql.replace("?", "%s"), params or None).fetchall()


def rss_mb(srv: Server) -> float:
    return psutil.Process(srv.proc.pid).memory_info().rss / 1e6


def assert_alive(srv: Server, token: str, clip: Path, *, timeout: float = 120, max_rss_mb: float | None = None) -> dict:
    """The liveness check after each hostile case: every supervised thread is up, a normal
    job is still taken, transcribed and finished, and (``max_rss_mb``) memory is bounded."""
    if max_rss_mb is not None:
        assert rss_mb(srv) < max_rss_mb, (rss_mb(srv), max_rss_mb)
    http = client(srv, token)
    health = http.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    r = upload(http, clip)
    assert r.status_code == 201, r.text
    job = wait_for(http, r.json()["job_id"], timeout=timeout)
    assert job["status"] == "done", job
    assert http.get("/healthz").status_code == 200
    return job


def leftovers(srv: Server) -> list[str]:
    """Files under the data directory that no live job owns: an upload of a job that is
    deleted, ended or expired; an export directory no live job points at; a stem-cache file
    no live job refers to. (The database and the harness's logs are not job files.)"""
    now = time.time()
    jobs = {r["id"]: r for r in rows(srv, "SELECT * FROM jobs")}
    refs = rows(srv, "SELECT job_id, cache_file FROM cache_refs")

    def live(row) -> bool:
        if row is None or row["deleted"] or row["status"] in ("error", "cancelled"):
            return False
        return not (row["status"] == "done" and (row["exports_expired"] or row["exports_expire_at"] <= now))

    cached = {r["cache_file"] for r in refs if live(jobs.get(r["job_id"]))}
    exports = {r["exports_dir"] for r in jobs.values() if live(r) and r["exports_dir"]}
    bad = []
    for path in sorted(p for p in srv.data_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(srv.data_dir)
        top = rel.parts[0]
        if len(rel.parts) == 1 and (path.name.startswith("tft.sqlite3") or path.name.startswith("server-")):
            continue
        if top == "uploads":
            owner = jobs.get(path.name.split(".", 1)[0])
            if not live(owner):
                bad.append(f"{rel}: upload of a {'missing' if owner is None else owner['status']} job")
        elif top == "exports":
            if str(srv.data_dir / "exports" / rel.parts[1]) not in exports:
                bad.append(f"{rel}: export of no live job")
        elif top == "cache":
            if str(path) not in cached:
                bad.append(f"{rel}: cache file no live job refers to")
        else:
            bad.append(f"{rel}: unexpected")
    return bad
