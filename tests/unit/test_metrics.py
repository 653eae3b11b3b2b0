"""WER/CER against hand-computed cases, including the normaliser's numbers and punctuation."""

import pytest

from benchmarks.metrics import cer, corpus_rate, error_counts, normalise, wer


def test_identical_is_zero():
    assert wer("the cat sat on the mat", "the cat sat on the mat") == 0.0


def test_one_substitution_in_six_words():
    # the cat sat on [the -> a] mat: 1 error / 6 reference words
    assert wer("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(1 / 6)


def test_deletion_and_insertion_counted_separately():
    # ref a b c d ; hyp a x c d e -> 1 substitution (b->x) + 1 insertion (e) = 2/4
    counts = error_counts("a b c d", "a x c d e")
    assert (counts.substitutions, counts.deletions, counts.insertions) == (1, 0, 1)
    assert counts.rate == pytest.approx(0.5)
    # ref a b c d ; hyp a c -> 2 deletions = 2/4
    assert wer("a b c d", "a c") == pytest.approx(0.5)


def test_punctuation_and_case_are_ignored():
    assert wer("Hello, World!", "hello world") == 0.0
    # contractions are expanded before scoring: "it's" is "it is"
    assert normalise("It's over... isn't it?") == "it is over is not it"
    assert wer("It's over, isn't it?", "it is over is not it") == 0.0


def test_number_words_and_digits_match():
    assert normalise("$25") == "twenty five dollars"
    assert wer("twenty five dollars", "$25") == 0.0
    assert wer("nineteen twenty seven", "1927") == 0.0
    assert wer("three point five", "3.5") == 0.0
    # Whisper's own number normaliser glued counted words into one number ("123") while
    # "1, 2, 3" stayed three, so a counting line scored as errors either way it was written.
    assert wer("One two three four five six seven eight nine ten.", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10.") == 0.0


def test_british_and_american_spelling_match():
    assert wer("the harbour master", "the harbor master") == 0.0


def test_empty_cases():
    assert wer("", "") == 0.0
    assert wer("hello world", "") == 1.0  # two deletions / two words
    assert error_counts("", "ghost words").insertions == 2


def test_chinese_is_scored_per_character():
    # 你好世界 vs 你好事件: 2 of 4 characters wrong
    assert wer("你好世界", "你好事件", language="zh") == pytest.approx(0.5)
    assert normalise("你好，世界。", "zh") == "你 好 世 界"


def test_cer_counts_characters():
    # "abcd" vs "abxd": 1 substitution / 4 characters
    assert cer("abcd", "abxd") == pytest.approx(0.25)


def test_corpus_rate_pools_errors():
    pairs = [("a b", "a b", "en"), ("c d e f", "c x e f", "en")]
    # 1 error over 6 words, not the mean of 0 and 0.25
    assert corpus_rate(pairs) == pytest.approx(1 / 6)


def test_digits_and_spelled_numbers_count_the_same_in_every_language():
    from benchmarks.metrics import normalise

    cases = {
        "fr": ("Il fallut 3 semaines.", "Il fallut trois semaines."),
        "de": ("Es dauerte 3 Wochen.", "Es dauerte drei Wochen."),
        "es": ("tardó 3 semanas", "tardó tres semanas"),
        "ru": ("Вода спадала 3 недели.", "Вода спадала три недели."),
        "pl": ("przez 3 tygodnie", "przez trzy tygodnie"),
        "zh": ("洪水过了3个星期才退去。", "洪水过了三个星期才退去。"),
    }
    for language, (digits, words) in cases.items():
        assert normalise(digits, language) == normalise(words, language), language
        assert wer(words, digits, language=language) == 0.0, language
