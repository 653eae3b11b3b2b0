"""The API's `lyrics` field against a real server: the job becomes an alignment of the sheet, its
exports carry every sheet line (unsung ones without a time), and a bad sheet is a 422."""

import json
import re

import pytest

from harness import Server, client, upload, wait_for

pytestmark = [pytest.mark.model, pytest.mark.music, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("align-server"))
    srv.start()
    yield srv
    srv.stop()


def test_a_job_with_lyrics_is_an_alignment(server, quick_songs):
    song = next(s for s in quick_songs if s.name == "electronic-en-hook-m6db")
    http = client(server, server.token("lyricist"))
    created = upload(http, song.path, lyrics=song.sheet)
    assert created.status_code == 201, created.text
    job = wait_for(http, created.json()["job_id"], timeout=600)
    assert job["status"] == "done", job
    assert job["options"]["lyrics"] == song.sheet.strip()
    base = f"/api/v1/transcriptions/{job['job_id']}"
    data = json.loads(http.get(f"{base}/export", params={"format": "json"}).text)
    assert [l["status"] for l in data["lines"]] == ["unmatched" if l["text"] in song.unsung_lines else "matched"
                                                    for l in data["lines"]]
    placed = [l for l in data["lines"] if l["status"] == "matched"]
    assert [l["text"] for l in placed] == [l.text for l in song.lines]
    assert all(abs(l["start"] - t.start) <= 0.3 for l, t in zip(placed, song.lines)), [l["start"] for l in placed]
    assert len(http.get(f"{base}/segments").json()["segments"]) == len(song.lines)
    for fmt in ("lrc", "lrc_plain"):
        lrc = http.get(f"{base}/export", params={"format": fmt}).text.splitlines()
        assert [l for l in lrc if l and not l.startswith("[")] == list(song.unsung_lines), fmt
        assert len([l for l in lrc if re.match(r"^\[\d\d:\d\d\.\d\d\]\S", l)]) == len(song.lines)
        assert ("<" in "".join(lrc)) == (fmt == "lrc")  # word stamps in the enhanced form only


def test_a_sheet_without_lyric_lines_is_a_422(server, quick_songs):
    http = client(server, server.token("lyricist"))
    r = upload(http, quick_songs[0].path, lyrics="[Chorus]\n\n[ar:Nobody]\n")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["body", "lyrics"] and "no lyric lines" in detail[0]["msg"]


def test_the_openapi_document_describes_lyrics_as_an_extension(server):
    doc = client(server, None).get("/api/v1/openapi.json").json()
    body = doc["components"]["schemas"]["Body_create_transcription_api_v1_transcriptions_post"]["properties"]
    assert body["lyrics"]["x-tft-extension"] is True and "unmatched" in body["lyrics"]["description"]
