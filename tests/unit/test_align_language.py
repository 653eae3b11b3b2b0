"""The language a lyric sheet is written in: taken from a sheet of a few lines when the text
identifier is sure, never from a handful of words, and only in a language Whisper knows."""

from engine.align.language import SheetLanguage, nameable, sheet_language, sheet_overrules
from engine.transcription import known_language_codes

WHISPER = known_language_codes()

FRENCH = """Le soleil du matin brille sur la rivière
Je marche sur la route qui me ramène

Reste avec moi ce soir
Nous partons ensemble ce soir"""

SPANISH = """La luz de la mañana cae sobre el río
Camino por la calle que me lleva a casa
Quédate conmigo esta noche"""

CHINESE = "月亮代表我的心\n你问我爱你有多深\n我爱你有几分\n我的情也真\n我的爱也真\n月亮代表我的心\n轻轻的一个吻\n已经打动我的心"


def test_a_sheet_of_a_few_lines_says_its_language():
    for text, code in ((FRENCH, "fr"), (SPANISH, "es"), (CHINESE, "zh")):
        found = sheet_language(text, WHISPER)
        assert found is not None and found.code == code and found.probability >= 0.95, (code, found)


def test_the_same_sheet_always_gives_the_same_answer():
    assert len({sheet_language(FRENCH, WHISPER) for _ in range(5)}) == 1


def test_a_few_words_are_not_evidence():
    assert sheet_language("I love you baby", WHISPER) is None  # langdetect reads this as Czech
    assert sheet_language("123 456\n789", WHISPER) is None


def test_a_language_the_model_cannot_transcribe_is_not_chosen():
    assert sheet_language(FRENCH, frozenset({"en"})) is None


def test_the_sheet_overrules_the_audio_unless_the_audio_is_sure_of_a_language_it_cannot_name():
    french, indonesian = SheetLanguage("fr", 1.0), SheetLanguage("id", 1.0)
    assert sheet_overrules(french, "br", 0.2)  # French under a band, heard as Breton
    assert sheet_overrules(french, "de", 0.9)  # the identifier knows German: the text is French
    assert not sheet_overrules(french, "fr", 0.4)  # they agree: nothing to hear again
    assert not sheet_overrules(indonesian, "ms", 0.8)  # Malay, which the identifier calls Indonesian
    assert sheet_overrules(indonesian, "ms", 0.3)
    assert sheet_overrules(french, None, 0.0)  # nothing heard
    assert "ms" not in nameable() and {"fr", "id", "zh"} <= nameable()
