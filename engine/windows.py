"""Pack speech into full 30 s decoding windows.

Whisper's encoder always reads 30 s: a window holding 15 s of speech costs as much as one
holding 30 s, and on a CPU the encoder is over half of the decoding time. faster-whisper's
``collect_chunks`` starts a new window whenever the next speech span does not fit, so
paragraph-long spans leave windows two-thirds full (14 windows for 290 s of speech in the
long-form benchmark). Here a span that does not fit is cut at the longest pause within its
last few seconds that still fit, so windows are nearly full (11 windows for the same speech)
and no cut falls inside a word; a pause inside a span is shortened to 0.4 s, so the windows
carry speech rather than silence; and a window closes at the join before a piece rather than
cut the piece in less than a real pause, unless that would leave it far from full.

Pure numpy and no model: the decoder (``transcription``) maps times back with ``Window``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import SpeechSpan

SAMPLE_RATE = 16_000
_FRAME = 160  # 10 ms


@dataclass(frozen=True, slots=True)
class Window:
    """Pieces of the original audio (sample ranges) joined into one decoding window.

    ``margins``: per piece, the samples of kept silence at its head and its tail where a
    pause was shortened (``shorten_pauses``); empty when none was."""

    pieces: tuple[tuple[int, int], ...]
    margins: tuple[tuple[int, int], ...] = ()

    @property
    def samples(self) -> int:
        return sum(b - a for a, b in self.pieces)

    @property
    def duration(self) -> float:
        return self.samples / SAMPLE_RATE

    def audio(self, signal: np.ndarray) -> np.ndarray:
        return np.concatenate([signal[a:b] for a, b in self.pieces]) if self.pieces else signal[:0]

    def to_original(self, t: float, *, end: bool = False) -> float:
        """A time inside the window (seconds) on the original timeline. A time at a join
        belongs to the piece that starts there, or with ``end`` to the piece that ends there.
        A start in the kept silence before a shortened pause belongs to the voice after the
        pause, an end in the silence after it to the voice before: mapped straight, a word
        would stretch over the silence that was cut out."""
        pos = max(0, int(round(t * SAMPLE_RATE)))
        for k, (a, b) in enumerate(self.pieces):
            if pos < b - a or (end and pos == b - a):
                head, tail = self.margins[k] if self.margins else (0, 0)
                if not end and tail and pos >= b - a - tail and k + 1 < len(self.pieces):
                    return (self.pieces[k + 1][0] + self.margins[k + 1][0]) / SAMPLE_RATE
                if end and head and pos <= head and k > 0:
                    return (self.pieces[k - 1][1] - self.margins[k - 1][1]) / SAMPLE_RATE
                return (a + pos) / SAMPLE_RATE
            pos -= b - a
        return self.pieces[-1][1] / SAMPLE_RATE if self.pieces else 0.0


@dataclass(frozen=True, slots=True)
class PackSettings:
    """max_s: the window length. search_s: how far back from a window's end a cut may go;
    a long search finds sentence pauses but wastes space. min_room_s: less room than this
    closes the window without cutting. quiet_db: frames this far below the cut region's
    mean energy count as pause. max_pause_s: a pause inside a speech span is shortened to
    this (half of it kept on each side): Whisper still hears a pause, the window holds
    more speech. silence_db: frames this far below a span's loud frames are silence.
    min_cut_pause_s: a cut inside a piece needs a pause this long, unless closing the window
    at the join before the piece would leave more than ``max_unused_s`` of it unused."""

    max_s: float = 30.0
    search_s: float = 4.5
    min_room_s: float = 2.0
    quiet_db: float = 25.0
    max_pause_s: float = 0.4
    silence_db: float = 35.0
    min_cut_pause_s: float = 0.15
    max_unused_s: float = 7.5


def pack(signal: np.ndarray, spans: tuple[SpeechSpan, ...] | None,
         settings: PackSettings = PackSettings()) -> tuple[Window, ...]:
    """Speech spans (or the whole signal) joined in order into windows of at most ``max_s``."""
    limit = int(settings.max_s * SAMPLE_RATE)
    if spans is None:
        pieces = [(0, signal.size, 0, 0)] if signal.size else []
    else:
        ranges = [(int(s.start * SAMPLE_RATE), min(int(s.end * SAMPLE_RATE), signal.size)) for s in spans]
        pieces = [p for a, b in ranges if b > a for p in shorten_pauses(signal, a, b, settings)]
    windows: list[Window] = []
    current: list[tuple[int, int, int, int]] = []
    used = 0
    i = 0
    while i < len(pieces):
        a, b, head, tail = pieces[i]
        if used + (b - a) <= limit:
            current.append(pieces[i])
            used += b - a
            i += 1
            continue
        room = limit - used
        if room >= settings.min_room_s * SAMPLE_RATE or not current:
            cut, quiet = _pause(signal, a, a + room, search=int(settings.search_s * SAMPLE_RATE),
                                quiet_db=settings.quiet_db)
            # the join before this piece is a pause: better than a cut inside a phrase, unless
            # it leaves the window far from full
            if current and quiet < settings.min_cut_pause_s * 100 and room <= settings.max_unused_s * SAMPLE_RATE:
                cut = a
            if cut > a:
                current.append((a, cut, head, 0))
                pieces[i] = (cut, b, 0, tail)
        windows.append(_window(current))
        current, used = [], 0
    if current:
        windows.append(_window(current))
    return tuple(windows)


def _window(pieces: list[tuple[int, int, int, int]]) -> Window:
    margins = tuple((h, t) for _, _, h, t in pieces)
    return Window(tuple((a, b) for a, b, _, _ in pieces), margins if any(h or t for h, t in margins) else ())


def _frames_db(signal: np.ndarray, start: int, end: int) -> np.ndarray:
    """Energy of the 10 ms frames of signal[start:end], in dB."""
    n = (end - start) // _FRAME
    frames = signal[start: start + n * _FRAME].reshape(n, _FRAME).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)


def shorten_pauses(signal: np.ndarray, start: int, end: int,
                   settings: PackSettings) -> list[tuple[int, int, int, int]]:
    """signal[start:end] as pieces (start, end, silent head, silent tail) without the middle
    of its pauses longer than ``max_pause_s``. With the 4.5 s search: 11 and 8 windows for the
    bench's two long-form texts where a 6 s search without it packed 11 and 9."""
    db = _frames_db(signal, start, end)
    keep = int(settings.max_pause_s * SAMPLE_RATE) // 2
    if db.size == 0 or keep <= 0:
        return [(start, end, 0, 0)]
    quiet = np.concatenate([[False], db < np.percentile(db, 95) - settings.silence_db, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    pieces, piece_start, head = [], start, 0
    for run_start, run_end in zip(edges[::2], edges[1::2]):
        a, b = start + int(run_start) * _FRAME, start + int(run_end) * _FRAME
        if b - a > 2 * keep and a > start and b < start + db.size * _FRAME:  # inside, not at an edge
            pieces.append((piece_start, a + keep, head, keep))
            piece_start, head = b - keep, keep
    pieces.append((piece_start, end, head, 0))
    return pieces


def pause_point(signal: np.ndarray, start: int, end: int, *, search: int, quiet_db: float = 25.0) -> int:
    """A sample in (end - search, end] at the middle of the longest run of quiet 10 ms frames;
    the quietest frame when nothing is quiet. Always > ``start``, so every cut makes progress."""
    return _pause(signal, start, end, search=search, quiet_db=quiet_db)[0]


def _pause(signal: np.ndarray, start: int, end: int, *, search: int, quiet_db: float) -> tuple[int, int]:
    """``pause_point``, and the length of the pause it found in 10 ms frames (0: none)."""
    lo = max(start + _FRAME, end - search)
    if end - lo < 3 * _FRAME:
        return end, 0
    db = _frames_db(signal, lo, end)
    reference = 10 * np.log10(np.mean(signal[start:end].astype(np.float64) ** 2) + 1e-10)
    quiet = np.concatenate([db < reference - quiet_db, [False]])
    best_len, best_mid, run_start = 0, -1, -1
    for k, q in enumerate(quiet):
        if q and run_start < 0:
            run_start = k
        elif not q and run_start >= 0:
            if k - run_start >= best_len:  # ties: the later pause keeps more in this window
                best_len, best_mid = k - run_start, (run_start + k) // 2
            run_start = -1
    if best_mid < 0:
        best_mid = int(np.argmin(db))
    return lo + best_mid * _FRAME + _FRAME // 2, best_len
