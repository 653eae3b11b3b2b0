"""The real tiny.en and base models on real clips, against raw faster-whisper in the same run."""

import pytest

from benchmarks.metrics import corpus_rate, wer
from engine.errors import UnsupportedLanguageError
from engine.pipeline import PipelineOptions, Resources, run
from engine.pinyin import has_han

pytestmark = pytest.mark.model


def raw_text(loaded, path, *, beam_size=5, language=None, vad_filter=False):
    """Plain faster-whisper, as a user would call it: the baseline."""
    segments, _ = loaded.whisper.transcribe(str(path), beam_size=beam_size, language=language, vad_filter=vad_filter)
    return " ".join(s.text.strip() for s in segments)


def ours(model, path, **options):
    return run(path, PipelineOptions(**options), Resources(model.name, model.path))


def test_english_clips_tiny_en_at_or_below_raw_wer(tiny, tiny_loaded, clips, long_speech):
    english = [(c.text, c.path) for c in clips if c.language == "en"] + [(long_speech[1], long_speech[0])]
    raw_pairs, our_pairs = [], []
    for reference, path in english:
        raw_pairs.append((reference, raw_text(tiny_loaded, path), "en"))
        our_pairs.append((reference, ours(tiny, path).text, "en"))
    raw_wer, our_wer = corpus_rate(raw_pairs), corpus_rate(our_pairs)
    print(f"\nEnglish WER over {len(english)} clips, tiny.en beam 5: ours {our_wer:.3f}, raw faster-whisper {raw_wer:.3f}")
    assert our_wer <= raw_wer
    assert our_wer < 0.15


@pytest.mark.parametrize("language,markers", [("fr", ("bonjour", "monde", "whisky", "juge")), ("zh", ())])
def test_base_with_language_hint_transcribes_in_that_language(base, clips, language, markers):
    selected = [c for c in clips if c.language == language]
    assert len(selected) == 3
    texts, han = [], []
    for clip in selected:
        t = ours(base, clip.path, language=language, pinyin=True, timestamps="required")
        assert t.language == language
        assert t.segments, clip.name
        texts.append(t.text)
        if language == "zh":  # Chinese characters (or digits for the counting clip), with pinyin
            assert all(has_han(s.text) or s.text.strip().isdigit() for s in t.segments)
            han += [s for s in t.segments if has_han(s.text)]
    if language == "zh":
        assert len(han) >= 2 and all(s.pinyin for s in han), "pinyin present for Chinese"
        assert all(w.pinyin for s in han for w in s.words if has_han(w.text))
        assert any(s.words for s in han)
    joined = " ".join(texts).lower()
    if language == "fr":
        assert sum(m in joined for m in markers) >= 3, joined
    else:
        print(f"\nChinese with base: {texts}")
        for clip, text in zip(selected, texts):
            if clip.name == "jishu":  # counting: base writes digits, which is fine
                continue
            chars = {ch for ch in clip.text if has_han(ch)}
            assert len(chars & set(text)) >= 0.5 * len(chars), (clip.text, text)


def test_language_is_detected_without_a_hint(base, clips):
    clip = next(c for c in clips if c.language == "es" and c.name == "pangrama")
    t = ours(base, clip.path)
    assert t.language == "es" and t.language_probability > 0.5


def test_language_errors(tiny, base, clips):
    clip = clips[0].path
    with pytest.raises(UnsupportedLanguageError, match="English-only and cannot transcribe 'fr'"):
        ours(tiny, clip, language="fr")
    for bad in ("xx", "english", "fra"):
        with pytest.raises(UnsupportedLanguageError, match="not a language code"):
            ours(base, clip, language=bad)


def test_timestamp_modes(tiny, long_speech):
    path, _ = long_speech
    timed = ours(tiny, path, timestamps="required")
    assert timed.has_word_timestamps
    starts = [s.start for s in timed.segments]
    assert starts == sorted(starts) and all(0 <= s.start < s.end <= timed.duration + 0.01 for s in timed.segments)
    for s in timed.segments:
        assert all(s.start - 0.5 <= w.start <= w.end <= s.end + 0.5 for w in s.words)
    text_only = ours(tiny, path, timestamps="none")
    assert text_only.segments and not text_only.has_word_timestamps
    assert all(s.start == 0.0 and s.end == pytest.approx(text_only.duration) for s in text_only.segments)
    assert wer(long_speech[1], text_only.text) < 0.2



_SAMPLED_DECODE = """
import sys
from corpus.speech import audioeval_clips
from engine.audio import decode
from engine.transcription import DecodeOptions, load_model, transcribe
from models import ModelStore, default_store_dir, resolve_whisper

w = resolve_whisper("tiny.en", ModelStore(default_store_dir()))
model = load_model(w.name, w.path)
if len(sys.argv) > 1:  # the control: another seed
    import ctranslate2

    ctranslate2.set_random_seed(int(sys.argv[1]))
audio = decode(next(c for c in audioeval_clips() if c.language == "en").path)
sampled = DecodeOptions(language="en", timestamps="none", temperatures=(1.0,))  # every window sampled
print(" | ".join(" ".join(s.text for s in transcribe(model, audio, None, sampled).segments) for _ in range(3)))
"""


def test_the_same_command_gives_the_same_transcript_even_when_decoding_samples(tiny):
    """Temperature fallback samples; CTranslate2 would seed its sampler from a random device,
    so the same command on the same file could read differently from run to run."""
    import subprocess
    import sys

    def command(*seed: str) -> str:
        return subprocess.run([sys.executable, "-c", _SAMPLED_DECODE, *seed], capture_output=True, text=True,
                              check=True, timeout=300).stdout.strip()

    first, second = command(), command()
    assert first == second and first.strip(" |")
    # ... and the sampling is real: other seeds read the same clip otherwise.
    assert any(command(str(seed)) != first for seed in (1, 2, 3, 4))
