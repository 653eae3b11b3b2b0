"""Packing speech into full decoding windows: every sample of speech lands in exactly one
window, in order; no window is over 30 s; a span that does not fit is cut in a pause."""

import numpy as np

from engine.types import SpeechSpan
from engine.windows import SAMPLE_RATE, PackSettings, Window, pack, pause_point


def _bursts(seconds: list[tuple[float, float]], total: float) -> np.ndarray:
    """A 200 Hz tone where 'speech' is, silence elsewhere."""
    signal = np.zeros(int(total * SAMPLE_RATE), np.float32)
    t = np.arange(signal.size) / SAMPLE_RATE
    for a, b in seconds:
        i, j = int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)
        signal[i:j] = 0.3 * np.sin(2 * np.pi * 200 * t[i:j])
    return signal


def test_short_spans_share_a_window_and_keep_their_order():
    spans = (SpeechSpan(1.0, 6.0), SpeechSpan(8.0, 14.0), SpeechSpan(20.0, 25.0))
    signal = _bursts([(s.start, s.end) for s in spans], 30.0)
    (window,) = pack(signal, spans)
    assert window.pieces == ((16000, 96000), (128000, 224000), (320000, 400000))
    assert window.duration == 16.0
    assert window.to_original(0.0) == 1.0 and window.to_original(5.5) == 8.5
    assert window.to_original(5.0) == 8.0 and window.to_original(5.0, end=True) == 6.0  # the join


def test_a_long_span_is_cut_in_its_last_pause_that_fits():
    # One 'paragraph' of 50 s with short pauses every 4 s: the cut lands inside a pause.
    words = [(k * 4.0, k * 4.0 + 3.6) for k in range(13)]
    signal = _bursts(words, 52.0)
    windows = pack(signal, (SpeechSpan(0.0, 52.0),))
    assert len(windows) == 2
    first, second = windows
    assert 24.0 <= first.duration <= 30.0  # nearly full, not cut at the 30 s mark blindly
    cut = first.pieces[-1][1] / SAMPLE_RATE
    assert any(b < cut < a_next for (_, b), (a_next, _) in zip(words, words[1:])), cut
    assert second.pieces[0][0] == first.pieces[-1][1]  # nothing lost, nothing twice
    assert sum(w.samples for w in windows) == signal.size


def test_windows_cover_all_speech_exactly_once_and_stay_under_the_limit():
    rng = np.random.default_rng(3)
    spans, t = [], 0.5
    while t < 280:
        length = float(rng.uniform(2, 29))
        spans.append(SpeechSpan(t, t + length))
        t += length + float(rng.uniform(0.3, 3))
    signal = (rng.standard_normal(int((t + 1) * SAMPLE_RATE)) * 0.1).astype(np.float32)
    windows = pack(signal, tuple(spans))
    assert all(w.duration <= 30.0 for w in windows)
    covered = [p for w in windows for p in w.pieces]
    assert covered == sorted(covered)
    assert sum(b - a for a, b in covered) == sum(int(s.end * SAMPLE_RATE) - int(s.start * SAMPLE_RATE) for s in spans)
    speech = sum(s.duration for s in spans)
    assert len(windows) <= int(np.ceil(speech / 30.0 * 1.2))  # packed, not one window per span


def test_pause_point_prefers_the_longest_pause_and_falls_back_to_the_quietest_frame():
    signal = _bursts([(0.0, 1.0), (1.1, 2.0), (2.5, 3.0)], 3.0)  # pauses of 0.1 s and 0.5 s
    cut = pause_point(signal, 0, signal.size, search=signal.size)
    assert 2.0 < cut / SAMPLE_RATE < 2.5
    noise = np.random.default_rng(1).standard_normal(SAMPLE_RATE).astype(np.float32)
    noise[8000:8160] *= 0.01  # no pause, one quiet frame
    assert abs(pause_point(noise, 0, noise.size, search=noise.size) - 8080) <= 160


def test_no_spans_means_the_whole_signal_and_empty_means_nothing():
    signal = np.ones(int(45 * SAMPLE_RATE), np.float32)
    windows = pack(signal, None, PackSettings(search_s=1.0))
    assert len(windows) == 2 and 29.0 <= windows[0].duration <= 30.0  # cut within the search range
    assert sum(w.samples for w in windows) == signal.size
    assert pack(signal, ()) == () and Window(()).to_original(3.0) == 0.0


def test_a_long_pause_inside_a_span_is_shortened_and_times_map_back():
    # A span of 10 s whose middle holds 3 s of silence: the window keeps 0.2 s of it on each side.
    signal = _bursts([(0.0, 4.0), (7.0, 10.0)], 10.0)
    (window,) = pack(signal, (SpeechSpan(0.0, 10.0),))
    assert window.pieces == ((0, int(4.2 * SAMPLE_RATE)), (int(6.8 * SAMPLE_RATE), 10 * SAMPLE_RATE))
    assert abs(window.duration - 7.4) < 1e-9
    assert window.to_original(4.4) == 7.0  # the second phrase starts where it was said
    short = _bursts([(0.0, 4.0), (4.3, 10.0)], 10.0)  # a 0.3 s pause stays whole
    assert pack(short, (SpeechSpan(0.0, 10.0),))[0].pieces == ((0, 10 * SAMPLE_RATE),)
    assert pack(signal, (SpeechSpan(0.0, 10.0),), PackSettings(max_pause_s=0))[0].pieces == ((0, 10 * SAMPLE_RATE),)


def test_a_word_stamped_in_the_kept_silence_maps_to_the_voice_on_its_side_of_the_cut():
    signal = _bursts([(0.0, 4.0), (7.0, 10.0)], 10.0)
    (window,) = pack(signal, (SpeechSpan(0.0, 10.0),))
    assert window.to_original(4.1) == 7.0  # a start just before the join: the next phrase's onset
    assert window.to_original(4.3, end=True) == 4.0  # an end just after it: the previous phrase's end
    assert window.to_original(3.9, end=True) == 3.9 and window.to_original(5.0) == 7.6


def test_silence_at_a_spans_edges_is_not_split_off():
    signal = _bursts([(1.0, 8.0)], 10.0)
    (window,) = pack(signal, (SpeechSpan(0.0, 10.0),))
    assert window.pieces == ((0, 10 * SAMPLE_RATE),) and window.margins == ()


def test_a_window_closes_at_a_shortened_pause_rather_than_inside_a_phrase():
    # 7.5 s phrases with 1 s pauses in one long span: the first window ends in a pause.
    phrases = [(k * 8.5, k * 8.5 + 7.5) for k in range(6)]
    signal = _bursts(phrases, 50.0)
    first = pack(signal, (SpeechSpan(0.0, 50.0),))[0]
    end = first.pieces[-1][1] / SAMPLE_RATE
    assert any(b <= end <= a_next for (_, b), (a_next, _) in zip(phrases, phrases[1:])), end
