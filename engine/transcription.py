"""The only module that drives faster-whisper's decoder; it speaks our types outward.

Two decoding paths share one set of options:

* sequential: the speech spans are cut out and joined (as faster-whisper's own
  ``vad_filter`` does), decoded with temperature fallback and previous-text conditioning,
  and the timestamps are mapped back onto the original timeline; in music, a voiced span
  the decoder passed over is decoded again (``heard_again``);
* packed (``batch_size`` > 1: music, and long speech): voice packed into full 30 s windows
  (``engine.windows``), decoded text-only ``batch_size`` windows at a time, each window
  conditioned on the text before it, with the same fallback; lines are cut from word
  alignment. Why each choice, with the measurements: ``engine.packed``.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal

import numpy as np

from .errors import DeviceUnavailableError, ModelCorruptError, UnsupportedLanguageError
from .types import Segment, SpeechSpan, Word

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
TimestampMode = Literal["required", "segments", "none"]


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How to decode. ``batch_size`` 1 means the sequential path; more, the packed path with
    up to that many windows per model call."""

    language: str | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    timestamps: TimestampMode = "required"
    beam_size: int = 5
    batch_size: int = 1
    condition_on_previous_text: bool = True
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    initial_prompt: str | None = None
    hear_missed: bool = False  # sequential: decode again a voiced span passed over whole (music)
    # packed: a window whose text loops (compression ratio) is decoded again at the next
    # temperatures. Music gated on its stem, filtered and timed turns this off: the filter
    # rejects a looped window (its compression rule, 2.2 for music) and it is heard again line
    # by line (``hearing.rehear_rejected``), so the retries (5 samplings of up to 448 tokens
    # each) only cost time (French hook song: 40 s of its 57).
    retry_loops: bool = True


@dataclass(frozen=True, slots=True)
class Decoded:
    """Decoder output. ``coarse`` segments span whole packed windows (up to 30 s) and
    carry word timings (``windows``: where each window's audio begins and ends on the
    original timeline); the pipeline splits them into lines (lines of a window heard again
    after the filter rejected it may sit among them: ``hearing.rehear_rejected``)."""

    segments: tuple[Segment, ...]
    language: str | None
    language_probability: float
    coarse: bool = False
    windows: tuple[tuple[float, float], ...] = ()  # packed: each window's first and last moment


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A Whisper model in memory, with what we need to know about it."""

    name: str
    path: str
    device: str
    compute_type: str
    whisper: object  # faster_whisper.WhisperModel
    extra_lanes: tuple = ()  # more faster_whisper.WhisperModel copies for the packed path (``lanes``)

    @property
    def lanes(self) -> tuple:
        """The models the packed decoder runs its streams on: on a CPU, two decoders side by
        side use the cores better than one (see ``packed_lanes``). The first keeps every thread
        (the sequential path uses it too); each copy after it has one."""
        return (self.whisper, *self.extra_lanes)

    @property
    def multilingual(self) -> bool:
        return bool(self.whisper.model.is_multilingual)  # type: ignore[attr-defined]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.whisper.supported_languages)  # type: ignore[attr-defined]


SAMPLING_SEED = 0


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def cuda_device_count() -> int:
    """CUDA devices CTranslate2 counts, after making the gpu extra's libraries visible."""
    from . import cuda

    cuda.prepare()
    import ctranslate2

    try:
        return ctranslate2.get_cuda_device_count()
    except Exception:  # a broken CUDA install must not stop CPU transcription
        return 0


def choose_device(device: str = "auto", compute_type: str = "auto", *,
                  probe: Callable[[str, str], None] | None = None, cuda_count: int | None = None) -> tuple[str, str]:
    """CUDA with float16 when a GPU is there and works, else CPU with int8.

    Counting devices is not enough: the CTranslate2 wheel also needs CUDA 12's cuBLAS and
    cuDNN 9 (the ``gpu`` extra), so ``probe(device, compute_type)`` must also succeed: the
    model loader passes one that loads the model there and encodes one silent window. When
    CUDA is counted but the probe fails, 'auto' logs why and picks the CPU; an explicit
    'cuda' raises ``DeviceUnavailableError`` with the same sentence.
    """
    from . import cuda

    if device in ("auto", "cuda"):
        count = cuda_device_count() if cuda_count is None else cuda_count
        chosen = "cuda" if count > 0 else "cpu"
        if device == "cuda" and count == 0:
            raise DeviceUnavailableError("device 'cuda' was asked for but CTranslate2 sees no CUDA device")
        if chosen == "cuda" and probe is not None:
            try:
                probe("cuda", "float16" if compute_type == "auto" else compute_type)
            except Exception as exc:  # noqa: BLE001 - any failure means: not usable here
                message = cuda.unusable_message(exc)
                if device == "cuda":
                    raise DeviceUnavailableError(message) from exc
                log.warning("%s; transcribing on the CPU", message)
                chosen, compute_type = "cpu", "auto"
        device = chosen
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


