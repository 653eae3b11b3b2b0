"""Find the sheet's lines among the words Whisper recognised, by edit distance.

The sheet's words and the recognised words are compared as strings of normalised
characters (case, accents and punctuation removed), so a word Whisper spelled a little
differently ("whisky" for "whiskey", "every one" for "everyone") still lines up. The
alignment is a longest common subsequence (rapidfuzz's Indel opcodes): it keeps order, so
a chorus sung four times is matched occurrence by occurrence, and words on one side with
nothing on the other (ad-libs, lines that are not sung) simply stay unmatched.

The alignment's memory grows with the product of the two lengths (a bit per pair of
characters: 80 MB for an hour of typical singing against its sheet), so a track is matched
in one pass up to ``MAX_MATCH_CELLS``, and beyond that in windows of recognised words, each
committed only up to its middle (where the context on both sides is known). One pass where
it fits, because a window's slice of the sheet must reach further than its words (lines may
go unheard), and over that excess the alignment can drift: an hour of one song sung 64
times, in windows of 600 words, put 248 of 488 lines a copy or more early; in one pass, one.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from rapidfuzz import fuzz
from rapidfuzz.distance import Indel

# Scripts written without spaces: every character is a word for matching and for timing.
_UNSPACED = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_UNSPACED}][^\s{_UNSPACED}\w]*|[^\s{_UNSPACED}]+")

MIN_LINE_COVERAGE = 0.5  # share of a line's characters that must be heard for it to count as found
MAX_WORD_GAP_S = 3.0  # matched words further apart than this belong to different sung lines
LONG_WORD_S = 0.6  # a recognised edge word longer than this (plus PER_CHAR_S a letter beyond 3) was
PER_CHAR_S = 0.1  # stretched over the pause next to it
TYPICAL_WORD_S = 0.4
UNHEARD_WORD_S = 0.5  # room allowed per unheard word at a line's edge
MAX_PIECE_GAP_S = 0.5  # recognised pieces of one sung word are no further apart than this
MAX_MATCH_CELLS = 2_000_000_000  # characters heard x characters of the sheet in one pass (250 MB)
WINDOW_WORDS = 600  # recognised words per matching window past that (about 4 minutes of singing)
MIN_WORD_SIMILARITY = 50.0  # rapidfuzz ratio: below it a sheet word was not heard (pairing, coverage)
EDGE_SIMILARITY = 60.0  # the first and last heard words of a line, which give its times
MAX_GAP_WORDS = 60  # larger leftover stretches are not revisited (bounded cost)


def split_words(text: str) -> list[str]:
    """Words as written (punctuation kept); characters of Chinese and Japanese are words."""
    return _WORD.findall(text)


def normalise(word: str) -> str:
    """Lower case, accents and punctuation removed: what two spellings of one sung word share."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if unicodedata.category(ch)[0] in "LN")


@dataclass(frozen=True, slots=True)
class HeardWord:
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class LineAnchor:
    """Where a sheet line was heard: the times of its first and last heard words.

    ``lead_s`` and ``tail_s``: how much earlier the line may really start and later end than
    ``start`` and ``end`` (words at its edges that were not heard, or a stretched edge word).
    """

    line: int
    start: float
    end: float
    first_word: int  # index in the line of the first word that was heard
    last_word: int
    coverage: float  # share of the line's characters found in the recognised words
    lead_s: float = 0.0
    tail_s: float = 0.0
    first_end: float = 0.0  # where the first heard word ends: the line's voice has begun by then


def _joined(words: Sequence[str], separator: str) -> tuple[str, list[int]]:
    chars, owner = [], []
    for i, word in enumerate(words):
        chars.append(word)
        owner.extend([i] * len(word))
        chars.append(separator)
        owner.append(-1)
    return "".join(chars), owner


def _window_counts(sheet: Sequence[str], heard: Sequence[str]) -> dict[int, Counter[int]]:
    """For each sheet word (window index), how many of its characters each heard word matched.

    The two sides use different separators, so word boundaries never match each other.
    """
    a, a_owner = _joined(sheet, "\x01")
    b, b_owner = _joined(heard, "\x02")
    counts: dict[int, Counter[int]] = {}
    for tag, i1, i2, j1, _ in Indel.opcodes(a, b):
        if tag != "equal":
            continue
        for k in range(i2 - i1):
            counts.setdefault(a_owner[i1 + k], Counter())[b_owner[j1 + k]] += 1
    return counts


