"""Place sheet lines that recognition missed, on voice the stem shows between placed lines.

Between two placed lines, the unplaced ones can only be sung in the voiced stretches of the
vocal stem that lie between them, in order. Each such stretch is heard alone, and Whisper
scores each of the missed lines on it: how much more likely the line's own tokens are (mean
log-probability per token, teacher-forced: ``CrossAttentionAligner.likelihoods``) with that
voice than with silence. It is heard twice, from the stem and from the mix, and the larger
gain counts: where the band comes back in loud (the first line after a break) the separator
can drop the voice from the stem while Whisper still hears the line in the mix (on the song
corpus at -6 dB: a recorded "Hola mundo" and a French hook line placed this way, and no
unsung line). The gain, not the likelihood, because a fluent line is likely
whatever is heard: the sheet's unsung line scores about as well on every stretch as on
silence. A line is a candidate for a stretch when it gains at least ``MIN_GAIN`` there and
beats every other missed line of different text by ``MIN_MARGIN`` (an ad-lib, or a line
Whisper cannot hear, gains little for every line); the best order-keeping pairing of
candidates is kept. When there are exactly as many stretches as missed lines, each of a
plausible length for its line, order pairs them one to one, and each pair only has to gain
``MIN_PAIRED_GAIN``. A line with no stretch of a plausible length, or no convincing one,
stays unmatched.
"""

from __future__ import annotations

from typing import Sequence

from .attention import CrossAttentionAligner, Span

# Gain in mean log-probability per token (nats) of a line heard alone on a stretch over the
# same line heard on silence, the better of stem and mix (`python -m benchmarks.recover_gains`
# on the align suite's 28 songs: English, Spanish, French, 0 and -6 dB): 0.45 to 5.3 for the
# line sung there, -1.8 to 0.46 for a line of the song sung elsewhere, -0.36 to 0.50 for the
# sheet's unsung line. The least-heard sung lines (0.65: English at -6 dB, where the band
# comes back after a break) need less than 0.7; no line that is not sung there reaches 0.6.
MIN_GAIN = 0.6
MIN_MARGIN = 0.5
# When the stretches pair up one to one with the missed lines in order, each at a plausible
# length, order already says which line is where: the gain only has to show that the line
# is sung at all (a line Whisper hears poorly alone gained 0.59 on its own stretch).
MIN_PAIRED_GAIN = 0.5
DURATION_RANGE = (0.4, 2.5)  # a stretch this many times the line's expected length is plausible
DEFAULT_S_PER_CHAR = 0.07  # before any line was placed: about speech rate
MAX_PAIRS = 400  # scoring budget per run of missed lines
PAD_S = 0.1  # heard around a stretch: the edges of the voice


def recover_missed(spans: list[Span | None], lines: Sequence[tuple[tuple[str, ...], tuple[bool, ...]]],
                   regions: list[tuple[float, float]],
                   aligner: CrossAttentionAligner | list[CrossAttentionAligner] | tuple[CrossAttentionAligner, ...],
                   duration: float) -> list[Span | None]:
    """``spans`` with missed lines placed where the evidence allows; ``lines``: (words, spacing);
    ``aligner``: one, or several hearing different signals of the song (the best gain counts)."""
    witnesses = tuple(aligner) if isinstance(aligner, (list, tuple)) else (aligner,)
    if not witnesses:
        raise ValueError("recover_missed needs at least one aligner")
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
        for k, (a, b) in _assign(list(range(i, j)), free, lines, rate, witnesses).items():
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
            witnesses: tuple[CrossAttentionAligner, ...]) -> dict[int, tuple[float, float]]:
    if not free:
        return {}
    if len(free) == len(run) and all(_plausible(b - a, lines[k][0], rate) for k, (a, b) in zip(run, free)):
        paired = _scores(witnesses, [(k, r, r) for r, k in enumerate(run)], free, lines)
        return {k: free[r] for (k, r, _), p in paired.items() if p >= MIN_PAIRED_GAIN}
    # a line on one stretch, or on two neighbouring ones (a pause inside the line)
    stretches = [(r, r2) for r in range(len(free)) for r2 in (r, r + 1) if r2 < len(free)]
    plausible = {(k, r, r2) for k in run for r, r2 in stretches
                 if _plausible(free[r2][1] - free[r][0], lines[k][0], rate)}
    if not plausible:
        return {}
    heard_on = sorted({(r, r2) for _, r, r2 in plausible})
    every = [(k, r, r2) for r, r2 in heard_on for k in run]  # rivals: every missed line, plausible or not
    if len(every) > MAX_PAIRS:
        return {}
    probs = _scores(witnesses, every, free, lines)
    score = {}
    for (k, r, r2) in plausible:
        p = probs[(k, r, r2)]
        rivals = [q for (k2, a, b), q in probs.items() if (a, b) == (r, r2) and lines[k2][0] != lines[k][0]]
        if p >= MIN_GAIN and p >= max(rivals, default=float("-inf")) + MIN_MARGIN:
            score[(k, r, r2)] = 1.0 + p - MIN_GAIN  # more lines placed first, then the likelier
    return _best_pairing(run, len(free), score, free)


def _scores(witnesses: tuple[CrossAttentionAligner, ...], cands: list[tuple[int, int, int]],
            free: list[tuple[float, float]], lines) -> dict[tuple[int, int, int], float]:
    """Each (line, first stretch, last stretch) scored by Whisper hearing those stretches alone:
    the gain of the line's tokens over hearing silence, the best over the witnesses (silence
    sounds the same to each: scored once)."""
    spans = [Span(max(0.0, free[r][0] - PAD_S), free[r2][1] + PAD_S, *lines[k]) for k, r, r2 in cands]
    silent = witnesses[0].likelihoods(spans, silence=True)
    heard = [w.likelihoods(spans) for w in witnesses]
    return {c: max(h[i] for h in heard) - silent[i] for i, c in enumerate(cands)}


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
