"""Each sung line from whichever heard signal Whisper is surest of.

On a song, the vocal stem, the mix and their blend each lose different words: the stem
loses consonants and breath to the separator's mask, the mix loses words under loud chords,
the blend a little of both. Whisper's own word probabilities say which reading of a line it
is surest of, and picking that reading line by line beats every single signal (English songs,
base, Spleeter with the soft mask, 16 songs at 0 and -6 dB: the stem alone 10.1% and 33.9% WER,
each line from the stem or the mix 5.7% and 27.9%; ``benchmarks.suite_songs``).

The first reading decides where the lines are: a line of another reading counts for a line
of the first only when most of it lies within that line, so an instrumental stretch the
first reading left empty stays empty, whatever the others heard there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from .types import Segment

_FLOOR = 1e-6  # a word probability of 0 must not make a line infinitely unlikely


@dataclass(frozen=True, slots=True)
class Choice:
    """The chosen lines, and how many lines came from each reading (for the JSON)."""

    segments: tuple[Segment, ...]
    chosen: dict[str, int]


def confidence(segments: Sequence[Segment]) -> float:
    """Mean log-probability of the words of ``segments``; -inf when they carry no words."""
    words = [w for s in segments for w in s.words]
    if not words:
        return -math.inf
    return sum(math.log(max(w.probability, _FLOOR)) for w in words) / len(words)


def _within(candidate: Segment, line: Segment) -> bool:
    overlap = min(candidate.end, line.end) - max(candidate.start, line.start)
    return overlap > 0.5 * (candidate.end - candidate.start) and overlap > 0


def choose_lines(readings: Sequence[tuple[str, Sequence[Segment]]]) -> Choice:
    """For each line of the first reading, the reading (its lines within that line) whose
    words are most probable; ties keep the first reading."""
    (first_name, first), *others = readings
    chosen = {name: 0 for name, _ in readings}
    used: dict[str, set[int]] = {name: set() for name, _ in others}
    out: list[Segment] = []
    for line in first:
        best_name, best, best_score = first_name, [(-1, line)], confidence((line,))
        for name, segments in others:
            candidates = [(i, s) for i, s in enumerate(segments) if i not in used[name] and _within(s, line)]
            score = confidence([s for _, s in candidates])
            if score > best_score:
                best_name, best, best_score = name, candidates, score
        if best_name != first_name:
            used[best_name].update(i for i, _ in best)
        chosen[best_name] += 1
        out.extend(s for _, s in best)
    out.sort(key=lambda s: (s.start, s.end))
    return Choice(tuple(replace(s, id=i) for i, s in enumerate(out)), chosen)
