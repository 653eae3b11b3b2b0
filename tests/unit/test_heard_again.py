"""A voiced span the decoder passed over is decoded again, alone, and its lines take their
place in time order (engine.transcription.heard_again)."""

from dataclasses import dataclass

from engine.transcription import MISSED_SPAN_S, heard_again
from engine.types import SpeechSpan


@dataclass
class Seg:
    start: float
    end: float
    text: str


def run(segments, spans):
    asked = []

    def redo(missed):
        asked.append(tuple((s.start, s.end) for s in missed))
        return [Seg(s.start + 0.2, s.end - 0.2, f"again {s.start:g}") for s in missed]

    out = list(heard_again(iter(segments), tuple(SpeechSpan(a, b) for a, b in spans), redo))
    return [s.text for s in out], asked


def test_a_span_after_the_last_line_is_decoded_alone_at_the_end():
    texts, asked = run([Seg(8.2, 10.0, "verse")], [(7.9, 22.2), (56.0, 68.7)])
    assert asked == [((56.0, 68.7),)]
    assert texts == ["verse", "again 56"]


def test_a_skipped_span_between_lines_comes_back_in_time_order():
    texts, asked = run([Seg(1.0, 3.0, "one"), Seg(40.5, 42.0, "three")], [(0.8, 3.2), (20.0, 25.0), (40.3, 42.5)])
    assert asked == [((20.0, 25.0),)]
    assert texts == ["one", "again 20", "three"]


def test_spans_a_line_covers_are_not_decoded_again():
    texts, asked = run([Seg(2.4, 6.0, "across two spans")], [(0.0, 3.0), (5.5, 9.0)])
    assert asked == [] and texts == ["across two spans"]


def test_a_line_running_just_past_a_join_has_not_heard_the_next_span():
    texts, asked = run([Seg(1.0, 5.52, "verse")], [(0.8, 5.5), (5.5, 12.0)])
    assert asked == [((5.5, 12.0),)] and texts == ["verse", "again 5.5"]


def test_short_spans_are_left_alone():
    texts, asked = run([Seg(5.0, 7.0, "line")], [(1.0, 1.0 + MISSED_SPAN_S * 0.9), (5.0, 7.0)])
    assert asked == [] and texts == ["line"]


def test_spans_missed_side_by_side_are_decoded_again_together_once():
    texts, asked = run([], [(1.0, 4.0), (10.0, 14.0)])
    assert asked == [((1.0, 4.0), (10.0, 14.0))]
    assert texts == ["again 1", "again 10"]


def test_a_heard_span_between_two_missed_ones_splits_them():
    texts, asked = run([Seg(10.5, 13.0, "heard")], [(1.0, 4.0), (10.0, 14.0), (20.0, 24.0)])
    assert asked == [((1.0, 4.0),), ((20.0, 24.0),)]
    assert texts == ["again 1", "heard", "again 20"]


def test_a_rejected_window_is_heard_again_over_its_whole_audio():
    """A packed window's segment runs from its first aligned word to its last; a loop Whisper
    ended early leaves the window's later voice outside it. Hearing the window again covers
    the window, not only the words."""
    from engine.hearing import _window_of

    windows = ((1.7, 31.0), (31.0, 58.4))
    assert _window_of(Seg(2.0, 12.5, "slowly slowly"), windows) == (1.7, 31.0)
    assert _window_of(Seg(31.0, 40.0, "slowly"), windows) == (31.0, 58.4)
    assert _window_of(Seg(70.0, 75.0, "no window"), windows) == (70.0, 75.0)  # no window holds it: its own times
