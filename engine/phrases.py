"""Split long Whisper segments into sung (or spoken) phrases, using word timings.

Whisper on songs often returns one segment for two or three lyric lines. A lyric line ends
where the singer breathes: a gap between words, a detected-voice boundary, or sentence
punctuation after enough words. Splitting there gives LRC/SRT lines that follow the
phrasing. Segments without word timings are left as they are.
"""

from __future__ import annotations

from dataclasses import replace

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
    min_words: int = 3,
    max_words: int = 14,
) -> list[Segment]:
    words = segment.words
    if len(words) < 2 * min_words:
        return [segment]
    groups: list[list[Word]] = [[words[0]]]
    for prev, word in zip(words, words[1:]):
        current = groups[-1]
        gap = word.start - prev.end
        boundary = (
            gap >= min_gap_s
            or (spans and _span_index(prev.end, spans) != _span_index(word.start, spans))
            or (prev.text.strip().endswith(_END_PUNCT) and len(current) >= min_words)
            or len(current) >= max_words
        )
        if boundary and len(current) >= min_words:
            groups.append([word])
        else:
            current.append(word)
    if len(groups) > 1 and len(groups[-1]) < min_words:  # never leave a dangling fragment
        groups[-2].extend(groups.pop())
    if len(groups) == 1:
        return [segment]
    return [
        replace(
            segment,
            start=g[0].start,
            end=g[-1].end,
            text=" " + " ".join(w.text.strip() for w in g) if not _cjk(g) else "".join(w.text.strip() for w in g),
            words=tuple(g),
        )
        for g in groups
    ]


def _cjk(words: list[Word]) -> bool:
    return any("\u3040" <= ch <= "\u9fff" for w in words for ch in w.text)


def split_phrases(segments: tuple[Segment, ...], spans: tuple[SpeechSpan, ...] = ()) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for seg in segments:
        out.extend(split_segment(seg, spans))
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


def _clamp_words(words: tuple[Word, ...], start: float) -> tuple[Word, ...]:
    """Words stamped before their line's (moved) start begin with it, so a line never starts
    after its first word."""
    return tuple(replace(w, start=min(max(w.start, start), w.end)) for w in words)


def _onset(span: SpeechSpan, pad_s: float) -> float:
    return span.start + pad_s if span.start > 0 else span.start
