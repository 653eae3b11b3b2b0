"""Split long Whisper segments into sung (or spoken) phrases, using word timings.

Whisper on songs often returns one segment for two or three lyric lines. A lyric line ends
where the singer breathes: a gap between words, a detected-voice boundary, or sentence
punctuation after enough words. Splitting there gives LRC/SRT lines that follow the
phrasing. Segments without word timings are left as they are.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .types import Segment, SpeechSpan, Word

_END_PUNCT = (".", "!", "?", "。", "！", "？", ";", "；")


def _span_index(t: float, spans: tuple[SpeechSpan, ...]) -> int:
    for i, span in enumerate(spans):
        if t < span.end:
            return i
    return len(spans)


def split_segment(
    segment: Segment,
    spans: tuple[SpeechSpan, ...] = (),
    *,
    min_gap_s: float = 0.5,
    hard_gap_s: float = 1.0,
    min_words: int = 3,
    max_words: int = 14,
) -> list[Segment]:
    """Split at breaths, voice boundaries and sentence ends, into groups of at least
    ``min_words``; but a silence of ``hard_gap_s`` or more, or a voice boundary with at least
    ``min_gap_s`` of silence, always ends a line, however short: Whisper sometimes joins two
    lines across an instrumental break, and a two-word line must not carry the break."""
    words = segment.words
    if len(words) < 2:
        return [segment]
    groups: list[list[Word]] = [[words[0]]]
    hard_after: set[int] = set()  # indices of groups closed by a hard boundary
    for prev, word in zip(words, words[1:]):
        current = groups[-1]
        gap = word.start - prev.end
        new_span = bool(spans) and _span_index(prev.end, spans) != _span_index(word.start, spans)
        hard = gap >= hard_gap_s or (new_span and gap >= min_gap_s)
        boundary = (
            gap >= min_gap_s
            or new_span
            or (prev.text.strip().endswith(_END_PUNCT) and len(current) >= min_words)
            or len(current) >= max_words
        )
        if hard or (boundary and len(current) >= min_words):
            if hard:
                hard_after.add(len(groups) - 1)
            groups.append([word])
        else:
            current.append(word)
    if len(groups) > 1 and len(groups[-1]) < min_words and len(groups) - 2 not in hard_after:
        groups[-2].extend(groups.pop())  # never leave a dangling fragment (unless a break precedes it)
    if len(groups) == 1:
        return [segment]
    return [
        replace(
            segment,
            start=g[0].start,
            end=g[-1].end,
            text="".join(w.text.strip() for w in g) if _cjk("".join(w.text for w in g)) else " " + _joined(g),
            words=tuple(g),
        )
        for g in groups
    ]


def _joined(words: list[Word]) -> str:
    """Whisper's words carry their own leading space; one without it continues the word before
    ("long" + "-hit"), as in the segment's text."""
    out = words[0].text.strip()
    for w in words[1:]:
        out += (" " if w.text[:1].isspace() else "") + w.text.strip()
    return out


def _cjk(text: str) -> bool:
    """Kana or CJK ideographs: lines written without spaces."""
    return any("\u3040" <= ch <= "\u9fff" for ch in text)


def split_phrases(segments: tuple[Segment, ...], spans: tuple[SpeechSpan, ...] = ()) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for seg in segments:
        out.extend(split_segment(seg, spans))
    return tuple(replace(s, id=i) for i, s in enumerate(out))


def _unspaced(text: str) -> str:
    return "".join(text.split())


def split_sentences(segments: tuple[Segment, ...], language: str | None) -> tuple[Segment, ...]:
    """Text-only segments (no times to split at) cut into sentences by pysbd's rules for the
    language (abbreviations, decimals, "a.m." stay whole; English rules for a language it
    lacks), so a packed window's 30 s of text reads one sentence per line of a TXT file."""
    import pysbd
    from pysbd.languages import LANGUAGE_CODES

    segmenter = pysbd.Segmenter(language=language if language in LANGUAGE_CODES else "en", clean=False)
    out: list[Segment] = []
    for seg in segments:
        pieces = [p.strip() for p in segmenter.segment(seg.text.strip()) if p.strip()] if seg.text.strip() else []
        if len(pieces) <= 1 or _unspaced("".join(pieces)) != _unspaced(seg.text):  # pysbd can drop characters
            out.append(seg)
            continue
        cjk = _cjk(seg.text)
        out.extend(replace(seg, text=p if cjk else " " + p, words=(), tokens=()) for p in pieces)
    return tuple(replace(s, id=i) for i, s in enumerate(out))


