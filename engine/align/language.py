"""The language a lyric sheet is written in, read from its text.

Whisper's language head, run on a song, is easily misled by the band: espeak-ng's French
over a pop band came out as Breton, Latin or German (probability 0.1-0.3), and the song was
then recognised in that language and its lines could not be found. A lyric sheet of a few
lines says its language far more reliably than the audio can, so when the user gives no
``--language``, ``tft align`` lets the sheet overrule the audio when a text language
identifier (``langdetect``, Google's language-detection profiles, 55 languages) is sure of
it. Short sheets are left to the audio: a dozen letters are not evidence ("I love you baby"
reads as Czech). The identifier names a language it does not know after its nearest
neighbour (Malay as Indonesian, Bosnian as Croatian, Belarusian as Russian, all at 0.9999),
so when the audio is sure of a language the identifier cannot name, the audio stands.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

MIN_LETTERS = 40  # fewer letters (of any script) than this: not enough text to judge
MIN_PROBABILITY = 0.95
AUDIO_SURE = 0.5  # Whisper's language probability above which a language the identifier cannot name stands
_WHISPER_CODE = {"zh-cn": "zh", "zh-tw": "zh"}  # langdetect's codes that differ from Whisper's


@dataclass(frozen=True, slots=True)
class SheetLanguage:
    code: str  # Whisper's code
    probability: float


@functools.lru_cache(maxsize=1)
def _factory():
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)  # langdetect samples n-grams at random: the same sheet, the same answer
    return factory


def sheet_language(text: str, supported: tuple[str, ...] | frozenset[str]) -> SheetLanguage | None:
    """The sheet's language when the identifier is sure of it and Whisper knows it, else None."""
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return None
    from langdetect.lang_detect_exception import LangDetectException

    detector = _factory().create()
    detector.append(text)
    try:
        ranked = detector.get_probabilities()
    except LangDetectException:  # no usable features (digits, symbols)
        return None
    if not ranked or ranked[0].prob < MIN_PROBABILITY:
        return None
    code = _WHISPER_CODE.get(ranked[0].lang, ranked[0].lang)
    return SheetLanguage(code, float(ranked[0].prob)) if code in supported else None


def nameable() -> frozenset[str]:
    """Whisper codes of the languages the identifier knows."""
    return frozenset(_WHISPER_CODE.get(code, code) for code in _factory().get_lang_list())


def sheet_overrules(sheet: SheetLanguage, audio: str | None, audio_probability: float) -> bool:
    """Whether the sheet's language replaces the one Whisper heard in the song."""
    if audio is None or audio == sheet.code:
        return audio is None
    return audio in nameable() or audio_probability < AUDIO_SURE
