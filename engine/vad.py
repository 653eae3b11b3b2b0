"""Where speech (or singing) happens, from the silero model that faster-whisper bundles.

The ONNX model ships inside the faster-whisper wheel, so this needs no download. Settings
are deliberately generous at the edges (low threshold, wide padding): a clipped word costs
accuracy, while a little extra silence costs only a few milliseconds of decoding and the
hallucination filter removes anything invented there.
"""

from __future__ import annotations

import functools
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .types import SpeechSpan

SAMPLE_RATE = 16_000


@dataclass(frozen=True, slots=True)
class VadSettings:
    """Silero parameters, in the units a person would tune them in.

    threshold: speech probability above which a 32 ms window counts as speech.
    min_speech_ms: shorter detections are dropped (clicks, coughs).
    min_silence_ms: a pause must last this long to split two spans.
    speech_pad_ms: added on both sides of every span, so onsets and tails survive.
    max_speech_s: longer spans are split at a pause before this length (silero picks the
        last silence over 98 ms), so every span fits one Whisper window for batched decoding.
    """

    threshold: float = 0.4
    min_speech_ms: int = 120
    min_silence_ms: int = 800
    speech_pad_ms: int = 400
    max_speech_s: float = 30.0


# Speech: favour recall; real words must not be cut.
SPEECH = VadSettings()
# Singing, run on a separated vocal stem. Silero scores sung phrases far lower than speech
# (0.2-0.8 on the real sung excerpt, with dips to 0.1 on held vowels), while a real
# separator leaves the stem near 0.0 where nobody sings; so the threshold is low, and long
# pauses are needed to split a phrase, which bridges sustained notes and melisma.
MUSIC = VadSettings(threshold=0.3, min_speech_ms=250, min_silence_ms=1500, speech_pad_ms=300)


def detect_speech(audio: np.ndarray, settings: VadSettings = SPEECH) -> tuple[SpeechSpan, ...]:
    """Return speech spans in seconds for 16 kHz mono float32 audio."""
    if audio.size == 0:
        return ()
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        threshold=settings.threshold,
        min_speech_duration_ms=settings.min_speech_ms,
        min_silence_duration_ms=settings.min_silence_ms,
        speech_pad_ms=settings.speech_pad_ms,
        max_speech_duration_s=settings.max_speech_s,
    )
    stamps = get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)
    return tuple(SpeechSpan(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps)


def surest_voice(audio: np.ndarray, spans: tuple[SpeechSpan, ...], *, seconds: float = 60.0,
                 least_s: float = 2.0) -> tuple[SpeechSpan, ...]:
    """The voice of a vocal stem to tell its language by: VAD at speech's settings (a higher
    threshold, 0.4 against 0.3, and pauses of 0.8 s split where music needs 1.5 s; its
    padding is wider, 0.4 s against 0.3) over the stretch of the stem that holds the first
    ``seconds`` of ``spans`` (music's spans), or ``spans`` when that finds under ``least_s``
    of voice (silero scores singing low). The scan starts at the track's start, so a track
    whose first minute of voice comes late costs one more VAD pass over that stretch (silero
    takes well under a second a minute). Started at the first span instead, silero's state
    differs and so do its spans: the language changed on 4 of the 40 fr/es/de/it songs, one
    more told wrong than right, so the scan stays as measured.

    Music's spans keep the band's leakage between phrases, and Whisper's language head
    hears it. Told from each song's first 30 s of voice (the 20 French and 8 German songs
    at 0 and -6 dB of the song corpus's full set, and its 48 Spanish, Italian and English
    ones), French was right on 16 of 20 over music's spans (Breton, Thai, Nynorsk, English
    otherwise) and on 19 over these; the others were right either way."""
    if not spans:
        return ()
    end, total = spans[-1].end, 0.0
    for span in spans:
        total += span.duration
        if total >= seconds:
            end = span.end
            break
    strict = detect_speech(audio[: int(end * SAMPLE_RATE)], SPEECH)
    return strict if speech_seconds(strict) >= least_s else spans


def detect_speech_aside(audio: np.ndarray, settings: VadSettings = SPEECH) -> Future:
    """``detect_speech`` in a background thread, for a caller with other single-threaded work
    to do meanwhile (the pipeline's speech/music detector: on 305 s, VAD 0.9 s and the detector
    0.3-0.9 s, one after the other before). For music the pipeline leaves the result unused:
    its VAD runs on the vocal stem."""
    return _aside().submit(detect_speech, audio, settings)


@functools.cache
def _aside() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="tft-vad")


def speech_seconds(spans: tuple[SpeechSpan, ...]) -> float:
    return float(sum(s.duration for s in spans))


def overlap(start: float, end: float, spans: tuple[SpeechSpan, ...]) -> float:
    """Seconds of [start, end] covered by the spans (spans are sorted and disjoint)."""
    total = 0.0
    for span in spans:
        if span.end <= start:
            continue
        if span.start >= end:
            break
        total += min(end, span.end) - max(start, span.start)
    return total
