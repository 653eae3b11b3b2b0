"""Soak: 200 mixed jobs through one server with one worker, then the books are checked.

Good clips (some under hostile filenames, some in music mode through the real Spleeter
weights and the stem cache), hostile files refused at the door, hostile files accepted and
failing in the worker (a header that lies about the length, damaged frames), jobs cancelled
while pending and while running, jobs deleted when done, jobs expiring under a short
retention, and webhooks to a receiver that answers and one that never does.

Afterwards: no thread died, no job is stuck, every job ended the way its kind must, credits
and webhook events add up, memory stayed bounded, and no file under the data directory
belongs to a deleted, failed, cancelled or expired job (the stem cache included).
"""

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from corpus import flac, media, synth
from harness import Server, client, db, leftovers, rss_mb, server_errors, upload, wait_for

pytestmark = [pytest.mark.model, pytest.mark.music, pytest.mark.slow]

CREDITS = 1000
RETENTION = 45


def _wav(path: Path, bits: int) -> Path:
    pcm = bytes(32000)
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, bits)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE" + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm)
    return path


@pytest.fixture(scope="module")
def material(tmp_path_factory, clips, long_speech, song):
    d = tmp_path_factory.mktemp("soak-material")
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * 4) / 16000)).astype(np.float32)
    mp3 = media.encode(d / "tone.mp3", tone)
    text = d / "notes.wav"
    text.write_text("meeting notes, not audio\n" * 40)
    noise = d / "noise.mp3"
    noise.write_bytes(np.random.default_rng(3).integers(0, 256, 8000, dtype=np.uint8).tobytes())
    song_path = song[0]
    short_song = synth.write_wav(d / "short_song.wav", _decode(song_path)[: 16000 * 16])
    return {
        "good": [c.path for c in clips if c.language == "en"],
        "long": synth.write_wav(d / "twenty_seconds.wav", _decode(long_speech[0])[: 16000 * 20]),
        "music": [short_song, synth.write_wav(d / "other_song.wav", _decode(song_path)[16000 * 34: 16000 * 46])],
        # a song no soak job has seen, so its stem is not yet in the cache
        "unseen_song": synth.write_wav(d / "unseen_song.wav", _decode(song_path)[16000 * 16: 16000 * 30]),
        "door": [_wav(d / "zero_bits.wav", 0), _wav(d / "sixty_four_bits.wav", 64), text,
                 media.truncate(mp3, d / "truncated.mp3", 0.5), synth.write_wav(d / "quiet.wav", synth.silence(8)), noise],
        "too_long": flac.write(d / "blanked_one_hour.flac", 3600, sound_at=[0.0], declared_samples=0),
        "damaged": flac.write(d / "damaged.flac", 150, sound_at=[0.0, 140.0], damaged=(30, 50)),
    }


def _decode(path):
    from engine.audio import decode

    return decode(path)


class Recorder(BaseHTTPRequestHandler):
    events: Counter = Counter()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.events[self.headers["X-TFT-Event-Id"]] += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _stalling_receiver() -> tuple[int, threading.Event]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    held = []

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
        for conn in held:
            conn.close()
        listener.close()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], stop


def _plan(material, rng: random.Random) -> list[tuple[str, Path, dict, bytes | None]]:
    """(kind, file, form fields, filename override) for 200 submissions."""
    plan = []
    plan += [("good", rng.choice(material["good"]), {}, None) for _ in range(81)]
    plan += [("delete_done", rng.choice(material["good"]), {}, None) for _ in range(10)]
    names = [b"A" * 250 + b".wav", b"nul\x00byte.wav", b"../../etc/passwd.wav", "\u202egnp.wav".encode()]
    plan += [("hostile_name", rng.choice(material["good"]), {}, names[i % len(names)]) for i in range(16)]
    plan += [("cancel_running", material["long"], {}, None) for _ in range(20)]
    plan += [("cancel_pending", rng.choice(material["good"]), {}, None) for _ in range(15)]
    plan += [("door", material["door"][i % len(material["door"])], {}, None) for i in range(30)]
    plan += [("too_long", material["too_long"], {}, None) for _ in range(15)]
    plan += [("damaged", material["damaged"], {}, None) for _ in range(9)]
    plan += [("music", material["music"][i % 2], {"audio_type": "music"}, None) for i in range(4)]
    assert len(plan) == 200
    rng.shuffle(plan)
    return plan


