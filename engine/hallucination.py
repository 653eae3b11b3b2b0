"""Rules that remove text Whisper invented rather than heard.

Each rule is a small pure function ``(segment, context) -> reason | None``; the first rule
that returns a reason removes the segment, and the removal (rule, reason, segment) is kept
for the JSON output so a user can see exactly what was dropped and why.

Whisper hallucinates in recognisable ways: subtitle credits and sign-offs learned from
its training captions, loops that repeat a phrase until the window ends, confident-looking
text over audio its own no-speech head rejects, and text placed where no voice is. Music
makes all of these worse, so music mode uses stricter thresholds and one extra rule.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from .types import Removal, Segment, SpeechSpan
from .vad import overlap


@dataclass(frozen=True, slots=True)
class FilterSettings:
    """Thresholds; the defaults are Whisper's own where Whisper has one.

    no_speech_prob / max_avg_logprob: remove when the no-speech head is above the first
        AND the decoder's mean log-probability is below the second (Whisper's silence rule).
    max_compression_ratio: gzip ratio of the text; loops compress extremely well.
    compression_of_line: judge the ratio of the segment's own text rather than Whisper's, which
        is that of its whole 30 s window: a song's chorus sung again within one window makes
        every line of the window look like a loop (a French hook song lost all ten lines).
    min_speech_coverage: share of a segment that must lie inside detected speech.
    min_loop_repeats: consecutive repeats of an n-gram that make a loop.
    max_identical_run: identical consecutive segments allowed before the rest are dropped.
    min_word_probability: mean word probability below which a segment is dropped (music).
    generic_phrases_always: drop sign-off phrases ("thank you") even when confident.
    """

    no_speech_prob: float = 0.6
    max_avg_logprob: float = -1.0
    max_compression_ratio: float = 2.4
    compression_of_line: bool = False
    min_speech_coverage: float = 0.2
    min_loop_repeats: int = 4
    max_identical_run: int = 2
    min_word_probability: float | None = None
    generic_phrases_always: bool = False


SPEECH = FilterSettings()
MUSIC = FilterSettings(
    no_speech_prob=0.45,
    max_avg_logprob=-0.8,
    max_compression_ratio=2.2,
    compression_of_line=True,
    min_speech_coverage=0.4,
    min_loop_repeats=4,
    max_identical_run=2,
    min_word_probability=0.35,
    generic_phrases_always=True,
)


@dataclass(frozen=True)
class Context:
    """What a rule may look at besides the segment itself."""

    settings: FilterSettings = SPEECH
    speech: tuple[SpeechSpan, ...] | None = None  # None: no usable VAD or no real timing
    kept: tuple[Segment, ...] = field(default_factory=tuple)  # segments kept so far


# Subtitle credits and channel boilerplate: never spoken content, removed wherever found.
CREDIT_PATTERNS: tuple[str, ...] = (
    "amara.org",
    "subtitles by",
    "subtitled by",
    "captions by",
    "captioned by",
    "transcribed by",
    "transcription by",
    "translated by",
    "sous-titrage",
    "sous-titres réalisés",
    "sous-titres par",
    "untertitel der",
    "untertitel im auftrag",
    "untertitelung",
    "sottotitoli creati",
    "sottotitoli a cura",
    "subtítulos realizados",
    "subtítulos por",
    "subtitulado por",
    "legendas pela comunidade",
    "napisy stworzone",
    "napisy wykonane",
    "редактор субтитров",
    "субтитры сделал",
    "субтитры создавал",
    "字幕由",
    "字幕提供",
    "字幕製作",
    "字幕制作",
    "請不吝點贊",
    "请不吝点赞",
    "明镜与点点",
    "ご視聴ありがとうございました",
    "チャンネル登録",
    "구독과 좋아요",
    "시청해주셔서 감사합니다",
    "please subscribe",
    "like and subscribe",
    "subscribe to my channel",
    "subscribe to the channel",
    "don't forget to subscribe",
    "abonnez-vous",
    "n'oubliez pas de vous abonner",
    "suscríbete",
    "iscriviti al canale",
    "inscreva-se",
    "www.",
)

# Sign-offs Whisper emits over silence and music. Real people say them too, so in speech
# mode they are removed only when the decoder was unsure or no voice was detected.
GENERIC_PHRASES: frozenset[str] = frozenset(
    {
        "you",
        "thank you",
        "thanks",
        "thank you very much",
        "thank you so much",
        "thanks for watching",
        "thank you for watching",
        "thanks for listening",
        "thank you for listening",
        "bye",
        "bye bye",
        "goodbye",
        "see you next time",
        "see you in the next video",
        "i'll see you next time",
        "so",
        "okay",
        "oh",
        "hmm",
        "uh",
        "um",
        "music",
        "applause",
        "laughter",
        "silence",
        "merci",
        "merci beaucoup",
        "merci d'avoir regardé",
        "merci de votre attention",
        "gracias",
        "muchas gracias",
        "gracias por ver",
        "gracias por ver el video",
        "obrigado",
        "obrigada",
        "obrigado por assistir",
        "grazie",
        "grazie a tutti",
        "grazie per la visione",
        "danke",
        "vielen dank",
        "danke fürs zuschauen",
        "dziękuję",
        "dziękuję bardzo",
        "продолжение следует",
        "спасибо",
        "спасибо за просмотр",
        "谢谢",
        "谢谢观看",
        "謝謝觀看",
        "感谢观看",
        "ありがとうございました",
        "धन्यवाद",
    }
)

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_BRACKETED = re.compile(r"^[\[\(♪♫\*].*[\]\)♪♫\*]$")


def normalise(text: str) -> str:
    """Lower-case and drop punctuation, keeping letters of every script (and accents)."""
    text = unicodedata.normalize("NFKC", text).lower().strip()
    return _PUNCT.sub(" ", text).strip()


def _weak(segment: Segment, ctx: Context) -> bool:
    """The decoder itself doubted this segment, or no voice was detected under it."""
    if segment.no_speech_prob >= 0.3 or segment.avg_logprob <= -0.6:
        return True
    if ctx.speech is not None and segment.duration > 0:
        return overlap(segment.start, segment.end, ctx.speech) / segment.duration < 0.5
    return False


# ---------------------------------------------------------------------------------------
# Rules. Each returns a human-readable reason when the segment should go, else None.


def empty_text(segment: Segment, ctx: Context) -> str | None:
    stripped = segment.text.strip()
    if not normalise(stripped):
        return "no words, only punctuation or symbols" if stripped else "empty text"
    if _BRACKETED.match(stripped):
        return f"a sound-effect annotation {stripped!r}, not words"
    return None


def credit_phrase(segment: Segment, ctx: Context) -> str | None:
    lowered = unicodedata.normalize("NFKC", segment.text).lower()
    for pattern in CREDIT_PATTERNS:
        if pattern in lowered:
            return f"subtitle credit or channel boilerplate ({pattern!r})"
    return None


def generic_phrase(segment: Segment, ctx: Context) -> str | None:
    norm = normalise(segment.text)
    if norm not in GENERIC_PHRASES:
        return None
    if ctx.settings.generic_phrases_always:
        return f"stock sign-off {norm!r} (always removed in music mode)"
    if _weak(segment, ctx):
        return f"stock sign-off {norm!r} with weak evidence of speech"
    return None


def repetition_loop(segment: Segment, ctx: Context) -> str | None:
    words = normalise(segment.text).split()
    if len(words) < ctx.settings.min_loop_repeats:
        return None
    for n in range(1, min(8, len(words) // ctx.settings.min_loop_repeats) + 1):
        i = 0
        while i + n <= len(words):
            gram = words[i : i + n]
            repeats = 1
            j = i + n
            while words[j : j + n] == gram:
                repeats += 1
                j += n
            covered = repeats * n
            if repeats >= ctx.settings.min_loop_repeats and covered >= 0.6 * len(words):
                return f"repetition loop: {' '.join(gram)!r} x{repeats}"
            i += 1
    return None


def identical_run(segment: Segment, ctx: Context) -> str | None:
    norm = normalise(segment.text)
    run = 0
    for previous in reversed(ctx.kept):
        if normalise(previous.text) != norm:
            break
        run += 1
    if run >= ctx.settings.max_identical_run:
        return f"the same line repeated {run + 1} times in a row"
    return None


def no_speech(segment: Segment, ctx: Context) -> str | None:
    s = ctx.settings
    if segment.no_speech_prob > s.no_speech_prob and segment.avg_logprob < s.max_avg_logprob:
        return (
            f"no-speech probability {segment.no_speech_prob:.2f} > {s.no_speech_prob} "
            f"with mean log-probability {segment.avg_logprob:.2f} < {s.max_avg_logprob}"
        )
    return None


# Text shorter than this is not judged by its compression ratio (too little to compress):
# ``packed`` retries a short looped window for that reason.
COMPRESSION_MIN_CHARS = 24


def compression_ratio(segment: Segment, ctx: Context) -> str | None:
    limit = ctx.settings.max_compression_ratio
    if len(segment.text.strip()) < COMPRESSION_MIN_CHARS:
        return None
    ratio = segment.compression_ratio
    if ctx.settings.compression_of_line:
        from faster_whisper.transcribe import get_compression_ratio  # Whisper's own measure

        ratio = get_compression_ratio(segment.text)
    if ratio > limit:
        return f"compression ratio {ratio:.2f} > {limit} (repetitive text)"
    return None


# Speaking or singing takes time: about 0.3 s per word at most rates. A segment decoded from
# voice-only audio is mapped back onto the original timeline, so it can span the pause (or
# instrumental break) between two stretches of voice; its words, not its span, must be heard.
SECONDS_PER_WORD = 0.3


def _heard_share(segment: Segment, speech: tuple[SpeechSpan, ...]) -> float:
    """Share of the segment's words placed where voice was detected: by word timings when
    there are some, else by the voiced seconds its span holds against the time its words need."""
    if segment.words:
        inside = sum(1 for w in segment.words if overlap(w.start - 0.2, w.end + 0.2, speech) > 0)
        return inside / len(segment.words)
    words = max(1, len(segment.text.split()))
    needed = min(segment.duration, SECONDS_PER_WORD * words)
    return min(1.0, overlap(segment.start, segment.end, speech) / needed) if needed > 0 else 1.0


def outside_speech(segment: Segment, ctx: Context) -> str | None:
    if ctx.speech is None or segment.duration <= 0:
        return None
    covered = _heard_share(segment, ctx.speech)
    if covered < ctx.settings.min_speech_coverage:
        return f"only {covered:.0%} of the segment's words lie in detected voice"
    return None


def low_word_confidence(segment: Segment, ctx: Context) -> str | None:
    floor = ctx.settings.min_word_probability
    if floor is None or not segment.words:
        return None
    mean = sum(w.probability for w in segment.words) / len(segment.words)
    if mean < floor:
        return f"mean word probability {mean:.2f} < {floor}"
    return None


Rule = Callable[[Segment, Context], "str | None"]

RULES: tuple[tuple[str, Rule], ...] = (
    ("empty", empty_text),
    ("credit_phrase", credit_phrase),
    ("generic_phrase", generic_phrase),
    ("repetition_loop", repetition_loop),
    ("compression_ratio", compression_ratio),
    ("no_speech", no_speech),
    ("outside_speech", outside_speech),
    ("low_word_confidence", low_word_confidence),
    ("identical_run", identical_run),
)


class StreamingFilter:
    """The rules applied one segment at a time, as segments are decoded.

    ``push`` returns the segment if kept (for streaming it onward) or None; ``result``
    gives what ``apply`` gives. Rules only look back at kept segments, so streaming and
    batch filtering decide identically (for segments pushed in time order; lines heard
    again after a rejected window are judged after the windows that followed it).
    """

    def __init__(self, *, settings: FilterSettings = SPEECH, speech: tuple[SpeechSpan, ...] | None = None,
                 rules: tuple[tuple[str, Rule], ...] = RULES) -> None:
        self.settings = settings
        self.speech = speech
        self.rules = rules
        self.kept: list[Segment] = []
        self.removed: list[Removal] = []

    def push(self, segment: Segment) -> Segment | None:
        ctx = Context(settings=self.settings, speech=self.speech, kept=tuple(self.kept[-8:]))
        for name, rule in self.rules:
            reason = rule(segment, ctx)
            if reason is not None:
                self.removed.append(Removal(rule=name, reason=reason, segment=segment))
                return None
        self.kept.append(segment)
        return segment

    def result(self) -> tuple[tuple[Segment, ...], tuple[Removal, ...]]:
        """(kept segments in time order, renumbered; removals). Segments heard again arrive
        after later ones (``hearing.rehear_rejected``)."""
        kept = sorted(self.kept, key=lambda s: s.start)
        return tuple(replace(s, id=i) for i, s in enumerate(kept)), tuple(self.removed)


def apply(
    segments: Sequence[Segment],
    *,
    settings: FilterSettings = SPEECH,
    speech: tuple[SpeechSpan, ...] | None = None,
    rules: tuple[tuple[str, Rule], ...] = RULES,
) -> tuple[tuple[Segment, ...], tuple[Removal, ...]]:
    """Run every rule over every segment; return (kept segments renumbered, removals)."""
    streaming = StreamingFilter(settings=settings, speech=speech, rules=rules)
    for segment in segments:
        streaming.push(segment)
    return streaming.result()
