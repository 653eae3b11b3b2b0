"""`tft align` with its defaults on chosen songs of the align suite's corpus, scored as the
suite scores them: how a change to the aligner is checked on the songs it concerns without
the full suite (every configuration on 28 songs: an hour on two cores).

    python -m benchmarks.align_subset --match -es-,fr-hook

Prints per song the sung lines placed, each line's onset error, whether the sheet's unsung
line stayed unmatched, the hook's four occurrences, and the language used and where it came
from; then the totals. ``--out`` keeps the rows as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .common import PLANS, run_in_process
from .suite_align import material, score


def songs(match: str) -> list[dict]:
    """The align suite's full-corpus songs whose names hold one of the comma-separated parts."""
    plan = dataclasses.replace(PLANS["quick"], align_songs="full")
    patterns = [p for p in match.split(",") if p]
    return [s for s in material(plan) if not patterns or any(p in s["name"] for p in patterns)]


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    p.add_argument("--match", default="", help="comma-separated parts of song names (default: every song)")
    p.add_argument("--model", default="base")
    p.add_argument("--out", type=Path)
    return p


def _rows(songs_: list[dict], model: str) -> list[dict]:
    files = [{"path": s["path"], "sheet": s["sheet"], "language": s["language"]} for s in songs_]
    result = run_in_process({"module": "benchmarks.alignrun", "model": model, "files": files, "mode": "ours"})
    rows = []
    for song, out in zip(songs_, result["results"]):
        scored = score(song, out)
        errors = scored["line_errors"]
        rows.append({"name": song["name"], "sung": len(errors), "placed": sum(e is not None for e in errors),
                     "line_errors": errors, "unsung_placed": scored["unsung_placed"], "hook": scored["hook_ok"],
                     "language": out.get("language"), "language_from": out.get("language_from")})
        hook = scored["hook_ok"]
        print(f"{song['name']:26s} placed {rows[-1]['placed']}/{len(errors)}  onset errors "
              f"{[None if e is None else round(e, 2) for e in errors]}  unsung placed {scored['unsung_placed']}"
              + (f"  hook distinct and correct: {hook['distinct'] and hook['correct']}" if hook else "")
              + f"  language {out.get('language')} ({out.get('language_from')})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parser("python -m benchmarks.align_subset", __doc__).parse_args(argv)
    chosen = songs(args.match)
    if not chosen:  # before a child process loads a model for nothing
        print("no song of the align corpus matches", file=sys.stderr)
        return 2
    rows = _rows(chosen, args.model)
    placed, sung = sum(r["placed"] for r in rows), sum(r["sung"] for r in rows)
    errors = [abs(e) for r in rows for e in r["line_errors"] if e is not None]
    hooks = [r["hook"] for r in rows if r["hook"]]
    print(f"{len(rows)} songs: {placed}/{sung} sung lines placed, line-onset MAE "
          f"{sum(errors) / max(1, len(errors)):.3f} s, {sum(e <= 0.3 for e in errors)}/{sung} within 0.3 s"
          + (f", hook right in {sum(h['distinct'] and h['correct'] for h in hooks)}/{len(hooks)} songs" if hooks else ""))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
