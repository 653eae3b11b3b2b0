"""Suite 5: jobs per minute through the HTTP API with N workers, and poll latency under load."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .common import DATA, Plan, audio_seconds, log
from .load import poll_latency
from .serverproc import Server, client, upload, wait_for


def run(plan: Plan, model: str, *, loaded_model: str | None = None) -> dict:
    from corpus.speech import LONG_FORM_PARAGRAPHS, espeak, long_form

    clip = DATA / "server_bench_clip.wav"
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
        long_path, _ = long_form(DATA / "longform_20p_125wpm.wav", paragraphs=20, words_per_minute=125)
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
    return out
