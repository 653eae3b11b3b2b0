"""A real sung excerpt (a pop song, not written here) through the installed `tft` console script,
run from outside the repository with defaults: the lyrics come out, at the right time."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.metrics import normalise

pytestmark = [pytest.mark.model, pytest.mark.music]
TFT = Path(sys.executable).parent / "tft"


@pytest.fixture(scope="module")
def sung(tmp_path_factory) -> Path:
    from corpus.sung import real_sung_excerpt

    return real_sung_excerpt(tmp_path_factory.mktemp("sung"))


def _transcribe(path: Path, out: Path, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(TFT), "transcribe", str(path), "--model", "base", "--format", "json,lrc",
                           "--output-dir", str(out), "--cache-dir", str(out / "cache"), *extra],
                          capture_output=True, text=True, cwd=out, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads((out / f"{path.stem}.json").read_text())


def test_the_real_sung_excerpt_keeps_its_words_with_defaults(sung, tmp_path):
    data = _transcribe(sung, tmp_path)
    text = normalise(data["text"])
    print(f"\nsung excerpt: {data['text']!r}; lines {[(s['start'], s['end']) for s in data['segments']]}; "
          f"separator {data['separator']}; voice {data['speech']}")
    assert "time stands still" in text
    assert data["audio_type"]["audio_type"] == "music"
    assert data["separator"] == "spleeter-2stems" and data["separation"] in ("separated", "cached")
    extra = data["options"]["extra"]["separation"]
    assert extra["vad_source"] == "stem" and extra["asr_source"] == "best"  # the measured default
    assert set(extra["lines_from"]) == {"vocals", "mix"} and sum(extra["lines_from"].values()) >= 1
    assert abs(data["segments"][0]["start"] - 2.0) <= 0.5
    assert not data["removed"], data["removed"]
    first = data["segments"][0]
    assert all(first["start"] <= w["start"] for w in first["words"])  # a line starts with its first word
    lrc = (tmp_path / f"{sung.stem}.lrc").read_text()
    assert "time" in lrc.lower() and "<00:0" in lrc  # enhanced LRC: word stamps


def test_without_a_separator_music_is_not_gated_on_the_mix(sung, tmp_path):
    """silero over the mix hears no voice in this song; music mode must not delete the line
    for that reason when separation is off."""
    data = _transcribe(sung, tmp_path, "--separation", "never", "--audio-type", "music")
    assert "time stands still" in normalise(data["text"])
    assert data["separation"] == "disabled" and data["separator"] is None
    assert not any(r["rule"] == "outside_speech" for r in data["removed"])


def test_vintage_restores_the_vocal_stem_of_an_old_record(sung, tmp_path):
    """The separator reads the file as it came, so restoring only the mix left hum and
    crackle in the stem that places and hears the lines: the damaged excerpt came out as
    "Take time to deal with us." with and without --vintage. The stem is restored too now."""
    from benchmarks.metrics import wer
    from corpus import synth
    from engine.audio import decode

    clean = decode(sung)
    damaged = synth.write_wav(tmp_path / "old_record.wav", synth.degrade(clean / abs(clean).max() * 0.5, hum_db=0,
                                                                        clicks=300))
    words = "It always seems like time stands still when I'm with you."
    (tmp_path / "plain").mkdir()
    (tmp_path / "vintage").mkdir()
    plain = _transcribe(damaged, tmp_path / "plain")
    restored = _transcribe(damaged, tmp_path / "vintage", "--vintage")
    print(f"\nold record: plain {plain['text']!r}; --vintage {restored['text']!r}")
    assert "time stands still" in normalise(restored["text"])
    assert wer(words, restored["text"]) < wer(words, plain["text"])
    vintage = restored["options"]["extra"]["vintage"]
    assert vintage["hum_hz"] == 50.0 and vintage["stem"]["hum_hz"] == 50.0
    assert vintage["stem"]["gain_db"] == vintage["gain_db"] and vintage["stem"]["clicks_repaired"] > 0
