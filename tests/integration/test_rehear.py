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
    """Heard again with its spans joined, the window loses one span's lines once more (a hook
    sung in two spans loops again): that span, and only that one, is decoded alone, with the
    full temperature fallback."""
    from benchmarks.metrics import wer
    from engine import hearing
    from engine.types import SpeechSpan
    from engine.windows import pause_point

    calls = []
    real = hearing.transcribe

    def spy(model, signal, spans, options, **kwargs):  # the real decoder; only counted
        calls.append((spans, options))
        return real(model, signal, spans, options, **kwargs)

    path, text = long_speech
    audio = decode(path)
    found = vad.detect_speech(audio, vad.SPEECH)
    first = found[0]  # one long span: cut at a pause near its middle into two
    cut = pause_point(audio, int(first.start * 16_000), int((first.start + first.end) / 2 * 16_000),
                      search=3 * 16_000) / 16_000
    spans = (SpeechSpan(first.start, cut), SpeechSpan(cut, first.end), *found[1:])
    assert spans[0].duration > 5 and spans[1].duration > 5

    def joined_rejected(segment, ctx):  # stands in for a second loop, over the first span only
        return "rejected again" if len(calls) == 1 and segment.start < cut - 0.2 else None

    monkeypatch.setattr(hearing, "transcribe", spy)
    options = DecodeOptions(language="en", batch_size=2, timestamps="required")
    check = hallucination.StreamingFilter(settings=hallucination.MUSIC, speech=spans,
                                          rules=(("first_window", first_window), ("joined", joined_rejected),
                                                 *hallucination.RULES))
    decoded = real(tiny_loaded, audio, spans, options, on_segment=check.push)
    window = check.removed[0].segment
    assert len(check.removed) == 1 and window.start < 1.0
    hearing.rehear_rejected(tiny_loaded, audio, spans, options, check, decoded, check.push)

    (joined, first_pass), alone = calls[0], calls[1:]
    assert len(joined) >= 2 and first_pass.temperatures == (0.0,)  # joined, at the first temperature
    assert sum(r.rule == "joined" for r in check.removed) >= 1
    assert [s for s, _ in alone] == [(spans[0],)]  # the span that lost its lines, alone
    assert alone[0][1].temperatures == options.temperatures and not alone[0][1].hear_missed
    kept, _ = check.result()
    assert any(s.start < cut and s.end <= cut + 0.5 for s in kept)  # its lines, heard alone
    assert all(s.text.strip() and s.words for s in kept)
    assert wer(text, " ".join(s.text for s in kept)) < 0.15


@pytest.mark.parametrize("batch_size", [2, 1])
def test_text_only_progress_moves_with_the_decoder(tiny_loaded, long_speech, batch_size):
    """A text-only segment spans the file (no times), so progress taken from segment ends sat
    at 100% after the first window of a long TXT job. It follows the decoder's position."""
    from engine import hearing
    from engine.pipeline import PipelineOptions
    from engine.progress import Run

    audio = decode(long_speech[0])
    spans = vad.detect_speech(audio, vad.SPEECH)
    seen = []
    run = Run(["transcribe", "filter"], lambda p: seen.append(p.stage_fraction) if p.stage == "transcribe" else None)
    run.report.duration = audio.size / 16_000
    options = DecodeOptions(language="en", batch_size=batch_size, timestamps="none")
    decoded, _ = hearing.transcribe_filtered(tiny_loaded, audio, spans, options, PipelineOptions(), False, run, None)
    assert all(s.start == 0 and s.end == run.report.duration for s in decoded.segments)  # no times to go by
    assert seen == sorted(seen) and seen[-1] > 0.9
    assert any(0.1 < f < 0.9 for f in seen), seen  # partway, not at the end after the first window
