"""Export formats the route renders on request from the job's JSON export, rather than files
the worker wrote when the job finished.

``lrc`` is the writer's default: the enhanced word-level form (``<mm:ss.xx>`` before every
word) whenever word timings exist, the plain line form otherwise. Many car stereos and
simple players show those word tags as text, so ``lrc_plain`` is always line-level. It is
rendered from the JSON export by the same writer, so it works for every finished job,
including jobs finished before this format existed.
"""

from __future__ import annotations

import json

from engine.types import LyricLine, Segment, Transcript, Word
from engine.writers import LrcWriter

# format -> (file name suffix, writer); the file is "<stem><suffix>"
DERIVED = {"lrc_plain": (".plain.lrc", lambda: LrcWriter(word_level=False))}


def _segment(s: dict, i: int) -> Segment:
    return Segment(id=int(s.get("id", i)), start=float(s["start"]), end=float(s["end"]), text=s.get("text", ""),
                   words=tuple(Word(float(w["start"]), float(w["end"]), w.get("word", ""),
                                    float(w.get("probability", 0.0)), w.get("pinyin")) for w in s.get("words", [])),
                   pinyin=s.get("pinyin"))


def _line(d: dict) -> LyricLine:
    """A sheet line of an alignment; an unmatched one has no time and stays without one."""
    placed = d.get("status") == "matched"
    return LyricLine(int(d["line"]), d.get("text", ""), int(d.get("stanza", 0)),
                     _segment(dict(d, text=" " + d.get("text", "")), int(d["line"])) if placed else None, d.get("hint"))


def transcript_from_json(data: dict) -> Transcript:
    """What the writers need back from a JSON export: segments, words, pinyin, language, duration,
    and an alignment's sheet lines."""
    segments = tuple(_segment(s, i) for i, s in enumerate(data.get("segments", [])))
    return Transcript(segments=segments, language=data.get("language"),
                      language_probability=float(data.get("language_probability") or 0.0),
                      duration=float(data.get("duration") or 0.0), model=str(data.get("model") or ""),
                      lines=tuple(_line(d) for d in data.get("lines", [])))


def render(fmt: str, json_export: bytes) -> tuple[str, str, str]:
    """(text, media type, file name suffix) of a derived format, from the JSON export's bytes
    (read by the caller through one open file, so a DELETE cannot cut it)."""
    suffix, make = DERIVED[fmt]
    writer = make()
    data = json.loads(json_export)
    return writer.render(transcript_from_json(data)), writer.media_type, suffix
