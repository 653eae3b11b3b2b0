"""The pooled figures of benchmarks.songs_subset, which the README's music table quotes."""

from benchmarks.songs_subset import pooled


def test_pooled_per_ratio():
    rows = [
        {"ratio_db": 0.0, "reference": "a b c d", "hypothesis": "a b c x", "language": "en",
         "instrumental_words": 1, "onset_errors": [0.1, 0.3]},
        {"ratio_db": 0.0, "reference": "e f g h", "hypothesis": "e f g h", "language": "en",
         "instrumental_words": 0, "onset_errors": [float("inf")]},
        {"ratio_db": -6.0, "reference": "a b", "hypothesis": "", "language": "en",
         "instrumental_words": 0, "onset_errors": []},
    ]
    out = pooled(rows)
    assert list(out) == ["+0 dB", "-6 dB"]
    assert out["+0 dB"]["wer"] == 1 / 8 and out["+0 dB"]["instrumental_words"] == 1
    assert abs(out["+0 dB"]["onset_mae_s"] - 0.2) < 1e-9 and out["+0 dB"]["lines_without_onset"] == 1
    assert out["-6 dB"]["wer"] == 1.0 and out["-6 dB"]["onset_mae_s"] is None