def match_words(sheet: Sequence[str], heard: Sequence[str], *, window: int | None = None,
                times: Sequence[tuple[float, float]] | None = None) -> list[tuple[int, int] | None]:
    """For each normalised sheet word, the (first, last) recognised words it was heard as, or None.

    A sheet word counts as heard when at least half of its characters match, all within
    recognised words next to each other, and those recognised words are themselves mostly
    made of sheet characters (a few letters scattered over a garbled word are no match).
    With ``times`` (start, end of each recognised word), pieces of one word must follow each
    other without a pause.
    """
    result: list[tuple[int, int] | None] = [None] * len(sheet)
    if window is None:
        cells = (sum(map(len, sheet)) + len(sheet)) * (sum(map(len, heard)) + len(heard))
        window = len(heard) if cells <= MAX_MATCH_CELLS else WINDOW_WORDS
    si, hi = 0, 0
    while si < len(sheet) and hi < len(heard):
        hj = min(len(heard), hi + window)
        final = hj == len(heard)
        sj = len(sheet) if final else min(len(sheet), si + 2 * (hj - hi) + 200)
        counts = _window_counts(sheet[si:sj], heard[hi:hj])
        used: Counter[int] = Counter()
        for c in counts.values():
            used.update(c)
        commit_to = hj if final else hi + (hj - hi) // 2
        last_sheet = si - 1
        for local in sorted(counts):
            word = sheet[si + local]
            span = _heard_span(counts[local], len(word), _joinable(times, hi))
            if span is None:
                continue
            heard_chars = sum(len(heard[hi + k]) for k in range(span[0], span[1] + 1))
            if sum(used[k] for k in range(span[0], span[1] + 1)) < 0.5 * heard_chars:
                continue
            first, last = span[0] + hi, span[1] + hi
            if first >= commit_to:
                break
            result[si + local] = (first, last)
            last_sheet = si + local
        if final:
            break
        si, hi = max(si, last_sheet + 1), commit_to
    _fill_gaps(sheet, heard, result)
    return result


def _fill_gaps(sheet: Sequence[str], heard: Sequence[str], result: list[tuple[int, int] | None]) -> None:
    """Pair leftover words between two matches by word similarity.

    Character matching breaks ties arbitrarily: a short word ("I") next to an unsung line can
    lose its characters to that line. Between two matched words, the leftover sheet and heard
    words are paired again, whole word against whole word, keeping order.
    """
    matched = [i for i, m in enumerate(result) if m is not None]
    bounds = [(-1, -1)] + [(i, result[i][1]) for i in matched] + [(len(sheet), len(heard))]  # type: ignore[index]
    for (s0, h0), (s1, h1) in zip(bounds, bounds[1:]):
        gap_s, gap_h = range(s0 + 1, s1), range(h0 + 1, h1 if s1 < len(sheet) else len(heard))
        if s1 < len(sheet):
            gap_h = range(h0 + 1, result[s1][0])  # type: ignore[index]
        if not gap_s or not gap_h or len(gap_s) > MAX_GAP_WORDS or len(gap_h) > MAX_GAP_WORDS:
            continue
        for i, j in _pair(sheet, heard, gap_s, gap_h):
            result[i] = (j, j)


def _pair(sheet: Sequence[str], heard: Sequence[str], rows: range, cols: range) -> list[tuple[int, int]]:
    """Order-keeping pairs of similar words with the largest total similarity."""
    n, m = len(rows), len(cols)
    sim = [[fuzz.ratio(sheet[r], heard[c]) if sheet[r] and heard[c] else 0.0 for c in cols] for r in rows]
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for a in range(n - 1, -1, -1):
        for b in range(m - 1, -1, -1):
            take = sim[a][b] + best[a + 1][b + 1] if sim[a][b] >= MIN_WORD_SIMILARITY else -1.0
            best[a][b] = max(take, best[a + 1][b], best[a][b + 1])
    pairs, a, b = [], 0, 0
    while a < n and b < m:
        if sim[a][b] >= MIN_WORD_SIMILARITY and best[a][b] == sim[a][b] + best[a + 1][b + 1]:
            pairs.append((rows[a], cols[b]))
            a, b = a + 1, b + 1
        elif best[a][b] == best[a + 1][b]:
            a += 1
        else:
            b += 1
    return pairs