@functools.lru_cache(maxsize=4)
def _open(path: str, device: str, compute_type: str, cpu_threads: int, num_workers: int):
    """Load the model; on a GPU also encode one silent window, which runs cuBLAS and cuDNN."""
    from faster_whisper import WhisperModel

    whisper = WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                           num_workers=num_workers, local_files_only=True)
    if device == "cuda":
        whisper.encode(np.zeros((1, whisper.model.n_mels, 3000), np.float32))
    return whisper


def _load(opener, path: str, device: str, compute_type: str, cpu_threads: int, num_workers: int):
    try:
        return opener(path, device, compute_type, cpu_threads, num_workers)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelCorruptError(
            f"the Whisper model in {path} failed to load ({exc}); verify it with 'tft models list' "
            "or fetch it again with 'tft models pull'"
        ) from exc


def load_model(
    name: str, path: str | Path, *, device: str = "auto", compute_type: str = "auto", cpu_threads: int = 0,
    parallel: int = 1, cached: bool = True, lanes: int | str = "auto",
) -> LoadedModel:
    """Load (once per process and configuration) a CTranslate2 Whisper model from a directory.

    ``parallel`` is how many threads may transcribe with it at the same time (one per
    in-process server worker); the weights are shared, not copied. ``cached=False`` loads
    a fresh copy that this module does not keep, so its owner can unload it (the server's
    model cache). ``lanes``: how many decoders the packed path runs side by side ('auto':
    ``packed_lanes``); each lane after the first is its own copy of the model on one thread.
    """
    threads = cpu_threads or available_cores()
    workers = max(1, parallel)
    _seed_sampler()
    opener = _open if cached else _open.__wrapped__
    probed: dict = {}

    def probe(dev: str, ct: str) -> None:  # the probed model is the one used
        probed[(dev, ct)] = opener(str(path), dev, ct, threads, workers)

    device, compute_type = choose_device(device, compute_type, probe=probe)
    whisper = probed.get((device, compute_type)) or _load(opener, str(path), device, compute_type, threads, workers)
    count = packed_lanes(device, threads) if lanes == "auto" else max(1, int(lanes))
    extra = tuple(_load(opener, str(path), device, compute_type, max(1, threads // count), 1) for _ in range(count - 1))
    return LoadedModel(name=name, path=str(path), device=device, compute_type=compute_type, whisper=whisper,
                       extra_lanes=extra)


def _seed_sampler() -> None:
    """Temperature fallback samples, and CTranslate2 seeds its sampler (one generator per
    thread, seeded on first use) from a random device unless told: a hard song came out
    differently on every run of the same command. Seeded before the first decode, the same
    command on the same file gives the same transcript. (A later reseed does not reach the
    generators already made, so a long-running server's samples still depend on what it
    decoded before.)"""
    import ctranslate2

    ctranslate2.set_random_seed(SAMPLING_SEED)


class PendingModel:
    """A model loading in the background, so the first file's decoding, audio-type detection
    and VAD (single-threaded, seconds on long files) overlap the load instead of waiting for it.
    ``result()`` waits and re-raises a load error (``ModelCorruptError``).

    The load runs on one long-lived thread (``_LOADER``): a CTranslate2 model built on a
    thread that then exits decodes with 3-5x the CPU time (measured on this 2-core machine;
    the OpenMP state goes with the thread), so the loading thread is never let go.
    """

    def __init__(self, name: str, path: str | Path, **kwargs) -> None:
        self.name = name
        self._future = _loader().submit(load_model, name, path, **kwargs)

    def result(self) -> LoadedModel:
        return self._future.result()


@functools.cache
def _loader():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="tft-model-load")


def ready(model: "LoadedModel | PendingModel") -> LoadedModel:
    return model.result() if isinstance(model, PendingModel) else model


def check_language_code(language: str | None) -> str | None:
    """The part of ``validate_language`` that needs no model: fail before any decoding."""
    if language is None:
        return None
    code = language.strip().lower()
    if code not in known_language_codes():
        raise UnsupportedLanguageError(
            f"'{language}' is not a language code Whisper knows; use an ISO 639-1 code such as en, fr or zh"
        )
    return code


def packed_batch(device: str) -> int:
    """Windows per model call on the packed path. On a CPU (2 cores, base) the decoder costs
    0.63 s per window in calls of 8 against 0.78 s in calls of 4, the encoder the same; fewer
    windows are then conditioned on the text before them, at no measured cost (long-form WER
    4.7% and 7.5% against 4.7% and 7.6% with 4). A GPU wants wider calls still."""
    return 16 if device == "cuda" else 8


def packed_lanes(device: str, threads: int) -> int:
    """Decoders the packed path runs side by side. On a CPU, CTranslate2's beam search on two
    threads leaves much of the second core idle (its steps are small); two decoders on one
    thread each, each with its own streams of windows, did the same encoder and decoder work
    in 0.82x the time (8 windows of the long-form benchmark, base, 2 cores; the model's own
    second worker would share the weights, but a sampled fallback would then land on either
    worker's random generator, and the same command must give the same transcript). A GPU
    batches instead."""
    return 2 if device == "cpu" and threads >= 2 else 1


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
    code = check_language_code(language)
    if code is None:
        return None
    if code not in model.languages:
        raise _english_only(model.name, code)
    return code


def check_model_language(name: str, language: str | None) -> None:
    """``validate_language`` before the model has loaded, from Whisper's naming (``*.en``
    models are English-only): a wrong ``--language`` fails before minutes of separation."""
    code = check_language_code(language)
    if code is not None and code != "en" and Path(name).name.endswith(".en"):
        raise _english_only(name, code)


def _english_only(name: str, code: str) -> UnsupportedLanguageError:
    return UnsupportedLanguageError(f"model {name} is English-only and cannot transcribe '{code}'; "
                                    "choose a multilingual model such as base")


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
    on_position: Callable[[float], None] | None = None,
) -> Decoded:
    """Decode ``audio`` (16 kHz mono), restricted to ``spans`` when given.

    ``on_segment`` receives each segment (original timeline) as soon as it is decoded; it
    may raise ``Cancelled`` to stop between segments. ``on_position`` receives how far the
    decoder has got (seconds, original timeline), before each segment: progress, which a
    text-only segment (it spans the file) cannot tell.
    """
    duration = audio.shape[0] / SAMPLE_RATE
    language = validate_language(model, options.language)
    if spans is not None and not spans:
        return Decoded((), language or (None if model.multilingual else "en"), 1.0 if language else 0.0)
    packed = options.batch_size > 1
    # Packed windows decode text only (see _packed), so lines need word timings.
    word_level = options.timestamps == "required" or (packed and options.timestamps != "none")
    if packed:
        from .packed import decode_packed

        return decode_packed(model, audio, spans, replace(options, language=language), word_level, on_segment,
                             on_position)
    common = dict(language=language, task=options.task, beam_size=options.beam_size,
                  initial_prompt=options.initial_prompt)
    settings = dict(common, word_timestamps=word_level, without_timestamps=options.timestamps == "none")
    raw, info = _sequential(model, audio, spans, options, settings)
    if options.hear_missed and spans is not None and options.timestamps != "none":
        again = dict(settings, language=info.language)  # not detected again on a short piece
        raw = heard_again(raw, spans, lambda missed: _sequential(model, audio, missed, options, again)[0])
    mode = "required" if word_level else options.timestamps
    segments: list[Segment] = []
    for seg in raw:
        if on_position is not None:
            on_position(min(float(seg.end), duration))
        segments.append(_convert(seg, len(segments), mode, duration))
        if on_segment is not None:
            on_segment(segments[-1])
    return Decoded(tuple(segments), info.language, float(info.language_probability))


# A voiced span at least this long that the decoder passed over entirely is decoded again,
# alone. Whisper sometimes ends a 30 s window early (a last lone timestamp token), and the
# decoder then seeks past the rest of the window: with the voiced spans joined, a song's
# chorus after a long break lands right behind its verse and was lost whole that way.
MISSED_SPAN_S = 1.0


def heard_again(segments: Iterable, spans: tuple[SpeechSpan, ...],
                redo: Callable[[tuple[SpeechSpan, ...]], Iterable]) -> Iterator:
    """``segments`` (in time order) with, in their place, a second decode of the voiced spans
    that none of them covers (``covers``). ``redo`` decodes spans joined, starting a fresh window; spans
    missed side by side go together, so the extra work is at most one more pass over the
    audio (a file where nothing was heard at all), and nothing is decoded a third time."""
    waiting = [k for k, s in enumerate(spans) if s.duration >= MISSED_SPAN_S]  # indices into spans
    heard: set[int] = set()

    def missed_before(t: float) -> Iterator:
        group = []
        while waiting and spans[waiting[0]].end <= t:
            k = waiting.pop(0)
            if k not in heard:
                group.append(spans[k])
        if group:
            log.info("decoding %d voiced span(s) from %.1f s again: the decoder passed over them",
                     len(group), group[0].start)
            yield from redo(tuple(group))

    for seg in segments:
        yield from missed_before(float(seg.start))
        heard.update(k for k in waiting if covers(spans[k], float(seg.start), float(seg.end)))
        yield seg
    yield from missed_before(float("inf"))


def covers(span: SpeechSpan, start: float, end: float) -> bool:
    """Whether a line from ``start`` to ``end`` heard ``span``: it covers half a second of it
    (or half of a shorter span). A line that runs a few milliseconds past a join has not
    heard the next span."""
    return min(span.end, end) - max(span.start, start) >= min(0.5, span.duration / 2)


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
