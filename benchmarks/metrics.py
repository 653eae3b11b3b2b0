"""Word and character error rates with Whisper's text normalisers.

The English normaliser (from the Whisper paper, via the whisper-normalizer package)
lower-cases, removes punctuation and spells out British/American variants. Other languages use Whisper's basic normaliser (lower-case, punctuation and
bracketed text removed); for languages written without spaces (zh, ja, th, ...) the
comparison is over characters, since "words" are not delimited there.

Numbers count the same written either way in every language: digits become words on both
sides before comparing (num2words: "3" -> "three", "trois", "drei", "три"; a year as it is
said, "1999" -> "nineteen ninety-nine"; zh through cn2an: "3个" -> "三个"). Whisper's own
English number normaliser goes the other way and is switched off: it glues counted words
into one number ("one two three" -> "123") while "1, 2, 3" stays three, so a counting
line read either way scored as errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

UNSEGMENTED = frozenset({"zh", "ja", "th", "lo", "my", "km", "yue"})


@lru_cache(maxsize=None)
def _normaliser(language: str):
    if language == "en":
        from whisper_normalizer.english import EnglishTextNormalizer

        english = EnglishTextNormalizer()
        english.standardize_numbers = lambda text: text  # numbers are spelled out instead
        return english
    from whisper_normalizer.basic import BasicTextNormalizer

    return BasicTextNormalizer(remove_diacritics=False, split_letters=language in UNSEGMENTED)


_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_CURRENCY = {"$": "dollars", "€": "euros", "£": "pounds"}
_AMOUNT = re.compile(r"([$€£])\s?(\d+(?:\.\d+)?)")


def spell_numbers(text: str, language: str) -> str:
    """Digits as words, in ``language`` (unchanged where no speller knows the language)."""
    if language in ("zh", "yue"):
        import cn2an

        try:
            return cn2an.transform(text, "an2cn")
        except (ValueError, KeyError):
            return text
    from num2words import num2words

    def spell(match: re.Match) -> str:
        digits = match.group()
        value = float(digits) if "." in digits else int(digits)
        year = language == "en" and len(digits) == 4 and 1100 <= value <= 2099
        try:
            return " " + num2words(value, lang=language, **({"to": "year"} if year else {})) + " "
        except (NotImplementedError, OverflowError, ValueError):
            return digits

    if language == "en":  # "$25" is said "twenty-five dollars"
        text = _AMOUNT.sub(lambda m: f"{m.group(2)} {_CURRENCY[m.group(1)]}", text)
    return _DIGITS.sub(spell, text)


def normalise(text: str, language: str = "en") -> str:
    text = spell_numbers(text, language)
    return " ".join(_normaliser(language)(text).split())


@dataclass(frozen=True)
class ErrorCounts:
    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        if self.reference_length == 0:
            return 0.0 if self.errors == 0 else float(self.errors)
        return self.errors / self.reference_length

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_length + other.reference_length,
        )


ZERO = ErrorCounts(0, 0, 0, 0)


def _tokens(text: str, language: str, unit: str) -> list[str]:
    norm = normalise(text, language)
    if unit == "char":
        return [c for c in norm if not c.isspace()]
    return norm.split()


def error_counts(reference: str, hypothesis: str, *, language: str = "en", unit: str = "word") -> ErrorCounts:
    """Levenshtein alignment counts (via jiwer) after normalisation."""
    import jiwer

    ref = _tokens(reference, language, unit)
    hyp = _tokens(hypothesis, language, unit)
    if not ref:
        return ErrorCounts(0, 0, len(hyp), 0)
    if not hyp:
        return ErrorCounts(0, len(ref), 0, len(ref))
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, len(ref))


def wer(reference: str, hypothesis: str, *, language: str = "en") -> float:
    """Word error rate; character error rate for languages written without spaces."""
    unit = "char" if language in UNSEGMENTED else "word"
    return error_counts(reference, hypothesis, language=language, unit=unit).rate


def cer(reference: str, hypothesis: str, *, language: str = "en") -> float:
    return error_counts(reference, hypothesis, language=language, unit="char").rate


def corpus_rate(pairs: Iterable[tuple[str, str, str]], unit: str | None = None) -> float:
    """Pooled error rate over (reference, hypothesis, language) triples: total errors / total length."""
    total = ZERO
    for ref, hyp, lang in pairs:
        u = unit or ("char" if lang in UNSEGMENTED else "word")
        total = total + error_counts(ref, hyp, language=lang, unit=u)
    return total.rate
