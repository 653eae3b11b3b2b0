"""Writers against golden files, and SRT/VTT/LRC parsed back to the same timings."""

import io
import json
import re
from pathlib import Path

import pytest

from engine.errors import InvalidOptionError
from engine.types import AudioTypeDecision, Removal, Segment, Transcript, Word
from engine.writers import FORMATS, LrcWriter, get_writer, parse_formats, write_files

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"


def sample_transcript() -> Transcript:
    s0 = Segment(0, 0.0, 2.52, " The quick brown fox", (
        Word(0.0, 0.22, " The", 0.98), Word(0.22, 0.46, " quick", 0.97),
        Word(0.46, 0.8, " brown", 0.95), Word(0.8, 1.18, " fox", 0.99)), -0.21, 0.01, 1.1)
    s1 = Segment(1, 2.6, 4.005, " jumps over the lazy dog.", (
        Word(2.6, 3.0, " jumps", 0.9), Word(3.0, 3.3, " over", 0.92), Word(3.3, 3.5, " the", 0.99),
        Word(3.5, 3.8, " lazy", 0.93), Word(3.8, 4.005, " dog.", 0.96)), -0.3, 0.02, 1.2)
    s2 = Segment(2, 3725.25, 3727.999, "你好世界", (Word(3725.25, 3726.5, "你好", 0.8, "nǐ hǎo"),
                 Word(3726.5, 3727.999, "世界", 0.7, "shì jiè")), -0.4, 0.05, 0.9, "nǐ hǎo shì jiè")
    ghost = Segment(3, 10.0, 12.0, " Thanks for watching!", (), -1.2, 0.8, 1.0)
    return Transcript(
        segments=(s0, s1, s2), language="en", language_probability=0.987654, duration=3730.0, model="tiny.en",
        timestamps="required", options={"beam_size": 5, "vad": True}, timings={"decode": 0.5, "transcribe": 2.25},
        removed=(Removal("generic_phrase", "stock sign-off 'thanks for watching' with weak evidence of speech", ghost),),
        audio_type=AudioTypeDecision("speech", "detector", {"pause_ratio": 0.31}, "pauses between phrases"),
        separation="not_needed", device="cpu", compute_type="int8",
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_matches_golden_file(fmt):
    rendered = get_writer(fmt).render(sample_transcript())
    golden = (GOLDEN / f"sample.{fmt}").read_text(encoding="utf-8")
    assert rendered == golden


def test_srt_parses_back_to_the_same_timings():
    import srt

    t = sample_transcript()
    subs = list(srt.parse(get_writer("srt").render(t)))
    assert [round(s.start.total_seconds(), 3) for s in subs] == [seg.start for seg in t.segments]
    assert [round(s.end.total_seconds(), 3) for s in subs] == [seg.end for seg in t.segments]
    assert subs[2].content.splitlines() == ["你好世界", "nǐ hǎo shì jiè"]  # pinyin as a second line


def test_vtt_parses_back_to_the_same_timings():
    import webvtt

    t = sample_transcript()
    captions = webvtt.from_buffer(io.StringIO(get_writer("vtt").render(t)))
    assert [round(c.start_in_seconds + c.start_time.milliseconds / 1000, 3) for c in captions] == [s.start for s in t.segments]
    assert [round(c.end_in_seconds + c.end_time.milliseconds / 1000, 3) for c in captions] == [s.end for s in t.segments]
    assert captions[0].text == "The quick brown fox"


LRC_LINE = re.compile(r"^\[(\d+):(\d{2})\.(\d{2})\](.*)$")
LRC_WORD = re.compile(r"<(\d+):(\d{2})\.(\d{2})>")


def parse_lrc(text):
    lines = []
    for raw in text.splitlines():
        m = LRC_LINE.match(raw)
        if m:
            t = int(m[1]) * 60 + int(m[2]) + int(m[3]) / 100
            words = [int(a) * 60 + int(b) + int(c) / 100 for a, b, c in LRC_WORD.findall(m[4])]
            lines.append((round(t, 2), LRC_WORD.sub("", m[4]).strip(), [round(w, 2) for w in words]))
    return lines


def test_lrc_parses_back_to_the_same_timings():
    t = sample_transcript()
    lines = parse_lrc(get_writer("lrc").render(t))
    starts = [l[0] for l in lines if l[1] and not l[1].startswith("nǐ")]
    assert starts == [round(s.start, 2) for s in t.segments]
    first = lines[0]
    assert first[2][:-1] == [round(w.start, 2) for w in t.segments[0].words]  # enhanced word tags
    assert first[2][-1] == round(t.segments[0].end, 2)
    # the pause after the second line clears the display at that line's end
    assert (round(t.segments[1].end, 2), "", []) in lines


def test_plain_lrc_has_no_word_tags():
    text = LrcWriter(word_level=False).render(sample_transcript())
    assert "<" not in text
    assert "[62:05.25]你好世界" in text  # minutes beyond 59 keep counting


def test_json_has_everything_a_user_needs():
    data = json.loads(get_writer("json").render(sample_transcript()))
    assert data["language"] == "en" and data["language_probability"] == 0.9877
    assert data["duration"] == 3730.0 and data["model"] == "tiny.en"
    assert data["timings"] == {"decode": 0.5, "transcribe": 2.25}
    seg = data["segments"][0]
    assert set(seg) >= {"start", "end", "text", "words", "avg_logprob", "no_speech_prob"}
    assert seg["words"][1] == {"start": 0.22, "end": 0.46, "word": " quick", "probability": 0.97}
    assert data["removed"][0]["rule"] == "generic_phrase"
    assert data["audio_type"]["audio_type"] == "speech"


def test_parse_formats():
    assert parse_formats("all") == FORMATS
    assert parse_formats("lrc, SRT") == ("srt", "lrc")
    with pytest.raises(InvalidOptionError, match="unknown output format 'exe'"):
        parse_formats("exe")


def test_write_files_is_atomic_and_complete(tmp_path):
    paths = write_files(sample_transcript(), tmp_path, "sample", FORMATS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"sample.{f}" for f in FORMATS)
    assert all(p.stat().st_size > 0 for p in paths)
