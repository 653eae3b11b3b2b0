"""One alignment configuration in its own process (``python -m benchmarks.alignrun SPEC OUT``).

Modes:

* ``ours``: ``engine.align.align`` with the given ``AlignOptions`` fields;
* ``free``: free transcription on the music path (``engine.pipeline.run``, music mode,
  defaults), whose line starts are what a user gets without giving the lyrics;
* ``stable-ts``: stable-ts's ``align`` with the same faster-whisper model
  (``stable_whisper.load_faster_whisper``), one segment per sheet line (``original_split``).

Each file's output: per sheet line its start, end and word starts (None when not placed),
or, for ``free``, the transcript's segments; and the wall-clock seconds.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def _ours(spec: dict, resolved, loaded, store):
    from engine.align import AlignOptions, align
    from engine.lyrics import parse_sheet
    from engine.pipeline import Resources
    from models import resolve_separator

    options = AlignOptions(**spec.get("options", {}))
    separator = resolve_separator(options.separator, store)
    resources = Resources(resolved.name, resolved.path, separator=separator.model, separator_missing=separator.missing)

    def one(item: dict) -> dict:
        t = align(item["path"], parse_sheet(item["sheet"]), options, resources, model=loaded)
        lines = [[l.segment.start, l.segment.end, [w.start for w in l.segment.words]] if l.segment else None
                 for l in t.lines]
        return {"lines": lines, "language": t.language, "language_from": t.options.get("language_from"),
                "timings": dict(t.timings)}

    return one


def _free(spec: dict, resolved, loaded, store):
    from engine.pipeline import PipelineOptions, Resources, run
    from models import resolve_separator

    options = PipelineOptions(audio_type="music")
    separator = resolve_separator(options.separator, store)
    resources = Resources(resolved.name, resolved.path, separator=separator.model, separator_missing=separator.missing)

    def one(item: dict) -> dict:
        t = run(item["path"], options, resources, model=loaded)
        return {"segments": [[s.start, s.end, s.text] for s in t.segments], "language": t.language}

    return one


def _stable_ts(spec: dict, resolved, loaded, store):
    import stable_whisper

    model = stable_whisper.load_faster_whisper(str(resolved.path), device=loaded.device,
                                               compute_type=loaded.compute_type, local_files_only=True)

    def one(item: dict) -> dict:
        from engine.lyrics import parse_sheet

        from engine.audio import decode

        sheet = parse_sheet(item["sheet"])
        audio = decode(item["path"])  # a 16 kHz array: no ffmpeg on these machines
        result = model.align(audio, "\n".join(l.text for l in sheet.lines), language=item["language"],
                             original_split=True, regroup=False, verbose=None)
        segments = list(result.segments)
        lines = []
        for k in range(len(sheet.lines)):
            if k < len(segments) and segments[k].words:
                s = segments[k]
                lines.append([s.start, s.end, [w.start for w in s.words]])
            else:
                lines.append(None)
        return {"lines": lines, "language": item["language"], "segment_count": len(segments)}

    return one


MODES = {"ours": _ours, "free": _free, "stable-ts": _stable_ts}


def run(spec: dict) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine.transcription import load_model
    from models import ModelStore, default_store_dir, resolve_whisper

    store = ModelStore(default_store_dir())
    resolved = resolve_whisper(spec["model"], store)
    loaded = load_model(resolved.name, resolved.path, cpu_threads=spec.get("threads", 0))
    one = MODES[spec["mode"]](spec, resolved, loaded, store)
    results = []
    for item in spec["files"]:
        started = time.perf_counter()
        try:
            out = one(item)
        except Exception as exc:  # a peer that fails on one song is a result, not a crash
            out = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        out["seconds"] = time.perf_counter() - started
        results.append(out)
    return {"results": results, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "device": loaded.device}


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