def _joinable(times: Sequence[tuple[float, float]] | None, offset: int):
    """Whether recognised words k and k + 1 (window indices) can be pieces of one sung word."""
    if times is None:
        return lambda k: True
    return lambda k: times[offset + k + 1][0] - times[offset + k][1] <= MAX_PIECE_GAP_S


def _heard_span(count: Counter[int], length: int, joinable=lambda k: True) -> tuple[int, int] | None:
    """The recognised word with most matched characters, joined by its matched neighbours."""
    if not count or length == 0:
        return None
    best, total = count.most_common(1)[0]
    first = last = best
    while first - 1 in count and joinable(first - 1):
        first -= 1
        total += count[first]
    while last + 1 in count and joinable(last):
        last += 1
        total += count[last]
    return (first, last) if total >= math.ceil(length / 2) else None


def place_lines(lines: Sequence[Sequence[str]], heard: Sequence[HeardWord], *,
                window: int | None = None) -> list[LineAnchor | None]:
    """Anchor each sheet line (its words, as written) in the recognised words, or None."""
    flat: list[str] = []
    owner: list[tuple[int, int]] = []
    for li, words in enumerate(lines):
        for wi, word in enumerate(words):
            flat.append(normalise(word))
            owner.append((li, wi))
    matches = match_words(flat, [normalise(h.text) for h in heard], window=window,
                          times=[(h.start, h.end) for h in heard])
    per_line: dict[int, list[tuple[int, int, int, float]]] = {}  # line -> [(word, first heard, last heard, similarity)]
    for k, ((li, wi), m) in enumerate(zip(owner, matches)):
        if m is not None:
            heard_text = "".join(normalise(h.text) for h in heard[m[0] : m[1] + 1])
            similarity = fuzz.ratio(flat[k], heard_text)
            if similarity >= MIN_WORD_SIMILARITY:
                per_line.setdefault(li, []).append((wi, m[0], m[1], similarity))
    out: list[LineAnchor | None] = [None] * len(lines)
    for li, found in per_line.items():
        out[li] = _anchor(li, lines[li], found, heard)
    return out


def _anchor(li: int, words: Sequence[str], found: list[tuple[int, int, int, float]],
            heard: Sequence[HeardWord]) -> LineAnchor | None:
    """The line's heard words, kept to the largest cluster in time, if they cover enough of it.

    The line's times come from its edge words, so those must be heard clearly: weaker
    matches at either edge (a short word matched inside a garbled one) are let go.
    """
    clusters: list[list[tuple[int, int, int, float]]] = [[found[0]]]
    for item in found[1:]:
        if heard[item[1]].start - heard[clusters[-1][-1][2]].end > MAX_WORD_GAP_S:
            clusters.append([item])
        else:
            clusters[-1].append(item)
    sizes = [len(normalise(words[w])) for w in range(len(words))]
    total = sum(sizes)
    best = max(clusters, key=lambda c: sum(sizes[w] for w, _, _, _ in c))
    coverage = sum(sizes[w] for w, _, _, _ in best) / total if total else 0.0
    while best and best[0][3] < EDGE_SIMILARITY:
        best = best[1:]
    while best and best[-1][3] < EDGE_SIMILARITY:
        best = best[:-1]
    if coverage < MIN_LINE_COVERAGE or not best:
        return None
    first, last = heard[best[0][1]], heard[best[-1][2]]
    start, end = first.start, last.end
    lead = UNHEARD_WORD_S * best[0][0]
    tail = UNHEARD_WORD_S * (len(words) - 1 - best[-1][0])
    # Whisper stretches the word after (or before) a pause over it: "I" from the end of the last
    # line to the start of this one. Such an edge word's far end is not evidence of the voice.
    if first.end - first.start > _longest(first):
        start, lead = first.end - TYPICAL_WORD_S, lead + first.end - first.start
    if last.end - last.start > _longest(last):
        end, tail = last.start + TYPICAL_WORD_S, tail + last.end - last.start
    return LineAnchor(li, start, max(end, start + 0.1), best[0][0], best[-1][0], coverage, lead, tail,
                      max(first.end, start))


def _longest(word: HeardWord) -> float:
    return LONG_WORD_S + PER_CHAR_S * max(0, len(normalise(word.text)) - 3)
