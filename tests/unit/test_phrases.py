import pytest

from engine.phrases import split_phrases, split_sentences
from engine.types import Segment, SpeechSpan, Word


def words(spec):
    return tuple(Word(s, e, " " + t, 0.9) for t, s, e in spec)


def test_split_at_breath_gap():
    w = words([("we", 0, .3), ("sing", .3, .6), ("all", .6, .9), ("night", .9, 1.2),
               ("and", 2.0, 2.3), ("dance", 2.3, 2.6), ("till", 2.6, 2.9), ("dawn", 2.9, 3.2)])
    seg = Segment(0, 0, 3.2, " we sing all night and dance till dawn", w)
    out = split_phrases((seg,))
    assert [s.text.strip() for s in out] == ["we sing all night", "and dance till dawn"]
    assert (out[1].start, out[1].end) == (2.0, 3.2)
    assert [s.id for s in out] == [0, 1]


def test_split_at_voice_boundary_and_keep_short_segments():
    w = words([("a", 0, .2), ("b", .2, .4), ("c", .4, .6), ("d", 5.0, 5.2), ("e", 5.2, 5.4), ("f", 5.4, 5.6)])
    seg = Segment(0, 0, 5.6, " a b c d e f", w)
    spans = (SpeechSpan(0, 1), SpeechSpan(4.9, 6))
    assert len(split_phrases((seg,), spans)) == 2
    short = Segment(0, 0, 1, " hi there", words([("hi", 0, .5), ("there", .5, 1)]))
    assert split_phrases((short,)) == (short,)


def test_a_break_always_ends_a_line_even_a_short_one():
    """Found on a -6 dB song: Whisper joined "Hello world," and the next line across a 13 s
    instrumental break; the two-word line must not carry the break (words over instrumentals)."""
    w = words([("Hello", 10.1, 10.5), ("world,", 10.5, 10.8), ("quick", 23.9, 24.2), ("brown", 24.2, 24.5),
               ("fox", 24.5, 24.9), ("jumps", 25.2, 25.4)])
    seg = Segment(0, 10.1, 25.4, " Hello world, quick brown fox jumps", w)
    out = split_phrases((seg,), (SpeechSpan(6.5, 11.4), SpeechSpan(23.8, 26.7)))
    assert [(s.text.strip(), s.start, s.end) for s in out] == [
        ("Hello world,", 10.1, 10.8), ("quick brown fox jumps", 23.9, 25.4)]
    # without spans the silence alone decides; a one-word line after a break stands alone too
    tail = Segment(0, 0, 9, " so we go home", words([("so", 0, .3), ("we", .3, .5), ("go", .5, .8), ("home", 8.5, 9)]))
    assert [s.text.strip() for s in split_phrases((tail,))] == ["so we go", "home"]


def test_refine_onsets_moves_starts_to_voice_onsets():
    from engine.phrases import refine_onsets

    spans = (SpeechSpan(1.1, 4.6), SpeechSpan(8.7, 12.1), SpeechSpan(15.5, 19.0))
    segs = (
        Segment(0, 1.17, 4.17, " first"),   # in the leading padding of span 0 -> 1.5
        Segment(1, 4.17, 11.9, " second"),  # stamped at the join, runs into span 1 -> 9.1
        Segment(2, 13.0, 18.0, " third"),   # in the gap before span 2 -> 15.9
        Segment(3, 16.5, 18.9, " fourth"),  # well inside speech: untouched
    )
    out = refine_onsets(segs, spans, pad_s=0.4)
    assert [round(s.start, 2) for s in out] == [1.5, 9.1, 15.9, 16.5]
    assert [s.end for s in out] == [s.end for s in segs] and [s.text for s in out] == [s.text for s in segs]
    assert refine_onsets(segs, (), pad_s=0.4) == segs


def _envelope(voiced: list[tuple[float, float]], seconds: float = 12.0):
    """A stem level track (10 ms frames, dB): -20 dB where someone sings, -90 dB elsewhere."""
    import numpy as np

    env = np.full(int(seconds * 100), -90.0, np.float32)
    for a, b in voiced:
        env[int(a * 100): int(b * 100)] = -20.0
    return env


