"""Each hallucination rule on its own, then the rules together."""

from engine import hallucination as h
from engine.types import Segment, SpeechSpan, Word


def seg(text, start=0.0, end=2.0, *, nsp=0.05, lp=-0.2, cr=1.2, words=(), i=0):
    return Segment(i, start, end, text, tuple(words), lp, nsp, cr)


SPEECH_CTX = h.Context(settings=h.SPEECH, speech=(SpeechSpan(0.0, 10.0),))


def test_empty_and_symbol_only_segments_go():
    assert h.empty_text(seg("  "), SPEECH_CTX) == "empty text"
    assert h.empty_text(seg(" ... ♪"), SPEECH_CTX) is not None
    assert "annotation" in h.empty_text(seg(" [Music]"), SPEECH_CTX)
    assert h.empty_text(seg(" Hello."), SPEECH_CTX) is None


def test_credit_phrases_in_several_languages():
    for text in (
        " Subtitles by the Amara.org community",
        " Sous-titrage Société Radio-Canada",
        " Untertitel der Amara.org-Community",
        " 字幕由Amara.org社区提供",
        " ご視聴ありがとうございました",
        " Please subscribe to my channel!",
    ):
        assert h.credit_phrase(seg(text), SPEECH_CTX) is not None, text
    assert h.credit_phrase(seg(" The subtitles were late."), SPEECH_CTX) is None


def test_generic_phrase_needs_weak_evidence_in_speech_mode():
    confident = seg(" Thank you.", nsp=0.01, lp=-0.1)
    doubtful = seg(" Thank you.", nsp=0.5, lp=-0.1)
    outside = seg(" Thank you.", start=20.0, end=21.0)
    assert h.generic_phrase(confident, SPEECH_CTX) is None  # a person really said it
    assert h.generic_phrase(doubtful, SPEECH_CTX) is not None
    assert h.generic_phrase(outside, SPEECH_CTX) is not None
    music = h.Context(settings=h.MUSIC, speech=SPEECH_CTX.speech)
    assert h.generic_phrase(confident, music) is not None  # music mode: always


def test_repetition_loop():
    loop = seg(" la la la la la la la la la la")
    phrase_loop = seg(" I love you I love you I love you I love you I love you")
    normal = seg(" One, two, three, four, five, six, seven, eight, nine, ten.")
    assert "x10" in h.repetition_loop(loop, SPEECH_CTX)
    assert h.repetition_loop(phrase_loop, SPEECH_CTX) is not None
    assert h.repetition_loop(normal, SPEECH_CTX) is None
    assert h.repetition_loop(seg(" no no no, not today, we leave tomorrow"), SPEECH_CTX) is None


def test_identical_run_keeps_two_and_drops_the_third():
    line = seg(" 1 o'clock")
    assert h.identical_run(line, h.Context(kept=(line,))) is None
    assert h.identical_run(line, h.Context(kept=(line, line))) is not None


def test_no_speech_needs_both_conditions():
    assert h.no_speech(seg(" You", nsp=0.9, lp=-1.3), SPEECH_CTX) is not None
    assert h.no_speech(seg(" You", nsp=0.9, lp=-0.3), SPEECH_CTX) is None
    assert h.no_speech(seg(" You", nsp=0.2, lp=-1.5), SPEECH_CTX) is None
    music = h.Context(settings=h.MUSIC)
    assert h.no_speech(seg(" oh", nsp=0.5, lp=-0.9), music) is not None  # stricter


def test_compression_ratio():
    assert h.compression_ratio(seg(" " + "the same words again " * 5, cr=3.1), SPEECH_CTX) is not None
    assert h.compression_ratio(seg(" short", cr=3.1), SPEECH_CTX) is None  # too short to judge
    assert h.compression_ratio(seg(" a normal sentence of some length", cr=1.6), SPEECH_CTX) is None


def test_outside_speech():
    spans = (SpeechSpan(0.0, 2.0), SpeechSpan(10.0, 12.0))
    ctx = h.Context(speech=spans)
    assert h.outside_speech(seg(" hello", 0.5, 1.5), ctx) is None
    assert "0%" in h.outside_speech(seg(" ghost", 4.0, 8.0), ctx)
    assert h.outside_speech(seg(" ghost", 4.0, 8.0), h.Context(speech=None)) is None  # no timing: no judgement