def _submit(http, path: Path, fields: dict, filename: bytes | None):
    if filename is None:
        return upload(http, path, **fields)
    boundary = "soakboundary0123456789"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode() + filename
            + b'"\r\n\r\n' + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode())
    return http.post("/api/v1/transcriptions", content=body,
                     headers={"content-type": f"multipart/form-data; boundary={boundary}"})


def test_two_hundred_mixed_jobs_through_one_worker(tmp_path, material):
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    stall_port, stop_stall = _stalling_receiver()
    env = {"TFT_MAX_AUDIO_MINUTES": "5", "TFT_RETENTION_SECONDS": str(RETENTION), "TFT_JANITOR_INTERVAL_SECONDS": "1",
           "TFT_LEASE_SECONDS": "2", "TFT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8", "TFT_WEBHOOK_RETRY_SCALE": "0.01",
           "TFT_WEBHOOK_TIMEOUT_SECONDS": "2", "TFT_SEPARATOR": "spleeter"}
    srv = Server(tmp_path / "soak", env=env).start()
    started = time.monotonic()
    try:
        http = client(srv, srv.token("sol", credits=CREDITS))
        for url in (f"http://127.0.0.1:{hooks.server_address[1]}/in", f"http://127.0.0.1:{stall_port}/never"):
            assert http.post("/api/v1/webhooks", json={"url": url, "events": ["job.done", "job.error"]}).status_code == 201
        # Warm up (Whisper, torch and the separation model loaded), then hold memory to that.
        warm = client(srv, srv.token("warm"))
        for path, fields in ((material["good"][0], {}), (material["music"][0], {"audio_type": "music"})):
            job_id = upload(warm, path, **fields).json()["job_id"]
            assert wait_for(warm, job_id)["status"] == "done"
            assert warm.delete(f"/api/v1/transcriptions/{job_id}").status_code == 200
        rss_start, rss_peak = rss_mb(srv), [0.0]
        kinds: dict[str, str] = {}
        door_statuses = []
        for kind, path, fields, name in _plan(material, random.Random(20261129)):
            r = _submit(http, path, fields, name)
            rss_peak[0] = max(rss_peak[0], rss_mb(srv))
            if kind == "door":
                door_statuses.append(r.status_code)
                assert r.status_code == 422 and r.json()["detail"][0]["msg"], r.text
                continue
            assert r.status_code == 201, (kind, r.text)
            kinds[r.json()["job_id"]] = kind
            if kind == "cancel_pending":
                assert http.delete(f"/api/v1/transcriptions/{r.json()['job_id']}").json()["status"] == "cancelled"
        _drive(srv, http, kinds, rss_peak)
        elapsed = time.monotonic() - started

        # No thread died, nothing is stuck.
        health = http.get("/healthz").json()
        assert health["status"] == "ok" and all(t == {"state": "alive", "restarts": 0} for t in health["threads"].values())
        with db(srv) as conn:
            rows = {r["id"]: r for r in conn.execute("SELECT * FROM jobs WHERE user_id != (SELECT id FROM users WHERE "
                                                     "name = 'warm')")}
            deliveries = Counter((r["job_id"], r["event"]) for r in conn.execute("SELECT job_id, event FROM deliveries"))
        assert set(rows) == set(kinds)
        assert not [r["status"] for r in rows.values() if r["status"] in ("pending", "processing")]

        # Every job ended the way its kind must.
        outcome = Counter()
        for job_id, kind in kinds.items():
            row = rows[job_id]
            status, code = row["status"], row["error_code"]
            outcome[(kind, status)] += 1
            if kind in ("good", "hostile_name", "music"):
                assert status == "done", (kind, dict(row))
            elif kind == "delete_done":
                assert status == "done" and row["deleted"] == 1
            elif kind == "cancel_pending":
                assert status == "cancelled" and row["attempts"] == 0
            elif kind == "cancel_running":
                assert status in ("cancelled", "done") and row["deleted"] == 1
            elif kind == "too_long":
                assert status == "error" and code == "audio_too_long", dict(row)
            elif kind == "damaged":
                assert status == "error" and code in ("truncated_audio", "undecodable_audio"), dict(row)
            if status == "done":
                assert deliveries[(job_id, "job.done")] == 2 and deliveries[(job_id, "job.error")] == 0
            elif status == "error":
                assert deliveries[(job_id, "job.error")] == 2 and deliveries[(job_id, "job.done")] == 0
            else:
                assert deliveries[(job_id, "job.done")] + deliveries[(job_id, "job.error")] == 0
        assert outcome[("cancel_running", "cancelled")] >= 15, outcome  # most cancels landed mid-job
        done = sum(1 for r in rows.values() if r["status"] == "done")
        assert http.get("/api/v1/me").json()["credits"] == CREDITS - done  # charged once per done job, all else refunded
        music = [json.loads(rows[j]["result"]) for j, k in kinds.items() if k == "music"]
        assert {m["separation"] for m in music} <= {"separated", "cached"}
        _stem_cache_goes_with_its_last_job(srv, material["unseen_song"])

        # Deleting means gone: wait for the janitor, then nothing on disk outlives its job.
        expired = [j for j, r in rows.items() if r["status"] == "done" and r["exports_expire_at"] <= time.time()]
        deadline = time.monotonic() + 20
        while (left := leftovers(srv)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, left[:20]
        assert expired and not any(srv.data_dir.glob(f"*/{expired[0]}*"))
        received = sum(Recorder.events.values())
        rss_end = rss_mb(srv)
        log = srv.log()
    finally:
        srv.stop()
        hooks.shutdown()
        stop_stall.set()
    print(f"\nsoak: 200 submissions in {elapsed:.0f} s: {dict(sorted(Counter(kinds.values()).items()))}, "
          f"{len(door_statuses)} refused at the door; outcomes {dict(sorted(outcome.items()))}; "
          f"{len(expired)} expired; {received} webhooks delivered; server RSS {rss_start:.0f} MB after warm-up, "
          f"peak {rss_peak[0]:.0f} MB, {rss_end:.0f} MB at the end")
    assert not server_errors(log) and "Traceback" not in log
    assert rss_peak[0] - rss_start < 300, (rss_start, rss_peak[0])


def _drive(srv: Server, http, kinds: dict[str, str], rss_peak: list, timeout: float = 600) -> None:
    """Play the user: cancel the long jobs while they run, delete some when done; wait for
    the queue to drain."""
    cancel = {j for j, k in kinds.items() if k == "cancel_running"}
    delete = {j for j, k in kinds.items() if k == "delete_done"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rss_peak[0] = max(rss_peak[0], rss_mb(srv))
        running = http.get("/api/v1/transcriptions", params={"status": "processing", "per_page": 200}).json()["items"]
        for job in running:
            if job["job_id"] in cancel:
                assert http.delete(f"/api/v1/transcriptions/{job['job_id']}").status_code == 200
                cancel.discard(job["job_id"])
        finished = http.get("/api/v1/transcriptions", params={"status": "done", "per_page": 200}).json()["items"]
        for job in finished:
            if job["job_id"] in delete:
                assert http.delete(f"/api/v1/transcriptions/{job['job_id']}").json()["status"] == "deleted"
                delete.discard(job["job_id"])
        with db(srv) as conn:  # deleted jobs included: a cancelled one is running until its worker stops
            busy = conn.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'processing')").fetchone()[0]
        if not busy and not delete:
            for job_id in cancel:  # finished before it was seen running: delete it done
                http.delete(f"/api/v1/transcriptions/{job_id}")
            return
        time.sleep(0.1)
    raise AssertionError(f"the queue did not drain in {timeout} s: {http.get('/healthz').json()}")


def _stem_cache_goes_with_its_last_job(srv: Server, song: Path) -> None:
    """Two jobs on one song share its vocal stem in the cache (the second is a cache hit); the
    stem outlives the first job's deletion and goes with the second's."""
    http = client(srv, srv.token("echo"))
    first, second = (wait_for(http, upload(http, song, audio_type="music").json()["job_id"]) for _ in range(2))
    assert first["telemetry"]["separation"] == "separated" and second["telemetry"]["separation"] == "cached"
    with db(srv) as conn:
        refs = conn.execute("SELECT job_id, cache_file FROM cache_refs WHERE job_id IN (?, ?)",
                            (first["job_id"], second["job_id"])).fetchall()
    assert len(refs) == 2 and len({r["cache_file"] for r in refs}) == 1
    stem = Path(refs[0]["cache_file"])
    assert stem.is_file() and stem.is_relative_to(srv.data_dir / "cache")
    assert http.delete(f"/api/v1/transcriptions/{first['job_id']}").status_code == 200
    time.sleep(1.5)
    assert stem.is_file()
    assert http.delete(f"/api/v1/transcriptions/{second['job_id']}").status_code == 200
    deadline = time.monotonic() + 10
    while stem.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not stem.exists()
