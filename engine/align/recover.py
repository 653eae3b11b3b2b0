"""Place sheet lines that recognition missed, on voice the stem shows between placed lines.

Between two placed lines, the unplaced ones can only be sung in the voiced stretches of the
vocal stem that lie between them, in order. When there are exactly as many stretches as
lines, each of a plausible length for its line, they pair up one to one. Otherwise Whisper
scores each line against each stretch (the mean probability of the line's own tokens in a
cross-attention alignment) and the best order-keeping pairing of lines that score above
``MIN_PROBABILITY`` and clearly above the other missed lines there is kept. A line with no stretch, or no convincing one, stays unmatched.
"""

from __future__ import annotations

from typing import Sequence

from .attention import CrossAttentionAligner, Span

# Mean probability of a line's own tokens, aligned on a slice of the encoder output: about
# 0.1-0.4 where the line is sung, under 0.03 elsewhere (measured on the song corpus); and a
# line must beat every other missed line on the same stretch by this factor.
MIN_PROBABILITY = 0.1
MIN_MARGIN = 2.0
DURATION_RANGE = (0.4, 2.5)  # a stretch this many times the line's expected length is plausible
DEFAULT_S_PER_CHAR = 0.07  # before any line was placed: about speech rate
MAX_PAIRS = 400  # scoring budget per run of missed lines


def recover_missed(spans: list[Span | None], lines: Sequence[tuple[tuple[str, ...], tuple[bool, ...]]],
            regions: list[tuple[float, float]], aligner: CrossAttentionAligner, duration: float) -> list[Span | None]:
    """``spans`` with missed lines placed where the evidence allows; ``lines``: (words, spacing)."""
    out = list(spans)
    rate = _seconds_per_char(out)
    i, n = 0, len(out)
    while i < n:
        if out[i] is not None:
            i += 1
            continue
        j = i
        while j < n and out[j] is None:
            j += 1
        lo = out[i - 1].end + 0.1 if i > 0 else 0.0  # type: ignore[union-attr]
        hi = out[j].start - 0.1 if j < n else duration  # type: ignore[union-attr]
        free = [(max(a, lo), min(b, hi)) for a, b in regions if min(b, hi) - max(a, lo) >= 0.3]
        for k, (a, b) in _assign(list(range(i, j)), free, lines, rate, aligner).items():
            out[k] = Span(max(0.0, a), min(duration, b), *lines[k])
        i = j
    return out


def _chars(words: tuple[str, ...]) -> int:
    return sum(len(w) for w in words)


def _seconds_per_char(spans: list[Span | None]) -> float:
    placed = [s for s in spans if s is not None and _chars(s.words)]
    if not placed:
        return DEFAULT_S_PER_CHAR
    return sum(s.end - s.start for s in placed) / sum(_chars(s.words) for s in placed)


def _plausible(seconds: float, words: tuple[str, ...], rate: float) -> bool:
    expected = max(0.3, rate * _chars(words))
    return DURATION_RANGE[0] * expected <= seconds <= DURATION_RANGE[1] * expected


def _assign(run: list[int], free: list[tuple[float, float]], lines, rate: float,
            aligner: CrossAttentionAligner) -> dict[int, tuple[float, float]]:
    if not free:
        return {}
    if len(free) == len(run) and all(_plausible(b - a, lines[k][0], rate) for k, (a, b) in zip(run, free)):
        return dict(zip(run, free))
    # candidates: a line on one stretch, or on two neighbouring ones (a pause inside the line)
    cands = [(k, r, r2) for k in run for r in range(len(free)) for r2 in (r, r + 1)
             if r2 < len(free) and _plausible(free[r2][1] - free[r][0], lines[k][0], rate)]
    if not cands or len(cands) > MAX_PAIRS:
        return {}
    scored = aligner.align([Span(free[r][0] - 0.05, free[r2][1] + 0.05, *lines[k]) for k, r, r2 in cands])
    probs = {c: (sum(w.probability for w in words) / len(words) if words else 0.0) for c, words in zip(cands, scored)}
    score = {}
    for (k, r, r2), p in probs.items():
        rivals = [q for (k2, a, b), q in probs.items() if k2 != k and (a, b) == (r, r2)]
        if p >= MIN_PROBABILITY and p >= MIN_MARGIN * max(rivals, default=0.0):
            score[(k, r, r2)] = p
    return _best_pairing(run, len(free), score, free)


def _best_pairing(run: list[int], regions: int, score: dict, free) -> dict[int, tuple[float, float]]:
    """Order-keeping, non-overlapping choice of (line, stretches) with the largest total score."""
    from functools import lru_cache

    @lru_cache(maxsize=None)
    def best(li: int, r: int) -> tuple[float, tuple]:
        if li == len(run) or r >= regions:
            return 0.0, ()
        options = [best(li + 1, r), best(li, r + 1)]
        for r2 in (r, r + 1):
            p = score.get((run[li], r, r2))
            if p is not None:
                total, picks = best(li + 1, r2 + 1)
                options.append((total + p, ((run[li], r, r2),) + picks))
        return max(options, key=lambda o: o[0])

    _, picks = best(0, 0)
    return {k: (free[r][0], free[r2][1]) for k, r, r2 in picks}
