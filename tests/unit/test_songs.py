"""The constructed-song corpus: timings, levels and structure are checked on the rendered files
with measurements independent of the ones the builder used (20 ms frames, a -35 dB floor)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from corpus import midi, songs
from corpus.errors import ToolMissing
from corpus.lyrics import LYRICS

FRAME = 0.02


def read(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(path, dtype="int16", always_2d=True)
    return audio, rate


def voiced_frames(voice: np.ndarray, rate: int, floor_db: float = -35.0) -> np.ndarray:
    f = int(FRAME * rate)
    n = voice.shape[0] // f
    energy = np.sqrt(np.mean(voice[: n * f, 0].astype(np.float64).reshape(n, f) ** 2, axis=1))
    return energy > energy.max() * 10 ** (floor_db / 20)


def test_quick_corpus_is_aligned_44k_stereo_and_mix_is_voice_plus_band(quick_songs):
    assert len(quick_songs) == 4
    assert {s.language for s in quick_songs} >= {"en", "es", "fr"}
    assert {s.ratio_db for s in quick_songs} >= {6.0, 0.0, -6.0}
    assert len({s.style for s in quick_songs}) == 4
    for song in quick_songs:
        mix, rate = read(song.path)
        voice, _ = read(song.voice_path)
        band, _ = read(song.band_path)
        assert rate == 44_100 and mix.shape[1] == 2
        assert mix.shape == voice.shape == band.shape
        assert mix.shape[0] / rate <= 46
        np.testing.assert_array_equal(mix.astype(np.int32), voice.astype(np.int32) + band.astype(np.int32))
        assert np.abs(mix).max() < 32767  # mastered below full scale, never clipped
        manifest = json.loads((song.path.parent / "song.json").read_text(encoding="utf-8"))
        assert songs.load_song(song.path.parent / "song.json") == song
        assert manifest["bpm"] == midi.STYLES[song.style].bpm


def test_structure_intro_break_outro(quick_songs):
    for song in quick_songs:
        intro, brk, outro = song.instrumental
        seconds = sf.info(song.path).duration
        assert intro[0] == 0 and 5 <= intro[1] <= 10, song.name
        assert 8 <= brk[1] - brk[0] <= 15, song.name
        assert outro[1] == pytest.approx(seconds, abs=1e-3), song.name
        assert intro[1] <= song.lines[0].start and song.lines[-1].end <= outro[0]
        before = [l for l in song.lines if l.end <= brk[0]]
        after = [l for l in song.lines if l.start >= brk[1]]
        assert before and after and len(before) + len(after) == len(song.lines), song.name


def test_line_times_are_where_the_voice_sounds(quick_songs):
    for song in quick_songs:
        voice, rate = read(song.voice_path)
        active = voiced_frames(voice, rate)
        covered = np.zeros(active.size, bool)
        for line in song.lines:
            a, b = int(line.start / FRAME), math.ceil(line.end / FRAME)
            inside = np.flatnonzero(active[a:b])
            assert inside.size, (song.name, line)
            assert abs((a + inside[0]) * FRAME - line.start) <= 0.03, (song.name, line)
            assert abs((a + inside[-1] + 1) * FRAME - line.end) <= 0.05, (song.name, line)
            covered[max(0, a - 1) : b + 1] = True
        assert not np.any(active & ~covered), f"{song.name}: voice energy outside every line"


def test_instrumental_stretches_hold_no_voice(quick_songs):
    for song in quick_songs:
        voice, rate = read(song.voice_path)
        band, _ = read(song.band_path)
        for start, end in song.instrumental:
            s, e = int(round(start * rate)), int(round(end * rate))
            assert not np.any(voice[s:e]), (song.name, start, end)
            assert np.sqrt(np.mean(band[s:e].astype(np.float64) ** 2)) > 300, "the band plays there"


def test_measured_ratio_is_within_half_a_db(quick_songs):
    for song in quick_songs:
        voice, rate = read(song.voice_path)
        band, _ = read(song.band_path)
        f = int(FRAME * rate)
        mask = np.repeat(voiced_frames(voice, rate), f)
        v = voice[: mask.size][mask].astype(np.float64)
        b = band[: mask.size][mask].astype(np.float64)
        measured = 20 * math.log10(np.sqrt(np.mean(v**2)) / np.sqrt(np.mean(b**2)))
        assert measured == pytest.approx(song.ratio_db, abs=0.5), song.name


def test_alignment_material(quick_songs):
    by_name = {s.name: s for s in quick_songs}
    hook = by_name["electronic-en-hook-m6db"]
    times = [l.start for l in hook.lines if l.text == LYRICS["en"].hook]
    assert len(times) == 4 and len(set(times)) == 4
    pop = by_name["pop-en-0db"]
    assert pop.unsung_lines == (LYRICS["en"].unsung,)
    sheet = [l for l in pop.sheet.splitlines() if l]
    assert sheet == [pop.lines[0].text, LYRICS["en"].unsung, *(l.text for l in pop.lines[1:])]
    assert LYRICS["en"].unsung not in pop.text
    full = songs.corpus_specs()
    long_breaks = [
        s for s in full
        for sec in s.form if sec.kind == "break"
        and round(sec.seconds / midi.bar_seconds(midi.STYLES[s.style])) * midi.bar_seconds(midi.STYLES[s.style]) >= 30
    ]
    assert long_breaks
    assert {s.language for s in full} >= {"en", "fr", "es", "de", "it"}
    assert {s.ratio_db for s in full} == {6.0, 0.0, -6.0, -12.0}
    assert {s.voice for s in full} == {"espeak", "sung", "audioeval"}
    assert len({s.name for s in full}) == len(full)


def test_the_band_keeps_its_tempo_and_fills_the_spectrum(quick_songs):
    """Listen-free evidence of a band: a beat at the style's tempo, bass, mids and cymbals."""
    for song in quick_songs:
        band, rate = read(song.band_path)
        x = band.mean(axis=1).astype(np.float64) / 32768
        hop = 441  # 100 frames per second
        frames = np.lib.stride_tricks.sliding_window_view(x, 2048)[::hop] * np.hanning(2048)
        spec = np.abs(np.fft.rfft(frames, axis=1))
        flux = np.maximum(np.diff(np.log1p(100 * spec), axis=0), 0).sum(axis=1)
        flux -= flux.mean()
        ac = np.correlate(flux, flux, "full")[flux.size - 1 :]
        period = 100 * 60 / midi.STYLES[song.style].bpm  # the beat, in frames
        lags = np.arange(int(period * 0.8), int(period * 1.25) + 1)
        best = lags[np.argmax(ac[lags])]
        assert abs(best - period) <= 2, (song.name, best, period)  # within 20 ms of the style's beat
        assert ac[best] > 0.2 * ac[0], (song.name, ac[best] / ac[0])  # and a strong pulse
        power = (spec**2).mean(axis=0)
        freqs = np.fft.rfftfreq(2048, 1 / rate)
        share = {name: power[(freqs >= lo) & (freqs < hi)].sum() / power.sum()
                 for name, lo, hi in (("bass", 30, 250), ("mid", 250, 4000), ("air", 4000, 16000))}
        assert share["bass"] > 0.05 and share["mid"] > 0.1 and share["air"] > 0.001, (song.name, share)


