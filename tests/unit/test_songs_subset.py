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


def test_joined_songs_are_one_track_with_lines_and_breaks_moved(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    from benchmarks.songs_subset import joined

    monkeypatch.setenv("TFT_BENCH_DATA", str(tmp_path))
    tracks = []
    for k, seconds in enumerate((2.0, 3.0)):
        path = tmp_path / f"song{k}.flac"
        sf.write(path, np.full((int(seconds * 44_100), 2), 0.1 * (k + 1)), 44_100, subtype="PCM_16")
        tracks.append({"name": f"s{k}", "path": str(path), "language": "en", "ratio_db": -6.0,
                       "lines": [(0.5, 1.5, f"line {k}")], "instrumental": [[0.0, 0.5]]})
    out = joined(tracks)
    audio, rate = sf.read(out["path"])
    assert rate == 44_100 and audio.shape == (5 * 44_100, 2)
    assert abs(audio[0, 0] - 0.1) < 1e-3 and abs(audio[-1, 0] - 0.2) < 1e-3  # first song, then the second
    assert out["lines"] == [(0.5, 1.5, "line 0"), (2.5, 3.5, "line 1")]
    assert out["instrumental"] == [[0.0, 0.5], [2.0, 2.5]]
    assert out["ratio_db"] == -6.0 and out["name"] == "2 en songs joined, -6 dB"
    assert joined(tracks)["path"] == out["path"]  # written once, found again
