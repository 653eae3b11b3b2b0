"""Vintage restoration on a degraded clean clip; every container decodes to the same words."""

import numpy as np
import pytest

from benchmarks.metrics import wer
from corpus import media, synth
from corpus.speech import LONG_FORM_PARAGRAPHS, espeak
from engine import audio
from engine.pipeline import PipelineOptions, Resources, run

pytestmark = pytest.mark.model


def test_vintage_lowers_wer_on_a_degraded_clip(tiny, generated_dir):
    text = " ".join(LONG_FORM_PARAGRAPHS[:2])
    clean = audio.decode(espeak(text, generated_dir / "vintage_clean.wav"))
    damaged = synth.write_wav(generated_dir / "vintage_damaged.wav", synth.degrade(clean / np.max(np.abs(clean)) * 0.5))
    resources = Resources(tiny.name, tiny.path)
    plain = run(damaged, PipelineOptions(audio_type="speech"), resources)
    restored = run(damaged, PipelineOptions(audio_type="speech", vintage=True), resources)
    clean_t = run(generated_dir / "vintage_clean.wav", PipelineOptions(audio_type="speech"), resources)
    w_plain, w_restored, w_clean = wer(text, plain.text), wer(text, restored.text), wer(text, clean_t.text)
    print(f"\nvintage, tiny.en: clean {w_clean:.3f}, degraded {w_plain:.3f}, degraded+vintage {w_restored:.3f}")
    assert w_restored <= w_plain
    assert w_restored < w_plain - 0.1, "restoration should measurably help on this damage"
    report = restored.options["extra"]["vintage"]
    assert report["hum_hz"] == 50.0 and report["clicks_repaired"] > 100


@pytest.mark.parametrize("ext", ["mp3", "m4a", "ogg", "opus", "flac", "mp4"])
def test_each_container_transcribes_the_same(tiny, clips, tmp_path, ext):
    clip = next(c for c in clips if c.name == "quick_brown_fox")
    samples = audio.decode(clip.path)
    path = media.video_with_audio(tmp_path / "fox.mp4", samples) if ext == "mp4" else media.encode(tmp_path / f"fox.{ext}", samples)
    transcript = run(path, PipelineOptions(), Resources(tiny.name, tiny.path))
    assert wer(clip.text, transcript.text) == 0.0, transcript.text


def test_batched_and_sequential_accuracy_measured(base, generated_dir):
    """Packed decoding (the default on long inputs) is at least as accurate as sequential."""
    from corpus.speech import long_form

    path, reference = long_form(generated_dir / "longform_5min.wav", words_per_minute=125)
    resources = Resources(base.name, base.path)
    sequential = run(path, PipelineOptions(batch_size=1), resources)
    batched = run(path, PipelineOptions(batch_size=8), resources)
    auto = run(path, PipelineOptions(), resources)
    w_seq, w_bat = wer(reference, sequential.text), wer(reference, batched.text)
    print(f"\nbase on {sequential.duration:.0f} s long-form: sequential WER {w_seq:.4f} "
          f"({sequential.timings['transcribe']:.1f} s), batched {w_bat:.4f} ({batched.timings['transcribe']:.1f} s)")
    assert sequential.duration >= 300
    assert auto.options["batch_size_effective"] == 8 and auto.text == batched.text
    assert w_bat <= w_seq + 0.005
    assert all(s.end - s.start <= 30 for s in batched.segments)
    assert max(len(s.text.split()) for s in batched.segments) <= 30  # cut into lines
    # A TXT file needs no times: the same packed decode without the word alignment, the same
    # words, cut into sentences (times span the file, as with --timestamps none)
    text_only = run(path, PipelineOptions(times_needed=False), resources)
    assert text_only.timestamps == "none" and text_only.text == auto.text
    assert all(not s.words and (s.start, s.end) == (0.0, text_only.duration) for s in text_only.segments)
    assert len(text_only.segments) > 11 and all(s.text.strip()[-1] in ".!?" for s in text_only.segments[:-1])