def test_arrangement_has_every_instrument_and_gm_drums():
    style = midi.STYLES["bossa"]
    notes, beats = midi.arrange(style, (midi.Part("intro", 2), midi.Part("verse", 2), midi.Part("outro", 2)), seed=5)
    assert {n.track for n in notes} == {"piano", "bass", "pad", "guitar", "lead", "drums"}
    assert beats == 24


def small_spec(seed: int = 7) -> songs.SongSpec:
    en = LYRICS["en"]
    return songs.SongSpec("tiny-en", "electronic", "en", -12.0,
                          (songs.Section("intro", seconds=5), songs.Section("verse", en.verse[:1]),
                           songs.Section("outro", seconds=2)), seed=seed)


def test_same_seed_same_song_and_the_cache_is_reused(tmp_path):
    a = songs.build_song(small_spec(), tmp_path / "a")
    b = songs.build_song(small_spec(), tmp_path / "b")
    for field in ("path", "voice_path", "band_path"):
        assert getattr(a, field).read_bytes() == getattr(b, field).read_bytes()
    assert replace(a, path=b.path, voice_path=b.voice_path, band_path=b.band_path) == b
    stamp = a.path.stat().st_mtime_ns
    assert songs.build_song(small_spec(), tmp_path / "a") == a
    assert a.path.stat().st_mtime_ns == stamp
    other = songs.build_song(small_spec(seed=8), tmp_path / "a")
    assert other.path.parent != a.path.parent
    assert read(other.band_path)[0].shape != read(a.band_path)[0].shape or \
        not np.array_equal(read(other.band_path)[0], read(a.band_path)[0])
    assert not list((tmp_path / "a").glob(".*")), "no temporary leftovers"


def test_missing_soundfont_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TFT_SOUNDFONT", str(tmp_path / "nowhere.sf2"))
    with pytest.raises(ToolMissing, match="fluid-soundfont-gm"):
        songs.build_song(small_spec(), tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_real_sung_excerpt_comes_checked_from_the_wheel(tmp_path):
    from corpus import sung

    path = sung.real_sung_excerpt(tmp_path)
    from engine.audio import probe

    info = probe(path)
    assert info.sample_rate == 44_100 and info.channels == 2
    assert info.duration == pytest.approx(10.88, abs=0.05)
    assert sung.SUNG[1] <= info.duration


@pytest.mark.model
def test_english_song_at_0db_is_intelligible_in_the_clean_voice(quick_songs, base_loaded):
    from benchmarks.metrics import wer
    from engine.audio import decode

    song = next(s for s in quick_songs if s.name == "pop-en-0db")
    # silero over a clean voice on silence is reliable; without it Whisper's 30 s windows cut a line
    segments, _ = base_loaded.whisper.transcribe(decode(song.voice_path), beam_size=5, language="en", vad_filter=True)
    segments = list(segments)
    assert wer(song.text, " ".join(s.text for s in segments)) <= 0.1
    for line in song.lines:  # each line is heard where the corpus says it is sung
        near = [s for s in segments if s.start < line.end + 1 and s.end > line.start - 1]
        assert near, line


@pytest.mark.model
def test_the_sung_like_voice_stays_intelligible(tmp_path, base_loaded):
    """Held notes on a melody (slow espeak, no speech intonation) must still carry the words."""
    from benchmarks.metrics import wer
    from engine.audio import decode

    en = LYRICS["en"]
    spec = songs.SongSpec("sung-en", "ballad", "en", 0.0,
                          (songs.Section("intro", seconds=5), songs.Section("verse", en.verse[:2]),
                           songs.Section("outro", seconds=2)), voice="sung", seed=3)
    song = songs.build_song(spec, tmp_path)
    slow = songs.build_song(replace(spec, voice="espeak"), tmp_path)
    assert song.lines[0].end - song.lines[0].start > 1.4 * (slow.lines[0].end - slow.lines[0].start)
    segments, _ = base_loaded.whisper.transcribe(decode(song.voice_path), beam_size=5, language="en", vad_filter=True)
    assert wer(song.text, " ".join(s.text for s in segments)) <= 0.15
