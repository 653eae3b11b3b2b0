"""The packed long-form decoder: speech packed into full 30 s windows, decoded text-only a
few windows per model call, in streams conditioned on the text before them.

Part of the faster-whisper boundary with ``transcription`` (which dispatches here for
``batch_size`` > 1): it drives the same model's encoder, generator and aligner directly,
because faster-whisper's ``BatchedInferencePipeline`` packs windows loosely, spends an encoder
pass on language detection and cannot condition a window on the text before it.
"""

from __future__ import annotations

import math
import queue
import threading
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .transcription import SAMPLE_RATE, DecodeOptions, Decoded, LoadedModel
from .types import Segment, Word
from .windows import Window, pack

_MAX_PROMPT = 223  # previous-text tokens, as faster-whisper's sequential decoder (max_length // 2 - 1)
_PREPEND, _APPEND = "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True, slots=True)
class _Result:
    tokens: tuple[int, ...]
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float

    @property
    def silent(self) -> bool:  # faster-whisper's no_speech_threshold and log_prob_threshold
        return self.no_speech_prob > 0.6 and self.avg_logprob < -1.0

    @property
    def looped(self) -> bool:  # faster-whisper's compression_ratio_threshold
        return self.compression_ratio > 2.4

    @property
    def failed(self) -> bool:  # ... a loop or garbage
        return not self.silent and (self.looped or self.avg_logprob < -1.0)


def decode_packed(model: LoadedModel, audio: np.ndarray, spans, options: DecodeOptions, word_level: bool,
                  on_segment: Callable[[Segment], None] | None,
                  on_position: Callable[[float], None] | None = None) -> Decoded:
    """Speech packed into full windows, ``batch_size`` windows per model call, in streams.

    Measured on the long-form benchmark (base, 2 CPU cores; ``benchmarks/``):

    * the encoder is over half the time and costs the same for any window, so windows are
      packed full (``engine.windows``): 11 windows instead of faster-whisper's 12 (with its
      language-detection pass) or our former 14;
    * text-only decoding: with timestamp tokens Whisper ends a window early at a sentence it
      expects the next window to finish (WER 5% -> 17%), and batches have no next window;
    * the windows are split into ``batch_size`` contiguous streams and each model call takes
      the next window of every stream, so every window after a stream's first is conditioned
      on the text before it, as in sequential decoding, at batched cost;
    * the streams are shared among the model's lanes (``LoadedModel.lanes``: on a CPU, two
      decoders, the second on one thread), which run side by side;
    * the language comes from the first call's windows (no separate encoder pass);
    * windows that fail faster-whisper's checks (compression ratio, log-probability) are
      decoded again with temperature fallback, as the sequential path does; with
      ``retry_loops`` off (filtered music), not a window the filter is sure to reject as a
      loop, which ``hearing.rehear_rejected`` hears again line by line.
    """
    windows = pack(audio, spans)
    if not windows:
        return Decoded((), options.language or (None if model.multilingual else "en"), 1.0 if options.language else 0.0)
    steps = math.ceil(len(windows) / options.batch_size)
    streams = [range(s, min(s + steps, len(windows))) for s in range(0, len(windows), steps)]
    lanes = model.lanes[: len(streams)]
    share = math.ceil(len(streams) / len(lanes))
    job = _Job(audio, windows, options, word_level, Future(), queue.SimpleQueue(), threading.Event())
    if options.language or not model.multilingual:
        job.language.set_result((options.language or "en", 1.0))
    work = [(w, streams[k * share:(k + 1) * share]) for k, w in enumerate(lanes) if streams[k * share:]]
    threads = [threading.Thread(target=_lane, args=(job, w, mine), name=f"tft-lane-{k}", daemon=True)
               for k, (w, mine) in enumerate(work)]
    for t in threads:  # the calling thread hands segments on (and may be told to stop) meanwhile
        t.start()
    try:
        segments = _collect(job, len(windows), on_segment, on_position)
    finally:
        job.stop.set()
        _settle(job.language, _Stopped("the packed decode stopped before the first window"))
        for t in threads:
            t.join()
    language, probability = job.language.result()
    bounds = tuple((w.to_original(0.0), w.to_original(w.duration, end=True)) for w in windows)
    return Decoded(tuple(segments), language, float(probability), coarse=word_level, windows=bounds)


