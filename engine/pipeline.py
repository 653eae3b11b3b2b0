"""The one module that composes the engine: decode -> restore -> detect -> separate -> vad
-> transcribe -> filter -> phrases/pinyin -> Transcript.

It knows nothing of HTTP, databases or environment variables: the caller passes
``PipelineOptions`` (what the user asked for) and ``Resources`` (where the models are),
and may pass a progress callback, which is also the cancellation checkpoint: raising
``Cancelled`` from it stops the run between segments or separation chunks. ``on_segment``
receives each segment the filter keeps, as soon as it is decoded (for streaming clients);
in music mode, each finished line in time order once all are heard.

The music path hears singing through the vocal stem: voice activity is detected on the
stem, the filter judges segments against the stem's voice, and Whisper hears the signal the
songs benchmark chose (``DEFAULT_MUSIC_SOURCE``). Without any separator, music mode does
not gate on voice activity at all: silero over a mix misses singing, and a rule that deletes
text for lack of detected voice would delete the lyrics.
"""

from __future__ import annotations

import functools
import logging
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from . import vad
from .audio import WHISPER_RATE, decode
from .errors import InvalidOptionError, ModelNotAvailable
from .separation.base import SEPARATOR_CHOICES, SeparatorModel, SharedStems
from .transcription import (
    DecodeOptions,
    Decoded,
    LoadedModel,
    PendingModel,
    check_model_language,
    detect_language,
    packed_batch,
    ready,
    validate_language,
)
from .hearing import SegmentCallback, finish, hear_each, transcribe_filtered, voice_level
from .progress import Progress, ProgressCallback, Run
from .types import AudioTypeDecision, SeparationStatus, SpeechSpan, Transcript

log = logging.getLogger(__name__)

AUDIO_TYPES = ("auto", "speech", "music")
TIMESTAMP_MODES = ("auto", "required", "none")
MUSIC_SOURCES = ("auto", "mix", "vocals", "blend", "best")
# What Whisper hears in music mode when the user does not say: chosen by the songs suite of
# `tft bench` (benchmarks/results/report.md, "Songs"), not assumed.
DEFAULT_MUSIC_SOURCE: Literal["mix", "vocals", "blend", "best"] = "best"
# 'best' decodes each of these and keeps, line by line, the reading Whisper is surest of
# (engine.choose); the first one decides where the lines are.
BEST_OF: tuple[str, ...] = ("vocals", "mix")


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """What the user asked for. Every field is documented in the README's option table.

    task: 'transcribe', or 'translate' (to English, Whisper's own translation task).
    timestamps: 'required' (segment + word timing), 'none' (text-only decoding; every
        segment spans the whole file), or 'auto': ``auto_timestamps``, which defaults to
        'segments' (real segment timing without word alignment).
    batch_size: 0 picks packed decoding (``transcription.packed_batch`` windows at a time)
        for music, and for speech with at least ``batch_threshold_s`` of voice, else
        sequential; 1 forces sequential, more forces packed with that many windows per call.
    separation: 'auto' separates music when a separator is installed; 'always'
        (MUSIC_MODE_FORCE_VOCAL_SEPARATION) makes a missing one an error; 'never' skips.
    separator: which separator the caller should resolve into ``Resources.separator``:
        'auto' (the best one installed), 'spleeter' or 'htdemucs'. Recorded in the JSON.
    music_source: what Whisper hears in music mode: 'mix', the 'vocals' stem, 'blend' (their
        average: the band 6 dB down, the voice's own timbre kept), 'best' (all of ``BEST_OF``,
        each line from the one Whisper is surest of; one decode each), or 'auto'
        (``DEFAULT_MUSIC_SOURCE``). Voice activity always comes from the stem when there is one.
    temperature_fallback: decode a window that fails Whisper's checks again by sampling at
        rising temperatures (faster-whisper's default); off, the beam search's reading stands.
    times_needed: False when nothing the caller writes carries a time (a TXT file from the
        CLI; not server jobs, which are exported in every format): with 'auto' timestamps,
        long speech decoded packed is then text-only, without the word alignment its lines
        are cut by (8% of the time on 5 minutes; the same words). Music keeps its word
        timings: each line's reading is chosen by them. Text-only segments ('none') are cut
        at sentence ends.
    """

    language: str | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    initial_prompt: str | None = None  # words to prime the decoder with (OpenAI's `prompt`)
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
    separator: Literal["auto", "spleeter", "htdemucs"] = "auto"
    music_source: Literal["auto", "mix", "vocals", "blend", "best"] = "auto"
    separation_batch_size: int = 0
    separation_precision: Literal["float32", "bfloat16"] = "float32"
    max_duration_s: float | None = None
    temperature_fallback: bool = True
    times_needed: bool = True

    def validate(self) -> "PipelineOptions":
        def one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
            if value not in allowed:
                raise InvalidOptionError(f"{name} must be one of {', '.join(allowed)}, not '{value}'")

        one_of("audio_type", self.audio_type, AUDIO_TYPES)
        one_of("timestamps", self.timestamps, TIMESTAMP_MODES)
        one_of("task", self.task, ("transcribe", "translate"))
        one_of("separation", self.separation, ("auto", "always", "never"))
        one_of("separator", self.separator, SEPARATOR_CHOICES)
        one_of("music_source", self.music_source, MUSIC_SOURCES)
        one_of("the default timestamps mode", self.auto_timestamps, ("required", "segments", "none"))
        if self.beam_size < 1 or self.batch_size < 0:
            raise InvalidOptionError("beam_size must be at least 1 and batch_size at least 0")
        return self

    @property
    def effective_timestamps(self) -> Literal["required", "segments", "none"]:
        return self.auto_timestamps if self.timestamps == "auto" else self.timestamps

    def timestamps_for(self, music: bool, packed: bool = False) -> Literal["required", "segments", "none"]:
        """Music needs word timings for lines that follow sung phrases (and word-level LRC),
        so 'auto' means 'required' there unless the default is text-only. Packed speech
        decodes text-only anyway, so when no time is needed 'auto' means 'none' there: only
        the word alignment is saved."""
        mode = self.effective_timestamps
        if self.timestamps != "auto":
            return mode
        if music:
            return "required" if mode == "segments" else mode
        return "none" if packed and not self.times_needed else mode

    @property
    def resolved_music_source(self) -> Literal["mix", "vocals", "blend", "best"]:
        return DEFAULT_MUSIC_SOURCE if self.music_source == "auto" else self.music_source


