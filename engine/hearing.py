"""The transcribe and filter stages: decode a signal, filter each segment as it arrives,
finish the kept ones into lines, and in music mode choose each line's reading.

Music is decoded packed, so the filter first judges whole windows: a window it rejects is
heard again line by line (``rehear_rejected``; one looped line no longer takes a window's
every line with it), and the lines cut from the windows it keeps are judged again one by
one (``finish``), as sequentially decoded lines always were. The sequential decoder also
re-decodes a voiced span of a song it passed over (``transcription.heard_again``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import hallucination, vad
from .progress import Run
from .transcription import MISSED_SPAN_S, DecodeOptions, Decoded, LoadedModel, covers, transcribe
from .types import Segment, SpeechSpan

if TYPE_CHECKING:
    from .pipeline import Listening, PipelineOptions

log = logging.getLogger(__name__)
SegmentCallback = Callable[[Segment], None]


def transcribe_filtered(model: LoadedModel, signal: np.ndarray, spans: tuple[SpeechSpan, ...] | None,
                        decode_options: DecodeOptions, options: PipelineOptions, music: bool, run: Run,
                        on_segment: SegmentCallback | None,
                        share: tuple[int, int] = (0, 1)) -> tuple[Decoded, hallucination.StreamingFilter | None]:
    """Decode, filtering each segment as it arrives so kept ones can be streamed at once.
    ``share`` (pass k of n) places this decode's progress within the transcribe stage."""
    duration = run.report.duration
    gated = spans if (options.vad and spans is not None) else None
    check = None
    if options.hallucination_filter:
        check = hallucination.StreamingFilter(
            settings=hallucination.MUSIC if music else hallucination.SPEECH,
            speech=spans if decode_options.timestamps != "none" else None,
        )

    furthest = 0.0  # lines heard again come after later ones: progress never goes back

    def moved(position: float) -> None:
        nonlocal furthest
        furthest = max(furthest, min(position / duration, 1.0) if duration else 1.0)
        run.report("transcribe", (share[0] + furthest) / share[1])

    def arrived(segment: Segment) -> None:
        kept = check.push(segment) if check is not None else segment
        if kept is not None and on_segment is not None:
            on_segment(kept)

    decoded = transcribe(model, signal, gated, decode_options, on_segment=arrived, on_position=moved)
    if music and decoded.coarse and check is not None and gated:
        decoded = rehear_rejected(model, signal, gated, decode_options, check, decoded, arrived)
    return decoded, check


def rehear_rejected(model: LoadedModel, signal: np.ndarray, spans: tuple[SpeechSpan, ...],
                    decode_options: DecodeOptions, check: hallucination.StreamingFilter, decoded: Decoded,
                    arrived: SegmentCallback) -> Decoded:
    """A packed window is one segment to the filter, so one loop in its text (Whisper under a
    loud band: a line sung over and over) took every line of the window with it. The voiced
    spans of each rejected window are heard again sequentially, line by line, at the first
    temperature only, and filtered again. A span none of whose lines the filter keeps then is
    heard once more alone, with the full temperature fallback: joined, a hook sung in two
    spans looped again (French hook song, 0 dB: "Je suis une femme et" x44, then garbage at
    every fallback temperature, 46 s of decoding for nothing), while alone each span gave
    lines. A looped window's spans go through the joined pass too: sent straight to be heard
    alone, they lost the context it gives (English songs: -6 dB 27.5% -> 29.5%, -12 dB
    55.1% -> 57.3%, for 13% less transcribing). What is still rejected stays out. A
    streaming caller gets those lines after later ones; the filter's result is in time order."""
    windows = [_window_of(r.segment, decoded.windows) for r in check.removed]  # each segment is a window's
    again = tuple(SpeechSpan(max(s.start, a), min(s.end, b))
                  for a, b in windows for s in spans if s.start < b and a < s.end)
    if not again:
        return decoded
    log.info("hearing %d rejected window(s) again, line by line", len(windows))
    check.removed[:] = [replace(r, reason=f"{r.reason}; the window was heard again line by line")
                        for r in check.removed]
    line_by_line = replace(decode_options, batch_size=1, language=decoded.language)
    first_temperature = replace(line_by_line, temperatures=line_by_line.temperatures[:1])
    before = len(check.kept)
    redone = transcribe(model, signal, again, first_temperature, on_segment=arrived).segments
    lost = tuple(s for s in again if s.duration >= MISSED_SPAN_S
                 and not any(covers(s, k.start, k.end) for k in check.kept[before:]))
    redone += _hear_alone(model, signal, lost, replace(line_by_line, hear_missed=False), arrived)
    return replace(decoded, segments=decoded.segments + redone)


def _hear_alone(model: LoadedModel, signal: np.ndarray, spans: tuple[SpeechSpan, ...], options: DecodeOptions,
                arrived: SegmentCallback) -> tuple[Segment, ...]:
    """Each span decoded on its own, with ``options``' full temperature fallback (spans
    shorter than ``MISSED_SPAN_S`` are not worth an encoder pass and six samplings)."""
    if spans:
        log.info("hearing %d voiced span(s) again, each alone: none of their lines was kept", len(spans))
    return tuple(segment for span in spans
                 for segment in transcribe(model, signal, (span,), options, on_segment=arrived).segments)