@dataclass(frozen=True, slots=True)
class _Job:
    """What the lanes of one packed decode share; each lane reports every window it decoded
    (its index and its segment, or None when it heard nothing) on ``done``, or its error."""

    audio: np.ndarray
    windows: list[Window]
    options: DecodeOptions
    word_level: bool
    language: Future  # (language, probability), set by the lane that decodes the first window
    done: queue.SimpleQueue
    stop: threading.Event


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


def _lane(job: _Job, w, streams: list[range]) -> None:
    """Decode ``streams`` on one model, a call per step taking the next window of each."""
    try:
        _decode_streams(job, w, streams)
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, which re-raises it
        _settle(job.language, exc)  # no lane waits for a language that will not come
        job.done.put(_Failed(exc))


class _Stopped(Exception):
    """A lane that waits for the language learns that no window will give it."""


def _settle(language: Future, error: BaseException) -> None:
    try:
        language.set_exception(error)
    except InvalidStateError:  # the first window's lane set it meanwhile
        pass


def _decode_streams(job: _Job, w, streams: list[range]) -> None:
    from faster_whisper.tokenizer import Tokenizer

    options, windows, audio = job.options, job.windows, job.audio
    history: list[list[int]] = [[] for _ in streams]
    tokenizer = None
    for step in range(max(len(r) for r in streams)):
        if job.stop.is_set():
            return
        members = [(k, r[step]) for k, r in enumerate(streams) if step < len(r)]
        features = np.stack([_features(w, windows[i].audio(audio)) for _, i in members])
        encoded = w.encode(features)
        if tokenizer is None:
            if members[0][1] == 0 and not job.language.done():
                job.language.set_result(_detect_language(w, encoded))
            language = job.language.result()[0]
            tokenizer = Tokenizer(w.hf_tokenizer, w.model.is_multilingual, task=options.task, language=language)
            if options.initial_prompt:
                initial = tokenizer.encode(" " + options.initial_prompt.strip())
                history = [list(initial) for _ in streams]
        prompts = _prompts(w, tokenizer, [history[k] for k, _ in members])
        results = _generate(w, encoded, prompts, tokenizer, options, options.temperatures[0])
        results = _fallback(w, features, prompts, results, tokenizer, options)
        words = (_align(w, tokenizer, encoded, results, [windows[i] for _, i in members])
                 if job.word_level else [()] * len(members))
        for (k, i), result, window_words in zip(members, results, words):
            if options.condition_on_previous_text and result.temperature <= 0.5:
                history[k] = (history[k] + list(result.tokens))[-_MAX_PROMPT:]
            else:  # faster-whisper's prompt_reset_on_temperature
                history[k] = []
            job.done.put((i, None if result.silent or not result.text.strip() else _segment(
                result, windows[i], window_words, job.word_level, audio.shape[0] / SAMPLE_RATE)))


def _collect(job: _Job, count: int, on_segment: Callable[[Segment], None] | None,
             on_position: Callable[[float], None] | None) -> list[Segment]:
    """The lanes' windows in order, each handed on as soon as the windows before it are done
    (``on_position``: the end of each window, on the original timeline, heard or silent)."""
    found: dict[int, Segment | None] = {}
    segments: list[Segment] = []
    emitted = 0
    while emitted < count:
        item = job.done.get()
        if isinstance(item, _Failed):
            raise item.error
        found[item[0]] = item[1]
        while emitted in found:
            seg = found.pop(emitted)
            emitted += 1
            if on_position is not None:
                window = job.windows[emitted - 1]
                on_position(window.to_original(window.duration, end=True))
            if seg is not None:
                segments.append(replace(seg, id=len(segments)))
                if on_segment is not None:
                    on_segment(segments[-1])
    return segments


def _features(w, chunk: np.ndarray) -> np.ndarray:
    from faster_whisper.audio import pad_or_trim

    return pad_or_trim(w.feature_extractor(chunk)[..., :-1])  # as BatchedInferencePipeline


def _detect_language(w, encoded) -> tuple[str, float]:
    """The language of the first window (as faster-whisper: its first 30 s), read from the
    encoder output the decoding uses anyway, so detection costs no extra encoder pass."""
    import ctranslate2

    try:  # on a CPU the batch slices without a copy; elsewhere every window of the call votes
        encoded = ctranslate2.StorageView.from_array(np.asarray(encoded)[:1])
    except (TypeError, ValueError, RuntimeError):
        pass
    totals: dict[str, float] = {}
    results = w.model.detect_language(encoded)
    for ranked in results:
        for token, p in ranked:
            totals[token] = totals.get(token, 0.0) + p
    token = max(totals, key=totals.__getitem__)
    return token[2:-2], totals[token] / len(results)


