"""`tft align` on the quick song corpus (a fluidsynth band, voice lines of known text and timing),
with Whisper base and Spleeter's trained weights: every sung line placed on time, the hook
sung four times placed four times, the unsung sheet line left unmatched; and the installed
console script run from outside the repository."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.model, pytest.mark.music, pytest.mark.slow]
TFT = Path(sys.executable).parent / "tft"


@pytest.fixture(scope="module")
def stem_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("align-cache")


@pytest.fixture(scope="module")
def spleeter(store):
    from models import resolve_separator

    model = resolve_separator("spleeter", store).model
    assert model is not None, "make install puts Spleeter's weights in the model store"
    return model


@pytest.fixture(scope="module")
def aligned(quick_songs, base, base_loaded, spleeter, stem_cache):
    """Every quick corpus song aligned to its own lyric sheet."""
    from engine.align import AlignOptions, align
    from engine.lyrics import parse_sheet
    from engine.pipeline import Resources

    resources = Resources(base.name, base.path, separator=spleeter, cache_dir=stem_cache)
    return {s.name: (s, align(s.path, parse_sheet(s.sheet), AlignOptions(), resources, model=base_loaded))
            for s in quick_songs}


def _sung(song, transcript):
    """(true line, aligned line) for every sung line, in order; the sheet's unsung lines apart."""
    sung = [l for l in transcript.lines if l.text not in song.unsung_lines]
    assert [l.text for l in sung] == [l.text for l in song.lines]
    return list(zip(song.lines, sung))


def test_every_sung_line_is_placed_on_time(aligned):
    errors = []
    for song, t in aligned.values():
        for truth, line in _sung(song, t):
            assert line.matched, (song.name, line.text)
            errors.append(abs(line.segment.start - truth.start))
            words = line.segment.words
            assert [w.text.strip() for w in words] == line.text.split()
            assert all(a.start <= b.start for a, b in zip(words, words[1:]))
            assert line.segment.start == words[0].start and words[-1].end <= line.segment.end
        assert t.language == song.language and t.separator == "spleeter-2stems"
        assert t.options["sheet_language"]["code"] == song.language  # read from the sheet's text
    mae = sum(errors) / len(errors)
    within = sum(e <= 0.3 for e in errors) / len(errors)
    print(f"\nquick corpus: {len(errors)} lines, line-onset MAE {mae:.3f} s, {within:.0%} within 0.3 s")
    assert mae <= 0.2 and within >= 0.95


def test_a_hook_sung_four_times_gets_four_distinct_correct_times(aligned):
    song, t = aligned["electronic-en-hook-m6db"]
    hook = "Never let me go"
    truth = [l.start for l in song.lines if l.text == hook]
    placed = [l.segment.start for l in t.lines if l.text == hook]
    assert len(truth) == len(placed) == 4
    assert all(b - a > 1.0 for a, b in zip(placed, placed[1:]))
    assert all(abs(p - q) <= 0.3 for p, q in zip(placed, truth)), (placed, truth)


def test_an_unsung_sheet_line_is_unmatched_and_gets_no_time(aligned):
    for name in ("pop-en-0db", "electronic-en-hook-m6db"):
        song, t = aligned[name]
        unsung = [l for l in t.lines if l.text in song.unsung_lines]
        assert len(unsung) == 1 and not unsung[0].matched and unsung[0].segment is None
        data = t.as_dict()
        row = next(l for l in data["lines"] if l["text"] == unsung[0].text)
        assert row["status"] == "unmatched" and row["start"] is None and row["words"] == []
        assert len(data["segments"]) == len(song.lines)  # subtitles hold the placed lines only


