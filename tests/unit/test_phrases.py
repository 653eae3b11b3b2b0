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
