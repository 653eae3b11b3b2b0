"""Nothing voiced is lost to one bad window: a packed window the filter rejects whole (in a
song, one line looped takes every line of its window along) is heard again line by line.
The real tiny.en model on a minute of real speech; the rejection is a rule of our own, since
no clean recording makes Whisper loop on cue."""

import pytest

from engine import hallucination, vad
from engine.audio import decode
from engine.hearing import rehear_rejected
from engine.transcription import DecodeOptions, transcribe
from engine.windows import pack

pytestmark = pytest.mark.model


def first_window(segment, ctx):  # stands in for the loop rule, on one window
    return "rejected whole" if segment.start < 1.0 and segment.end - segment.start > 20 else None


def test_a_rejected_window_is_heard_again_line_by_line(tiny_loaded, long_speech):
    from benchmarks.metrics import wer

    path, text = long_speech
    audio = decode(path)
    spans = vad.detect_speech(audio, vad.SPEECH)
    assert len(pack(audio, spans)) >= 2
    options = DecodeOptions(language="en", batch_size=2, timestamps="required")

    check = hallucination.StreamingFilter(settings=hallucination.MUSIC, speech=spans,
                                          rules=(("first_window", first_window), *hallucination.RULES))
    arrived = []
    decoded = transcribe(tiny_loaded, audio, spans, options, on_segment=lambda s: arrived.append(check.push(s)))
    assert decoded.coarse and len(check.removed) == 1  # the first window, with all its lines
    window = check.removed[0].segment
    before = check.result()[0]
    assert not any(s.start < window.end - 1 for s in before)

    again = rehear_rejected(tiny_loaded, audio, spans, options, check, decoded, check.push)
    kept, removed = check.result()
    assert len(again.segments) > len(decoded.segments)
    redone = [s for s in kept if s.end <= window.end + 0.5]
    assert len(redone) >= 3 and all(s.text.strip() for s in redone)  # lines, not one window
    assert all(s.end - s.start < 20 for s in redone) and all(s.words for s in redone)
    assert [s.start for s in kept] == sorted(s.start for s in kept) and [s.id for s in kept] == list(range(len(kept)))
    assert wer(text, " ".join(s.text for s in kept)) < 0.15
    assert len(removed) == 1  # what is heard again is judged again (and this time kept)


def test_the_pipeline_stage_hears_it_again_and_progress_never_goes_back(tiny_loaded, long_speech, monkeypatch):
    from engine import hearing
    from engine.pipeline import PipelineOptions
    from engine.progress import Run

    class FirstWindowRejected(hallucination.StreamingFilter):
        def __init__(self, **kwargs):
            super().__init__(**kwargs, rules=(("first_window", first_window), *hallucination.RULES))

    monkeypatch.setattr(hearing.hallucination, "StreamingFilter", FirstWindowRejected)
    path, text = long_speech
    audio = decode(path)
    spans = vad.detect_speech(audio, vad.SPEECH)
    seen, streamed = [], []
    run = Run(["transcribe", "filter"], lambda p: seen.append(p.stage_fraction) if p.stage == "transcribe" else None)
    run.report.duration = audio.size / 16_000
    options = DecodeOptions(language="en", batch_size=2, timestamps="required")
    decoded, check = hearing.transcribe_filtered(tiny_loaded, audio, spans, options, PipelineOptions(), True, run,
                                                 streamed.append)
    window = check.removed[0].segment
    assert len(check.removed) == 1 and window.start < 1.0
    kept, _ = check.result()
    assert sum(1 for s in kept if s.end <= window.end + 0.5) >= 3  # the window's lines, heard again
    assert streamed[-1].start < window.end and len(streamed) == len(kept)  # streamed, after later lines
    assert seen and seen == sorted(seen)


def test_a_span_whose_lines_are_rejected_again_is_heard_alone(tiny_loaded, long_speech, monkeypatch):
    """Heard again with its spans joined, the window loses its lines once more (a hook sung
    in two spans loops again): each span none of whose lines was kept is decoded alone."""
    from benchmarks.metrics import wer
    from engine import hearing

    calls = []
    real = hearing.transcribe

    def spy(model, signal, spans, options, **kwargs):  # the real decoder; only counted
        calls.append((spans, options))
        return real(model, signal, spans, options, **kwargs)

    def joined_rejected(segment, ctx):  # stands in for a second loop, in the joined pass only
        return "rejected again" if len(calls) == 1 else None

    monkeypatch.setattr(hearing, "transcribe", spy)
    path, text = long_speech
    audio = decode(path)
    spans = vad.detect_speech(audio, vad.SPEECH)
    options = DecodeOptions(language="en", batch_size=2, timestamps="required")
    check = hallucination.StreamingFilter(settings=hallucination.MUSIC, speech=spans,
                                          rules=(("first_window", first_window), ("joined", joined_rejected),
                                                 *hallucination.RULES))
    decoded = real(tiny_loaded, audio, spans, options, on_segment=check.push)
    window = check.removed[0].segment
    assert len(check.removed) == 1 and window.start < 1.0
    hearing.rehear_rejected(tiny_loaded, audio, spans, options, check, decoded, check.push)

    joined, alone = calls[0], calls[1:]
    assert joined[1].temperatures == (0.0,)  # a loop again goes span by span, with the full fallback
    assert sum(r.rule == "joined" for r in check.removed) >= 2
    assert len(alone) == len(joined[0]) and all(len(s) == 1 for s, _ in alone)  # every span, each alone
    assert [s[0] for s, _ in alone] == list(joined[0])
    assert all(o.temperatures == options.temperatures for _, o in alone)  # with the full fallback
    kept, _ = check.result()
    redone = [s for s in kept if s.end <= window.end + 0.5]
    assert len(redone) >= len(alone) and all(s.text.strip() and s.words for s in redone)
    assert wer(text, " ".join(s.text for s in kept)) < 0.15

