"""Choosing each line's reading by Whisper's word probabilities (engine.choose)."""

import math

from engine.choose import choose_lines, confidence
from engine.types import Segment, Word


def line(start, end, text, p):
    words = text.split()
    step = (end - start) / len(words)
    return Segment(0, start, end, " " + text,
                   tuple(Word(start + i * step, start + (i + 1) * step, " " + w, p) for i, w in enumerate(words)))


def test_each_line_comes_from_the_surest_reading():
    blend = (line(1, 3, "the morning lies", 0.5), line(5, 7, "I walk along", 0.9))
    vocals = (line(1.1, 3, "the morning light", 0.8), line(5, 7, "I walk alone", 0.6))
    mix = (line(1, 2.9, "the moaning night", 0.4), line(5.1, 7, "I work along", 0.95))
    choice = choose_lines([("blend", blend), ("vocals", vocals), ("mix", mix)])
    assert [s.text.strip() for s in choice.segments] == ["the morning light", "I work along"]
    assert choice.chosen == {"blend": 0, "vocals": 1, "mix": 1}
    assert [s.id for s in choice.segments] == [0, 1]


def test_the_first_reading_decides_where_lines_are():
    """Words another reading hears over an instrumental stretch the first left empty are not
    taken, however sure; a reading may answer one line with two."""
    blend = (line(1, 5, "we are running with the wind", 0.5),)
    vocals = (line(1, 2.9, "we are running", 0.9), line(3, 5, "with the wind", 0.9),
              line(20, 22, "la la la", 0.99))
    choice = choose_lines([("blend", blend), ("vocals", vocals)])
    assert [s.text.strip() for s in choice.segments] == ["we are running", "with the wind"]
    assert choice.chosen == {"blend": 0, "vocals": 1}


def test_ties_and_empty_readings_keep_the_first():
    first = (line(1, 2, "hello world", 0.7),)
    assert choose_lines([("blend", first), ("vocals", (line(1, 2, "hollow word", 0.7),)), ("mix", ())]).segments == (
        first[0],)
    assert confidence(()) == -math.inf
    assert confidence((line(0, 1, "a b", 0.0),)) > -math.inf  # a zero probability is floored
