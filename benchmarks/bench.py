"""`tft bench`: run the suites on local material only, write report.md + plots + results.json."""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from .common import PLANS, log

SUITES = ("accuracy", "multilingual", "songs", "align", "hallucination", "timing", "separation", "server")


def main(args) -> int:
    from engine.errors import EngineError
    from models import ModelStore, default_store_dir, resolve_whisper

    plan = PLANS["tiny" if getattr(args, "tiny", False) else "quick" if args.quick else "full"]
    if args.repeats:
        plan = replace(plan, repeats=args.repeats)
    if getattr(args, "align_songs", None):
        plan = replace(plan, align_songs=args.align_songs)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    suites = SUITES if args.suites == "all" else tuple(s.strip() for s in args.suites.split(","))
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        print(f"tft: unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    try:
        store = ModelStore(default_store_dir())
        for m in models:
            resolve_whisper(m, store)
    except EngineError as exc:
        print(f"tft: {exc}", file=sys.stderr)
        return 2
    from . import machine

    started = time.monotonic()
    results: dict = {"plan": plan.name, "align_songs": plan.align_songs, "models": models,
                     "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": machine.describe(), "suites": list(suites)}
    if "accuracy" in suites:
        from . import suite_accuracy

        results["accuracy"] = suite_accuracy.run(plan, models)
    if "multilingual" in suites and plan.multilingual_paragraphs:
        from . import suite_multilingual

        results["multilingual"] = suite_multilingual.run(plan, models)
    if "songs" in suites:
        from . import suite_songs

        results["songs"] = suite_songs.run(plan, models)
    if "align" in suites:
        from . import suite_align

        results["align"] = suite_align.run(plan, models)
    if "hallucination" in suites:
        from . import suite_hallucination

        results["hallucination"] = suite_hallucination.run(plan, models)
    if "timing" in suites:
        from . import suite_timing

        results["timing"] = suite_timing.run(plan, models)
    if "separation" in suites:
        from engine.separation import torch_available

        if torch_available():
            from . import suite_separation

            results["separation"] = suite_separation.run(plan)
        else:
            log("separation: skipped, the music extra (torch, demucs) is not installed")
    gpu = Path(args.out) / "separation_gpu.json"
    if gpu.is_file():  # figures brought back from benchmarks/gpu.sh
        results["separation_gpu"] = json.loads(gpu.read_text())
    if "server" in suites:
        from . import suite_server

        results["server"] = suite_server.run(plan, models[0], loaded_model=models[-1])
    results["wall_seconds"] = time.monotonic() - started
    from . import report

    command = "tft bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else "tft bench"
    path = report.write(results, Path(args.out), command=command)
    print(report.summary_table(results))
    print(f"\nreport: {path}  ({results['wall_seconds'] / 60:.1f} min)")
    return 0