def test_a_line_spanning_a_pause_between_two_voiced_stretches_is_kept():
    """Decoded from voice-only audio and mapped back, a line can span the break between two
    stretches of voice (here 5-12 s of band): its words were heard, so it stays."""
    from engine.types import Word

    spans = (SpeechSpan(0.0, 5.0), SpeechSpan(12.0, 14.0))
    ctx = h.Context(speech=spans, settings=h.MUSIC)
    words = (Word(3.0, 3.5, " bonjour", 0.9), Word(3.6, 4.4, " le", 0.9), Word(12.2, 12.8, " monde", 0.9))
    assert h.outside_speech(seg(" bonjour le monde", 3.0, 12.8), ctx) is None  # 1.8 s heard for 3 words
    assert h.outside_speech(Segment(0, 3.0, 12.8, " bonjour le monde", words=words), ctx) is None
    ghost = (Word(6.0, 6.5, " la", 0.9), Word(7.0, 7.5, " la", 0.9), Word(12.2, 12.8, " monde", 0.9))
    assert "33%" in h.outside_speech(Segment(0, 6.0, 12.8, " la la monde", words=ghost), ctx)


def test_low_word_confidence_only_in_music():
    words = [Word(0, 0.5, " la", 0.1), Word(0.5, 1.0, " di", 0.2)]
    s = seg(" la di", words=words)
    assert h.low_word_confidence(s, SPEECH_CTX) is None
    assert h.low_word_confidence(s, h.Context(settings=h.MUSIC)) is not None


def test_apply_records_rule_and_renumbers():
    segments = [
        seg(" Hello there.", 0, 2, i=0),
        seg(" Subtitles by the Amara.org community", 2, 4, i=1),
        seg(" How are you?", 4, 6, i=2),
        seg(" You", 30, 32, nsp=0.9, lp=-1.2, i=3),
    ]
    kept, removed = h.apply(segments, speech=(SpeechSpan(0, 7),))
    assert [s.text for s in kept] == [" Hello there.", " How are you?"]
    assert [s.id for s in kept] == [0, 1]
    assert [r.rule for r in removed] == ["credit_phrase", "generic_phrase"]
    assert removed[0].as_dict()["text"] == "Subtitles by the Amara.org community"


def test_whisper_silence_hallucinations_are_all_removed():
    """What raw faster-whisper produced on 40 s of generated non-speech (recorded here)."""
    seen = [
        seg(" You", 0.0, 30.0, nsp=0.95, lp=-0.67, cr=0.27, i=0),
        seg(" You", 30.0, 40.0, nsp=0.81, lp=-0.25, cr=0.27, i=1),
    ] + [seg(" 1 o'clock", 30.0 + 2 * k, 32.0 + 2 * k, nsp=0.77, lp=-0.44, cr=2.33, i=2 + k) for k in range(5)]
    kept, removed = h.apply(seen, speech=())
    assert kept == ()
    assert len(removed) == len(seen)


def test_music_judges_a_line_by_its_own_text_not_its_window():
    """Whisper's ratio is its 30 s window's: a chorus sung again in the window makes every line
    of it look like a loop. In music the line's own text is judged."""
    music = h.Context(settings=h.MUSIC)
    line = seg(" Il s'en marche sur la chaude qui m'a repère.", cr=2.37)
    assert h.compression_ratio(line, music) is None
    assert h.compression_ratio(seg(line.text, cr=2.6), SPEECH_CTX) is not None  # speech keeps Whisper's
    assert h.compression_ratio(seg(" " + "la la la la " * 8, cr=1.0), music) is not None


def test_lines_of_a_kept_packed_window_are_judged_but_not_by_word_confidence():
    """A packed window passed the filter whole; its lines are then judged one by one (a
    sign-off after the last line still goes), but an unsure sung line stays: its words lie on
    the stem's voice by construction, and dropping it lost real lines."""
    from engine.hearing import _packed_lines

    spans = (SpeechSpan(1.0, 9.0),)
    unsure = seg(" Die Mingen lauter jedes Mal", start=2.0, end=3.6,
                 words=[Word(2.0, 2.5, " Die", 0.3), Word(2.5, 3.0, " Mingen", 0.2), Word(3.0, 3.6, " lauter", 0.5)])
    thanks = seg(" Thank you.", start=8.0, end=8.6, words=[Word(8.0, 8.3, " Thank", 0.9), Word(8.3, 8.6, " you.", 0.9)])
    check = h.StreamingFilter(settings=h.MUSIC, speech=spans)
    assert h.low_word_confidence(unsure, h.Context(settings=h.MUSIC, speech=spans)) is not None  # alone: dropped
    lines, dropped = _packed_lines((unsure, thanks), spans, check, None, onsets=False)
    assert [s.text for s in lines] == [" Die Mingen lauter jedes Mal"]
    assert [r.segment.text for r in dropped] == [" Thank you."]