def _window_of(segment: Segment, windows: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """The whole window a packed segment was decoded from: its words may stop short of the
    window's end (Whisper ended the loop early) or start after its voice."""
    return next(((a, b) for a, b in windows if a - 0.05 <= segment.start and segment.end <= b + 0.05),
                (segment.start, segment.end))


def voice_level(stem: np.ndarray | None, mode: str, coarse: bool) -> np.ndarray | None:
    """The stem's level (10 ms frames, dB) where ``finish`` needs it: to fit sung words to the
    voice, and to put packed lines stamped at a join on the voice's onset. Computed once for
    every reading of a song."""
    if stem is None or not (mode == "required" or coarse):
        return None
    from .align.onsets import envelope_db

    return envelope_db(stem)


def finish(decoded: Decoded, check: hallucination.StreamingFilter | None, spans: tuple[SpeechSpan, ...] | None,
           options: PipelineOptions, mode: str, music: bool,
           envelope: np.ndarray | None = None, keep_words: bool | None = None) -> tuple[tuple[Segment, ...], tuple]:
    """Filter results, line starts on voice onsets (packed music: lines stamped at a join, on
    the stem's onset), words fitted to the stem's voice (``envelope``: ``voice_level``), sung
    phrases as lines, pinyin. Words stay when ``keep_words`` (default: ``mode`` is 'required')."""
    segments, removed = check.result() if check is not None else (decoded.segments, ())
    spans = spans or ()
    if options.vad and spans and mode != "none" and not decoded.coarse:
        from .phrases import refine_onsets

        pad = (vad.MUSIC if music else vad.SPEECH).speech_pad_ms / 1000
        segments = refine_onsets(segments, spans, pad_s=pad)
    if mode == "required" and envelope is not None:
        from .phrases import fit_words_to_voice

        segments = fit_words_to_voice(segments, envelope)
    if decoded.coarse or (music and mode == "required"):
        from .phrases import split_phrases

        segments = split_phrases(segments, spans)
    if music and decoded.coarse:
        segments, dropped = _packed_lines(segments, spans, check, envelope, onsets=options.vad and mode != "none")
        removed = tuple(removed) + dropped
    if mode == "none":
        from .phrases import split_sentences

        segments = split_sentences(segments, "en" if options.task == "translate" else decoded.language)
    if not (mode == "required" if keep_words is None else keep_words) and any(s.words for s in segments):
        segments = tuple(replace(s, words=()) for s in segments)  # words were only a means
    if options.pinyin:
        from .pinyin import annotate

        segments = annotate(segments)
    return tuple(segments), tuple(removed)


def _packed_lines(lines: tuple[Segment, ...], spans: tuple[SpeechSpan, ...],
                  check: hallucination.StreamingFilter | None, envelope: np.ndarray | None,
                  onsets: bool) -> tuple[tuple[Segment, ...], tuple]:
    """The sung lines cut from packed windows: the first line after a join on the stem's
    onset, then each line judged as sequential lines are (a "Thank you." after the last
    line is still a generic phrase), but not by its word confidence: the window passed that
    floor as a whole, and a line's words lie on the stem's voice by construction. Judged
    alone, badly heard singing went (German, 0 dB: "Die Mingen lauter jedes Mal", 0.34, for
    "Wir singen lauter jedes Mal") and left its place without a line."""
    if onsets and spans:
        from .phrases import onsets_after_padding

        lines = onsets_after_padding(lines, spans, pad_s=vad.MUSIC.speech_pad_ms / 1000, envelope=envelope)
    if check is None:
        return lines, ()
    settings = replace(check.settings, min_word_probability=None)
    return hallucination.apply(lines, settings=settings, speech=check.speech)


def hear_each(model: LoadedModel, listening: Listening, spans: tuple[SpeechSpan, ...] | None,
              decode_options: DecodeOptions, options: PipelineOptions, run: Run, stem: np.ndarray | None,
              on_segment: SegmentCallback | None) -> tuple[Decoded, tuple[Segment, ...], tuple]:
    """Music heard as several signals: decode each (with word probabilities, which the choice
    needs even when the output has no words), finish each into lines, keep each line's surest
    reading (``engine.choose``). Lines stream once chosen. The first signal's decoder output
    and filter verdicts stand for the run."""
    from .choose import choose_lines

    mode = decode_options.timestamps
    worded = replace(decode_options, timestamps="required") if mode == "segments" else decode_options
    readings: list[tuple[str, tuple[Segment, ...]]] = []
    first: tuple[Decoded, tuple] | None = None
    with run.stage("transcribe"):  # each reading is finished into lines here: filter, onsets, phrases
        envelope = voice_level(stem, worded.timestamps, worded.batch_size > 1 and worded.timestamps != "none")
        for k, (name, signal) in enumerate(listening.heard):
            decoded, check = transcribe_filtered(model, signal, spans, worded, options, True, run, None,
                                                 share=(k, len(listening.heard)))
            lines, removed = finish(decoded, check, spans, options, worded.timestamps, True, envelope,
                                    keep_words=True)
            readings.append((name, lines))
            first = first or (decoded, removed)
    assert first is not None
    with run.stage("filter"):
        choice = choose_lines(readings)
    run.extra.setdefault("separation", {})["lines_from"] = choice.chosen
    segments = choice.segments if mode == "required" else tuple(replace(s, words=()) for s in choice.segments)
    for segment in segments:
        if on_segment is not None:
            on_segment(segment)
    return first[0], segments, first[1]
