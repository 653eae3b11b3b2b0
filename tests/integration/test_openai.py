"""OpenAI's audio API (/v1) driven by the official `openai` client, curl and an Open WebUI
style request, against a real server on a loopback port, the real tiny.en (and base for
translation), each store (a SQLite file, then a PostgreSQL database), and real sockets that close."""

import io
import math
import socket
import subprocess
import threading
import time
import uuid

import openai
import pytest

from harness import Server, client, rows, wait_for

pytestmark = [pytest.mark.model, pytest.mark.slow]

JOB_HEADER = "x-tft-job-id"


@pytest.fixture(scope="module")
def server(tmp_path_factory, new_db):
    srv = Server(tmp_path_factory.mktemp("openai"), env=new_db())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token(server):
    return server.token("olivia")


@pytest.fixture(scope="module")
def sdk(server, token):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def fox(clips):
    return next(c for c in clips if c.name == "quick_brown_fox")


FOX = "The quick brown fox jumps over the lazy dog."


def test_json_text_srt_vtt(sdk, fox):
    import srt
    import webvtt

    plain = sdk.audio.transcriptions.create(file=fox.path, model="whisper-1")
    assert plain.text == FOX
    assert plain.usage.type == "duration" and plain.usage.seconds == 3  # 2.9 s, rounded up like OpenAI

    text = sdk.audio.transcriptions.create(file=fox.path, model="tiny.en", response_format="text")
    assert text.strip() == FOX

    subs = list(srt.parse(sdk.audio.transcriptions.create(file=fox.path, model="whisper-1", response_format="srt")))
    assert [s.content for s in subs] == [FOX] and 0 <= subs[0].start.total_seconds() < subs[0].end.total_seconds() < 3

    vtt = sdk.audio.transcriptions.create(file=fox.path, model="gpt-4o-transcribe", response_format="vtt")
    cues = list(webvtt.from_buffer(io.StringIO(vtt)))
    assert [c.text for c in cues] == [FOX] and cues[0].start_in_seconds < cues[0].end_in_seconds


def test_content_types(server, token, fox):
    http = client(server, token)
    for fmt, ctype in [("json", "application/json"), ("verbose_json", "application/json"), ("text", "text/plain"),
                       ("srt", "text/plain"), ("vtt", "text/vtt")]:
        with open(fox.path, "rb") as fh:
            r = http.post("/v1/audio/transcriptions", files={"file": ("fox.wav", fh)},
                          data={"model": "whisper-1", "response_format": fmt})
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype), (fmt, r.headers)


def test_verbose_json_with_word_and_segment_granularities(sdk, fox):
    both = sdk.audio.transcriptions.create(file=fox.path, model="whisper-1", response_format="verbose_json",
                                           timestamp_granularities=["word", "segment"])
    assert both.language == "english" and both.text == FOX and both.duration == pytest.approx(2.889, abs=0.05)
    assert both.usage.seconds == 3
    seg = both.segments[0]
    assert seg.id == 0 and seg.text == FOX and 0 <= seg.start < seg.end <= 3
    assert seg.tokens and all(isinstance(t, int) for t in seg.tokens) and seg.temperature == 0.0
    assert seg.avg_logprob < 0 and 0 <= seg.no_speech_prob < 0.5 and seg.compression_ratio > 0 and seg.seek >= 0
    words = [w.word for w in both.words]
    assert words == FOX.split()  # {word, start, end}, no leading spaces
    assert all(a.start <= a.end <= b.start + 1e-6 for a, b in zip(both.words, both.words[1:]))
    assert both.words[-1].end <= seg.end + 0.5

    segments_only = sdk.audio.transcriptions.create(file=fox.path, model="whisper-1", response_format="verbose_json")
    assert segments_only.segments and segments_only.words is None
    words_only = sdk.audio.transcriptions.create(file=fox.path, model="whisper-1", response_format="verbose_json",
                                                 timestamp_granularities=["word"])
    assert [w.word for w in words_only.words] == FOX.split() and words_only.segments is None


def test_granularities_without_brackets(server, token, fox):
    """Some clients send `timestamp_granularities` without the `[]`."""
    with open(fox.path, "rb") as fh:
        r = client(server, token).post("/v1/audio/transcriptions", files={"file": ("fox.wav", fh)},
                                       data={"model": "whisper-1", "response_format": "verbose_json",
                                             "timestamp_granularities": "word"})
    assert r.status_code == 200 and [w["word"] for w in r.json()["words"]] == FOX.split()


