"""`tft transcribe` as a user runs it: a real subprocess, with the network cut off."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corpus import media

pytestmark = pytest.mark.model
REPO = Path(__file__).resolve().parents[2]
TFT = [sys.executable, str(REPO / "cli.py")]


def _unshare_works() -> bool:
    exe = shutil.which("unshare")
    if not exe:
        return False
    return subprocess.run([exe, "-n", "true"], capture_output=True).returncode == 0


NO_NET_GUARD = """
import socket
_connect = socket.socket.connect
def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("::1", "localhost")) and self.family != socket.AF_UNIX:
        raise OSError(101, "network access attempted during an offline test: %r" % (address,))
    return _connect(self, address)
socket.socket.connect = _guarded
"""


def tft(*args, tmp_path=None, env=None, offline=True):
    """Run the CLI; offline means in a network namespace with no interfaces (or a socket guard)."""
    environment = dict(os.environ, **(env or {}))
    environment.pop("TFT_PROGRESS", None) if "TFT_PROGRESS" not in (env or {}) else None
    prefix = []
    if offline:
        if _unshare_works():
            prefix = ["unshare", "-n"]
        else:
            guard = Path(tmp_path) / "guard"
            guard.mkdir(exist_ok=True)
            (guard / "sitecustomize.py").write_text(NO_NET_GUARD)
            environment["PYTHONPATH"] = f"{guard}{os.pathsep}{environment.get('PYTHONPATH', '')}"
    return subprocess.run(prefix + TFT + list(args), capture_output=True, text=True, env=environment, timeout=600)


def test_txt_on_stdout_with_no_network(clips, tmp_path):
    clip = next(c for c in clips if c.name == "quick_brown_fox")
    result = tft("transcribe", "--model", "tiny.en", str(clip.path), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The quick brown fox jumps over the lazy dog.\n"


def test_every_format_to_a_directory(clips, tmp_path):
    clip = next(c for c in clips if c.name == "counting")
    out = tmp_path / "out"
    result = tft("transcribe", "--model", "tiny.en", "--format", "all", "--timestamps", "required",
                 "--output-dir", str(out), str(clip.path), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"counting.{e}" for e in ("json", "lrc", "srt", "txt", "vtt")]
    data = json.loads((out / "counting.json").read_text())
    assert data["model"] == "tiny.en" and data["segments"] and data["segments"][0]["words"]
    assert "<00:" in (out / "counting.lrc").read_text()  # word-level LRC


def test_progress_bar_counts_seconds_of_audio(clips, tmp_path):
    clip = next(c for c in clips if c.name == "counting")
    result = tft("transcribe", "--model", "tiny.en", str(clip.path), env={"TFT_PROGRESS": "1"}, tmp_path=tmp_path)
    assert result.returncode == 0
    from engine.audio import probe

    total = round(probe(clip.path).duration, 1)
    assert f"{total}/{total} s audio" in result.stderr  # the bar reaches the end, in seconds


def _bad(result, needle):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("tft: "), result.stderr
    assert "Traceback" not in result.stderr
    assert needle in lines[0], lines[0]


def test_bad_inputs_exit_2_with_one_sentence(clips, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 30)
    clip = next(c for c in clips if c.name == "counting")
    mp3 = media.encode(tmp_path / "c.mp3", __import__("engine.audio", fromlist=["decode"]).decode(clip.path))
    cut = media.truncate(mp3, tmp_path / "cut.mp3", 0.5)
    _bad(tft("transcribe", "--model", "tiny.en", str(empty), tmp_path=tmp_path), "is empty (0 bytes)")
    _bad(tft("transcribe", "--model", "tiny.en", str(cut), tmp_path=tmp_path), "truncated")
    _bad(tft("transcribe", "--model", "tiny.en", str(text), tmp_path=tmp_path), "not an audio or video file")
    _bad(tft("transcribe", "--model", "base", "--language", "xx", str(clip.path), tmp_path=tmp_path),
         "'xx' is not a language code")
    _bad(tft("transcribe", "--model", "tiny.en", "--language", "fr", str(clip.path), tmp_path=tmp_path),
         "English-only")
    _bad(tft("transcribe", "--model", "large-v3", "--models-dir", str(tmp_path / "empty-store"), str(clip.path),
             tmp_path=tmp_path), "tft models pull large-v3")
    _bad(tft("transcribe", "--model", "tiny.en", "--format", "exe", str(clip.path), tmp_path=tmp_path),
         "unknown output format 'exe'")


def test_models_list(tmp_path):
    result = tft("models", "list", "--json", tmp_path=tmp_path)
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["tiny.en"]["present"] and rows["tiny.en"]["checksum"] == "ok"
    assert not rows["large-v3"]["present"]


def test_installed_txt_of_long_speech_is_sentences_with_the_words_of_the_timed_json(generated_dir, tmp_path):
    """A TXT file has no times, so the installed command decodes long speech without the word
    alignment that only cuts lines: the same words as the timed JSON, one sentence a line."""
    from corpus.speech import long_form

    path, _ = long_form(generated_dir / "longform_5min.wav", words_per_minute=125)
    installed = Path(sys.executable).parent / "tft"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TFT_PROGRESS")}

    def run(*args):
        proc = subprocess.run([str(installed), "transcribe", "--model", "tiny.en", str(path), *args], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    lines = run().splitlines()
    timed = json.loads(run("--format", "json"))
    assert timed["timestamps"] == "segments" and all(s["end"] - s["start"] < 30 for s in timed["segments"])
    assert " ".join(lines) == timed["text"]
    assert len(lines) >= 20 and all(line.rstrip()[-1] in ".!?" for line in lines[:-1]), lines[:5]


@pytest.mark.parametrize("value", ["1", "true", "On"])
def test_forced_separation_reads_the_environment_as_the_server_does(clips, tmp_path, value):
    """MUSIC_MODE_FORCE_VOCAL_SEPARATION=true forced it on the server and was ignored by the CLI."""
    clip = next(c for c in clips if c.name == "counting")
    args = ("transcribe", "--model", "tiny.en", "--audio-type", "music", "--separator", "htdemucs", str(clip.path))
    _bad(tft(*args, env={"MUSIC_MODE_FORCE_VOCAL_SEPARATION": value}, tmp_path=tmp_path),
         "vocal separation was forced (MUSIC_MODE_FORCE_VOCAL_SEPARATION) but no htdemucs weights")
    relaxed = tft(*args, env={"MUSIC_MODE_FORCE_VOCAL_SEPARATION": "0"}, tmp_path=tmp_path)
    assert relaxed.returncode == 0 and "without vocal separation" in relaxed.stderr
