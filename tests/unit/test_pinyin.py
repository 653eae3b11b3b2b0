from engine.pinyin import annotate, has_han, romanise
from engine.types import Segment, Word


def test_tone_marks_and_phrase_aware_readings():
    assert romanise("你好") == "nǐ hǎo"
    assert romanise("银行") == "yín háng"  # not yín xíng
    assert romanise("你好，世界。") == "nǐ hǎo, shì jiè."


def test_non_han_passes_through():
    assert romanise("我有3个iPhone") == "wǒ yǒu 3 gè iPhone"
    assert not has_han("hello")


def test_annotate_sets_segment_and_word_pinyin_only_for_chinese():
    seg = Segment(0, 0, 1, "你好世界", (Word(0, 0.5, "你好", 0.9), Word(0.5, 1, "世界", 0.9)))
    english = Segment(1, 1, 2, " hello")
    out = annotate([seg, english])
    assert out[0].pinyin == "nǐ hǎo shì jiè"
    assert [w.pinyin for w in out[0].words] == ["nǐ hǎo", "shì jiè"]
    assert out[1].pinyin is None