@dataclass(frozen=True, slots=True)
class Resources:
    """Where the models are; resolved by the caller through ``models``.

    separator: the separator to run in music mode, or None; ``separator_missing`` then says
        why (recorded in the JSON, and the error when separation is forced).
    cache_dir: where vocal stems are cached (``<cache_dir>/stems``).
    shared_stems: a cache other machines share behind that one (``separation.SharedStems``),
        or None.
    """

    whisper_name: str
    whisper_path: Path
    separator: SeparatorModel | None = None
    separator_missing: str = "no separator is installed"
    cache_dir: Path | None = None
    shared_stems: SharedStems | None = None


def _plan(options: PipelineOptions, music: bool | None, separate: bool) -> list[str]:
    stages = ["decode"]
    if options.vintage:
        stages.append("restore")
    if options.audio_type == "auto":
        stages.append("detect")
    if separate or (music is None and options.separation != "never"):
        stages.append("separate")
    return stages + ["vad", "transcribe", "filter"]


@dataclass(frozen=True, slots=True)
class Listening:
    """Which signal voice activity is detected on, which one Whisper hears, and whether the
    detected voice may gate decoding and filtering."""

    vad_input: np.ndarray
    heard: tuple[tuple[str, np.ndarray], ...]  # what Whisper hears: one signal, or several to choose from
    gate: bool

    @property
    def asr_input(self) -> np.ndarray:
        return self.heard[0][1]


# -- stages ---------------------------------------------------------------------------------


def decide_audio_type(audio: np.ndarray, options: PipelineOptions) -> AudioTypeDecision:
    if options.audio_type in ("speech", "music"):
        return AudioTypeDecision(options.audio_type, "user", {}, "requested")  # type: ignore[arg-type]
    from .detect import classify

    return classify(audio)


def _decode(path: Path, options: PipelineOptions) -> np.ndarray:
    # The limit is enforced while decoding (AudioTooLongError as soon as it is passed): a
    # header can lie about the length, and the whole file must never be held to find out.
    return decode(path, max_seconds=options.max_duration_s)


def _restore(audio: np.ndarray, run: Run, gain_db: float | None = None) -> tuple[np.ndarray, float]:
    """Restored audio and the gain it took. The separator reads the file as it came, so a
    vocal stem still carries the hiss and crackle taken out of the mix: it is restored too
    (``gain_db``: at the mix's gain), since it places the lines and is heard."""
    from .restore import restore

    audio, restoration = restore(audio, gain_db=gain_db)
    if gain_db is None:
        run.extra["vintage"] = restoration.as_dict()
    else:
        run.extra["vintage"]["stem"] = restoration.as_dict()
    return audio, restoration.gain_db


@functools.cache
def _warn_without_separator(reason: str) -> None:
    log.warning("music mode without vocal separation: %s; transcribing the whole mix without voice gating", reason)