def test_a_word_stretched_over_the_breath_before_it_keeps_its_voiced_end():
    """Whisper gave the 1.3 s breath to "I"; on the stem, "I" starts where the voice resumes, and
    the two sung lines come apart at the breath."""
    from engine.phrases import fit_words_to_voice

    w = words([("morning", 1.0, 1.5), ("light", 1.5, 2.0), ("on", 2.0, 2.3), ("river", 2.3, 3.0),
               ("I", 3.0, 4.4), ("walk", 4.4, 4.8), ("along", 4.8, 5.2), ("home", 5.2, 5.8)])
    seg = Segment(0, 1.0, 5.8, " morning light on river I walk along home", w)
    env = _envelope([(1.0, 3.05), (4.3, 5.8)])
    fitted = fit_words_to_voice((seg,), env)
    assert fitted[0].words[4].start == pytest.approx(4.3) and fitted[0].words[4].end == 4.4
    lines = split_phrases(fitted)
    assert [s.text.strip() for s in lines] == ["morning light on river", "I walk along home"]
    assert lines[1].start == pytest.approx(4.3)


def test_a_held_last_word_ends_where_the_voice_does():
    from engine.phrases import fit_words_to_voice

    w = words([("we", 1.0, 1.2), ("run", 1.2, 1.5), ("again", 1.5, 3.2)])
    env = _envelope([(1.0, 2.4)])
    (seg,) = fit_words_to_voice((Segment(0, 1.0, 3.2, " we run again", w),), env)
    assert seg.words[2].start == 1.5 and seg.words[2].end == pytest.approx(2.4) and seg.end == pytest.approx(2.4)


def test_words_keep_whisper_times_without_a_clear_quiet_stretch():
    """A long word over a stem with no silence in it (leakage, reverb) is left alone, and so is
    any word of normal length."""
    from engine.phrases import fit_words_to_voice

    w = words([("so", 1.0, 1.2), ("long", 1.2, 3.0), ("now", 3.0, 3.3)])
    seg = Segment(0, 1.0, 3.3, " so long now", w)
    assert fit_words_to_voice((seg,), _envelope([(1.0, 3.3)])) == (seg,)
    assert fit_words_to_voice((seg,), _envelope([(1.0, 1.3), (2.9, 3.3)]) + 0.0) != (seg,)
    short = Segment(0, 1.0, 1.6, " so now", words([("so", 1.0, 1.3), ("now", 1.3, 1.6)]))
    assert fit_words_to_voice((short,), _envelope([(1.0, 1.1)])) == (short,)


def test_a_word_stamped_in_the_silence_before_a_break_moves_to_the_line_after_it():
    """Found on a -6 dB pop song: the sequential decoder joins the voiced stretches, and the
    next line's first word ("I", zero length) was stamped at the join, in the stem's silence
    0.6 s after the last sung word and 8 s before its own line."""
    from engine.phrases import fit_words_to_voice

    w = words([("quiet", 1.0, 1.5), ("dream", 1.5, 2.0), ("I", 2.6, 2.6),
               ("love", 10.2, 10.5), ("the", 10.5, 10.7), ("wind", 10.7, 11.2)])
    seg = Segment(0, 1.0, 11.2, " quiet dream I love the wind", w)
    fitted = fit_words_to_voice((seg,), _envelope([(1.0, 2.1), (10.0, 11.2)]))
    lines = split_phrases(fitted)
    assert [s.text.strip() for s in lines] == ["quiet dream", "I love the wind"]
    assert lines[1].start == pytest.approx(10.2)
    # a sung word before a pause stays where it is
    sung = Segment(0, 1.0, 11.2, " quiet dream I love the wind", w)
    assert fit_words_to_voice((sung,), _envelope([(1.0, 2.7), (10.0, 11.2)])) == (sung,)


def test_text_only_windows_read_as_sentences():
    """A packed window decoded text-only (a TXT file needs no times) becomes one line per
    sentence, each still spanning what the window spanned; CJK sentences have no spaces."""
    window = Segment(0, 0.0, 300.0, " The flood came at night. Mr. Smith woke at 3 a.m. and saw it. Nobody slept!"
                     " Did the bridge hold? It did… barely", avg_logprob=-0.2, tokens=(1, 2, 3))
    out = split_sentences((window,), "en") + split_sentences((Segment(1, 0.0, 300.0, " 今天下雨了。我们回家吧！好"),), "zh")
    assert [s.text for s in out] == [" The flood came at night.", " Mr. Smith woke at 3 a.m. and saw it.",
                                     " Nobody slept!", " Did the bridge hold?", " It did… barely",
                                     "今天下雨了。", "我们回家吧！", "好"]
    assert [s.id for s in out[:5]] == list(range(5))
    assert all((s.start, s.end) == (0.0, 300.0) for s in out) and out[4].avg_logprob == -0.2
    assert not any(s.tokens for s in out)  # the window's tokens belong to none of its sentences
    plain = Segment(0, 0.0, 9.0, " no sentence end here 3.5 percent")
    assert split_sentences((plain,), "en") == (plain,)


