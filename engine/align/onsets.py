"""Voice onsets and offsets on the vocal stem, near where recognition heard a line.

Whisper's word times are good to a few tenths of a second; a sung line starts where the
voice starts. A separator leaves the vocal stem near silence where nobody sings (the
Spleeter stem of the song corpus sits 60-80 dB below the voice between lines), so the
onset is found by stepping back from a frame inside the line (loud, close to where
recognition heard it) while the stem stays within ``drop_db`` of the line's level. The
walk never crosses the previous line and never goes further back than ``max_back_s``.
"""

from __future__ import annotations

import numpy as np

FRAME_S = 0.01
RATE = 16_000
_HOP = int(RATE * FRAME_S)
DROP_DB = 35.0  # the voice has started once the stem is within this of the line's level
LOUD_DB = 12.0  # a frame this close to the line's level is surely inside the line
MAX_DIP_S = 0.05  # shorter dips below the threshold (a stop consonant) do not end the walk
MIN_CONTRAST_DB = 20.0  # the line must stand this far above the quiet around it to have an onset


def envelope_db(audio: np.ndarray, *, chunk: int = RATE * 60) -> np.ndarray:
    """Level of consecutive 10 ms frames in dB, computed a minute at a time."""
    n = audio.size // _HOP
    out = np.empty(n, np.float32)
    step = chunk // _HOP
    for f0 in range(0, n, step):
        f1 = min(n, f0 + step)
        frames = audio[f0 * _HOP : f1 * _HOP].astype(np.float32).reshape(f1 - f0, _HOP)
        out[f0:f1] = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-10)
    return out


def _frame(t: float) -> int:
    return int(round(t / FRAME_S))


def line_level(env: np.ndarray, start: float, end: float) -> float | None:
    """The line's level: the 90th percentile of its frames (robust to pauses between words)."""
    seg = env[max(0, _frame(start)) : max(0, _frame(end)) + 1]
    return float(np.percentile(seg, 90)) if seg.size else None


def voice_onset(env: np.ndarray, anchor: float, anchor_end: float, *, earliest: float, max_back_s: float = 0.6,
                max_forward_s: float = 0.5, inside_by: float | None = None, drop_db: float = DROP_DB) -> float | None:
    """Where the voice starts for a line heard from ``anchor`` to ``anchor_end``, or None when
    the stem shows no clear voice there (then the caller keeps Whisper's time).

    The search for a frame inside the line runs from ``anchor`` - 0.3 s (never before
    ``earliest``) to ``max_forward_s`` after it, or to ``inside_by`` (where the first heard
    word ends: Whisper often stamps a word after a pause at the start of the pause).
    """
    level = line_level(env, anchor, max(anchor_end, anchor + 1.0))
    if level is None:
        return None
    around = env[max(0, _frame(anchor - 3.0)) : _frame(anchor_end + 3.0)]
    if level - float(np.percentile(around, 10)) < MIN_CONTRAST_DB:  # no quiet before the voice to find
        return None
    lo = max(0, _frame(max(earliest, anchor - max_back_s)))
    inside = None
    stop = max(anchor + max_forward_s, inside_by or 0.0)
    for i in range(max(lo, _frame(anchor - 0.3), _frame(earliest)), min(env.size, _frame(stop))):
        if env[i] >= level - LOUD_DB:
            inside = i
            break
    if inside is None:
        return None
    threshold, dip = level - drop_db, int(MAX_DIP_S / FRAME_S)
    i = inside
    while i > lo:
        if env[i - 1] >= threshold:
            i -= 1
            continue
        j = i - 1  # look across a short dip
        while j > lo and env[j] < threshold and i - j <= dip:
            j -= 1
        if j >= lo and env[j] >= threshold and i - j <= dip:
            i = j
        else:
            break
    return i * FRAME_S


def voice_offset(env: np.ndarray, anchor_end: float, *, latest: float, max_forward_s: float = 0.6,
                 level: float | None = None, drop_db: float = DROP_DB) -> float:
    """Where the voice of a line heard until ``anchor_end`` stops (at most ``max_forward_s`` on)."""
    if level is None:
        level = line_level(env, anchor_end - 1.0, anchor_end)
    if level is None:
        return anchor_end
    threshold, dip = level - drop_db, int(MAX_DIP_S / FRAME_S)
    hi = min(env.size - 1, _frame(min(latest, anchor_end + max_forward_s)))
    i = min(_frame(anchor_end), hi)
    back = max(0, _frame(anchor_end - max_forward_s))
    while i > back and env[i] < threshold:  # recognition ran past the voice: step back onto it
        i -= 1
    while i < hi:
        if env[i + 1] >= threshold:
            i += 1
            continue
        j = i + 1
        while j < hi and env[j] < threshold and j - i <= dip:
            j += 1
        if env[j] >= threshold and j - i <= dip:
            i = j
        else:
            break
    return (i + 1) * FRAME_S


def voiced_regions(env: np.ndarray, *, drop_db: float = DROP_DB, min_gap_s: float = 0.25,
                   min_s: float = 0.3) -> list[tuple[float, float]]:
    """Stretches where the stem carries a voice: within ``drop_db`` of the track's loud voice
    (its 95th percentile), joined across pauses shorter than ``min_gap_s``."""
    audible = env[env > env.min() + 20.0] if env.size else env
    if audible.size == 0:
        return []
    on = env >= float(np.percentile(audible, 95)) - drop_db
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    runs = list(zip(edges[::2], edges[1::2]))
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and (a - merged[-1][1]) * FRAME_S < min_gap_s:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [(float(a * FRAME_S), float(b * FRAME_S)) for a, b in merged if (b - a) * FRAME_S >= min_s]


def voice_after_silence(regions: list[tuple[float, float]], t: float, before: float) -> float | None:
    """When ``t`` lies in a pause of the stem, where the voice resumes (if it does before
    ``before``); None when ``t`` is on voice. Recognition sometimes stamps a word of a line in
    the pause before it; the line cannot start where nobody sings."""
    if any(a <= t <= b for a, b in regions):
        return None
    return next((a for a, _ in regions if t < a < before), None)
