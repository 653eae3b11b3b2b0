"""Matching sheet lines to recognised words: repeats in order, unsung lines, ad-libs, spelling,
windows on long inputs; and voice onsets on a stem."""

import numpy as np
import pytest

from engine.align.match import HeardWord, match_words, normalise, place_lines, split_words
from engine.align.onsets import envelope_db, voice_offset, voice_onset


def heard(*timed_lines: tuple[float, str], step: float = 0.3) -> list[HeardWord]:
    out = []
    for start, text in timed_lines:
        for i, w in enumerate(text.split()):
            out.append(HeardWord(start + i * step, start + (i + 1) * step - 0.05, " " + w))
    return out


def lines(*texts: str) -> list[list[str]]:
    return [split_words(t) for t in texts]


def test_normalise_and_split():
    assert normalise("Rivière,") == "riviere"
    assert normalise("Jusqu'à") == "jusqua"
    assert normalise("—") == ""
    assert split_words("Never, let me go!") == ["Never,", "let", "me", "go!"]
    assert split_words("我爱你 forever") == ["我", "爱", "你", "forever"]
    assert split_words("こんにちは。世界") == ["こ", "ん", "に", "ち", "は。", "世", "界"]


def test_a_repeated_line_is_placed_once_per_occurrence_in_order():
    sheet = lines("Never let me go", "We are running with the wind", "Never let me go", "Never let me go",
                  "Nothing can stop us now", "Never let me go")
    words = heard((7.5, "never let me go"), (10.3, "we are running with the wind"), (13.1, "ever let me go"),
                  (26.2, "never let me go"), (29.0, "nothing can stop us now"), (32.8, "never let me go."))
    anchors = place_lines(sheet, words)
    assert [round(a.start, 2) for a in anchors] == [7.5, 10.3, 13.1, 26.2, 29.0, 32.8]


def test_an_unsung_line_stays_unmatched_and_adlibs_are_ignored():
    sheet = lines("The morning light is falling on the river", "The river turns to gold before the rain",
                  "I walk along the road that takes me home")
    words = heard((8.0, "the morning light is falling on the river"), (10.5, "yeah yeah oh"),
                  (11.0, "I walk along the road that takes me home"))
    anchors = place_lines(sheet, words)
    assert anchors[1] is None
    assert anchors[0].start == 8.0 and anchors[2].start == 11.0
    assert anchors[0].coverage == 1.0


def test_misheard_words_still_place_their_line_but_a_garbled_one_does_not():
    sheet = lines("La luz de la mañana cae sobre el río", "Nadie en el mundo nos va a parar")
    words = heard((7.3, "pero de la patada cae sobre el grío"), (27.4, "zzz qqq"))
    anchors = place_lines(sheet, words)
    assert anchors[0] is not None and anchors[0].start == pytest.approx(7.3 + 0.3)  # "de": "luz" was not heard
    assert anchors[0].first_word == 2
    assert anchors[1] is None


def test_words_of_one_line_far_apart_in_time_keep_the_larger_cluster():
    sheet = lines("hold me close tonight and forever")
    words = heard((5.0, "hold me"), (40.0, "close tonight and forever"))
    anchor = place_lines(sheet, words)[0]
    assert anchor.start == 40.0 and anchor.first_word == 2


def test_a_split_or_joined_word_still_matches():
    assert match_words(["everyone", "sings"], ["every", "one", "sings"]) == [(0, 1), (2, 2)]
    assert match_words(["every", "one"], ["everyone"]) == [(0, 0), (0, 0)]


def test_windows_give_the_same_matches_as_one_pass():
    rng = np.random.default_rng(3)
    vocab = [f"{a}{b}" for a in ("ne", "lo", "ri", "sta", "mor", "win") for b in ("ver", "ta", "go", "ning", "ro", "")]
    sheet = [str(w) for w in rng.choice(vocab, 3000)]
    noisy = [w if rng.random() > 0.1 else "la" for w in sheet]  # misheard words
    noisy = noisy[:1000] + ["oh", "yeah"] * 20 + noisy[1000:2000] + noisy[2100:]  # ad-libs, a missed stretch
    whole = match_words(sheet, noisy, window=10**6)
    windowed = match_words(sheet, noisy, window=400)
    agree = sum(a == b for a, b in zip(whole, windowed)) / len(sheet)
    assert agree > 0.99
    unsung = windowed[2000:2100]
    assert sum(m is None for m in unsung) >= 0.8 * len(unsung)  # the stretch nobody sang (36-word vocabulary)


