"""Immutable records that flow out of the engine.

Nothing here imports a third-party library, so every other module (and the server)
can use these types without pulling in faster-whisper or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Mapping

AudioType = Literal["speech", "music"]
SeparationStatus = Literal["not_needed", "separated", "cached", "unavailable", "disabled"]


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Word:
    """One word with its timing; ``text`` keeps Whisper's leading space."""

    start: float
    end: float
    text: str
    probability: float
    pinyin: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "word": self.text,
            "probability": round(self.probability, 4),
        }
        if self.pinyin is not None:
            data["pinyin"] = self.pinyin
        return data


@dataclass(frozen=True, slots=True)
class Segment:
    """A line of transcript as Whisper decoded it (after our filters)."""

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0
    pinyin: str | None = None
    # Decoder details as Whisper reports them (OpenAI's verbose_json carries them): the
    # window offset in 10 ms frames, the text's token ids, the temperature that produced it.
    seek: int = 0
    tokens: tuple[int, ...] = ()
    temperature: float | None = None

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text.strip(),
            "words": [w.as_dict() for w in self.words],
            "avg_logprob": round(self.avg_logprob, 4),
            "no_speech_prob": round(self.no_speech_prob, 4),
            "compression_ratio": round(self.compression_ratio, 3),
        }
        if self.pinyin is not None:
            data["pinyin"] = self.pinyin
        if self.tokens:  # decoded (not hand-made) segments
            data.update(seek=self.seek, tokens=list(self.tokens), temperature=self.temperature)
        return data


@dataclass(frozen=True, slots=True)
class LyricLine:
    """A line of a lyric sheet after alignment: placed (its ``segment``), or unmatched.

    An unmatched line has no time at all: it was not found in the audio, and the aligner
    never invents one. ``hint`` is the time the sheet's own tag gave, kept for comparison.
    """

    index: int  # position in the sheet, from 0
    text: str
    stanza: int = 0
    segment: Segment | None = None
    hint: float | None = None

    @property
    def matched(self) -> bool:
        return self.segment is not None

    def as_dict(self) -> dict[str, Any]:
        seg = self.segment
        data: dict[str, Any] = {
            "line": self.index,
            "stanza": self.stanza,
            "text": self.text,
            "status": "matched" if seg is not None else "unmatched",
            "start": round(seg.start, 3) if seg is not None else None,
            "end": round(seg.end, 3) if seg is not None else None,
            "words": [w.as_dict() for w in seg.words] if seg is not None else [],
        }
        if self.hint is not None:
            data["hint"] = round(self.hint, 3)
        return data


@dataclass(frozen=True, slots=True)
class SpeechSpan:
    """A stretch of audio (seconds) that voice activity detection judged to hold speech."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Removal:
    """A segment the hallucination filter dropped, and the rule that dropped it."""

    rule: str
    reason: str
    segment: Segment

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "reason": self.reason,
            "start": round(self.segment.start, 3),
            "end": round(self.segment.end, 3),
            "text": self.segment.text.strip(),
        }


@dataclass(frozen=True)
class AudioTypeDecision:
    """Whether the input was treated as speech or music, who decided, and on what evidence."""

    audio_type: AudioType
    decided_by: Literal["user", "detector"]
    evidence: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _frozen(self.evidence))

    def as_dict(self) -> dict[str, Any]:
        return {
            "audio_type": self.audio_type,
            "decided_by": self.decided_by,
            "reason": self.reason,
            "evidence": {k: round(v, 4) for k, v in self.evidence.items()},
        }


@dataclass(frozen=True)
class Transcript:
    """The engine's result: segments plus everything needed to explain how they were made."""

    segments: tuple[Segment, ...]
    language: str | None
    language_probability: float
    duration: float
    model: str
    timestamps: Literal["required", "segments", "none"] = "required"
    options: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    removed: tuple[Removal, ...] = ()
    audio_type: AudioTypeDecision | None = None
    separation: SeparationStatus = "not_needed"
    separator: str | None = None  # the separator whose stem was used ('spleeter-2stems', 'htdemucs')
    device: str = "cpu"
    compute_type: str = "int8"
    speech: tuple[SpeechSpan, ...] = ()
    lines: tuple[LyricLine, ...] = ()  # an alignment: every sheet line; ``segments`` are the placed ones

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _frozen(self.options))
        object.__setattr__(self, "timings", _frozen(self.timings))

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def word_count(self) -> int:
        return sum(len(s.text.split()) for s in self.segments)

    @property
    def has_word_timestamps(self) -> bool:
        return any(s.words for s in self.segments)

    @property
    def real_time_factor(self) -> float | None:
        total = sum(self.timings.values())
        return total / self.duration if self.duration > 0 else None

    def as_dict(self) -> dict[str, Any]:
        rtf = self.real_time_factor
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": round(self.language_probability, 4),
            "duration": round(self.duration, 3),
            "model": self.model,
            "device": self.device,
            "compute_type": self.compute_type,
            "timestamps": self.timestamps,
            "audio_type": self.audio_type.as_dict() if self.audio_type else None,
            "separation": self.separation,
            "separator": self.separator,
            "options": dict(self.options),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "real_time_factor": round(rtf, 4) if rtf is not None else None,
            "speech": [[round(s.start, 3), round(s.end, 3)] for s in self.speech],
            "segments": [s.as_dict() for s in self.segments],
            "removed": [r.as_dict() for r in self.removed],
            **({"lines": [line.as_dict() for line in self.lines]} if self.lines else {}),
        }
