"""The one module that composes the engine: decode -> restore -> detect -> separate -> vad
-> transcribe -> filter -> phrases/pinyin -> Transcript.

It knows nothing of HTTP, databases or environment variables: the caller passes
``PipelineOptions`` (what the user asked for) and ``Resources`` (where the models are),
and may pass a progress callback, which is also the cancellation checkpoint: raising
``Cancelled`` from it stops the run between segments or separation chunks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from . import hallucination, vad
from .audio import WHISPER_RATE, decode
from .errors import AudioTooLongError, InvalidOptionError, ModelNotAvailable
from .transcription import DecodeOptions, LoadedModel, load_model, transcribe
from .types import AudioTypeDecision, SeparationStatus, Transcript

log = logging.getLogger(__name__)

AUDIO_TYPES = ("auto", "speech", "music")
TIMESTAMP_MODES = ("auto", "required", "none")
_warned_no_separation = False


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """What the user asked for. Every field is documented in the README's option table.

    timestamps: 'required' (segment + word timing), 'none' (text-only decoding; every
        segment spans the whole file), or 'auto': ``auto_timestamps``, which defaults to
        'segments' (real segment timing without word alignment: the same decoding raw
        faster-whisper does, since word alignment moves Whisper's window boundaries).
    batch_size: 0 picks batched decoding (8 windows at a time) for inputs with at least
        ``batch_threshold_s`` of speech, else sequential; 1 forces sequential. Measured in
        benchmarks/results on 305 s of long-form: with base, batched WER 5.0% against 5.2%
        sequential (and 5.0% raw), 1.8x faster; with tiny, batched 7.0% against 5.8%
        sequential, so the tiny models stay sequential. Short clips stay sequential (batched
        decoding loses the context that keeps "one, two, three" from becoming "1-2-3").
    separation: 'auto' separates music when demucs weights are installed; 'always'
        (MUSIC_MODE_FORCE_VOCAL_SEPARATION) makes missing weights an error; 'never' skips.
    music_source: what Whisper hears in music mode: the original 'mix' or the 'vocals'
        stem. VAD always runs on the stem when there is one.
    """

    language: str | None = None
    audio_type: Literal["auto", "speech", "music"] = "auto"
    timestamps: Literal["auto", "required", "none"] = "auto"
    auto_timestamps: Literal["required", "segments", "none"] = "segments"
    pinyin: bool = False
    vintage: bool = False
    beam_size: int = 5
    batch_size: int = 0
    batch_threshold_s: float = 120.0
    vad: bool = True
    hallucination_filter: bool = True
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    separation: Literal["auto", "always", "never"] = "auto"
    music_source: Literal["mix", "vocals"] = "mix"
    separation_batch_size: int = 0
    separation_precision: Literal["float32", "bfloat16"] = "float32"
    max_duration_s: float | None = None

    def validate(self) -> "PipelineOptions":
        if self.audio_type not in AUDIO_TYPES:
            raise InvalidOptionError(f"audio_type must be one of {', '.join(AUDIO_TYPES)}, not '{self.audio_type}'")
        if self.timestamps not in TIMESTAMP_MODES:
            raise InvalidOptionError(f"timestamps must be one of {', '.join(TIMESTAMP_MODES)}, not '{self.timestamps}'")
        if self.separation not in ("auto", "always", "never"):
            raise InvalidOptionError(f"separation must be auto, always or never, not '{self.separation}'")
        if self.music_source not in ("mix", "vocals"):
            raise InvalidOptionError(f"music_source must be mix or vocals, not '{self.music_source}'")
        if self.auto_timestamps not in ("required", "segments", "none"):
            raise InvalidOptionError(f"the default timestamps mode must be required, segments or none, not '{self.auto_timestamps}'")
        if self.beam_size < 1 or self.batch_size < 0:
            raise InvalidOptionError("beam_size must be at least 1 and batch_size at least 0")
        return self

    @property
    def effective_timestamps(self) -> Literal["required", "segments", "none"]:
        return self.auto_timestamps if self.timestamps == "auto" else self.timestamps

    def timestamps_for(self, music: bool) -> Literal["required", "segments", "none"]:
        """Music needs word timings for lines that follow sung phrases (and word-level LRC),
        so 'auto' means 'required' there unless the default is text-only."""
        mode = self.effective_timestamps
        return "required" if music and self.timestamps == "auto" and mode == "segments" else mode


@dataclass(frozen=True, slots=True)
class Resources:
    """Where the models are; resolved by the caller through ``models``."""

    whisper_name: str
    whisper_path: Path
    demucs_repo: Path | None = None
    demucs_name: str = "htdemucs"
    cache_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    stage: str
    stage_fraction: float
    fraction: float
    audio_done_s: float
    audio_total_s: float


ProgressCallback = Callable[[Progress], None]

_STAGE_WEIGHTS = {"decode": 0.04, "restore": 0.03, "detect": 0.01, "separate": 0.45, "vad": 0.02,
                  "transcribe": 0.44, "filter": 0.01}


class _Reporter:
    """Turns per-stage progress into one overall fraction over the stages that will run."""

    def __init__(self, callback: ProgressCallback | None, stages: list[str]) -> None:
        self.callback = callback
        self.duration = 0.0
        self.set_stages(stages)

    def set_stages(self, stages: list[str]) -> None:
        total = sum(_STAGE_WEIGHTS[s] for s in stages)
        self.weights = {s: _STAGE_WEIGHTS[s] / total for s in stages}
        self.order = stages

    def __call__(self, stage: str, fraction: float) -> None:
        if self.callback is None:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        done = sum(self.weights[s] for s in self.order[: self.order.index(stage)]) if stage in self.order else 0.0
        overall = done + self.weights.get(stage, 0.0) * fraction
        self.callback(Progress(stage, fraction, overall, overall * self.duration, self.duration))


def _plan(options: PipelineOptions, music: bool | None, separate: bool) -> list[str]:
    stages = ["decode"]
    if options.vintage:
        stages.append("restore")
    if options.audio_type == "auto":
        stages.append("detect")
    if separate or (music is None and options.separation != "never"):
        stages.append("separate")
    stages += ["vad", "transcribe", "filter"]
    return stages


def decide_audio_type(audio: np.ndarray, options: PipelineOptions) -> AudioTypeDecision:
    if options.audio_type in ("speech", "music"):
        return AudioTypeDecision(options.audio_type, "user", {}, "requested")  # type: ignore[arg-type]
    from .detect import classify

    return classify(audio)


def _separate(
    path: Path, options: PipelineOptions, resources: Resources, report: _Reporter
) -> tuple[np.ndarray | None, SeparationStatus, dict]:
    """Vocal stem (16 kHz mono) or None, with the status recorded in the JSON."""
    global _warned_no_separation
    if options.separation == "never":
        return None, "disabled", {}
    from .separation import SeparationOptions, separate_file, torch_available

    missing = None
    if not torch_available():
        missing = "torch and demucs (the music extra) are not installed"
    elif resources.demucs_repo is None:
        missing = f"no {resources.demucs_name} weights are installed (tft models pull {resources.demucs_name})"
    if missing is not None:
        if options.separation == "always":
            raise ModelNotAvailable(f"vocal separation was forced (MUSIC_MODE_FORCE_VOCAL_SEPARATION) but {missing}")
        if not _warned_no_separation:
            log.warning("music mode without vocal separation: %s; transcribing the mix with music-tuned "
                        "VAD and filtering", missing)
            _warned_no_separation = True
        return None, "unavailable", {"reason": missing}
    sep_options = SeparationOptions(batch_size=options.separation_batch_size, precision=options.separation_precision)
    result = separate_file(
        path,
        repo=resources.demucs_repo,  # type: ignore[arg-type]
        model_name=resources.demucs_name,
        options=sep_options,
        cache_dir=resources.cache_dir / "stems" if resources.cache_dir else None,
        progress=lambda done, total: report("separate", done / max(total, 1)),
    )
    info = {"model": resources.demucs_name, "segments": result.segments, "cached": result.cached,
            "device": sep_options.resolved_device()}
    return result.audio, ("cached" if result.cached else "separated"), info


def _fit(stem: np.ndarray, length: int) -> np.ndarray:
    if stem.size >= length:
        return stem[:length]
    return np.pad(stem, (0, length - stem.size))


def run(
    path: str | Path,
    options: PipelineOptions,
    resources: Resources,
    *,
    progress: ProgressCallback | None = None,
    model: LoadedModel | None = None,
) -> Transcript:
    """Transcribe one file. Raises EngineError subclasses for anything the user can fix."""
    options.validate()
    path = Path(path)
    timings: dict[str, float] = {}
    report = _Reporter(progress, _plan(options, None, False))

    def timed(stage: str):
        class _T:
            def __enter__(self_inner):
                report(stage, 0.0)
                self_inner.t = time.perf_counter()

            def __exit__(self_inner, *exc):
                timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - self_inner.t
                if exc[0] is None:
                    report(stage, 1.0)
                return False

        return _T()

    if model is None:
        model = load_model(resources.whisper_name, resources.whisper_path, device=options.device,
                           compute_type=options.compute_type, cpu_threads=options.cpu_threads)
    from .transcription import validate_language

    language = validate_language(model, options.language)  # fail fast, before decoding

    with timed("decode"):
        audio = decode(path)
    duration = audio.size / WHISPER_RATE
    report.duration = duration
    if options.max_duration_s is not None and duration > options.max_duration_s:
        raise AudioTooLongError(
            f"'{path.name}' is {duration / 60:.1f} minutes long; this installation accepts at most "
            f"{options.max_duration_s / 60:.0f} minutes"
        )
    extra: dict = {}
    if options.vintage:
        from .restore import restore

        with timed("restore"):
            audio, restoration = restore(audio)
        extra["vintage"] = restoration.as_dict()

    with timed("detect") if options.audio_type == "auto" else _nullctx():
        decision = decide_audio_type(audio, options)
    music = decision.audio_type == "music"
    report.set_stages(_plan(options, music, music and options.separation != "never"))

    stem, separation = None, "not_needed"
    if music:
        with timed("separate"):
            stem, separation, extra["separation"] = _separate(path, options, resources, report)
        if stem is not None:
            stem = _fit(stem, audio.size)
    vad_input = stem if stem is not None else audio
    asr_input = stem if (stem is not None and options.music_source == "vocals") else audio

    mode = options.timestamps_for(music)
    vad_settings = vad.MUSIC if music else vad.SPEECH
    with timed("vad"):
        spans = vad.detect_speech(vad_input, vad_settings)
        if stem is not None:
            extra["separation"]["vad_source"] = "stem"
            if not spans and (mix_spans := vad.detect_speech(audio, vad_settings)):
                # The stem holds no voice at all but the mix does: separation failed on this
                # track (or the weights are not real). Better the mix's voice than nothing.
                log.warning("no voice found in the separated vocals of '%s'; using voice activity of the mix", path.name)
                spans = mix_spans
                extra["separation"]["vad_source"] = "mix (no voice found in the stem)"
    speech_s = vad.speech_seconds(spans)
    batch = options.batch_size
    if batch == 0:
        long_input = (speech_s if options.vad else duration) >= options.batch_threshold_s
        batch = 8 if long_input and not resources.whisper_name.startswith("tiny") else 1
    decode_options = DecodeOptions(
        language=language,
        timestamps=mode,
        beam_size=options.beam_size,
        batch_size=batch,
        condition_on_previous_text=not music,
        vad=vad_settings,
    )
    with timed("transcribe"):
        decoded = transcribe(
            model,
            asr_input,
            spans if options.vad else None,
            decode_options,
            on_segment=lambda end: report("transcribe", end / duration if duration else 1.0),
        )
    segments, removed = decoded.segments, ()
    with timed("filter"):
        if options.hallucination_filter:
            segments, removed = hallucination.apply(
                segments,
                settings=hallucination.MUSIC if music else hallucination.SPEECH,
                speech=spans if mode != "none" else None,
            )
        if options.vad and mode != "none" and not decoded.coarse:
            from .phrases import refine_onsets

            segments = refine_onsets(segments, spans, pad_s=vad_settings.speech_pad_ms / 1000)
        if decoded.coarse or (music and mode == "required"):
            from .phrases import split_phrases

            segments = split_phrases(segments, spans)
        if mode != "required" and any(s.words for s in segments):
            segments = tuple(replace(s, words=()) for s in segments)  # words were only a means
        if options.pinyin:
            from .pinyin import annotate

            segments = annotate(segments)
    used = asdict(options)
    used.update(
        timestamps_effective=mode,
        batch_size_effective=batch,
        model=resources.whisper_name,
        **({"extra": extra} if extra else {}),
    )
    return Transcript(
        segments=tuple(segments),
        language=decoded.language if model.multilingual else "en",
        language_probability=decoded.language_probability if model.multilingual else 1.0,
        duration=duration,
        model=resources.whisper_name,
        timestamps=mode,
        options=used,
        timings=timings,
        removed=tuple(removed),
        audio_type=decision,
        separation=separation,  # type: ignore[arg-type]
        device=model.device,
        compute_type=model.compute_type,
        speech=spans,
    )


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


__all__ = ["PipelineOptions", "Progress", "Resources", "run"]
