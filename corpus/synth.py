"""Generated non-speech: silence, noise, mains hum, and instrumentals with chords and drums.

Everything is deterministic for a given seed, so tests and benchmarks see the same audio
on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RATE = 16_000


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def white_noise(seconds: float, *, level: float = 0.1, seed: int = 0, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(seconds * rate))).astype(np.float32)


def hum(seconds: float, *, base_hz: float = 50.0, level: float = 0.3, harmonics: int = 5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * base_hz * k * t + k) / k for k in range(1, harmonics + 1))
    return (level * x / np.max(np.abs(x))).astype(np.float32)


def _midi_hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


PROGRESSIONS = (
    ((60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)),  # C Am F G
    ((62, 65, 69), (58, 62, 65), (60, 64, 67), (57, 61, 64)),  # Dm Bb C A
    ((55, 59, 62), (52, 55, 59), (48, 52, 55), (50, 54, 57)),  # G Em C D
)


def instrumental(
    seconds: float,
    *,
    bpm: float = 100.0,
    seed: int = 1,
    rate: int = RATE,
    drums: bool = True,
    lead: bool = True,
) -> np.ndarray:
    """Chords (decaying harmonic tones), a bass line, a lead melody, kick/snare/hi-hat."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros(n)
    beat = 60.0 / bpm
    bar = 4 * beat
    chords = PROGRESSIONS[seed % len(PROGRESSIONS)]
    for i in range(int(seconds / bar) + 1):
        start = int(i * bar * rate)
        if start >= n:
            break
        end = min(n, int((i + 1) * bar * rate))
        tt = t[start:end] - t[start]
        env = np.exp(-tt * 0.7)
        chord = chords[i % len(chords)]
        for note in chord:
            f = _midi_hz(note)
            for h, a in ((1, 1.0), (2, 0.5), (3, 0.3), (4, 0.15), (5, 0.08)):
                out[start:end] += 0.07 * a * env * np.sin(2 * np.pi * f * h * tt)
        fb = _midi_hz(chord[0] - 24)
        out[start:end] += 0.16 * np.exp(-tt * 1.5) * np.sin(2 * np.pi * fb * tt)
        if lead:  # a plucked melody on eighth notes from the chord tones
            for k in range(8):
                s = start + int(k * beat / 2 * rate)
                if s >= end:
                    break
                e = min(end, s + int(beat / 2 * rate))
                tl = np.arange(e - s) / rate
                f = _midi_hz(chord[rng.integers(0, 3)] + 12)
                saw = 2 * ((f * tl) % 1.0) - 1
                out[s:e] += 0.05 * np.exp(-tl * 6) * saw
    if drums:
        for j in range(int(seconds / beat) + 1):
            s = int(j * beat * rate)
            if s >= n:
                break
            length = min(int(0.25 * rate), n - s)
            tt = np.arange(length) / rate
            if j % 2 == 0:  # kick
                out[s : s + length] += 0.5 * np.sin(2 * np.pi * (50 + 100 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 12)
            else:  # snare
                out[s : s + length] += 0.22 * rng.standard_normal(length) * np.exp(-tt * 20)
            s2 = s + int(beat / 2 * rate)
            l2 = min(int(0.05 * rate), n - s2)
            if l2 > 0:  # hi-hat on the off-beat
                out[s2 : s2 + l2] += 0.08 * np.diff(rng.standard_normal(l2 + 1)) * np.exp(-np.arange(l2) / rate * 80)
    peak = np.max(np.abs(out)) or 1.0
    return (0.8 * out / peak).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def mix_at_snr(voice: np.ndarray, bed: np.ndarray, snr_db: float) -> np.ndarray:
    """voice + bed scaled so that voice/bed power is ``snr_db`` (0 dB: equally loud)."""
    bed = np.resize(bed, voice.shape)
    scale = rms(voice) / (rms(bed) * 10 ** (snr_db / 20) + 1e-12)
    out = voice + bed * scale
    peak = np.max(np.abs(out)) or 1.0
    return (out / peak * 0.9 if peak > 0.99 else out).astype(np.float32)


def place(clips: list[tuple[float, np.ndarray]], seconds: float, rate: int = RATE) -> np.ndarray:
    """Put clips at known offsets (seconds) on a silent track."""
    out = np.zeros(int(seconds * rate), dtype=np.float32)
    for offset, clip in clips:
        s = int(offset * rate)
        e = min(out.size, s + clip.size)
        out[s:e] += clip[: e - s]
    return out


def degrade(clean: np.ndarray, *, hum_db: float = 10.0, clicks: int = 2000, seed: int = 1) -> np.ndarray:
    """An old recording (16 kHz): 50 Hz hum with harmonics ``hum_db`` against the signal,
    ``clicks`` crackle impulses, hiss at 25 dB SNR, a 100 Hz - 6 kHz band."""
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(seed)
    t = np.arange(clean.size) / RATE
    power = np.mean(clean**2)
    mains = sum(np.sin(2 * np.pi * 50 * k * t + k) / k**0.5 for k in range(1, 8))
    mains *= np.sqrt(power / np.mean(mains**2) * 10 ** (hum_db / 10))
    hiss = rng.standard_normal(clean.size) * np.sqrt(power / 10 ** (25 / 10))
    y = clean + mains + hiss
    where = rng.integers(0, clean.size, clicks)
    y[where] += rng.choice([-1, 1], where.size) * rng.uniform(0.3, 1.0, where.size)
    y = sosfiltfilt(butter(4, [100, 6000], "bandpass", fs=RATE, output="sos"), y)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, subtype="PCM_16")
    return path
