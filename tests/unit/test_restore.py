import numpy as np

from corpus import synth
from engine import restore


def test_hum_family_is_detected():
    rng = np.random.default_rng(0)
    voiceish = 0.05 * rng.standard_normal(16000 * 5).astype(np.float32)
    assert restore.detect_hum(voiceish + synth.hum(5, base_hz=50, level=0.2)) == 50.0
    assert restore.detect_hum(voiceish + synth.hum(5, base_hz=60, level=0.2)) == 60.0
    assert restore.detect_hum(voiceish) is None


def test_hum_is_removed_and_length_kept():
    x = synth.hum(5, base_hz=50, level=0.3) + 0.01 * np.random.default_rng(1).standard_normal(80000).astype(np.float32)
    out, report = restore.restore(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert report.hum_hz == 50.0

    gain = 10 ** (report.gain_db / 20)
    restored = out / gain  # undo the final normalisation to compare levels

    def level_db(sig, f):
        spec = np.abs(np.fft.rfft(sig)) ** 2
        i = int(round(f * sig.size / 16000))
        return 10 * np.log10(spec[i - 2 : i + 3].sum())

    for harmonic in (50, 100, 150, 200, 250):
        assert level_db(x, harmonic) - level_db(restored, harmonic) > 20, harmonic


def test_clicks_are_repaired():
    t = np.arange(16000 * 2) / 16000
    x = (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float64)
    damaged = x.copy()
    where = np.arange(1000, 31000, 1500)
    damaged[where] += 0.9
    fixed, count = restore.repair_clicks(damaged)
    assert count >= len(where) * 0.9
    assert np.max(np.abs(fixed - x)) < 0.1  # every spike gone, the tone intact
    _, none = restore.repair_clicks(x)
    assert none == 0