def test_a_line_keeps_whisper_spacing_between_its_words():
    """A word without a leading space continues the one before ("long" + "-hit"), as in the
    segment's own text; a line cut from word timings must not open it up ("long -hit")."""
    w = words([("we", 0, .3), ("sing", .3, .6), ("all", .6, .9), ("night", .9, 1.2),
               ("a", 2.0, 2.3), ("long", 2.3, 2.6)]) + (Word(2.6, 2.9, "-hit", 0.9), Word(2.9, 3.2, " song", 0.9))
    out = split_phrases((Segment(0, 0, 3.2, " we sing all night a long-hit song", w),))
    assert [s.text for s in out] == [" we sing all night", " a long-hit song"]


def test_a_line_stamped_at_a_join_starts_where_the_voice_does():
    """Packed windows: Whisper stamps the first word after a join at the join, the start of
    the span's padding (every first line of the song corpus, a quarter second early). That
    line moves onto the stem's onset; a line Whisper timed inside the span keeps its time."""
    from engine.phrases import onsets_after_padding

    spans = (SpeechSpan(1.7, 4.3), SpeechSpan(6.0, 9.0))
    first = Segment(0, 1.7, 3.0, " morning light", words([("morning", 1.7, 2.4), ("light", 2.4, 3.0)]))
    second = Segment(1, 3.2, 4.0, " on the river", words([("on", 3.2, 3.4), ("the", 3.4, 3.6), ("river", 3.6, 4.0)]))
    third = Segment(2, 6.1, 8.0, " I walk", words([("I", 6.1, 6.5), ("walk", 6.5, 8.0)]))  # just past a join
    env = _envelope([(1.95, 4.0), (6.3, 8.0)])
    out = onsets_after_padding((first, second, third), spans, pad_s=0.3, envelope=env)
    assert out[0].start == pytest.approx(1.95) and out[0].words[0].start == pytest.approx(1.95)
    assert out[1] == second  # timed inside its span: kept
    assert out[2].start == pytest.approx(6.3) and out[2].words[0].start == pytest.approx(6.3)
    late = Segment(2, 6.4, 8.0, " I walk", words([("I", 6.4, 6.5), ("walk", 6.5, 8.0)]))
    assert onsets_after_padding((late,), spans, pad_s=0.3, envelope=_envelope([(6.2, 8.0)])) == (late,)
    # no stem (or no clear onset in it): the span's padding is skipped
    assert onsets_after_padding((first,), spans, pad_s=0.3)[0].start == pytest.approx(2.0)
    flat = _envelope([(0.0, 12.0)])
    assert onsets_after_padding((first,), spans, pad_s=0.3, envelope=flat)[0].start == pytest.approx(2.0)
    # the voice rises after the first words Whisper stamped in the padding: they start there too
    early = Segment(0, 6.0, 8.0, " I walk home", words([("I", 6.0, 6.2), ("walk", 6.2, 6.5), ("home", 6.5, 8.0)]))
    (moved,) = onsets_after_padding((early,), spans, pad_s=0.3, envelope=_envelope([(6.7, 8.0)]))
    assert moved.start == pytest.approx(6.7)
    assert all(moved.start <= w.start <= w.end for w in moved.words)
    # only the first line after a join moves, and never before the line before it ends
    oh = Segment(0, 6.0, 6.1, " Oh", words([("Oh", 6.0, 6.1)]))
    then = Segment(1, 6.12, 8.0, " I walk", words([("I", 6.12, 6.5), ("walk", 6.5, 8.0)]))
    out = onsets_after_padding((first, oh, then), spans, pad_s=0.3, envelope=_envelope([(6.05, 8.0)]))
    assert out[1] == oh and out[2] == then  # "Oh" is too short to move; "I walk" is not the first line
    assert all(a.end <= b.start for a, b in zip(out, out[1:]))
    # a line at the very start of the file has no padding before it
    at_zero = Segment(0, 0.0, 1.0, " hi", words([("hi", 0.0, 1.0)]))
    assert onsets_after_padding((at_zero,), (SpeechSpan(0.0, 1.2),), pad_s=0.3) == (at_zero,)
