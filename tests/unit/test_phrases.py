from engine.phrases import split_phrases
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
