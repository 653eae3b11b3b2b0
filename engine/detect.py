"""A cheap speech-or-music decision, made before any expensive work.

Three measurements on at most the first few minutes of 16 kHz mono audio (well under a
second of CPU for a whole song):

* ``pause_ratio``: the share of 25 ms frames more than 30 dB below the loud frames.
  People pause between phrases; a band (or a bed under a voice) never goes quiet.
* ``tonal_stability``: of the spectral peaks (150 Hz - 4 kHz) in one 128 ms frame, the
  share still present a quarter of a second later. Held notes and chords persist; the
  formants and pitch of speech move on within a syllable. Peaks present nearly all the
  time (mains hum, a whine) are ignored: they are a property of the recording, not music.
* ``rhythm``: the strongest autocorrelation of the onset envelope at a beat period
  (0.25-1.5 s). Drums and strummed chords are periodic; syllables are not.

The rule: audio is music when it has no pauses to speak of AND it is tonal or rhythmic, or
when it is both tonal AND rhythmic with few pauses (a song with a quiet intro or a break).
Clean speech has pauses; an instrumental has neither pauses nor absence of structure;
speech over a music bed loses its pauses to the bed while the bed supplies tonality and
rhythm. Noisy speech loses its pauses too, but noise is neither tonal nor periodic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import AudioTypeDecision

SAMPLE_RATE = 16_000


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    max_pause_ratio: float = 0.08
    # A song with a quiet intro, a break or a fade pauses too; when it is both tonal and
    # rhythmic it is still music, up to this share of quiet frames. Speech measured here never
    # comes near both (tonal stability <= 0.26 and beat <= 0.33 on 27 clips in 9 languages).
    max_pause_ratio_tonal_and_rhythmic: float = 0.25
    min_tonal_stability: float = 0.4
    min_rhythm: float = 0.35
    analysis_s: float = 180.0
    pause_db: float = 30.0


def _frames_energy_db(audio: np.ndarray, frame: int = 400, hop: int = 160) -> np.ndarray:
    n = 1 + max(0, (audio.size - frame) // hop)
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    energy = np.mean(audio[idx] ** 2, axis=1)
    return 10 * np.log10(energy + 1e-12)


def pause_ratio(audio: np.ndarray, settings: DetectorSettings = DetectorSettings()) -> float:
    db = _frames_energy_db(audio)
    if db.size == 0:
        return 1.0
    loud = np.percentile(db, 95)
    if loud < -70:  # digital silence throughout
        return 1.0
    return float(np.mean(db < loud - settings.pause_db))


def _spectrogram(audio: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    if audio.size < n_fft:
        audio = np.pad(audio, (0, n_fft - audio.size))
    n = 1 + (audio.size - n_fft) // hop
    window = np.hanning(n_fft).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop][:n] * window
    import scipy.fft  # not at import time: the engine loads scipy only where it is used

    # scipy's FFT on these float32 frames: the same figures as numpy's, 0.27 -> 0.17 s for 180 s here
    return np.abs(scipy.fft.rfft(frames, axis=1)).astype(np.float32)


def tonal_stability(audio: np.ndarray, *, lag_s: float = 0.25) -> float:
    """Share of prominent spectral peaks that persist ``lag_s`` later (see module docstring)."""
    spec = _spectrogram(audio)
    freqs = np.fft.rfftfreq(2048, 1 / SAMPLE_RATE)
    band = (freqs >= 150) & (freqs <= 4000)
    logspec = 20 * np.log10(spec[:, band] + 1e-9)
    if logspec.shape[0] < 4:
        return 0.0
    loud = logspec.max(axis=1) > (logspec.max() - 40)
    median = np.median(logspec, axis=1, keepdims=True)
    is_peak = (
        (logspec[:, 1:-1] > logspec[:, :-2])
        & (logspec[:, 1:-1] >= logspec[:, 2:])
        & (logspec[:, 1:-1] > median + 15)
    )
    # Widen by one bin so vibrato and slight detuning still count as the same note.
    widened = is_peak.copy()
    widened[:, 1:] |= is_peak[:, :-1]
    widened[:, :-1] |= is_peak[:, 1:]
    permanent = widened.mean(axis=0) > 0.8  # hum, whine: ignore
    is_peak &= ~permanent
    widened &= ~permanent
    lag = max(1, int(round(lag_s * SAMPLE_RATE / 512)))
    current, later = is_peak[:-lag], widened[lag:]
    usable = loud[:-lag] & (current.sum(axis=1) > 0)
    if usable.sum() < 4:
        return 0.0
    kept = (current & later).sum(axis=1)[usable] / current.sum(axis=1)[usable]
    return float(np.mean(kept))


def rhythm(audio: np.ndarray) -> float:
    """Peak normalised autocorrelation of spectral flux at beat periods of 0.25-1.5 s."""
    spec = _spectrogram(audio, n_fft=1024, hop=256)
    if spec.shape[0] < 64:
        return 0.0
    logspec = np.log1p(spec * 10)
    flux = np.maximum(np.diff(logspec, axis=0), 0).sum(axis=1)
    flux = flux - np.convolve(flux, np.ones(16) / 16, mode="same")  # remove the slow trend
    flux = np.maximum(flux, 0)
    flux -= flux.mean()
    denom = float(np.dot(flux, flux))
    if denom <= 0:
        return 0.0
    rate = SAMPLE_RATE / 256
    lags = range(int(0.25 * rate), min(int(1.5 * rate), flux.size // 2))
    best = 0.0
    for lag in lags:
        best = max(best, float(np.dot(flux[:-lag], flux[lag:])) / denom)
    return best


def measure(audio: np.ndarray, settings: DetectorSettings = DetectorSettings()) -> dict[str, float]:
    clip = audio[: int(settings.analysis_s * SAMPLE_RATE)]
    return {
        "pause_ratio": pause_ratio(clip, settings),
        "tonal_stability": tonal_stability(clip),
        "rhythm": rhythm(clip),
        "analysed_s": clip.size / SAMPLE_RATE,
    }


def classify(audio: np.ndarray, settings: DetectorSettings = DetectorSettings()) -> AudioTypeDecision:
    """Decide speech or music for 16 kHz mono audio, with the evidence."""
    ev = measure(audio, settings)
    continuous = ev["pause_ratio"] <= settings.max_pause_ratio
    tonal = ev["tonal_stability"] >= settings.min_tonal_stability
    rhythmic = ev["rhythm"] >= settings.min_rhythm
    structured = tonal and rhythmic and ev["pause_ratio"] <= settings.max_pause_ratio_tonal_and_rhythmic
    if (continuous and (tonal or rhythmic)) or structured:
        why = [f"no pauses (pause ratio {ev['pause_ratio']:.2f} <= {settings.max_pause_ratio})" if continuous else
               f"few pauses (pause ratio {ev['pause_ratio']:.2f} <= {settings.max_pause_ratio_tonal_and_rhythmic})"]
        if tonal:
            why.append(f"sustained tones ({ev['tonal_stability']:.2f} >= {settings.min_tonal_stability})")
        if rhythmic:
            why.append(f"a regular beat ({ev['rhythm']:.2f} >= {settings.min_rhythm})")
        return AudioTypeDecision("music", "detector", ev, "; ".join(why))
    if not continuous:
        reason = f"pauses between phrases (pause ratio {ev['pause_ratio']:.2f} > {settings.max_pause_ratio})"
    else:
        reason = "continuous sound with neither sustained tones nor a beat"
    return AudioTypeDecision("speech", "detector", ev, reason)
