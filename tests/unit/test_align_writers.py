"""An alignment through the writers: unmatched lines keep no time in any format, placed lines keep
their words, and the JSON export carries every sheet line back (the server's lrc_plain)."""

import json
import re

from engine.types import LyricLine, Segment, Transcript, Word
from engine.writers import get_writer
from server.exports import transcript_from_json


def alignment() -> Transcript:
    s0 = Segment(0, 8.0, 10.25, " The morning light", (Word(8.0, 8.4, " The", 0.9), Word(8.4, 9.1, " morning", 0.8),
                                                          Word(9.1, 10.25, " light", 0.7)))
    s1 = Segment(1, 11.0, 13.5, " I walk along", (Word(11.0, 11.2, " I", 0.9), Word(11.2, 12.0, " walk", 0.9),
                                                  Word(12.0, 13.5, " along", 0.6)))
    s2 = Segment(2, 26.0, 27.9, " Never let me go", (Word(26.0, 26.3, " Never", 0.9), Word(26.3, 26.8, " let", 0.9),
                                                     Word(26.8, 27.1, " me", 0.9), Word(27.1, 27.9, " go", 0.9)))
    lines = (LyricLine(0, "The morning light", 0, s0), LyricLine(1, "The river turns to gold", 0, None, 9.5),
             LyricLine(2, "I walk along", 0, s1), LyricLine(3, "Never let me go", 1, s2, 25.0))
    return Transcript(segments=(s0, s1, s2), language="en", language_probability=1.0, duration=40.0, model="base",
                      lines=lines)


def test_lrc_writes_unmatched_lines_without_a_time_and_placed_ones_word_by_word():
    lrc = get_writer("lrc").render(alignment()).splitlines()
    assert lrc[:2] == ["[length:00:40]", "[la:en]"]
    assert lrc[2] == "[00:08.00]<00:08.00>The <00:08.40>morning <00:09.10>light <00:10.25>"
    assert lrc[3] == "The river turns to gold"  # not found: no tag, no invented time
    assert lrc[4].startswith("[00:11.00]<00:11.00>I <00:11.20>walk")
    assert lrc[5] == "[00:13.50]"  # a pause follows: the lyric clears
    assert lrc[6].startswith("[00:26.00]<00:26.00>Never")
    untagged = [l for l in lrc if not re.match(r"^\[\d\d:\d\d\.\d\d\]", l) and not l.startswith(("[length", "[la"))]
    assert untagged == ["The river turns to gold"]


def test_json_marks_unmatched_lines_and_subtitles_hold_only_placed_lines():
    t = alignment()
    data = json.loads(get_writer("json").render(t))
    assert [(l["line"], l["status"], l["start"]) for l in data["lines"]] == [
        (0, "matched", 8.0), (1, "unmatched", None), (2, "matched", 11.0), (3, "matched", 26.0)]
    assert data["lines"][1]["words"] == [] and data["lines"][1]["hint"] == 9.5
    assert [w["word"] for w in data["lines"][3]["words"]] == [" Never", " let", " me", " go"]
    assert len(data["segments"]) == 3
    srt = get_writer("srt").render(t)
    assert "river turns" not in srt and srt.count("-->") == 3
    assert get_writer("txt").render(t) == "The morning light\nThe river turns to gold\nI walk along\n\nNever let me go\n"


def test_a_transcript_without_lines_is_unchanged_in_json():
    t = alignment()
    plain = Transcript(segments=t.segments, language="en", language_probability=1.0, duration=40.0, model="base")
    assert "lines" not in json.loads(get_writer("json").render(plain))


def test_lrc_plain_from_the_json_export_keeps_unmatched_lines_untimed():
    data = json.loads(get_writer("json").render(alignment()))
    back = transcript_from_json(data)
    assert [l.matched for l in back.lines] == [True, False, True, True]
    from engine.writers import LrcWriter

    plain = LrcWriter(word_level=False).render(back).splitlines()
    assert plain[2:5] == ["[00:08.00]The morning light", "The river turns to gold", "[00:11.00]I walk along"]
    assert get_writer("lrc").render(back) == get_writer("lrc").render(alignment())
