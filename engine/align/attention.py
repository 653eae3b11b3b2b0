"""Word times for known words from Whisper's own cross-attention (CTranslate2 ``Whisper.align``),
the mechanism faster-whisper uses for its word timestamps, given the sheet's words instead
of decoded ones. Besides ``engine.transcription``, the only module that drives the model.

The audio is encoded once per 30 s window, and each line is aligned against the slice of
the encoder output that covers it: one encoder pass per 30 s of placed lines, not one per
line. A no-timestamps token in front of the words absorbs the frames before the first word
(dynamic time warping otherwise stretches the first word back to the start of the slice).

``likelihoods`` answers a different question, which line was sung in a stretch of voice:
the stretch is heard alone (its own encoder pass, as Whisper hears a short clip) and each
candidate's tokens are scored under teacher forcing. Token probabilities on a slice of a
window's encoder output tell lines apart poorly; on the stretch alone they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..transcription import LoadedModel

RATE = 16_000
FRAMES_PER_S = 50  # encoder positions per second
WINDOW_S = 30.0


@dataclass(frozen=True, slots=True)
class Span:
    """Words to place between ``start`` and ``end`` (seconds); ``spaced[i]``: a space precedes word i."""

    start: float
    end: float
    words: tuple[str, ...]
    spaced: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class WordTime:
    start: float
    end: float
    probability: float


class CrossAttentionAligner:
    """Aligns spans of known words in one recording with one Whisper model and language."""

    def __init__(self, model: LoadedModel, audio: np.ndarray, language: str | None) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.model = model
        self.audio = audio
        whisper = model.whisper
        multilingual = model.multilingual
        self.tokenizer = Tokenizer(whisper.hf_tokenizer, multilingual,  # type: ignore[attr-defined]
                                   task="transcribe" if multilingual else None,
                                   language=(language or "en") if multilingual else None)
        self.n_mels = whisper.feature_extractor.mel_filters.shape[0]  # type: ignore[attr-defined]
        self._silence: object | None = None  # the encoder's view of silence, for likelihoods()
        self._on_silence: dict[tuple, float] = {}  # a line's likelihood on silence, by its words

    def align(self, spans: Sequence[Span]) -> list[list[WordTime]]:
        """Word times for each span (in order of time), one encoder pass per window of spans."""
        out: list[list[WordTime]] = [[] for _ in spans]
        order = sorted(range(len(spans)), key=lambda i: spans[i].start)
        k = 0
        while k < len(order):
            w0 = max(0.0, spans[order[k]].start - 0.2)
            group = []
            while k < len(order) and (not group or spans[order[k]].end <= w0 + WINDOW_S - 0.2):
                group.append(order[k])
                k += 1
            encoded = self._encode(w0)
            for i in group:
                out[i] = self._align_span(encoded, w0, spans[i])
        return out

    def likelihoods(self, spans: Sequence[Span], *, silence: bool = False) -> list[float]:
        """Mean log-probability per token of each span's words, heard on the span's audio alone
        (consecutive spans with the same start and end share one encoder pass, and only one
        is held at a time); ``silence``: heard on silence instead, what the words are worth
        without any voice."""
        out: list[float] = []
        key, encoded = None, None
        for span in spans:
            if silence:  # depends on the words only
                if self._silence is None:
                    self._silence = self._encode(0.0, 0.0, keep=True)
                if (span.words, span.spaced) not in self._on_silence:
                    self._on_silence[(span.words, span.spaced)] = self._token_log_prob(self._silence, span)
                out.append(self._on_silence[(span.words, span.spaced)])
                continue
            if key != (span.start, span.end):
                key, encoded = (span.start, span.end), None
                encoded = self._encode(span.start, min(WINDOW_S, span.end - span.start), keep=True)
            out.append(self._token_log_prob(encoded, span))
        return out

    def _token_log_prob(self, encoded, span: Span) -> float:
        tokens = [t for w in self._tokens(span) for t in w]
        if not tokens:
            return float("-inf")
        frames = max(2, int(round(2 * FRAMES_PER_S * min(WINDOW_S, span.end - span.start))))  # mel frames
        result = self.model.whisper.model.align(  # type: ignore[attr-defined]
            encoded, list(self.tokenizer.sot_sequence), [[self.tokenizer.no_timestamps] + tokens], frames)[0]
        probs = np.asarray(result.text_token_probs[1 : 1 + len(tokens)], dtype=np.float64)
        return float(np.mean(np.log(np.maximum(probs, 1e-9)))) if probs.size else float("-inf")

    def _encode(self, start: float, seconds: float = WINDOW_S, *, keep: bool = False):
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        whisper = self.model.whisper
        chunk = self.audio[int(max(0.0, start) * RATE) : int((start + seconds) * RATE)]
        features = pad_or_trim(whisper.feature_extractor(chunk))  # type: ignore[attr-defined]
        encoded = whisper.encode(features)  # type: ignore[attr-defined]
        if keep:  # as the model's own StorageView, on its device, for align()
            return encoded
        if encoded.device != "cpu":
            encoded = encoded.to_device(ctranslate2.Device.cpu)
        return np.array(encoded)

    def _tokens(self, span: Span) -> list[list[int]]:
        return [self.tokenizer.encode((" " if s else "") + w) for w, s in zip(span.words, span.spaced)]

    def _align_span(self, encoded: np.ndarray, w0: float, span: Span) -> list[WordTime]:
        import ctranslate2

        words = self._tokens(span)
        tokens = [t for w in words for t in w]
        fa = max(0, int(round((span.start - w0) * FRAMES_PER_S)))
        fb = min(encoded.shape[1], int(round((span.end - w0) * FRAMES_PER_S)))
        if fb - fa == self.n_mels:  # CTranslate2 would read a slice this long as mel features
            fb -= 1
        if not tokens or fb - fa < 2:
            return []
        piece = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[:, fa:fb, :]))
        absorber = self.tokenizer.no_timestamps
        result = self.model.whisper.model.align(  # type: ignore[attr-defined]
            piece, list(self.tokenizer.sot_sequence), [[absorber] + tokens], 2 * (fb - fa))[0]
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for row, col in result.alignments:
            first.setdefault(row, col)
            last[row] = col
        probs = list(result.text_token_probs)
        t0 = w0 + fa / FRAMES_PER_S
        times, row = [], 1
        for w in words:
            a, b = row, row + len(w) - 1
            start = first.get(a, last.get(a - 1, 0))
            end = last.get(b, start) + 1
            p = float(np.mean(probs[a:b + 1])) if len(probs) > b else 0.0
            times.append(WordTime(t0 + start / FRAMES_PER_S, t0 + end / FRAMES_PER_S, p))
            row = b + 1
        return times
