"""The packed long-form decoder: speech packed into full 30 s windows, decoded text-only a
few windows per model call, in streams conditioned on the text before them.

Part of the faster-whisper boundary with ``transcription`` (which dispatches here for
``batch_size`` > 1): it drives the same model's encoder, generator and aligner directly,
because faster-whisper's ``BatchedInferencePipeline`` packs windows loosely, spends an encoder
pass on language detection and cannot condition a window on the text before it.
"""

from __future__ import annotations

import math
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
    def failed(self) -> bool:  # ... and compression_ratio_threshold: a loop or garbage
        return not self.silent and (self.compression_ratio > 2.4 or self.avg_logprob < -1.0)


def decode_packed(model: LoadedModel, audio: np.ndarray, spans, options: DecodeOptions, word_level: bool,
            on_segment: Callable[[Segment], None] | None) -> Decoded:
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
    * the language comes from the first call's windows (no separate encoder pass);
    * windows that fail faster-whisper's checks (compression ratio, log-probability) are
      decoded again with temperature fallback, as the sequential path does.
    """
    from faster_whisper.tokenizer import Tokenizer

    w = model.whisper
    windows = pack(audio, spans)
    if not windows:
        return Decoded((), options.language or (None if model.multilingual else "en"), 1.0 if options.language else 0.0)
    steps = math.ceil(len(windows) / options.batch_size)
    streams = [range(s, min(s + steps, len(windows))) for s in range(0, len(windows), steps)]
    language, probability = options.language, 1.0
    tokenizer = None
    history: list[list[int]] = [[] for _ in streams]
    found: dict[int, Segment | None] = {}
    segments: list[Segment] = []
    emitted = 0
    for step in range(steps):
        members = [(k, r[step]) for k, r in enumerate(streams) if step < len(r)]
        features = np.stack([_features(w, windows[i].audio(audio)) for _, i in members])
        encoded = w.encode(features)
        if tokenizer is None:
            if language is None and model.multilingual:
                language, probability = _detect_language(w, encoded)
            tokenizer = Tokenizer(w.hf_tokenizer, model.multilingual, task=options.task, language=language or "en")
            if options.initial_prompt:
                initial = tokenizer.encode(" " + options.initial_prompt.strip())
                history = [list(initial) for _ in streams]
        prompts = _prompts(w, tokenizer, [history[k] for k, _ in members])
        results = _generate(w, encoded, prompts, tokenizer, options, options.temperatures[0])
        results = _fallback(w, features, prompts, results, tokenizer, options)
        words = (_align(w, tokenizer, encoded, results, [windows[i] for _, i in members])
                 if word_level else [()] * len(members))
        for (k, i), result, window_words in zip(members, results, words):
            if options.condition_on_previous_text and result.temperature <= 0.5:
                history[k] = (history[k] + list(result.tokens))[-_MAX_PROMPT:]
            else:  # faster-whisper's prompt_reset_on_temperature
                history[k] = []
            found[i] = None if result.silent or not result.text.strip() else _segment(
                result, windows[i], window_words, word_level, audio.shape[0] / SAMPLE_RATE)
        while emitted in found:  # in order, as soon as the windows before are done
            seg = found.pop(emitted)
            emitted += 1
            if seg is not None:
                segments.append(replace(seg, id=len(segments)))
                if on_segment is not None:
                    on_segment(segments[-1])
    return Decoded(tuple(segments), language or "en", float(probability), coarse=word_level)


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
    few windows concerned are simply encoded again."""
    results = list(results)
    failing = [j for j, r in enumerate(results) if r.failed]
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