def _separate(path: Path, options: PipelineOptions, resources: Resources, run: Run,
              length: int) -> tuple[np.ndarray | None, SeparationStatus]:
    """The vocal stem (16 kHz mono, ``length`` samples) or None, with the status for the JSON."""
    if options.separation == "never":
        run.extra["separation"] = {"reason": "disabled by the options"}
        return None, "disabled"
    from .separation.base import SeparationOptions, separate_file, torch_available

    missing = None
    if not torch_available():
        missing = "torch (the music extra) is not installed"
    elif resources.separator is None:
        missing = resources.separator_missing
    if missing is not None:
        if options.separation == "always":
            raise ModelNotAvailable(f"vocal separation was forced (MUSIC_MODE_FORCE_VOCAL_SEPARATION) but {missing}")
        _warn_without_separator(missing)
        run.extra["separation"] = {"reason": missing}
        return None, "unavailable"
    model = resources.separator
    assert model is not None
    sep_options = SeparationOptions(batch_size=options.separation_batch_size, precision=options.separation_precision)
    result = separate_file(
        path, model, options=sep_options,
        cache_dir=resources.cache_dir / "stems" if resources.cache_dir else None,
        progress=lambda done, total: run.report("separate", done / max(total, 1)),
        shared=resources.shared_stems,
    )
    run.extra["separation"] = {"separator": model.name, "units": result.units, "cached": result.cached,
                               "device": result.device,
                               **({"cache_file": str(result.cache_path)} if result.cache_path else {})}
    stem = result.audio[:length] if result.audio.size >= length else np.pad(result.audio, (0, length - result.audio.size))
    return stem, ("cached" if result.cached else "separated")


def _listening(audio: np.ndarray, stem: np.ndarray | None, options: PipelineOptions, music: bool,
               run: Run) -> Listening:
    if not music:
        return Listening(audio, (("audio", audio),), gate=True)
    info = run.extra.setdefault("separation", {})
    if stem is None:
        info.update(vad_source="none (no stem: music is not gated on voice activity)", asr_source="mix")
        return Listening(audio, (("mix", audio),), gate=False)
    source = options.resolved_music_source
    names = BEST_OF if source == "best" else (source,)
    info.update(vad_source="stem", asr_source=source)
    signals = {"mix": lambda: audio, "vocals": lambda: stem,
               "blend": lambda: (0.5 * (audio + stem)).astype(np.float32)}
    return Listening(stem, tuple((name, signals[name]()) for name in names), gate=True)


def _voice_activity(listening: Listening, music: bool) -> tuple[SpeechSpan, ...] | None:
    """Voice spans of the analysed signal, or None where they must not gate anything."""
    if not listening.gate:
        return None
    return vad.detect_speech(listening.vad_input, vad.MUSIC if music else vad.SPEECH)


def _decode_options(options: PipelineOptions, resources: Resources, language: str | None, music: bool,
                    spans: tuple[SpeechSpan, ...] | None, duration: float, device: str = "cpu") -> DecodeOptions:
    batch = options.batch_size
    gated = options.vad and spans is not None
    if batch == 0:  # music heard through its stem's voice is packed at any length (README, "Music mode")
        voiced = vad.speech_seconds(spans) if gated else duration
        batch = packed_batch(device) if (music and gated) or voiced >= options.batch_threshold_s else 1
    timestamps = options.timestamps_for(music, packed=batch > 1)
    return DecodeOptions(
        language=language,
        task=options.task,
        timestamps=timestamps,
        beam_size=options.beam_size,
        batch_size=batch,
        condition_on_previous_text=not music,
        initial_prompt=options.initial_prompt,
        hear_missed=music and gated,
        # a looped window is heard again line by line instead (only windows with word timings)
        retry_loops=not (music and gated and options.hallucination_filter and timestamps != "none"),
        **({} if options.temperature_fallback else {"temperatures": (0.0,)}),
    )


