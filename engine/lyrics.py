"""Lyric sheets as people have them: plain text, one sung line per text line, or LRC.

Blank lines separate stanzas. ``[mm:ss.xx]`` tags in front of a line are kept as hints (an
old LRC file, a guess typed by hand), never as truth: the aligner measures every time. A
line with several tags (compressed LRC) stands for the same line sung at each of them.
Section labels such as ``[Chorus]`` and LRC header tags such as ``[ar:Artist]`` are not
sung and are skipped; enhanced-LRC word stamps ``<mm:ss.xx>`` are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidLyricsError

MAX_LINES = 20_000  # far beyond an hour of lyrics; a larger "sheet" is the wrong file
MAX_LINE_CHARS = 500

_TIME_TAG = re.compile(r"\[\s*(\d{1,3}):(\d{1,2}(?:[.:]\d{1,3})?)\s*\]")
_WORD_STAMP = re.compile(r"<\s*\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?\s*>")
_HEADER = re.compile(r"^\[\s*[A-Za-z#][\w #-]*:[^\]]*\]$")  # [ar:...], [offset:+200], [#:comment]
_SECTION = re.compile(r"^[\[(][^\])]{1,40}[\])]$")  # [Chorus], [Verse 2: Name], (Bridge)
_SECTION_WORDS = re.compile(r"(?i)\b(verse|chorus|refrain|bridge|intro|outro|hook|pre-?chorus|interlude|instrumental|"
                            r"couplet|estribillo|ritornello|strophe|coro)\b")


@dataclass(frozen=True, slots=True)
class SheetLine:
    """One line to be placed: its text, its stanza (from 0) and the time its tag gave, if any."""

    index: int
    text: str
    stanza: int
    hint: float | None = None


@dataclass(frozen=True, slots=True)
class LyricSheet:
    lines: tuple[SheetLine, ...]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def hinted(self) -> bool:
        return any(line.hint is not None for line in self.lines)


def _seconds(minutes: str, rest: str) -> float:
    rest = rest.replace(":", ".")
    return int(minutes) * 60 + float(rest)


def _section_label(line: str) -> bool:
    """``[Chorus]`` or ``(Verse 2)``; a bracketed sung aside like ``(oh yeah)`` is lyrics."""
    return bool(_SECTION.match(line)) and (line.startswith("[") or bool(_SECTION_WORDS.search(line)))


def parse_sheet(text: str) -> LyricSheet:
    """Parse a sheet; raises ``InvalidLyricsError`` when it holds no lyric line."""
    if "\x00" in text:
        raise InvalidLyricsError("the lyrics are not text (they contain NUL bytes)")
    raw = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(raw) > MAX_LINES:
        raise InvalidLyricsError(f"the lyrics have {len(raw)} lines; at most {MAX_LINES} are accepted")
    entries: list[tuple[str, int, float | None]] = []
    stanza, pending_break = 0, False
    for line in raw:
        line = _WORD_STAMP.sub("", line).strip()
        if not line or _HEADER.match(line) or _section_label(line):
            pending_break = pending_break or bool(entries)
            continue
        hints = []
        while (m := _TIME_TAG.match(line)) is not None:
            hints.append(_seconds(m.group(1), m.group(2)))
            line = line[m.end():].strip()
        if not line:  # an LRC clearing stamp: a pause, not a line
            pending_break = pending_break or bool(entries)
            continue
        if len(line) > MAX_LINE_CHARS:
            raise InvalidLyricsError(f"a lyric line is {len(line)} characters long; put one sung line per text line "
                                     f"(at most {MAX_LINE_CHARS} characters)")
        if pending_break:
            stanza, pending_break = stanza + 1, False
        entries.extend((line, stanza, h) for h in (hints or [None]))
    if not entries:
        raise InvalidLyricsError("the lyrics hold no lyric lines (only blank lines, tags or section labels)")
    if all(h is not None for _, _, h in entries):  # a whole LRC file: its order is the time order
        entries.sort(key=lambda e: e[2])  # type: ignore[arg-type, return-value]
    return LyricSheet(tuple(SheetLine(i, t, s, h) for i, (t, s, h) in enumerate(entries)))


def read_sheet(path: str | Path) -> LyricSheet:
    """Read a sheet file (UTF-8, or UTF-16 with a byte-order mark)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidLyricsError(f"the lyrics file '{path}' does not exist") from None
    except IsADirectoryError:
        raise InvalidLyricsError(f"'{path}' is a directory, not a lyrics file") from None
    except OSError as exc:
        raise InvalidLyricsError(f"the lyrics file '{path}' cannot be read ({exc.strerror})") from None
    if len(data) > 1_000_000:
        raise InvalidLyricsError(f"'{path.name}' is {len(data) / 1e6:.1f} MB; a lyrics file is plain text under 1 MB")
    try:
        text = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidLyricsError(f"'{path.name}' is not UTF-8 text; save the lyrics as plain UTF-8 text") from None
    try:
        return parse_sheet(text)
    except InvalidLyricsError as exc:
        raise InvalidLyricsError(f"'{path.name}': {exc}") from None
