"""The truth labels of benchmarks.recover_gains, on which MIN_GAIN's measured margins rest."""

from benchmarks.recover_gains import label

SUNG = [(8.0, 10.25, "The morning light is falling"), (56.0, 57.9, "We are running, with the wind!"),
        (70.0, 72.0, "Never let me go"), (80.0, 82.0, "Never let me go")]


def test_a_line_sung_over_most_of_the_stretch_is_sung_here():
    assert label("we are running with the wind", 55.9, 58.1, SUNG) == "sung here"  # case, punctuation
    assert label("Never let me go", 79.5, 82.5, SUNG) == "sung here"  # the repeat that is there


def test_a_line_sung_at_another_time_or_barely_inside_is_sung_elsewhere():
    assert label("Never let me go", 74.0, 76.0, SUNG) == "sung elsewhere"
    assert label("The morning light is falling", 9.5, 12.0, SUNG) == "sung elsewhere"  # a third of it


def test_a_line_never_sung_is_unsung():
    assert label("The river turns to gold before the rain", 55.9, 58.1, SUNG) == "unsung"
