"""Suite 5: jobs per minute through the HTTP API with N workers, poll latency under load,
and ten concurrent OpenAI-style (/v1) requests on one worker with status polls alongside."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from .common import data_dir, Plan, audio_seconds, log
from .load import poll_latency
from .serverproc import Server, client, upload, wait_for


def run(plan: Plan, model: str, *, loaded_model: str | None = None) -> dict:
    from corpus.speech import LONG_FORM_PARAGRAPHS, espeak, long_form

    clip = data_dir() / "server_bench_clip.wav"
    if not clip.exists():
        espeak(" ".join(LONG_FORM_PARAGRAPHS[:2]), clip)
    clip_seconds = audio_seconds(clip)
    out: dict = {"model": model, "clip_seconds": clip_seconds, "jobs": plan.server_jobs, "throughput": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            log(f"server: {plan.server_jobs} jobs with {workers} worker(s)")
            with Server(Path(tmp) / f"w{workers}", workers=workers, model=model).start() as srv:
                http = client(srv, srv.token("bench"))
                wait_for(http, upload(http, clip).json()["job_id"])  # warm: model loaded once
                started = time.monotonic()
                ids = [upload(http, clip).json()["job_id"] for _ in range(plan.server_jobs)]
                for job_id in ids:
                    assert wait_for(http, job_id, timeout=3600)["status"] == "done"
                elapsed = time.monotonic() - started
            out["throughput"][workers] = {"seconds": elapsed, "jobs_per_minute": plan.server_jobs / elapsed * 60,
                                          "audio_minutes_per_minute": plan.server_jobs * clip_seconds / elapsed}
        log(f"server: poll latency, 50 clients for {plan.load_seconds} s during transcription")
        busy_model = loaded_model or model
        long_path, _ = long_form(data_dir() / "longform_20p_125wpm.wav", paragraphs=20, words_per_minute=125)
        with Server(Path(tmp) / "load", workers=1, model=busy_model).start() as srv:
            token = srv.token("load")
            http = client(srv, token)
            ids = [upload(http, long_path).json()["job_id"] for _ in range(8)]
            deadline = time.monotonic() + 120
            while http.get(f"/api/v1/transcriptions/{ids[0]}").json()["status"] != "processing":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            latency = poll_latency(f"{srv.url}/api/v1/transcriptions/{ids[0]}", token, seconds=plan.load_seconds)
            progressed = http.get(f"/api/v1/transcriptions/{ids[0]}").json()
            for job_id in ids:
                http.delete(f"/api/v1/transcriptions/{job_id}")
        latency["transcription_running"] = progressed["status"] in ("processing", "done")
        latency["busy_model"] = busy_model
        out["latency"] = latency
        log(f"server: 10 concurrent /v1 requests on one worker, status polls for {plan.load_seconds} s meanwhile")
        out["openai"] = openai_concurrency(Path(tmp) / "openai", model, clip, seconds=min(plan.load_seconds, 15))
    return out


def openai_concurrency(data_dir: Path, model: str, clip: Path, *, seconds: int, requests: int = 10) -> dict:
    """``requests`` simultaneous POST /v1/audio/transcriptions (each held open until its
    job is done) against one worker, while 50 clients poll a job's status on /api/v1.

    The baseline, on the same server in the same run: the same number of jobs submitted
    through /api/v1 (nobody waiting on them) with the same polling, so the report can say
    what holding /v1 requests open costs the status polls, apart from the machine's load.
    """
    import httpx

    from .load import poll_latency

    answers: dict[int, int] = {}
    texts: dict[int, str] = {}
    errors: list[str] = []
    with Server(data_dir, workers=1, model=model).start() as srv:
        token = srv.token("openai-bench")
        http = client(srv, token)
        poll_url = f"{srv.url}/api/v1/transcriptions/{{}}"
        wait_for(http, upload(http, clip).json()["job_id"])  # warm: the model is loaded once

        ids = [upload(http, clip).json()["job_id"] for _ in range(requests)]
        _until_processing(http)
        baseline = poll_latency(poll_url.format(ids[0]), token, seconds=seconds)
        for job_id in ids:
            wait_for(http, job_id, timeout=3600)

        def one(i: int) -> None:
            try:
                with open(clip, "rb") as fh:
                    r = httpx.post(f"{srv.url}/v1/audio/transcriptions", headers={"Authorization": f"Bearer {token}"},
                                   files={"file": (clip.name, fh)}, data={"model": "whisper-1"}, timeout=3600)
                answers[i] = r.status_code
                texts[i] = r.json().get("text", "") if r.status_code == 200 else r.text
            except Exception as exc:  # a lost request is the failure this measures
                errors.append(f"{type(exc).__name__}: {exc}")

        started = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(requests)]
        for t in threads:
            t.start()
        _until_created(http, 1 + 2 * requests)  # as in the baseline, polling starts once every upload is in
        latency = poll_latency(poll_url.format(_until_processing(http)), token, seconds=seconds)
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        done = http.get("/api/v1/transcriptions", params={"status": "done"}).json()["total"] - 1 - requests
    answered = sum(1 for i, code in answers.items() if code == 200 and texts[i].strip())
    return {"requests": requests, "answered": answered, "lost": requests - answered, "errors": errors[:5],
            "jobs_done": done, "seconds": elapsed, "latency": latency, "baseline_latency": baseline,
            "p99_ratio_vs_baseline": latency["p99_ms"] / baseline["p99_ms"] if baseline["p99_ms"] else None}


def _until_created(http, count: int, timeout: float = 120.0) -> None:
    """Until the user has ``count`` jobs (in any state)."""
    deadline = time.monotonic() + timeout
    while http.get("/api/v1/transcriptions", params={"per_page": 1}).json()["total"] < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} jobs were created")
        time.sleep(0.05)


def _until_processing(http, timeout: float = 60.0) -> str:
    """The id of the job a worker is running, once there is one."""
    deadline = time.monotonic() + timeout
    while not (items := http.get("/api/v1/transcriptions", params={"status": "processing"}).json()["items"]):
        if time.monotonic() > deadline:
            raise RuntimeError("no job started processing")
        time.sleep(0.05)
    return items[0]["job_id"]