def refine_onsets(
    segments: tuple[Segment, ...], spans: tuple[SpeechSpan, ...], *, pad_s: float, boundary_s: float | None = None
) -> tuple[Segment, ...]:
    """Move line starts onto the voice onsets that VAD found.

    With VAD, Whisper decodes the speech with the silences cut out, so a line that begins
    right after a removed pause can be stamped at the end of the previous stretch of speech
    (its timestamp lands a few milliseconds before the join). And every span starts
    ``pad_s`` before the voice, so a line stamped at a span's start is early by the padding.
    A start in a gap, in a span's leading padding, or in its trailing padding (the last
    ``boundary_s``, by default the padding plus 150 ms) while the line runs on into later
    speech, moves to the voice onset of the span it belongs to. Ends and text are
    untouched; a line never starts after it ends.
    """
    if not spans:
        return segments
    boundary_s = pad_s + 0.15 if boundary_s is None else boundary_s
    out = []
    for seg in segments:
        start = seg.start
        for i, span in enumerate(spans):
            if start < span.start:  # in the gap before this span
                start = _onset(span, pad_s)
                break
            if start <= span.end:
                if start < _onset(span, pad_s):  # in the leading padding
                    start = _onset(span, pad_s)
                elif span.end - start <= boundary_s and seg.end > span.end + boundary_s and i + 1 < len(spans):
                    start = _onset(spans[i + 1], pad_s)  # stamped at the join: belongs to the next span
                break
        if start < seg.end - 0.05 and start != seg.start:
            seg = replace(seg, start=start, words=_clamp_words(seg.words, start))
        out.append(seg)
    return tuple(out)


def onsets_after_padding(segments: tuple[Segment, ...], spans: tuple[SpeechSpan, ...], *, pad_s: float,
                         within_s: float = 0.15, envelope: np.ndarray | None = None) -> tuple[Segment, ...]:
    """Move the line stamped at (or up to ``within_s`` after) a span's start onto the voice's onset.

    A packed window joins the spans' audio, padding included, and Whisper gives the first
    word after a join the join's own time, or close to it: the start of the padding, a
    quarter second before the voice (every first line of the song corpus: 0.21-0.46 s
    early). Such a line starts where the stem's voice rises (``envelope``: its level, 10 ms
    frames in dB), searched from the span's start, or ``pad_s`` into the span when the stem
    shows no clear onset; never before the line before it ends. Lines Whisper timed anywhere
    else keep their time: moving every line in the padding, as ``refine_onsets`` does for
    sequential decoding, put correct lines 0.2-0.3 s late in a third of the songs at -6 dB."""
    heads = [s for s in spans if s.start > 0]
    out: list[Segment] = []
    for seg in segments:
        head = next((h for h in heads if h.start - 0.01 <= seg.start <= h.start + within_s), None)  # samples round down
        onset = None if head is None else _onset_after(head, seg, pad_s, envelope)
        if head is not None:
            heads.remove(head)  # the first line after a join only
        if onset is not None and out:
            onset = max(onset, out[-1].end)
        if onset is not None and onset != seg.start and onset < seg.end - 0.05:
            seg = replace(seg, start=onset, words=_clamp_words(seg.words, onset))
        out.append(seg)
    return tuple(out)


def _onset_after(head: SpeechSpan, seg: Segment, pad_s: float, envelope: np.ndarray | None) -> float:
    """Where the voice of a line stamped at the start of span ``head`` starts."""
    if envelope is not None:
        from .align.onsets import voice_onset

        found = voice_onset(envelope, _onset(head, pad_s), seg.end, earliest=head.start, max_back_s=pad_s,
                            inside_by=seg.words[0].end if seg.words else None)
        if found is not None:
            return found
    return _onset(head, pad_s)


def _clamp_words(words: tuple[Word, ...], start: float) -> tuple[Word, ...]:
    """Words stamped before their line's (moved) start begin with it (one wholly before it
    becomes a zero-length word at the start), so a line never starts after its first word."""
    out = []
    for w in words:
        begin = max(w.start, start)
        out.append(replace(w, start=begin, end=max(w.end, begin)))
    return tuple(out)


def _onset(span: SpeechSpan, pad_s: float) -> float:
    return span.start + pad_s if span.start > 0 else span.start