def _collect(stream, server, token) -> tuple[list, str]:
    """Read the stream; when the first delta arrives, ask the native API how the job stands."""
    events, status_at_first_delta = [], ""
    with client(server, token) as http:
        for event in stream:
            events.append(event)
            if event.type == "transcript.text.delta" and not status_at_first_delta:
                newest = http.get("/api/v1/transcriptions", params={"per_page": 1}).json()["items"][0]
                status_at_first_delta = newest["status"]
    return events, status_at_first_delta


def _assert_streamed(events, status_at_first_delta: str, reference: str, path) -> None:
    import soundfile

    from conftest import wer

    deltas = [e for e in events if e.type == "transcript.text.delta"]
    done = [e for e in events if e.type == "transcript.text.done"]
    assert len(done) == 1 and events[-1].type == "transcript.text.done"
    assert len(deltas) >= 3, [e.delta for e in deltas]
    # Deltas arrive as segments are decoded, not all at the end: the job was still being
    # decoded when the first one reached the client (an ordering, not a timing, so it holds
    # on any machine).
    assert status_at_first_delta == "processing"
    final = done[0]
    joined = "".join(e.delta for e in deltas)
    assert wer(final.text, joined) < 0.1 and wer(reference, final.text) < 0.2
    assert final.usage.type == "duration" and final.usage.seconds == math.ceil(soundfile.info(str(path)).duration)


def test_streaming_deltas_arrive_as_segments_are_decoded(sdk, server, token, long_speech):
    path, reference = long_speech
    events, status = _collect(sdk.audio.transcriptions.create(file=path, model="whisper-1", stream=True), server, token)
    _assert_streamed(events, status, reference, path)


def test_streaming_with_the_worker_in_another_process(tmp_path, long_speech, new_db):
    """`tft serve` with no workers and a separate `tft worker`: segments travel through the store
    (PostgreSQL: the API's waits are woken by NOTIFY)."""
    path, reference = long_speech
    db_env = new_db()
    api = Server(tmp_path / "split", workers=0, env=db_env)
    api.start()
    worker = Server(tmp_path / "split", workers=1, port=api.port, env={**db_env, "TFT_MODEL_TTL_SECONDS": "1"})
    try:
        worker.start("worker")
        wes = api.token("wes")
        sdk = openai.OpenAI(base_url=f"{api.url}/v1", api_key=wes, max_retries=0, timeout=300)
        events, status = _collect(sdk.audio.transcriptions.create(file=path, model="tiny.en", stream=True), api, wes)
        _assert_streamed(events, status, reference, path)
        # the idle model is unloaded after TFT_MODEL_TTL_SECONDS
        deadline = time.monotonic() + 10
        while "model tiny.en unloaded (idle for 1 s)" not in worker.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "model tiny.en unloaded (idle for 1 s)" in worker.log()
    finally:
        worker.stop()
        api.stop()


def test_an_error_mid_stream_is_an_error_event_the_sdk_raises(sdk, server, token, long_speech):
    """The job is cancelled through /api/v1 while it streams: the stream ends with an error event."""
    path, _ = long_speech
    http = client(server, token)
    stream = sdk.audio.transcriptions.create(file=path, model="whisper-1", stream=True)
    received = []
    with pytest.raises(openai.APIError) as failed:
        for event in stream:
            received.append(event)
            if len(received) == 1:
                job = http.get("/api/v1/transcriptions", params={"status": "processing"}).json()["items"][0]
                assert http.delete(f"/api/v1/transcriptions/{job['job_id']}").json()["status"] == "cancelled"
    assert received[0].type == "transcript.text.delta"
    assert "cancelled" in str(failed.value) and failed.value.body["code"] == "cancelled"
    assert all(e.type == "transcript.text.delta" for e in received)


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks translations deprecated
def test_translation_french_to_english_with_base(sdk, server, clips):
    pangram = next(c for c in clips if c.language == "fr" and c.name == "pangrama")  # "Portez ce vieux whisky au juge blond qui fume."
    heard = sdk.audio.transcriptions.create(file=pangram.path, model="base", language="fr").text.lower()
    assert "juge" in heard  # the same model transcribing keeps the French
    english = sdk.audio.translations.create(file=pangram.path, model="base", response_format="verbose_json")
    text = english.text.lower()
    assert english.language == "english" and "judge" in text and "whisk" in text and "juge" not in text
    counting = next(c for c in clips if c.language == "fr" and c.name == "comptage")
    numbers = sdk.audio.translations.create(file=counting.path, model="base").text.lower()
    assert "trois" not in numbers and ("three" in numbers or "3" in numbers)
    # base was loaded next to the default tiny.en (within TFT_MODEL_MEMORY_MB), not instead of it
    assert "model base loaded" in server.log() and "model tiny.en unloaded" not in server.log()