def _prompts(w, tokenizer, histories: list[list[int]]) -> list[list[int]]:
    """CTranslate2 needs <|startoftranscript|> at the same position in every prompt of a
    call, so all windows get the same number of previous-text tokens (the fewest any has)."""
    keep = min(len(h) for h in histories)
    return [w.get_prompt(tokenizer, h[len(h) - keep:] if keep else [], without_timestamps=True) for h in histories]


def _generate(w, encoded, prompts, tokenizer, options: DecodeOptions, temperature: float) -> list[_Result]:
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

    sampling = dict(beam_size=options.beam_size) if temperature == 0 else dict(
        beam_size=1, num_hypotheses=5, sampling_topk=0, sampling_temperature=temperature)
    outputs = w.model.generate(encoded, prompts, max_length=w.max_length, return_scores=True,
                               return_no_speech_prob=True, suppress_blank=True,
                               suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])), **sampling)
    results = []
    for out in outputs:
        tokens = tuple(t for t in out.sequences_ids[0] if t < tokenizer.eot)
        text = tokenizer.decode(list(tokens))
        avg = out.scores[0] * len(tokens) / (len(tokens) + 1)  # faster-whisper's avg_logprob
        results.append(_Result(tokens, text, float(avg), float(out.no_speech_prob), get_compression_ratio(text),
                               temperature))
    return results


def _fallback(w, features, prompts, results: list[_Result], tokenizer, options: DecodeOptions) -> list[_Result]:
    """Decode failed windows again at rising temperatures; keep the first that passes, else
    the most probable attempt (faster-whisper's ``generate_with_fallback``). Rare, so the
    few windows concerned are simply encoded again. Without ``retry_loops``, a loop long
    enough for the filter's compression rule is left to it."""
    results = list(results)
    failing = [j for j, r in enumerate(results) if r.failed and (options.retry_loops or not _left_to_filter(r))]
    attempts = {j: [results[j]] for j in failing}
    for temperature in options.temperatures[1:]:
        if not failing:
            break
        encoded = w.encode(features[failing])
        retried = _generate(w, encoded, [prompts[j] for j in failing], tokenizer, options, temperature)
        for j, r in zip(failing, retried):
            attempts[j].append(r)
        failing = [j for j, r in zip(failing, retried) if r.failed]
    for j, tried in attempts.items():
        passed = [r for r in tried if not r.failed]
        results[j] = passed[0] if passed else max(tried, key=lambda r: r.avg_logprob)
    return results


def _left_to_filter(result: _Result) -> bool:
    """A loop the music filter always rejects (its compression rule: 2.2 on text of at least
    ``COMPRESSION_MIN_CHARS``; a short one, as a CJK syllable looped, would get through)."""
    from .hallucination import COMPRESSION_MIN_CHARS

    return result.looped and len(result.text.strip()) >= COMPRESSION_MIN_CHARS


def _align(w, tokenizer, encoded, results: list[_Result], windows: list[Window]) -> list[tuple[Word, ...]]:
    """Word timings from cross-attention (faster-whisper's ``add_word_timestamps``), mapped
    from each window onto the original timeline."""
    spoken = [j for j, r in enumerate(results) if r.tokens]
    if not spoken:
        return [()] * len(results)
    batch = [[{"tokens": list(results[j].tokens) if j in spoken else [tokenizer.eot], "start": 0.0,
               "end": windows[j].duration, "seek": 0}] for j in range(len(results))]
    frames = [min(3000, int(math.ceil(win.duration) * w.frames_per_second)) for win in windows]
    w.add_word_timestamps(batch, tokenizer, encoded, frames, _PREPEND, _APPEND, 0.0)
    out = []
    for j, (item, window) in enumerate(zip(batch, windows)):
        words = item[0].get("words", []) if j in spoken else []
        out.append(tuple(Word(window.to_original(x["start"]), window.to_original(x["end"], end=True), x["word"],
                              float(x["probability"])) for x in words))
    return out


def _segment(result: _Result, window: Window, words: tuple[Word, ...], word_level: bool, duration: float) -> Segment:
    if word_level:
        start = words[0].start if words else window.to_original(0.0)
        end = words[-1].end if words else window.to_original(window.duration, end=True)
    else:  # text-only: as the sequential path, the segment spans the file
        start, end = 0.0, duration
    return Segment(id=0, start=start, end=max(end, start), text=result.text, words=words,
                   avg_logprob=result.avg_logprob, no_speech_prob=result.no_speech_prob,
                   compression_ratio=result.compression_ratio)