def test_one_song_sung_many_times_keeps_each_copy_in_place():
    """Identical copies (an hour of one song; choruses alike) leave the alignment free to slide
    a copy over the sheet's excess; matched in one pass, each word stays with its own copy."""
    rng = np.random.default_rng(5)
    song = "the morning light is falling on the river i walk along the road that takes me home".split()
    copies = 60
    sheet = song * copies
    noisy = [w if rng.random() > 0.3 else str(rng.choice(["la", "ooh", "mourning", "tree", "a"])) for w in sheet]
    matches = match_words(sheet, noisy)
    placed = [(i, m) for i, m in enumerate(matches) if m is not None]
    assert len(placed) >= 0.6 * len(sheet)
    assert all(m[0] // len(song) == i // len(song) for i, m in placed)  # every word in its own copy


def stem_with_lines(spans: list[tuple[float, float]], seconds: float = 20.0, leak_db: float = -70.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(int(seconds * 16000)).astype(np.float32) * 10 ** (leak_db / 20)
    for a, b in spans:
        i, j = int(a * 16000), int(b * 16000)
        t = np.arange(j - i) / 16000
        x[i:j] += 0.1 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return x


def test_voice_onset_and_offset_on_a_stem():
    env = envelope_db(stem_with_lines([(3.0, 5.5), (8.2, 10.0)]))
    assert voice_onset(env, 3.3, 5.2, earliest=0.0) == pytest.approx(3.0, abs=0.011)
    assert voice_onset(env, 7.9, 9.8, earliest=5.6) == pytest.approx(8.2, abs=0.011)
    assert voice_offset(env, 5.2, latest=8.0) == pytest.approx(5.5, abs=0.011)
    assert voice_offset(env, 10.3, latest=20.0) == pytest.approx(10.0, abs=0.011)
    # never walks back past the previous line, nor further than allowed
    assert voice_onset(env, 3.5, 5.2, earliest=3.2) == pytest.approx(3.2, abs=0.011)
    assert voice_onset(env, 4.2, 5.2, earliest=0.0, max_back_s=0.6) == pytest.approx(3.6, abs=0.011)
    # no voice near the anchor: no onset, the caller keeps Whisper's time
    assert voice_onset(env, 15.0, 16.0, earliest=12.0) is None


def test_voiced_regions_split_at_pauses_and_join_across_short_dips():
    from engine.align.onsets import voiced_regions

    env = envelope_db(stem_with_lines([(1.0, 3.0), (3.1, 4.0), (6.0, 8.5), (12.0, 12.1)]))
    regions = voiced_regions(env)
    assert [(round(a, 2), round(b, 2)) for a, b in regions] == [(1.0, 4.0), (6.0, 8.5)]  # 0.1 s dip joined, blip dropped
    assert voiced_regions(envelope_db(np.zeros(16000 * 5, np.float32))) == []


class _Scores:
    """Stands in for Whisper's scoring (measured on real audio in tests/integration/test_align.py):
    each line's log-probability on each stretch it is heard on, and a flat one on silence."""

    def __init__(self, heard: dict[tuple[str, float], float]) -> None:
        self.heard = heard

    def likelihoods(self, spans, *, silence: bool = False) -> list[float]:
        from engine.align.recover import PAD_S

        return [-5.0 if silence else self.heard.get((s.words[0], round(s.start + PAD_S, 2)), -5.0) for s in spans]


def test_missed_lines_go_where_whisper_hears_them_and_unsung_ones_stay_unmatched():
    from engine.align.attention import Span
    from engine.align.recover import recover_missed

    words = lambda t: (tuple(t.split()), tuple([True] * len(t.split())))  # noqa: E731
    lines = [words("one two three four"), words("five six seven eight nine"), words("ten eleven twelve"),
             words("thirteen fourteen")]
    placed = [Span(1.0, 3.0, *lines[0]), None, None, Span(12.0, 13.5, *lines[3])]
    regions = [(1.0, 3.0), (4.0, 6.2), (7.0, 8.6), (12.0, 13.5)]
    # each missed line gains clearly on its own stretch: both placed, in order
    scores = _Scores({("five", 4.0): -2.0, ("ten", 7.0): -1.5, ("five", 7.0): -4.8})
    out = recover_missed(placed, lines, regions, scores, duration=20.0)  # type: ignore[arg-type]
    assert [(s.start, s.end) for s in out] == [(1.0, 3.0), (4.0, 6.2), (7.0, 8.6), (12.0, 13.5)]
    # one stretch, two candidate lines: the one sung there is placed, the other (unsung: no gain) is not
    one = [(1.0, 3.0), (7.0, 8.6), (12.0, 13.5)]
    out = recover_missed(placed, lines, one, _Scores({("ten", 7.0): -2.0, ("five", 7.0): -4.9}), duration=20.0)
    assert out[1] is None and (out[2].start, out[2].end) == (7.0, 8.6)
    # two lines gaining about as much on one stretch: neither is guessed
    out = recover_missed(placed, lines, one, _Scores({("ten", 7.0): -3.0, ("five", 7.0): -3.2}), duration=20.0)
    assert out[1] is None and out[2] is None
    # a stretch no missed line gains on (an ad-lib): nothing is placed on it
    out = recover_missed(placed, lines, one, _Scores({}), duration=20.0)  # type: ignore[arg-type]
    assert out[1] is None and out[2] is None
    # as many stretches as missed lines: order pairs them, and a pair only has to show the line is sung
    weak = _Scores({("five", 4.0): -4.4, ("ten", 7.0): -4.4})
    assert [s is not None for s in recover_missed(placed, lines, regions, weak, duration=20.0)] == [True] * 4
    unheard = _Scores({("five", 4.0): -4.4, ("ten", 7.0): -4.9})
    out = recover_missed(placed, lines, regions, unheard, duration=20.0)  # type: ignore[arg-type]
    assert out[1] is not None and out[2] is None
    # no voice between the placed lines: nothing is invented
    out = recover_missed(placed, lines, [(1.0, 3.0), (12.0, 13.5)], scores, duration=20.0)  # type: ignore[arg-type]
    assert out[1] is None and out[2] is None


def test_the_best_pairing_keeps_order_and_leaves_weak_pairs_out():
    from engine.align.recover import _best_pairing

    # scores decide when the stretches do not pair up: order kept, weak pairs left out
    score = {(1, 0, 0): 0.7, (2, 0, 0): 0.9, (2, 1, 1): 0.6, (1, 1, 1): 0.3}
    picks = _best_pairing([1, 2], 2, score, [(4.0, 5.0), (6.0, 7.0)])
    assert picks == {1: (4.0, 5.0), 2: (6.0, 7.0)}


def test_a_line_start_in_a_pause_moves_to_where_the_voice_resumes():
    from engine.align.onsets import voice_after_silence

    regions = [(34.81, 36.8), (38.4, 40.16)]
    assert voice_after_silence(regions, 37.51, 40.18) == 38.4  # a word stamped in the pause
    assert voice_after_silence(regions, 38.9, 40.18) is None  # on voice: kept
    assert voice_after_silence(regions, 37.51, 38.0) is None  # no voice before the line ends: kept


def test_a_missed_line_counts_on_whichever_signal_hears_it():
    """The stem can lose a voice the band covers (the first line after a break) while the mix
    still carries it: the line is placed on the better of the two hearings, and a line
    neither hears well enough stays unmatched."""
    from engine.align.attention import Span
    from engine.align.recover import recover_missed

    words = lambda t: (tuple(t.split()), tuple([True] * len(t.split())))  # noqa: E731
    lines = [words("one two three four"), words("never sung here"), words("five six seven eight"),
             words("nine ten")]
    placed = [Span(1.0, 3.0, *lines[0]), None, None, Span(12.0, 13.5, *lines[3])]
    one = [(1.0, 3.0), (7.0, 9.0), (12.0, 13.5)]
    stem, mix = _Scores({("five", 7.0): -5.6, ("never", 7.0): -5.4}), _Scores({("five", 7.0): -4.0})
    assert [s is not None for s in recover_missed(placed, lines, one, stem, duration=20.0)] == [True, False, False, True]
    out = recover_missed(placed, lines, one, [stem, mix], duration=20.0)
    assert out[1] is None and (out[2].start, out[2].end) == (7.0, 9.0)
    faint = _Scores({("five", 7.0): -4.5})  # a gain of 0.5: under what an unpaired line needs
    assert recover_missed(placed, lines, one, [stem, faint], duration=20.0)[2] is None
    # the least-heard sung line of the song corpus (English at -6 dB, where the band comes back
    # after a break): 0.65 on the mix, the unsung line beside it 0.02: placed, the unsung one not
    after_break = _Scores({("five", 7.0): -4.35, ("never", 7.0): -4.98})
    out = recover_missed(placed, lines, one, [stem, after_break], duration=20.0)
    assert out[1] is None and (out[2].start, out[2].end) == (7.0, 9.0)