# A word longer than LONG_WORD_S (plus PER_CHAR_S a letter beyond three) may have been
# stretched over the breath next to it; the stem tells where its voice really is.
LONG_WORD_S = 0.6
PER_CHAR_S = 0.1
QUIET_DB = 30.0  # a stem frame this far below its line's level holds no voice
MIN_QUIET_S = 0.25  # shorter quiet stretches are a consonant or a stop, not a breath
MIN_VOICE_S = 0.05  # voice after the quiet stretch: the word is sung there
MOVED_WORD_S = 0.3  # the most a word moved off a silence may last
MIN_CONTRAST_DB = 20.0  # below this, the stem shows no clear silence to go by (reverb, leakage)


def fit_words_to_voice(segments: tuple[Segment, ...], envelope: np.ndarray) -> tuple[Segment, ...]:
    """Take the breath out of stretched words, using the vocal stem's level (10 ms frames, dB).

    Whisper's word times on songs give the pause before a line to the line's first word (an
    "I" 1.4 s long) or the pause after one to its last, so the next line's start lands up to
    seconds early and two sung lines read as one. Where a long word holds a quiet stretch
    of the stem, the word keeps only the side that holds the voice; ``split_phrases`` then
    sees the breath as a gap. Words without a clear quiet stretch keep Whisper's times.
    A word stamped wholly in the stem's silence before a long pause (where a cut-out
    instrumental break was joined for decoding) belongs to the line after the pause.
    """
    from .align.onsets import FRAME_S, line_level

    out = []
    for seg in segments:
        level = line_level(envelope, seg.start, seg.end) if seg.words else None
        if level is None:
            out.append(seg)
            continue
        words = tuple(_fit(w, envelope, level, FRAME_S) if _stretched(w) else w for w in seg.words)
        words = _move_silent_words(words, envelope, level, FRAME_S)
        if words != seg.words:
            seg = replace(seg, words=words, start=max(seg.start, min(words[0].start, seg.end - 0.05)),
                          end=min(seg.end, max(words[-1].end, seg.start + 0.05)))
        out.append(seg)
    return tuple(out)


def _move_silent_words(words: tuple[Word, ...], envelope: np.ndarray, level: float,
                       frame_s: float) -> tuple[Word, ...]:
    """A word with no voice under it, followed by a pause of ``MIN_QUIET_S`` or more, moves
    to just before the next word: Whisper stamps the first word after a cut-out break at the
    join, the end of the voice before the break."""
    out = list(words)
    for i in range(len(out) - 2, -1, -1):  # backwards, so a run of such words moves together
        word, after = out[i], out[i + 1]
        if after.start - word.end < MIN_QUIET_S:
            continue
        frames = _under(word, envelope, frame_s)
        if frames.size == 0 or level - float(frames.max()) < QUIET_DB:
            continue
        length = min(word.end - word.start, MOVED_WORD_S)
        out[i] = replace(word, start=after.start - length, end=after.start)
    return tuple(out)


def _stretched(word: Word) -> bool:
    letters = sum(ch.isalnum() for ch in word.text)
    return word.end - word.start > LONG_WORD_S + PER_CHAR_S * max(0, letters - 3)


def _under(word: Word, envelope: np.ndarray, frame_s: float) -> np.ndarray:
    """The stem's level frames under a word (at least one, for a word of no length)."""
    f0 = int(round(word.start / frame_s))
    return envelope[f0:min(envelope.size, max(f0 + 1, int(round(word.end / frame_s))))]


def _fit(word: Word, envelope: np.ndarray, level: float, frame_s: float) -> Word:
    frames = _under(word, envelope, frame_s)
    if frames.size == 0 or level - float(frames.min()) < MIN_CONTRAST_DB:
        return word
    quiet = np.concatenate(([False], frames < level - QUIET_DB, [False]))
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = edges.reshape(-1, 2)  # [start, stop) of each quiet run
    if runs.size == 0:
        return word
    q0, q1 = max(runs, key=lambda r: r[1] - r[0])
    if (q1 - q0) * frame_s < MIN_QUIET_S:
        return word
    # Whisper mostly gives a breath to the word after it: a word whose voice resumes after
    # the quiet stretch starts there; one that falls quiet to its end ends where it did.
    if (frames.size - q1) * frame_s >= MIN_VOICE_S:
        return replace(word, start=word.start + q1 * frame_s)
    return replace(word, end=word.start + q0 * frame_s)
