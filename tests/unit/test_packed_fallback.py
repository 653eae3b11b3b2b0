"""Which packed windows are decoded again at the next temperatures (faster-whisper's
fallback): every failed one for speech; for music gated on its stem, not a looped one,
which the filter rejects and hears again line by line instead. The decoder itself is real
elsewhere (tests/integration/test_lanes.py samples every window); here only the choice."""

import numpy as np

from engine import packed
from engine.packed import _fallback, _Result
from engine.transcription import DecodeOptions


def result(text="la", *, ratio=1.2, logprob=-0.3, temperature=0.0):
    return _Result((1,), text, logprob, 0.1, ratio, temperature)


class Encoder:
    def __init__(self):
        self.encoded = []

    def encode(self, features):
        self.encoded.append(len(features))
        return features


def test_music_does_not_retry_a_looped_window_but_retries_garbage(monkeypatch):
    retried = []

    def generate(w, encoded, prompts, tokenizer, options, temperature):
        retried.append((temperature, len(prompts)))
        return [result("better", temperature=temperature) for _ in prompts]

    monkeypatch.setattr(packed, "_generate", generate)
    first = [result(), result("loop " * 40, ratio=8.6), result("?", logprob=-1.4)]
    features = np.zeros((3, 80, 3000), np.float32)

    speech = _fallback(Encoder(), features, [[1]] * 3, first, None, DecodeOptions())
    assert [r.text for r in speech] == ["la", "better", "better"] and retried == [(0.2, 2)]

    retried.clear()
    music = _fallback(Encoder(), features, [[1]] * 3, first, None, DecodeOptions(retry_loops=False))
    assert music[1] is first[1] and music[1].looped  # left for the filter to reject and hear again
    assert music[2].text == "better" and retried == [(0.2, 1)]


def test_a_loop_too_short_for_the_filter_is_still_retried(monkeypatch):
    monkeypatch.setattr(packed, "_generate", lambda w, e, prompts, t, o, temperature: [result("啊 。")] * len(prompts))
    short = result("啊" * 20, ratio=4.5)  # one "word", under the compression rule's 24 characters
    assert short.looped
    again = _fallback(Encoder(), np.zeros((1, 80, 3000), np.float32), [[1]], [short], None,
                      DecodeOptions(retry_loops=False))
    assert again[0].text == "啊 。"


def test_only_filtered_music_on_its_stem_leaves_loops_to_be_heard_again():
    from engine.pipeline import PipelineOptions, Resources, _decode_options
    from engine.types import SpeechSpan

    spans = (SpeechSpan(1.0, 9.0),)
    resources = Resources("base", "/nowhere")

    def retries(options, music, spans):
        return _decode_options(options, resources, "en", music, spans, 60.0).retry_loops

    assert not retries(PipelineOptions(), True, spans)
    assert retries(PipelineOptions(hallucination_filter=False), True, spans)  # nothing would hear it again
    assert retries(PipelineOptions(), True, None)  # no stem: nothing gated
    assert retries(PipelineOptions(), False, spans)
    assert retries(PipelineOptions(timestamps="none"), True, spans)  # text only: nothing heard again
