"""The only module that drives faster-whisper's decoder; it speaks our types outward.

Two decoding paths share one set of options:

* sequential: the speech spans are cut out and joined (as faster-whisper's own
  ``vad_filter`` does), decoded with temperature fallback and previous-text conditioning,
  and the timestamps are mapped back onto the original timeline;
* batched: ``BatchedInferencePipeline`` joins speech into windows of at most 30 s and
  decodes ``batch_size`` windows at a time. Faster on long inputs; whether it is at least
  as accurate is measured in ``benchmarks/``, not assumed.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from .errors import ModelCorruptError, UnsupportedLanguageError
from .types import Segment, SpeechSpan, Word
from .vad import SPEECH as SPEECH_VAD
from .vad import VadSettings

SAMPLE_RATE = 16_000
TimestampMode = Literal["required", "segments", "none"]


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How to decode. ``batch_size`` 1 means the sequential path."""

    language: str | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    timestamps: TimestampMode = "required"
    beam_size: int = 5
    batch_size: int = 1
    condition_on_previous_text: bool = True
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    initial_prompt: str | None = None
    vad: VadSettings = SPEECH_VAD  # what produced the spans (the batched path re-chunks with it)


@dataclass(frozen=True, slots=True)
class Decoded:
    """Decoder output. ``coarse`` segments span whole batched windows (up to 30 s) and
    carry word timings; the pipeline splits them into lines."""

    segments: tuple[Segment, ...]
    language: str | None
    language_probability: float
    coarse: bool = False


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A Whisper model in memory, with what we need to know about it."""

    name: str
    path: str
    device: str
    compute_type: str
    whisper: object  # faster_whisper.WhisperModel

    @property
    def multilingual(self) -> bool:
        return bool(self.whisper.model.is_multilingual)  # type: ignore[attr-defined]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.whisper.supported_languages)  # type: ignore[attr-defined]


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def choose_device(device: str = "auto", compute_type: str = "auto") -> tuple[str, str]:
    """CUDA with float16 when CTranslate2 sees a GPU, else CPU with int8."""
    import ctranslate2

    if device == "auto":
        try:
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except Exception:  # a broken CUDA install must not stop CPU transcription
            device = "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str, compute_type: str, cpu_threads: int, num_workers: int):
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(
            path, device=device, compute_type=compute_type, cpu_threads=cpu_threads, num_workers=num_workers,
            local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelCorruptError(
            f"the Whisper model in {path} failed to load ({exc}); verify it with 'tft models list' "
            "or fetch it again with 'tft models pull'"
        ) from exc


def load_model(
    name: str, path: str | Path, *, device: str = "auto", compute_type: str = "auto", cpu_threads: int = 0,
    parallel: int = 1, cached: bool = True,
) -> LoadedModel:
    """Load (once per process and configuration) a CTranslate2 Whisper model from a directory.

    ``parallel`` is how many threads may transcribe with it at the same time (one per
    in-process server worker); the weights are shared, not copied. ``cached=False`` loads
    a fresh copy that this module does not keep, so its owner can unload it (the server's
    model cache).
    """
    device, compute_type = choose_device(device, compute_type)
    threads = cpu_threads or available_cores()
    loader = _load if cached else _load.__wrapped__
    whisper = loader(str(path), device, compute_type, threads, max(1, parallel))
    return LoadedModel(name=name, path=str(path), device=device, compute_type=compute_type, whisper=whisper)


def known_language_codes() -> frozenset[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def detect_language(model: LoadedModel, audio: np.ndarray, spans: tuple[SpeechSpan, ...],
                    *, windows: int = 2) -> tuple[str, float] | None:
    """Language of the voiced parts of ``audio`` (up to ``windows`` x 30 s of them), or None
    when there is no voice. Used on a song's vocal stem: over the mix, the band misleads
    Whisper's language head (a 0 dB English song came out as Welsh)."""
    if not spans or not model.multilingual:
        return None
    pieces = [audio[int(s.start * SAMPLE_RATE): int(s.end * SAMPLE_RATE)] for s in spans]
    voiced = np.concatenate(pieces)[: windows * 30 * SAMPLE_RATE]
    if voiced.size < SAMPLE_RATE // 2:
        return None
    language, probability, _ = model.whisper.detect_language(  # type: ignore[attr-defined]
        audio=voiced, language_detection_segments=max(1, -(-voiced.size // (30 * SAMPLE_RATE))))
    return language, float(probability)


def validate_language(model: LoadedModel, language: str | None) -> str | None:
    """Refuse codes Whisper does not know, and languages this model cannot transcribe."""
    if language is None:
        return None
    code = language.strip().lower()
    if code not in known_language_codes():
        raise UnsupportedLanguageError(
            f"'{language}' is not a language code Whisper knows; use an ISO 639-1 code such as en, fr or zh"
        )
    if code not in model.languages:
        raise UnsupportedLanguageError(
            f"model {model.name} is English-only and cannot transcribe '{code}'; "
            "choose a multilingual model such as base"
        )
    return code


def _convert(seg, index: int, timestamps: TimestampMode, duration: float) -> Segment:
    words = ()
    if timestamps == "required" and seg.words:
        words = tuple(Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in seg.words)
    start, end = float(seg.start), float(seg.end)
    if timestamps == "none":
        start, end = 0.0, duration
    return Segment(
        id=index,
        start=start,
        end=min(end, duration) if duration else end,
        text=seg.text,
        words=words,
        avg_logprob=float(seg.avg_logprob),
        no_speech_prob=float(seg.no_speech_prob),
        compression_ratio=float(seg.compression_ratio),
        seek=int(getattr(seg, "seek", 0) or 0),
        tokens=tuple(int(t) for t in (getattr(seg, "tokens", None) or ())),
        temperature=_temperature(seg),
    )


def _temperature(seg) -> float | None:
    value = getattr(seg, "temperature", None)
    return None if value is None else float(value)


def transcribe(
    model: LoadedModel,
    audio: np.ndarray,
    spans: tuple[SpeechSpan, ...] | None,
    options: DecodeOptions,
    *,
    on_segment: Callable[[Segment], None] | None = None,
) -> Decoded:
    """Decode ``audio`` (16 kHz mono), restricted to ``spans`` when given.

    ``on_segment`` receives each segment (original timeline) as soon as it is decoded; it
    may raise ``Cancelled`` to stop between segments.
    """
    duration = audio.shape[0] / SAMPLE_RATE
    language = validate_language(model, options.language)
    if spans is not None and not spans:
        return Decoded((), language or (None if model.multilingual else "en"), 1.0 if language else 0.0)
    common = dict(language=language, task=options.task, beam_size=options.beam_size,
                  initial_prompt=options.initial_prompt)
    batched = options.batch_size > 1
    # Batched decoding with timestamp tokens measured far less accurate (WER 0.07 -> 0.15 on
    # the long-form benchmark), so batches decode text only and timing comes from word
    # alignment, which costs ~10% and gives the pipeline what it needs to cut lines.
    word_level = options.timestamps == "required" or (batched and options.timestamps != "none")
    if batched:
        raw, info = _batched(model, audio, spans, options, dict(common, word_timestamps=word_level,
                                                                   without_timestamps=True))
    else:
        raw, info = _sequential(model, audio, spans, options, dict(
            common, word_timestamps=word_level, without_timestamps=options.timestamps == "none"))
    mode = "required" if word_level else options.timestamps
    segments: list[Segment] = []
    for seg in raw:
        segments.append(_convert(seg, len(segments), mode, duration))
        if on_segment is not None:
            on_segment(segments[-1])
    return Decoded(tuple(segments), info.language, float(info.language_probability), coarse=batched and word_level)


def _sequential(model: LoadedModel, audio, spans, options: DecodeOptions, common: dict):
    from faster_whisper.transcribe import restore_speech_timestamps
    from faster_whisper.vad import collect_chunks

    chunks = None
    if spans is not None:
        chunks = [
            {"start": int(s.start * SAMPLE_RATE), "end": int(min(s.end * SAMPLE_RATE, audio.shape[0]))}
            for s in spans
        ]
        pieces, _ = collect_chunks(audio, chunks)
        audio = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    segments, info = model.whisper.transcribe(  # type: ignore[attr-defined]
        audio,
        vad_filter=False,
        temperature=list(options.temperatures),
        condition_on_previous_text=options.condition_on_previous_text,
        **common,
    )
    if chunks is not None:
        segments = restore_speech_timestamps(segments, chunks, SAMPLE_RATE)
    return segments, info


def _batched(model: LoadedModel, audio, spans, options: DecodeOptions, common: dict):
    """BatchedInferencePipeline over VAD chunks joined into <=30 s windows.

    The pipeline's own chunking (speech pieces concatenated with the silences between them
    removed) measured clearly more accurate than decoding contiguous windows, so it runs
    its VAD pass with our settings; silero costs ~0.1% of the decode time, which is the
    price of not reimplementing the pipeline's private chunking.
    """
    from faster_whisper import BatchedInferencePipeline

    pipeline = BatchedInferencePipeline(model.whisper)
    kwargs = dict(batch_size=options.batch_size, temperature=options.temperatures[0], **common)
    if spans is None:  # no VAD: fixed 30 s windows over everything
        total = audio.shape[0] / SAMPLE_RATE
        clips = [{"start": s, "end": min(s + 30.0, total)} for s in np.arange(0.0, total, 30.0)]
        return pipeline.transcribe(audio, clip_timestamps=clips, **kwargs)
    v = options.vad
    return pipeline.transcribe(
        audio,
        vad_filter=True,
        vad_parameters=dict(threshold=v.threshold, min_speech_duration_ms=v.min_speech_ms,
                            min_silence_duration_ms=v.min_silence_ms, speech_pad_ms=v.speech_pad_ms),
        **kwargs,
    )
