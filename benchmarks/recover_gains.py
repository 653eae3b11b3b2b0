"""Every gain the missed-line step of `tft align` scored, labelled with the truth: how its
thresholds (``engine.align.recover.MIN_GAIN``, ``MIN_MARGIN``) are checked against the songs.

    python -m benchmarks.recover_gains --match -en-,-es-,fr-hook --out gains.json

Runs `tft align` (defaults) on chosen songs of the align suite's corpus in this process and
records, for each (sheet line, stretch of voice) pair the step scored, the gain of the line
on each witness (stem, mix) over silence, and what the line really is there: ``sung here``,
``sung elsewhere`` (a line of the song sung at another time) or ``unsung`` (the sheet's line
that is never sung). Prints the range of the best gain for each label; a threshold belongs
above every ``unsung`` and ``sung elsewhere`` gain.
"""

from __future__ import annotations

import json
import sys

from .align_subset import parser
from .align_subset import songs as select

LABELS = ("sung here", "sung elsewhere", "unsung")


def label(line: str, start: float, end: float, sung: list[tuple[float, float, str]]) -> str:
    """Whether ``line`` is sung over most of one of its true spans inside [start, end]."""
    from engine.align.match import normalise

    times = [(a, b) for a, b, text in sung if normalise(text) == normalise(line)]
    if any(min(b, end) - max(a, start) > 0.5 * (b - a) for a, b in times):
        return "sung here"
    return "sung elsewhere" if times else "unsung"


def _scored(songs: list[dict], model: str) -> list[dict]:
    """Run the aligner on each song with the step's scorer wrapped to keep what it scored."""
    import engine.align.recover as recover
    from benchmarks import alignrun

    records: list[dict] = []
    current: dict = {}
    original = recover._scores

    def keeping(witnesses, cands, free, lines):
        out = original(witnesses, cands, free, lines)
        for k, r, r2 in cands:
            (a, _), (_, b) = free[r], free[r2]  # the stretches scored (heard with PAD_S around them)
            text = " ".join(lines[k][0])
            records.append({"song": current["name"], "line": text, "start": round(a, 2), "end": round(b, 2),
                            "gain": round(out[(k, r, r2)], 3), "label": label(text, a, b, current["lines"])})
        return out

    recover._scores = keeping
    try:
        for song in songs:
            current.update(song)
            files = [{"path": song["path"], "sheet": song["sheet"], "language": song["language"]}]
            alignrun.run({"module": "benchmarks.alignrun", "model": model, "files": files, "mode": "ours"})
            print(f"{song['name']:26s} {sum(r['song'] == song['name'] for r in records)} pairs scored", flush=True)
    finally:
        recover._scores = original
    return records


def main(argv: list[str] | None = None) -> int:
    args = parser("python -m benchmarks.recover_gains", __doc__).parse_args(argv)
    songs = select(args.match)
    if not songs:
        print("no song of the align corpus matches", file=sys.stderr)
        return 2
    records = _scored(songs, args.model)
    for name in LABELS:
        gains = [r["gain"] for r in records if r["label"] == name]
        print(f"{name:15s} {len(gains):3d} pairs, gain "
              + (f"{min(gains):+.2f} to {max(gains):+.2f}" if gains else "-"))
    if args.out:
        args.out.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