def test_a_missed_line_is_placed_where_whisper_hears_it_and_the_unsung_one_is_not(aligned, base_loaded, spleeter,
                                                                                   stem_cache):
    """The missed-line rule on real audio: one sung line taken away from the placed ones (as if
    recognition had missed it) next to the sheet's unsung line, both competing for the same
    stretch of voice; Whisper's gain over silence puts the sung one back on time."""
    from engine.align.attention import CrossAttentionAligner, Span
    from engine.align.match import split_words
    from engine.align.onsets import envelope_db, voiced_regions
    from engine.align.recover import recover_missed
    from engine.separation.base import separate_file

    song, t = aligned["pop-en-0db"]
    stem = separate_file(song.path, spleeter, cache_dir=stem_cache / "stems").audio  # cached by the alignment
    words = [tuple(split_words(l.text)) for l in t.lines]
    lines = [(w, tuple([True] * len(w))) for w in words]
    spans = [None if l.segment is None else Span(l.segment.start, l.segment.end, *lines[l.index]) for l in t.lines]
    unsung = next(i for i, l in enumerate(t.lines) if l.text in song.unsung_lines)
    missed = unsung + 1  # the sung line after it: the two compete for its stretch
    assert spans[unsung] is None and spans[missed] is not None
    spans[missed] = None
    aligner = CrossAttentionAligner(base_loaded, stem, song.language)
    out = recover_missed(spans, lines, voiced_regions(envelope_db(stem)), aligner, t.duration)
    truth = next(l.start for l in song.lines if l.text == t.lines[missed].text)
    assert out[unsung] is None
    assert out[missed] is not None and abs(out[missed].start - truth) <= 0.3, (out[missed], truth)


def _run_tft(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(TFT), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_the_installed_console_script_writes_synced_lrc(quick_songs, tmp_path, stem_cache):
    song = next(s for s in quick_songs if s.name == "electronic-en-hook-m6db")
    sheet = tmp_path / "lyrics.txt"
    sheet.write_text(song.sheet, encoding="utf-8")
    out = tmp_path / "out"
    done = _run_tft("align", str(song.path), str(sheet), "--model", "base", "--format", "lrc,json",
                    "--output-dir", str(out), "--cache-dir", str(stem_cache), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "placed 6 of 7 lines" in done.stderr
    lrc = (out / "mix.lrc").read_text(encoding="utf-8").splitlines()
    tagged = [l for l in lrc if re.match(r"^\[\d\d:\d\d\.\d\d\]\S", l)]
    bare = [l for l in lrc if l and not l.startswith("[")]
    assert bare == list(song.unsung_lines)  # not found: written without a time
    assert [re.sub(r"<[^>]+>|\[[^]]+\]", "", l).strip() for l in tagged] == [l.text for l in song.lines]
    for line, truth in zip(tagged, song.lines):
        mm, ss = re.match(r"^\[(\d\d):(\d\d\.\d\d)\]", line).groups()
        assert abs(int(mm) * 60 + float(ss) - truth.start) <= 0.3, (line, truth)
        stamps = re.findall(r"<(\d\d):(\d\d\.\d\d)>", line)
        assert len(stamps) == len(truth.text.split()) + 1  # every word, then the line's end
    data = json.loads((out / "mix.json").read_text(encoding="utf-8"))
    assert [l["status"] for l in data["lines"]].count("unmatched") == 1


def test_bad_input_exits_2_with_one_sentence(quick_songs, tmp_path):
    song = quick_songs[0]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n[Chorus]\n\n")
    cases = [((str(song.path), str(tmp_path / "missing.txt")), "does not exist"),
             ((str(song.path), str(empty)), "no lyric lines"),
             ((str(empty), str(empty)), "no lyric lines"),
             ((str(song.path), str(song.path)), "a lyrics file is plain text"),
             ((str(tmp_path / "nothing.mp3"), str(empty)), "does not exist")]
    notes = tmp_path / "notes.txt"
    notes.write_text("Never let me go\n")
    cases.append(((str(notes), str(notes)), "not an audio or video file"))
    cases.append(((str(song.path), str(notes), "--language", "xx"), "not a language code"))
    for args, message in cases:
        done = _run_tft("align", *args, "--model", "base", cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
