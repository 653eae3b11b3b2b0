"""Voice lines with known text for the song corpus: espeak-ng speech, a held, sung-like espeak
variant, and the pytest-audioeval clips; each trimmed to its voiced extent at 44.1 kHz.

Timing in the corpus is measured, never nominal: a line's start and end are where its frames
carry energy (``active_frames``), and the voice-to-band ratio is measured over those frames.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .errors import CorpusError, ToolMissing

RATE = 44_100
FRAME_S = 0.010  # 441 samples
FLOOR_DB = -40.0  # a frame is voiced when within 40 dB of the loudest frame
LINE_RMS = 0.1  # every line is brought to the same level over its voiced frames

# (voice, words per minute), chosen by Whisper base's WER on each language's clean lines in
# context (en 0%, es 9%, it 14%, de 19%, fr 19-25%): espeak's klatt variant is far clearer
# in French (31% against 66% for the default). Variants need the bare language ("fr+klatt").
ESPEAK_VOICES = {"en": ("en-us", 140), "fr": ("fr+klatt", 150), "es": ("es+klatt", 150),
                 "de": ("de+klatt", 150), "it": ("it", 150)}
# espeak-ng en-us with SSML range="0%" holds a flat pitch of 89 Hz at pitch="+0%", and each
# +100% multiplies it by about 2**0.84 (measured: 89, 102, 119, 137, 159 Hz for 0..100%).
SUNG_BASE_HZ, SUNG_OCTAVES_PER_100 = 89.0, 0.84
SUNG_RATE = "55%"


def frame_rms(x: np.ndarray, frame: int = int(RATE * FRAME_S)) -> np.ndarray:
    """RMS of consecutive frames of a mono (or channel-averaged) signal; a partial last frame counts."""
    mono = x.mean(axis=1) if x.ndim == 2 else x
    n = math.ceil(mono.size / frame)
    padded = np.zeros(n * frame, np.float64)
    padded[: mono.size] = mono
    return np.sqrt(np.mean(padded.reshape(n, frame) ** 2, axis=1))


def active_frames(x: np.ndarray, floor_db: float = FLOOR_DB) -> np.ndarray:
    """Frames within ``floor_db`` of the loudest frame: where a voice actually sounds."""
    energy = frame_rms(x)
    peak = float(energy.max()) if energy.size else 0.0
    return energy > peak * 10 ** (floor_db / 20) if peak > 0 else np.zeros(energy.size, bool)


def trim(x: np.ndarray) -> np.ndarray:
    """The clip from its first to its last voiced frame, on the 10 ms frame grid, at ``LINE_RMS``."""
    active = np.flatnonzero(active_frames(x))
    if active.size == 0:
        raise CorpusError("a voice line came out silent")
    frame = int(RATE * FRAME_S)
    out = x[active[0] * frame : (active[-1] + 1) * frame].astype(np.float64)
    level = np.sqrt(np.mean(out[np.repeat(active_frames(out), frame)[: out.size]] ** 2))
    return (out * (LINE_RMS / level)).astype(np.float32)


def _to_rate(x: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = math.gcd(rate, RATE)
    return x if rate == RATE else resample_poly(x.astype(np.float64), RATE // g, rate // g)


def _read(path: Path) -> np.ndarray:
    import soundfile as sf

    x, rate = sf.read(path, dtype="float32", always_2d=True)
    return _to_rate(x.mean(axis=1), rate)


def _espeak(args: list[str]) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ToolMissing("espeak-ng is not installed: apt-get install espeak-ng (`make install` does)")
    with tempfile.TemporaryDirectory(prefix="tft-voice-") as tmp:
        wav = Path(tmp) / "line.wav"
        done = subprocess.run([exe, *args, "-w", str(wav)], capture_output=True, text=True)
        if done.returncode != 0 or not wav.is_file():
            raise ToolMissing(f"espeak-ng failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return _read(wav)


def spoken_line(text: str, language: str) -> np.ndarray:
    """``text`` read by espeak-ng in ``language``'s voice, trimmed and levelled."""
    if language not in ESPEAK_VOICES:
        raise CorpusError(f"no espeak-ng voice for language {language!r}; known: {sorted(ESPEAK_VOICES)}")
    voice, wpm = ESPEAK_VOICES[language]
    return trim(_espeak(["-v", voice, "-s", str(wpm), text]))


def melody(words: int, key: int, scale: tuple[int, ...], rng: np.random.Generator) -> list[int]:
    """One note per word: a step-wise walk on the scale within a sixth above the tonic, ending home."""
    notes = [key + s for s in scale if s <= 9]
    i = int(rng.integers(0, 3))
    out = []
    for w in range(words):
        out.append(notes[i])
        i = int(np.clip(i + rng.choice((-2, -1, 1, 1, 2)), 0, len(notes) - 1))
    if words > 1:
        out[-1] = notes[0] if rng.random() < 0.5 else notes[min(2, len(notes) - 1)]
    return out


def _pitch_percent(midi_note: int) -> float:
    """SSML pitch offset that puts espeak's en-us voice on ``midi_note`` (any octave from 89 Hz up)."""
    hz = 440.0 * 2 ** ((midi_note - 69) / 12)
    while hz < SUNG_BASE_HZ:
        hz *= 2
    while hz > SUNG_BASE_HZ * 2 ** SUNG_OCTAVES_PER_100:
        hz /= 2
    return 100 * math.log2(hz / SUNG_BASE_HZ) / SUNG_OCTAVES_PER_100


def sung_line(text: str, language: str, *, key: int, scale: tuple[int, ...], seed: int) -> np.ndarray:
    """A held, sung-like reading: slow, each word on one flat note of a melody in the song's key.

    espeak-ng's SSML ``range="0%"`` removes speech intonation, so every word sits on its note;
    the slow rate lengthens the vowels. Only the en-us voice's pitch is calibrated.
    """
    return trim(_espeak(["-m", "-v", ESPEAK_VOICES[language][0], sung_ssml(text, language, key=key, scale=scale,
                                                                           seed=seed)]))


def sung_ssml(text: str, language: str, *, key: int, scale: tuple[int, ...], seed: int) -> str:
    """The SSML that ``sung_line`` has espeak-ng read."""
    if language != "en":
        raise CorpusError("the sung-like voice is calibrated for English only")
    from xml.sax.saxutils import escape

    words = text.split()
    notes = melody(len(words), key, scale, np.random.default_rng(seed))
    body = " ".join(f'<prosody pitch="+{_pitch_percent(n):.0f}%">{escape(w)}</prosody>' for w, n in zip(words, notes))
    return f'<speak><prosody rate="{SUNG_RATE}" range="0%">{body}</prosody></speak>'


def clip_line(path: Path) -> np.ndarray:
    """A recorded clip (pytest-audioeval), trimmed and levelled like the synthetic lines."""
    return trim(_read(Path(path)))
