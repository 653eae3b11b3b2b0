"""Known lyrics in, synced lyrics out: place every line of a lyric sheet in a recording.

1. Hear the song on the music path (``engine.pipeline.hear``): vocal stem, voice activity
   on the stem, Whisper with word timings. With no language given, when the sheet's text
   clearly says another language than Whisper heard, the song is heard again in the sheet's
   (``language``). The hallucination filter is off: the sheet is a stricter filter, since
   text that is not on it cannot match it.
2. Find each sheet line among the recognised words by edit distance (``match``): repeats are
   matched in order; unsung lines and ad-libs stay unmatched.
3. Move each found line's start and end onto the voice onset and offset in the vocal stem
   near where it was heard (``onsets``).
4. Place lines recognition missed on the stem's voiced stretches between placed lines,
   when the stretches pair up with them or Whisper scores the line there (``recover``).
5. Time the line's own words with Whisper's cross-attention alignment over that span
   (``attention``).

A line that is not found keeps no time: it is reported ``unmatched``, never guessed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from ..audio import WHISPER_RATE
from ..errors import InvalidOptionError
from ..lyrics import LyricSheet
from ..pipeline import PipelineOptions, Progress, ProgressCallback, Resources, hear
from ..separation.base import SEPARATOR_CHOICES
from ..transcription import LoadedModel, load_model, validate_language
from ..types import LyricLine, Segment, Transcript, Word
from .attention import CrossAttentionAligner, Span, WordTime
from .language import sheet_language, sheet_overrules
from .match import HeardWord, LineAnchor, place_lines, split_words
from .onsets import envelope_db, voice_after_silence, voice_offset, voice_onset, voiced_regions
from .recover import recover_missed

# What Whisper hears to find the lines, and what the word alignment listens to, when the
# user does not say: chosen by the align suite of `tft bench`, not assumed.
DEFAULT_ANCHOR_SOURCE: Literal["mix", "vocals"] = "mix"
DEFAULT_WORD_SOURCE: Literal["mix", "vocals"] = "vocals"
HEAR_SHARE = 0.9  # of the progress bar: hearing; the rest is matching and aligning


@dataclass(frozen=True, slots=True)
class AlignOptions:
    """What the user asked for.

    anchor_source: what Whisper hears while recognising the words that place the lines:
        the 'mix', the 'vocals' stem, or 'auto' (``DEFAULT_ANCHOR_SOURCE``).
    word_source: what the cross-attention word alignment listens to (same choices).
    onsets: move line starts and ends onto the voice in the vocal stem (needs a stem).
    recover: place lines recognition missed on the stem's voice between placed lines
        (``recover``; needs a stem).
    """

    language: str | None = None
    separation: Literal["auto", "always", "never"] = "auto"
    separator: Literal["auto", "spleeter", "htdemucs"] = "auto"
    anchor_source: Literal["auto", "mix", "vocals"] = "auto"
    word_source: Literal["auto", "mix", "vocals"] = "auto"
    onsets: bool = True
    recover: bool = True
    beam_size: int = 5
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    max_duration_s: float | None = None

    def validate(self) -> "AlignOptions":
        for name, value, allowed in (("separation", self.separation, ("auto", "always", "never")),
                                     ("separator", self.separator, SEPARATOR_CHOICES),
                                     ("anchor_source", self.anchor_source, ("auto", "mix", "vocals")),
                                     ("word_source", self.word_source, ("auto", "mix", "vocals"))):
            if value not in allowed:
                raise InvalidOptionError(f"{name} must be one of {', '.join(allowed)}, not '{value}'")
        return self

    def hearing(self) -> PipelineOptions:
        """The music path with word timings, unfiltered (the sheet filters), and without
        temperature fallback: a sampled reading of a passage Whisper cannot hear placed
        lines 1-2.5 s off (French hook song at -6 dB, two seeds); the beam's reading
        placed more lines, none of them off."""
        source = DEFAULT_ANCHOR_SOURCE if self.anchor_source == "auto" else self.anchor_source
        return PipelineOptions(language=self.language, audio_type="music", timestamps="required",
                               hallucination_filter=False, beam_size=self.beam_size, device=self.device,
                               compute_type=self.compute_type, cpu_threads=self.cpu_threads,
                               separation=self.separation, separator=self.separator, music_source=source,
                               max_duration_s=self.max_duration_s, temperature_fallback=False).validate()


def align(path: str | Path, sheet: LyricSheet, options: AlignOptions, resources: Resources, *,
          model: LoadedModel | None = None, progress: ProgressCallback | None = None) -> Transcript:
    """Place every line of ``sheet`` in the recording at ``path``. Raises EngineError subclasses
    for anything the user can fix."""
    options.validate()
    if model is None:
        model = load_model(resources.whisper_name, resources.whisper_path, device=options.device,
                           compute_type=options.compute_type, cpu_threads=options.cpu_threads)
    validate_language(model, options.language)
    hearing = options.hearing()
    heard = hear(path, hearing, resources, model=model, progress=_scaled(progress))
    written = sheet_language(sheet.text, model.languages) if options.language is None and model.multilingual else None
    if written is not None and sheet_overrules(written, heard.transcript.language, heard.transcript.language_probability):
        # heard in the wrong language: hear again in the sheet's (the stem is cached)
        hearing = replace(hearing, language=written.code)
        heard = hear(path, hearing, resources, model=model)
    started = time.perf_counter()
    t = heard.transcript
    texts = [split_words(line.text) for line in sheet.lines]
    words = [HeardWord(w.start, w.end, w.text) for s in t.segments for w in s.words]
    anchors = place_lines(texts, words)
    matched = time.perf_counter()
    env = envelope_db(heard.stem) if (options.onsets and heard.stem is not None) else None
    regions = voiced_regions(env) if env is not None else []
    spans = _spans(sheet, texts, anchors, heard.audio.size / WHISPER_RATE, env, regions)
    word_source = DEFAULT_WORD_SOURCE if options.word_source == "auto" else options.word_source
    signal = heard.stem if word_source == "vocals" and heard.stem is not None else heard.audio
    language = hearing.language or t.language or "en"
    aligner = CrossAttentionAligner(model, signal, language)
    recovered = 0
    if env is not None and options.recover:
        before = sum(s is not None for s in spans)
        # stem and mix: the separator can drop a voice the band covers (recover's docstring)
        other = heard.audio if signal is heard.stem else heard.stem
        witnesses = [aligner] + ([CrossAttentionAligner(model, other, language)] if other is not None else [])
        spans = recover_missed(spans, [(tuple(w), _spacing(l.text, w)) for l, w in zip(sheet.lines, texts)],
                        regions, witnesses, t.duration)
        recovered = sum(s is not None for s in spans) - before
    order = [i for i, s in enumerate(spans) if s is not None]
    timed = aligner.align([spans[i] for i in order])  # type: ignore[misc]
    times: list[list[WordTime] | None] = [None] * len(spans)
    for i, wt in zip(order, timed):
        times[i] = wt
    lines = _lines(sheet, texts, spans, times)
    timings = dict(t.timings, match=matched - started, align=time.perf_counter() - matched)
    if progress is not None:
        progress(Progress("align", 1.0, 1.0, t.duration, t.duration))
    used = dict(asdict(options), model=resources.whisper_name, language_effective=language,
                language_from="user" if options.language else ("sheet" if hearing.language else "audio"),
                **({"sheet_language": {"code": written.code, "probability": round(written.probability, 4)}}
                   if written else {}),
                anchor_source=hearing.resolved_music_source, word_source=word_source,
                heard_words=len(words), lines_found_by_recognition=sum(a is not None for a in anchors),
                lines_found_on_voice=recovered, **({"extra": dict(t.options["extra"])} if "extra" in t.options else {}))
    segments = tuple(replace(line.segment, id=k) for k, line in enumerate(l for l in lines if l.segment is not None))
    return Transcript(segments=segments, language=language, language_probability=t.language_probability,
                      duration=t.duration, model=t.model, timestamps="required", options=used, timings=timings,
                      audio_type=t.audio_type, separation=t.separation, separator=t.separator, device=t.device,
                      compute_type=t.compute_type, speech=t.speech, lines=_renumber(lines, segments))


def _scaled(progress: ProgressCallback | None) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda p: progress(replace(p, fraction=p.fraction * HEAR_SHARE, audio_done_s=p.audio_done_s * HEAR_SHARE))


def _spans(sheet: LyricSheet, texts: list[list[str]], anchors: list[LineAnchor | None], duration: float,
           env: np.ndarray | None, regions: list[tuple[float, float]]) -> list[Span | None]:
    """Each found line's span: on the stem's voice onset and offset when there is a stem (or,
    when recognition put the line's start in a pause, where the voice resumes)."""
    found = [a for a in anchors if a is not None]
    out: list[Span | None] = [None] * len(anchors)
    previous_end = 0.0
    for k, a in enumerate(found):
        following = found[k + 1].start if k + 1 < len(found) else duration
        start, end = a.start, a.end
        if env is not None:
            onset = voice_onset(env, a.start, a.end, earliest=previous_end + 0.05, max_back_s=0.6 + a.lead_s,
                                inside_by=a.first_end)
            start = onset if onset is not None else (voice_after_silence(regions, a.start, a.end) or a.start)
            end = voice_offset(env, a.end, latest=following - 0.05, max_forward_s=0.6 + a.tail_s)
        end = max(end, start + 0.1)
        previous_end = end
        line_text = sheet.lines[a.line].text
        out[a.line] = Span(start, min(end, duration), tuple(texts[a.line]), _spacing(line_text, texts[a.line]))
    return out


def _spacing(text: str, words: list[str]) -> tuple[bool, ...]:
    """Whether each word follows a space in the written line (the first always counts as spaced)."""
    out, pos = [], 0
    for i, w in enumerate(words):
        at = text.find(w, pos)
        out.append(i == 0 or (at > 0 and text[at - 1].isspace()))
        pos = at + len(w) if at >= 0 else pos
    return tuple(out)


def _lines(sheet: LyricSheet, texts: list[list[str]], spans: list[Span | None],
           times: list[list[WordTime] | None]) -> list[LyricLine]:
    out = []
    for line, words, span, wt in zip(sheet.lines, texts, spans, times):
        segment = None
        if span is not None:
            segment = Segment(id=line.index, start=span.start, end=span.end, text=" " + line.text,
                              words=_words(span, words, wt or []))
        out.append(LyricLine(line.index, line.text, line.stanza, segment, line.hint))
    return out


def _words(span: Span, words: list[str], times: list[WordTime]) -> tuple[Word, ...]:
    """The sheet's words with their aligned times, kept in order inside the line's span."""
    if len(times) != len(words):  # nothing aligned: spread the words evenly, marked improbable
        step = (span.end - span.start) / max(1, len(words))
        times = [WordTime(span.start + i * step, span.start + (i + 1) * step, 0.0) for i in range(len(words))]
    out, floor = [], span.start
    for i, (w, t) in enumerate(zip(words, times)):
        start = span.start if i == 0 else min(max(t.start, floor), span.end)
        end = min(max(t.end, start), span.end)
        floor = start
        out.append(Word(start, end, (" " if span.spaced[i] else "") + w, t.probability))
    return tuple(out)


def _renumber(lines: list[LyricLine], segments: tuple[Segment, ...]) -> tuple[LyricLine, ...]:
    it = iter(segments)
    return tuple(replace(line, segment=next(it)) if line.segment is not None else line for line in lines)


__all__ = ["AlignOptions", "DEFAULT_ANCHOR_SOURCE", "DEFAULT_WORD_SOURCE", "align"]
