"""The speech/music detector on a generated set, every decision checked.

The set (all generated here, deterministic):
  speech: espeak-ng English and French, the pytest-audioeval clips (en/es/it) joined with
          half-second pauses, English espeak with white noise at 20 dB SNR, and with
          50 Hz hum at 15 dB SNR (noisy speech must not look like music);
  music:  three instrumentals (chords, bass, lead, drums) at 76/100/128 bpm, one without
          drums, and English/French speech over a generated music bed at 0, 6 and 12 dB
          voice-to-bed ratio (speech over a bed is music: it needs music mode), and one of
          them with a silent start (a quiet intro).
"""

import numpy as np
import pytest

from corpus import synth
from corpus.speech import audioeval_clips, espeak
from engine import audio, detect

EN = ("The old radio broadcast began with a warning about the storm. Farmers were told to bring their "
      "cattle inside before nightfall, and the harbour master closed the port until the morning.")
FR = ("Le vieux poste de radio annonçait une tempête. Les fermiers devaient rentrer leurs bêtes avant la "
      "nuit, et le port resterait fermé jusqu'au matin.")


def _quiet_start(samples: np.ndarray, seconds: float) -> np.ndarray:
    """A song whose first seconds are silent (a quiet intro): found as sparse songs of the
    corpus (pause ratio 0.08-0.09, tonal 0.50-0.68, beat 0.59-0.70) taken for speech."""
    out = samples.copy()
    out[: int(seconds * 16000)] = 0.0
    return out


@pytest.fixture(scope="module")
def material(generated_dir):
    en = audio.decode(espeak(EN, generated_dir / "detect_en.wav"))
    fr = audio.decode(espeak(FR, generated_dir / "detect_fr.wav", voice="fr"))
    joined = np.concatenate([np.concatenate([audio.decode(c.path), np.zeros(8000, np.float32)])
                             for c in audioeval_clips() if c.language in ("en", "es", "it")])
    cases = {
        "speech/espeak-en": (en, "speech"),
        "speech/espeak-fr": (fr, "speech"),
        "speech/audioeval-joined": (joined, "speech"),
        "speech/en+white-noise-20dB": (synth.mix_at_snr(en, synth.white_noise(60, seed=2), 20), "speech"),
        "speech/en+hum-15dB": (synth.mix_at_snr(en, synth.hum(60), 15), "speech"),
        "music/instrumental-100bpm": (synth.instrumental(30, bpm=100, seed=1), "music"),
        "music/instrumental-128bpm": (synth.instrumental(30, bpm=128, seed=2), "music"),
        "music/instrumental-76bpm": (synth.instrumental(30, bpm=76, seed=3), "music"),
        "music/no-drums": (synth.instrumental(30, seed=4, drums=False), "music"),
        "music/en-over-bed-0dB": (synth.mix_at_snr(en, synth.instrumental(60, seed=1), 0), "music"),
        "music/en-over-bed-6dB": (synth.mix_at_snr(en, synth.instrumental(60, seed=2), 6), "music"),
        "music/en-over-bed-12dB": (synth.mix_at_snr(en, synth.instrumental(60, seed=3), 12), "music"),
        "music/fr-over-bed-0dB": (synth.mix_at_snr(fr, synth.instrumental(60, seed=7, bpm=90), 0), "music"),
        "music/quiet-intro": (_quiet_start(synth.mix_at_snr(en, synth.instrumental(60, seed=5), 0), 1.6), "music"),
    }
    return cases


CASES = ["speech/espeak-en", "speech/espeak-fr", "speech/audioeval-joined", "speech/en+white-noise-20dB",
         "speech/en+hum-15dB", "music/instrumental-100bpm", "music/instrumental-128bpm", "music/instrumental-76bpm",
         "music/no-drums", "music/en-over-bed-0dB", "music/en-over-bed-6dB", "music/en-over-bed-12dB",
         "music/fr-over-bed-0dB", "music/quiet-intro"]


@pytest.mark.parametrize("case", CASES)
def test_decision(material, case):
    samples, expected = material[case]
    decision = detect.classify(samples)
    assert decision.audio_type == expected, (case, dict(decision.evidence), decision.reason)
    assert decision.decided_by == "detector"
    assert set(decision.evidence) >= {"pause_ratio", "tonal_stability", "rhythm"}
    assert decision.reason


def test_all_cases_covered(material):
    assert sorted(material) == sorted(CASES)


def test_silence_is_speech_mode():
    assert detect.classify(np.zeros(16000 * 10, np.float32)).audio_type == "speech"
