import numpy as np

from engine.types import SpeechSpan
from engine.vad import detect_speech, overlap


def test_overlap_sums_covered_seconds():
    spans = (SpeechSpan(1, 3), SpeechSpan(5, 6))
    assert overlap(0, 10, spans) == 3
    assert overlap(2, 5.5, spans) == 1.5
    assert overlap(3, 5, spans) == 0


def test_silence_has_no_speech():
    assert detect_speech(np.zeros(16000 * 5, dtype=np.float32)) == ()
