"""The hostile-input corpus: files and requests that must each get a clear 4xx.

``build(directory)`` writes the fixture files (deterministically) and returns the cases;
the test sends each one to a real server and checks the status and the message. Every
case is data: what to send, which status is acceptable, and a phrase the answer must
contain so the person reading it knows what went wrong.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import flac, media, synth


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    expect: tuple[int, ...]
    phrase: str = ""
    file: Path | None = None  # multipart upload of this file as 'file'
    filename: str | None = None
    fields: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    json_body: object = None
    raw_body: bytes | None = None
    headers: dict = field(default_factory=dict)
    file_field: str = "file"


def _wav_with_declared_size(path: Path, declared_bytes: int, samples: np.ndarray) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + declared_bytes) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    data = b"data" + struct.pack("<I", declared_bytes) + pcm
    path.write_bytes(header + fmt + data)
    return path


def _wav_with_bits(path: Path, bits: int) -> Path:
    """A WAV header declaring ``bits`` per sample (0 and 64 broke the probe with a 500)."""
    pcm = bytes(32000)
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, bits)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE" + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm)
    return path


def _multipart(boundary: bytes, part_headers: bytes, data: bytes) -> bytes:
    return b"--" + boundary + b"\r\n" + part_headers + b"\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n"


def _silent_hour_flac(path: Path) -> Path:
    """One hour of digital silence, FLAC: a few hundred KB (constant subframes)."""
    import av

    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=16000, layout="mono")
        zeros = np.zeros((1, 16000 * 60), dtype=np.int16)
        for minute in range(60):
            frame = av.AudioFrame.from_ndarray(zeros, format="s16", layout="mono")
            frame.sample_rate = 16000
            frame.pts = minute * 16000 * 60
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


UPLOAD = "/api/v1/transcriptions"
NO_JOB = "00000000-0000-4000-8000-000000000000"


def build(directory: Path, *, valid_clip: Path) -> list[Case]:
    """Every hostile case: bad files (written into ``directory``), bad form fields on a good
    file, and bad requests."""
    return _bad_files(Path(directory)) + _bad_fields(valid_clip) + _bad_requests()


def _bad_files(d: Path) -> list[Case]:
    """Files that are not what they claim, or not audio a person would send (the bit depths
    and the ten hours were found by the red-team pass of issue K: each was a 500 or unbounded)."""
    d.mkdir(parents=True, exist_ok=True)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * 4) / 16000)).astype(np.float32)
    empty = d / "empty.wav"
    empty.write_bytes(b"")
    mp3 = media.encode(d / "tone.mp3", tone)
    truncated = media.truncate(mp3, d / "truncated.mp3", 0.5)
    stub = media.truncate(mp3, d / "stub.mp3", 0.01)
    text = d / "notes.wav"
    text.write_text("These are meeting notes, not audio.\n" * 50)
    png = d / "cover.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64))
    png_as_mp3 = d / "cover.mp3"
    png_as_mp3.write_bytes(png.read_bytes())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("track01.wav", b"RIFF....WAVEfmt ")
    zipped = d / "album.zip"
    zipped.write_bytes(buf.getvalue())
    zip_as_wav = d / "album.wav"
    zip_as_wav.write_bytes(buf.getvalue())
    silent_hour = _silent_hour_flac(d / "silent_hour.flac")
    huge_declared = _wav_with_declared_size(d / "huge_declared.wav", 0x7FFFFF00, np.zeros(64, np.float32))
    random_bytes = d / "noise.mp3"
    random_bytes.write_bytes(np.random.default_rng(7).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    no_audio = media.video_without_audio(d / "silent_film.mp4")
    short_silence = synth.write_wav(d / "quiet.wav", synth.silence(10))
    elf = d / "program.exe"
    elf.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(500))
    html = d / "page.ogg"
    html.write_text("<html><body>404 not found</body></html>")
    zero_bits = _wav_with_bits(d / "zero_bits.wav", 0)
    wide_bits = _wav_with_bits(d / "sixty_four_bits.wav", 64)
    ten_hours = flac.write(d / "ten_hours_silence.flac", 10 * 3600)
    up = UPLOAD
    return [
        Case("zero bytes", "POST", up, (422,), "empty (0 bytes)", file=empty),
        Case("truncated mp3", "POST", up, (422,), "truncated", file=truncated),
        Case("mp3 cut before its first frame", "POST", up, (422,), "", file=stub),
        Case("text renamed to .wav", "POST", up, (422,), "not an audio or video file", file=text),
        Case("PNG", "POST", up, (422,), "no audio", file=png),
        Case("PNG renamed to .mp3", "POST", up, (422,), "no audio", file=png_as_mp3),
        Case("zip", "POST", up, (422,), "not an audio or video file", file=zipped),
        Case("zip renamed to .wav", "POST", up, (422,), "not an audio or video file", file=zip_as_wav),
        Case("one hour of silence", "POST", up, (422,), "only silence", file=silent_hour),
        Case("ten seconds of silence", "POST", up, (422,), "only silence", file=short_silence),
        Case("WAV declaring 2 GB of data", "POST", up, (422,), "", file=huge_declared),
        Case("random bytes as .mp3", "POST", up, (422,), "not an audio or video file", file=random_bytes),
        Case("video without an audio track", "POST", up, (422,), "no audio track", file=no_audio),
        Case("ELF executable", "POST", up, (422,), "not an audio or video file", file=elf),
        Case("HTML page as .ogg", "POST", up, (422,), "not an audio or video file", file=html),
        Case("WAV with 0 bits per sample", "POST", up, (422,), "could not be read as audio", file=zero_bits),
        Case("WAV with 64 bits per sample", "POST", up, (422,), "could not be read as audio", file=wide_bits),
        Case("ten hours of silence (over the length limit)", "POST", up, (422,), "600 minutes long", file=ten_hours),
    ]


def _bad_fields(valid_clip: Path) -> list[Case]:
    """A good file with bad form fields."""
    up = UPLOAD
    return [
        Case("wrong multipart field name", "POST", up, (422,), "Field required", file=valid_clip, file_field="audio"),
        Case("two files", "POST", up, (422,), "exactly one file", file=valid_clip, fields={"__second_file__": "1"}),
        Case("oversized form field", "POST", up, (422,), "too large", file=valid_clip, fields={"language": "e" * 70000}),
        Case("timestamps=maybe", "POST", up, (422,), "", file=valid_clip, fields={"timestamps": "maybe"}),
        Case("language=xx", "POST", up, (422,), "not a language code", file=valid_clip, fields={"language": "xx"}),
        Case("language=english", "POST", up, (422,), "not a language code", file=valid_clip, fields={"language": "english"}),
        Case("audio_type=podcast", "POST", up, (422,), "", file=valid_clip, fields={"audio_type": "podcast"}),
        Case("pinyin=maybe", "POST", up, (422,), "", file=valid_clip, fields={"pinyin": "maybe"}),
    ]


def _bad_requests() -> list[Case]:
    """Bad paths, query strings, bodies and tokens; no file needed (the multipart and webhook
    body limits, from the bottom of the list, were found by issue K's red-team pass)."""
    up, job = UPLOAD, NO_JOB
    long_boundary = b"b" * 5000
    header_100k = b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\nX-Pad: ' + b"p" * 100_000
    return [
        Case("no multipart body", "POST", up, (422,), "multipart/form-data", json_body={"file": "x.wav"}),
        Case("garbage multipart body", "POST", up, (422,), "",
             raw_body=b"--xyz\r\nContent-Disposition: form-da", headers={"content-type": "multipart/form-data; boundary=xyz"}),
        Case("format=exe", "GET", f"{up}/{job}/export", (422,), "", params={"format": "exe"}),
        Case("export without format", "GET", f"{up}/{job}/export", (422,), "Field required"),
        Case("negative page", "GET", up, (422,), "greater than or equal to 1", params={"page": -1}),
        Case("zero page", "GET", up, (422,), "greater than or equal to 1", params={"page": 0}),
        Case("per_page=10000", "GET", up, (422,), "less than or equal to 200", params={"per_page": 10000}),
        Case("per_page=abc", "GET", up, (422,), "valid integer", params={"per_page": "abc"}),
        Case("non-UUID job id", "GET", f"{up}/12345", (422,), "UUID"),
        Case("path traversal in job id", "GET", f"{up}/..%2F..%2Fetc%2Fpasswd", (404, 422), ""),
        Case("path traversal in export id", "GET", f"{up}/..%2F..%2Fvar%2Ftft.sqlite3/export", (404, 422), "",
             params={"format": "json"}),
        Case("dot-dot segments", "GET", "/api/v1/transcriptions/../../etc/passwd", (404,), ""),
        Case("unknown but valid job id", "GET", f"{up}/{job}", (404,), "no such transcription"),
        Case("SQL in job id", "GET", f"{up}/1'%20OR%20'1'='1", (422,), "UUID"),
        Case("webhook to cloud metadata", "POST", "/api/v1/webhooks", (422,), "link-local",
             json_body={"url": "http://169.254.169.254/latest/meta-data"}),
        Case("webhook to file://", "POST", "/api/v1/webhooks", (422,), "http:// or https://",
             json_body={"url": "file:///etc/passwd"}),
        Case("webhook as a JSON list", "POST", "/api/v1/webhooks", (422,), "", json_body=["http://example.com"]),
        Case("webhook with broken JSON", "POST", "/api/v1/webhooks", (422,), "JSON",
             raw_body=b'{"url": ', headers={"content-type": "application/json"}),
        Case("non-webhook hook id", "DELETE", "/api/v1/webhooks/..%2Fetc", (404, 422), ""),
        Case("garbage bearer token", "GET", "/api/v1/me", (401,), "personal access token",
             headers={"authorization": "Bearer ' OR 1=1 --"}),
        Case("5,000-character multipart boundary", "POST", up, (422,), "boundary",
             raw_body=_multipart(long_boundary, b'Content-Disposition: form-data; name="file"; filename="a.wav"', b"RIFF"),
             headers={"content-type": "multipart/form-data; boundary=" + long_boundary.decode()}),
        Case("100 KB multipart part header", "POST", up, (422,), "header",
             raw_body=_multipart(b"xyz", header_100k, b"RIFF"), headers={"content-type": "multipart/form-data; boundary=xyz"}),
        Case("webhook body of 300 KB", "POST", "/api/v1/webhooks", (413,), "accepts",
             json_body={"url": "https://example.com/hook", "pad": "a" * 300_000}),
        Case("webhook JSON nested 100,000 deep", "POST", "/api/v1/webhooks", (413, 422), "",
             raw_body=b"[" * 100_000 + b"]" * 100_000, headers={"content-type": "application/json"}),
        Case("webhook JSON nested 5,000 deep within 16 KB", "POST", "/api/v1/webhooks", (422,), "JSON",
             raw_body=b"[" * 5_000 + b"]" * 5_000, headers={"content-type": "application/json"}),
        Case("webhook url nested 900 deep", "POST", "/api/v1/webhooks", (422,), "",
             raw_body=b'{"url": ' + b"[" * 900 + b"]" * 900 + b"}", headers={"content-type": "application/json"}),
    ]