def test_models(sdk, server):
    listed = {m.id: m for m in sdk.models.list()}
    assert {"tiny.en", "base", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"} <= set(listed)
    assert all(m.object == "model" and m.owned_by and m.created > 0 for m in listed.values())
    assert sdk.models.retrieve("whisper-1").id == "whisper-1"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("whisper-9")


def test_errors_in_openai_shape(server, sdk, fox, tmp_path):
    bad = openai.OpenAI(base_url=f"{server.url}/v1", api_key="tft_pat_" + "A" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        bad.audio.transcriptions.create(file=fox.path, model="whisper-1")
    assert auth.value.status_code == 401 and auth.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-not-ours", max_retries=0).models.list()

    with pytest.raises(openai.NotFoundError) as missing:
        sdk.audio.transcriptions.create(file=fox.path, model="large-v9")
    assert missing.value.body == {"message": missing.value.body["message"], "type": "invalid_request_error",
                                  "param": "model", "code": "model_not_found"}
    assert "large-v9" in missing.value.body["message"]

    with pytest.raises(openai.BadRequestError) as fmt:
        sdk.audio.transcriptions.create(file=fox.path, model="whisper-1", response_format="mp3")
    assert fmt.value.body["param"] == "response_format"
    notes = tmp_path / "notes.wav"
    notes.write_text("this is not audio\n" * 50)
    with pytest.raises(openai.BadRequestError) as not_audio:
        sdk.audio.transcriptions.create(file=notes, model="whisper-1")
    assert not_audio.value.body["param"] == "file" and "not an audio" in not_audio.value.body["message"]
    with pytest.raises(openai.BadRequestError) as lang:
        sdk.audio.transcriptions.create(file=fox.path, model="tiny.en", language="fr")
    assert lang.value.body["param"] == "language" and "English-only" in lang.value.body["message"]

    broke = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.token("penny", credits=0), max_retries=2)
    with pytest.raises(openai.RateLimitError) as quota:
        broke.audio.transcriptions.create(file=fox.path, model="whisper-1")
    assert quota.value.body["code"] == "insufficient_quota" and quota.value.response.headers["x-should-retry"] == "false"
    # x-should-retry: false, so the SDK (max_retries=2) did not upload the file twice more
    assert server.log().count('"POST /v1/audio/transcriptions HTTP/1.1" 429') == 1

    r = client(server, None).get("/v1/nothing-here")
    assert r.status_code == 404 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    # /api/v1 keeps the contract's shapes
    assert "detail" in client(server, None).get("/api/v1/me").json()


def test_too_large_file_is_a_413_the_sdk_surfaces(tmp_path, fox, new_db):
    with Server(tmp_path / "small", workers=0, env={**new_db(), "TFT_MAX_UPLOAD_MB": "1"}).start() as srv:
        sdk = openai.OpenAI(base_url=f"{srv.url}/v1", api_key=srv.token("lars"), max_retries=0)
        big = tmp_path / "big.wav"
        big.write_bytes(fox.path.read_bytes() * 30)  # 2.8 MB
        with pytest.raises(openai.APIStatusError) as too_large:
            sdk.audio.transcriptions.create(file=big, model="whisper-1")
    assert too_large.value.status_code == 413
    assert too_large.value.body["param"] == "file" and "1 MB" in too_large.value.body["message"]


def test_extra_body_reaches_the_engine_and_the_job_is_a_v1_job(sdk, server, token, fox):
    raw = sdk.audio.transcriptions.with_raw_response.create(
        file=fox.path, model="whisper-1", extra_body={"audio_type": "music", "vintage": "true", "separator": "spleeter",
                                                      "pinyin": "false", "not_a_field": "ignored"})
    assert raw.parse().text
    job_id = raw.headers[JOB_HEADER]
    job = client(server, token).get(f"/api/v1/transcriptions/{job_id}").json()
    assert job["status"] == "done"
    assert job["options"]["audio_type"] == "music" and job["options"]["vintage"] is True
    assert job["options"]["separator"] == "spleeter" and job["options"]["model"] == "tiny.en"
    # what the engine did with it: music chosen by the user, the vintage restoration ran
    assert job["telemetry"]["audio_type"]["audio_type"] == "music"
    assert job["telemetry"]["audio_type"]["decided_by"] == "user"
    assert job["telemetry"]["seconds_per_stage"]["restore"] > 0
    exported = client(server, token).get(f"/api/v1/transcriptions/{job_id}/export", params={"format": "json"}).json()
    assert exported["options"]["separator"] == "spleeter" and exported["options"]["audio_type"] == "music"
    assert exported["separator"] == "spleeter-2stems", exported["separation"]  # make installs Spleeter's weights
    listed = client(server, token).get("/api/v1/transcriptions", params={"per_page": 200}).json()["items"]
    assert job_id in [j["job_id"] for j in listed]
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.audio.transcriptions.create(file=fox.path, model="whisper-1", extra_body={"separator": "demucs"})
    assert bad.value.body["param"] == "separator"


def test_bare_curl_and_the_open_webui_request(server, token, fox):
    out = subprocess.run(["curl", "-sS", "--fail-with-body", "-H", f"Authorization: Bearer {token}",
                          "-F", f"file=@{fox.path}", "-F", "model=whisper-1", f"{server.url}/v1/audio/transcriptions"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    import json

    assert json.loads(out.stdout)["text"] == FOX
    # Open WebUI posts the file and the model, nothing else
    import httpx

    with open(fox.path, "rb") as fh:
        r = httpx.post(f"{server.url}/v1/audio/transcriptions", headers={"Authorization": f"Bearer {token}"},
                       files={"file": (fox.path.name, fh, "audio/wav")}, data={"model": "whisper-1"}, timeout=120)
    assert r.status_code == 200 and r.json()["text"] == FOX


def _raw_upload(url: str, token: str, path, fields: dict[str, str]) -> socket.socket:
    """A multipart POST written to a plain socket, left open: the test closes it."""
    boundary = uuid.uuid4().hex
    parts = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                     for k, v in fields.items())
    parts += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
              "Content-Type: audio/wav\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    host, port = url.removeprefix("http://").split(":")
    head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(parts)}\r\n\r\n")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(head.encode() + parts)
    return sock


@pytest.mark.parametrize("stream", [False, True])
def test_client_disconnect_cancels_and_refunds(tmp_path, generated_dir, fox, stream, new_db):
    from corpus.speech import long_form

    long, _ = long_form(generated_dir / "longform_5min.wav", words_per_minute=125)
    with Server(tmp_path / "gone", env=new_db()).start() as srv:
        token = srv.token("gus", credits=5)
        http = client(srv, token)
        sock = _raw_upload(srv.url, token, long, {"model": "whisper-1", "stream": str(stream).lower()})
        deadline = time.monotonic() + 60
        job = None
        while time.monotonic() < deadline:
            items = http.get("/api/v1/transcriptions").json()["items"]
            job = items[0] if items else None
            if job and job["status"] == "processing" and job["progress"]["stage"] == "transcribe" \
                    and job["progress"]["fraction"] > 0:
                break
            time.sleep(0.1)
        assert job and job["status"] == "processing", job
        assert http.get("/api/v1/me").json()["credits"] == 4
        sock.close()
        closed = time.monotonic()
        while time.monotonic() - closed < 10:
            status = rows(srv, "SELECT status FROM jobs WHERE id = ?", (job["job_id"],))[0]["status"]
            if status == "cancelled":
                break
            time.sleep(0.1)
        acknowledged = time.monotonic() - closed
        assert status == "cancelled", srv.log()[-2000:]  # the worker stopped at a checkpoint
        assert acknowledged < 10
        assert http.get("/api/v1/me").json()["credits"] == 5  # refunded
        assert not (srv.data_dir / "exports" / job["job_id"]).exists()
        # the worker is free: the next request is answered at once
        sdk = openai.OpenAI(base_url=f"{srv.url}/v1", api_key=token, max_retries=0, timeout=60)
        started = time.monotonic()
        assert sdk.audio.transcriptions.create(file=fox.path, model="whisper-1").text == FOX
        assert time.monotonic() - started < 10
        assert "client disconnected; cancelled and refunded" in srv.log()


def test_ten_concurrent_requests_with_one_worker(server, token, fox):
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0, timeout=300)
    results: dict[int, str] = {}
    job_ids: dict[int, str] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            raw = sdk.audio.transcriptions.with_raw_response.create(file=fox.path, model="whisper-1")
            results[i] = raw.parse().text
            job_ids[i] = raw.headers[JOB_HEADER]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert sorted(results) == list(range(10)) and set(results.values()) == {FOX}
    assert len(set(job_ids.values())) == 10
    http = client(server, token)
    for job_id in job_ids.values():
        assert wait_for(http, job_id, timeout=5)["status"] == "done"