# -- the pipeline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    """A transcript with the signals it was heard from, for steps that go back to the audio
    (alignment of known lyrics): the 16 kHz mix (after restoration) and the vocal stem."""

    transcript: Transcript
    audio: np.ndarray
    stem: np.ndarray | None


def run(
    path: str | Path,
    options: PipelineOptions,
    resources: Resources,
    *,
    progress: ProgressCallback | None = None,
    model: LoadedModel | PendingModel | None = None,
    on_segment: SegmentCallback | None = None,
) -> Transcript:
    """Transcribe one file. Raises EngineError subclasses for anything the user can fix."""
    return hear(path, options, resources, progress=progress, model=model, on_segment=on_segment).transcript


def _stem_language(model: LoadedModel, stem: np.ndarray | None, spans: tuple[SpeechSpan, ...] | None,
                   options: PipelineOptions, run_: Run) -> tuple[str, float] | None:
    """A song's language, told from the stem's surest voice (the mix's band misleads Whisper's
    detector); None without a stem, when translating, or when nothing is sure enough."""
    if stem is None or options.task != "transcribe":
        return None
    with run_.stage("vad"):  # cheap: a stricter VAD pass and one or two encoder passes
        detected = detect_language(model, stem, vad.surest_voice(stem, spans or ()))
    if detected is not None:
        run_.extra["separation"]["language_from"] = "stem"
    return detected


def _hear_one(model: LoadedModel, signal: np.ndarray, spans: tuple[SpeechSpan, ...] | None,
              decode_options: DecodeOptions, options: PipelineOptions, music: bool, run_: Run,
              stem: np.ndarray | None, on_segment: SegmentCallback | None) -> tuple[Decoded, tuple, tuple]:
    """The transcribe and filter stages on one signal. Speech streams each kept segment as it
    is decoded; music streams finished lines (windows are split and judged again)."""
    mode = decode_options.timestamps
    with run_.stage("transcribe"):
        decoded, check = transcribe_filtered(model, signal, spans, decode_options, options, music, run_,
                                             None if music else on_segment)
    with run_.stage("filter"):
        envelope = voice_level(stem, mode, decoded.coarse) if music else None
        segments, removed = finish(decoded, check, spans, options, mode, music, envelope)
    for segment in segments if music and on_segment is not None else ():
        on_segment(segment)
    return decoded, segments, removed


def hear(
    path: str | Path,
    options: PipelineOptions,
    resources: Resources,
    *,
    progress: ProgressCallback | None = None,
    model: LoadedModel | None = None,
    on_segment: SegmentCallback | None = None,
) -> Heard:
    """``run``, keeping the decoded audio and the vocal stem."""
    options.validate()
    path = Path(path)
    run_ = Run(_plan(options, None, False), progress)
    check_model_language(resources.whisper_name, options.language)  # fail fast, before decoding
    if model is None:  # loads while the audio is decoded and analysed
        model = PendingModel(resources.whisper_name, resources.whisper_path, device=options.device,
                             compute_type=options.compute_type, cpu_threads=options.cpu_threads)

    with run_.stage("decode"):
        audio = _decode(path, options)
    duration = run_.report.duration = audio.size / WHISPER_RATE
    gain_db = None
    if options.vintage:
        with run_.stage("restore"):
            audio, gain_db = _restore(audio, run_)
    # speech's voice activity, found beside the detector (music's comes from the stem)
    aside = vad.detect_speech_aside(audio, vad.SPEECH) if options.audio_type == "auto" else None
    with run_.stage("detect") if options.audio_type == "auto" else nullcontext():
        decision = decide_audio_type(audio, options)
    music = decision.audio_type == "music"
    run_.report.set_stages(_plan(options, music, music and options.separation != "never"))
    stem, separation = None, "not_needed"
    if music:
        with run_.stage("separate"):
            stem, separation = _separate(path, options, resources, run_, audio.size)
            stem = _restore(stem, run_, gain_db)[0] if gain_db is not None and stem is not None else stem
    listening = _listening(audio, stem, options, music, run_)
    with run_.stage("vad"):
        spans = aside.result() if aside is not None and not music else _voice_activity(listening, music)
    model = ready(model)
    language = validate_language(model, options.language)
    detected = _stem_language(model, stem, spans, options, run_) if language is None else None
    language = detected[0] if detected is not None else language
    decode_options = _decode_options(options, resources, language, music, spans, duration, model.device)
    mode = decode_options.timestamps
    if len(listening.heard) > 1 and mode == "none":  # text only: no line times to choose by
        listening = replace(listening, heard=listening.heard[:1])
        run_.extra["separation"]["asr_source"] = f"{listening.heard[0][0]} (text-only output)"
    if len(listening.heard) > 1:
        decoded, segments, removed = hear_each(model, listening, spans, decode_options, options, run_, stem,
                                               on_segment)
    else:
        decoded, segments, removed = _hear_one(model, listening.asr_input, spans, decode_options, options, music,
                                               run_, stem, on_segment)
    used = asdict(options)
    used.update(timestamps_effective=mode, batch_size_effective=decode_options.batch_size,
                model=resources.whisper_name, **({"extra": run_.extra} if run_.extra else {}))
    transcript = Transcript(
        segments=segments,
        language=decoded.language if model.multilingual else "en",
        language_probability=(detected[1] if detected else decoded.language_probability) if model.multilingual else 1.0,
        duration=duration,
        model=resources.whisper_name,
        timestamps=mode,
        options=used,
        timings=run_.timings,
        removed=removed,
        audio_type=decision,
        separation=separation,  # type: ignore[arg-type]
        separator=resources.separator.name if stem is not None and resources.separator else None,
        device=model.device,
        compute_type=model.compute_type,
        speech=spans or (),
    )
    return Heard(transcript, audio, stem)


__all__ = ["DEFAULT_MUSIC_SOURCE", "Heard", "PipelineOptions", "Progress", "Resources", "hear", "run"]
