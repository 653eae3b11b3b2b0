"""Transcript writers: txt, srt, vtt, lrc (line and word level) and json, each to a TextIO.

The shape follows openai/whisper's ``utils.py``: a ``ResultWriter`` base with an
``extension``, a ``SubtitlesWriter`` that owns timestamp formatting, and one small class
per format. Writers never touch the filesystem; ``write_files`` does, atomically.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Iterable, Iterator, TextIO

from .errors import InvalidOptionError
from .types import Segment, Transcript


def _cue_lines(segment: Segment) -> list[str]:
    lines = [segment.text.strip()]
    if segment.pinyin:
        lines.append(segment.pinyin)
    return lines


class ResultWriter(ABC):
    """Turns a Transcript into one file format."""

    extension: ClassVar[str]
    media_type: ClassVar[str]

    @abstractmethod
    def write(self, transcript: Transcript, out: TextIO) -> None: ...

    def render(self, transcript: Transcript) -> str:
        buf = io.StringIO()
        self.write(transcript, buf)
        return buf.getvalue()


class TxtWriter(ResultWriter):
    """One line per segment; Chinese segments get their pinyin on the following line."""

    extension = "txt"
    media_type = "text/plain; charset=utf-8"

    def write(self, transcript: Transcript, out: TextIO) -> None:
        if transcript.lines:  # an alignment: the sheet itself, stanzas apart
            for i, line in enumerate(transcript.lines):
                if i and line.stanza != transcript.lines[i - 1].stanza:
                    out.write("\n")
                out.write(line.text + "\n")
            return
        for segment in transcript.segments:
            for line in _cue_lines(segment):
                out.write(line + "\n")


class SubtitlesWriter(ResultWriter):
    """Cue-based formats; subclasses choose the decimal marker and the header."""

    decimal_marker: ClassVar[str]
    always_include_hours: ClassVar[bool]

    @classmethod
    def format_timestamp(cls, seconds: float) -> str:
        millis = max(0, int(round(seconds * 1000)))
        hours, millis = divmod(millis, 3_600_000)
        minutes, millis = divmod(millis, 60_000)
        secs, millis = divmod(millis, 1000)
        hours_part = f"{hours:02d}:" if cls.always_include_hours or hours else ""
        return f"{hours_part}{minutes:02d}:{secs:02d}{cls.decimal_marker}{millis:03d}"

    def iterate(self, transcript: Transcript) -> Iterator[tuple[str, str, str]]:
        for segment in transcript.segments:
            end = max(segment.end, segment.start + 0.001)
            yield (
                self.format_timestamp(segment.start),
                self.format_timestamp(end),
                "\n".join(_cue_lines(segment)),
            )


class SrtWriter(SubtitlesWriter):
    extension = "srt"
    media_type = "application/x-subrip; charset=utf-8"
    decimal_marker = ","
    always_include_hours = True

    def write(self, transcript: Transcript, out: TextIO) -> None:
        for index, (start, end, text) in enumerate(self.iterate(transcript), start=1):
            out.write(f"{index}\n{start} --> {end}\n{text}\n\n")


class VttWriter(SubtitlesWriter):
    extension = "vtt"
    media_type = "text/vtt; charset=utf-8"
    decimal_marker = "."
    always_include_hours = True

    def write(self, transcript: Transcript, out: TextIO) -> None:
        out.write("WEBVTT\n\n")
        for start, end, text in self.iterate(transcript):
            out.write(f"{start} --> {end}\n{text}\n\n")


class LrcWriter(ResultWriter):
    """Lyrics: ``[mm:ss.xx]line``, and the enhanced word-level form when words are timed.

    Enhanced lines carry ``<mm:ss.xx>`` before every word. A line that is followed by a
    pause gets an empty ``[mm:ss.xx]`` line at its end, so players clear the lyric during
    instrumental breaks instead of showing it until the next line. In an alignment, a sheet
    line that could not be placed is written in its place without any time tag: players
    skip it, and no time is invented for it.
    """

    extension = "lrc"
    media_type = "text/plain; charset=utf-8"
    clear_after_gap_s: ClassVar[float] = 1.0

    def __init__(self, *, word_level: bool | None = None) -> None:
        self.word_level = word_level  # None: word level whenever word timings exist

    @staticmethod
    def format_timestamp(seconds: float) -> str:
        centis = max(0, int(round(seconds * 100)))
        minutes, centis = divmod(centis, 6000)
        secs, centis = divmod(centis, 100)
        return f"{minutes:02d}:{secs:02d}.{centis:02d}"

    def _line(self, segment: Segment, word_level: bool) -> str:
        if word_level and segment.words:
            # Whisper marks word boundaries with a leading space (none in Chinese/Japanese):
            # keep that spacing between the tags so CJK lines are not split into words.
            parts = []
            for i, w in enumerate(segment.words):
                if not w.text.strip():
                    continue
                space = " " if (i and w.text[:1].isspace()) else ""
                parts.append(f"{space}<{self.format_timestamp(w.start)}>{w.text.strip()}")
            end_space = " " if segment.words and segment.words[0].text[:1].isspace() else ""
            return f"[{self.format_timestamp(segment.start)}]{''.join(parts)}{end_space}<{self.format_timestamp(segment.end)}>"
        return f"[{self.format_timestamp(segment.start)}]{segment.text.strip()}"

    def write(self, transcript: Transcript, out: TextIO) -> None:
        word_level = transcript.has_word_timestamps if self.word_level is None else self.word_level
        out.write(f"[length:{self.format_timestamp(transcript.duration)[:5]}]\n")
        if transcript.language:
            out.write(f"[la:{transcript.language}]\n")
        if transcript.lines:
            items: list[Segment | str] = [l.segment if l.segment is not None else l.text for l in transcript.lines]
        else:
            items = list(transcript.segments)
        placed = [i for i, item in enumerate(items) if isinstance(item, Segment)]
        following = {i: items[j].start for i, j in zip(placed, placed[1:])}  # type: ignore[union-attr]
        for i, item in enumerate(items):
            if isinstance(item, str):
                out.write(item + "\n")
                continue
            out.write(self._line(item, word_level) + "\n")
            if item.pinyin:
                out.write(f"[{self.format_timestamp(item.start)}]{item.pinyin}\n")
            if i not in following or following[i] - item.end >= self.clear_after_gap_s:
                out.write(f"[{self.format_timestamp(item.end)}]\n")


class JsonWriter(ResultWriter):
    extension = "json"
    media_type = "application/json"

    def write(self, transcript: Transcript, out: TextIO) -> None:
        json.dump(transcript.as_dict(), out, ensure_ascii=False, indent=2)
        out.write("\n")


WRITERS: dict[str, type[ResultWriter]] = {
    w.extension: w for w in (TxtWriter, SrtWriter, VttWriter, LrcWriter, JsonWriter)
}
FORMATS: tuple[str, ...] = tuple(WRITERS)


def get_writer(fmt: str) -> ResultWriter:
    try:
        return WRITERS[fmt.lower()]()
    except KeyError:
        raise InvalidOptionError(
            f"unknown output format '{fmt}'; choose from {', '.join(FORMATS)} or 'all'"
        ) from None


def parse_formats(spec: str | Iterable[str]) -> tuple[str, ...]:
    """'srt,lrc' / 'all' / ['txt'] -> validated, de-duplicated tuple in canonical order."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    wanted = {s.strip().lower() for s in items if s.strip()}
    if "all" in wanted:
        return FORMATS
    for fmt in wanted:
        get_writer(fmt)
    if not wanted:
        raise InvalidOptionError("no output format given")
    return tuple(f for f in FORMATS if f in wanted)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(transcript: Transcript, directory: Path, stem: str, formats: Iterable[str]) -> list[Path]:
    """Render each format and write it atomically as ``directory/stem.ext``."""
    paths = []
    for fmt in formats:
        writer = get_writer(fmt)
        path = Path(directory) / f"{stem}.{writer.extension}"
        atomic_write_text(path, writer.render(transcript))
        paths.append(path)
    return paths
