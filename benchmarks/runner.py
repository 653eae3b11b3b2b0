"""One benchmark configuration in its own process, so its peak memory is its own.

Invoked as ``python -m benchmarks.runner SPEC.json OUT.json``. The spec names a model, a
mode and the files; the output has every transcript and every wall-clock time (per file,
per repeat) and the process's peak RSS. Modes:

* ``raw``: faster-whisper as a user would call it, ``WhisperModel.transcribe(path, beam_size=5)``
  (``vad_filter`` as given);
* ``raw_batched``: faster-whisper's ``BatchedInferencePipeline`` with its defaults;
* ``ours``: ``engine.pipeline.run`` with the given options (``separator`` picks the
  vocal separator as ``tft transcribe --separator`` does);
* ``demucs_then_raw``: the recipe users are told to follow for songs: the ``demucs`` command
  line's default separation, then raw faster-whisper on ``vocals.wav`` (needs htdemucs weights).

With ``"cold": true`` the first file is timed from nothing to text, model load included, as
a user running one command sees it: raw loads the model and then transcribes; ours hands
the pipeline no model, so it loads while the audio is decoded and analysed.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run(spec: dict) -> dict:
    from engine.transcription import load_model
    from models import ModelStore, default_store_dir, resolve_whisper

    resolved = resolve_whisper(spec["model"], ModelStore(default_store_dir()))
    mode = spec["mode"]
    if spec.get("cold"):
        return _cold(spec, resolved)
    started = time.perf_counter()
    # raw faster-whisper gets one model, as a user calling the library would have
    loaded = load_model(resolved.name, resolved.path, cpu_threads=spec.get("threads", 0),
                        lanes=1 if mode.startswith("raw") else "auto")
    load_seconds = time.perf_counter() - started
    beam = spec.get("beam_size", 5)
    results = []
    if mode == "ours":
        from engine.pipeline import PipelineOptions, Resources, run as pipeline_run

        from models import resolve_separator

        options = PipelineOptions(beam_size=beam, **spec.get("options", {}))
        separator = resolve_separator(options.separator, ModelStore(default_store_dir()))
        resources = Resources(resolved.name, resolved.path, separator=separator.model,
                              separator_missing=separator.missing)
        timings: list[dict] = []

        def transcribe(path: str, language: str | None):
            t = pipeline_run(path, options if language is None else _with_language(options, language), resources,
                             model=loaded)
            timings.append(dict(t.timings, separator=t.separator))
            return t.text, [(s.start, s.end, s.text) for s in t.segments], t.language
    elif mode == "raw":
        def transcribe(path: str, language: str | None):
            segments, info = loaded.whisper.transcribe(path, beam_size=beam, language=language,
                                                       vad_filter=spec.get("vad_filter", False))
            segments = list(segments)
            return " ".join(s.text.strip() for s in segments), [(s.start, s.end, s.text) for s in segments], info.language
    elif mode == "raw_batched":
        from faster_whisper import BatchedInferencePipeline

        pipeline = BatchedInferencePipeline(loaded.whisper)

        def transcribe(path: str, language: str | None):
            segments, info = pipeline.transcribe(path, beam_size=beam, language=language, batch_size=8)
            segments = list(segments)
            return " ".join(s.text.strip() for s in segments), [(s.start, s.end, s.text) for s in segments], info.language
    elif mode == "demucs_then_raw":
        def transcribe(path: str, language: str | None):
            vocals = _demucs_cli_vocals(path)
            segments, info = loaded.whisper.transcribe(str(vocals), beam_size=beam, language=language)
            segments = list(segments)
            return " ".join(s.text.strip() for s in segments), [(s.start, s.end, s.text) for s in segments], info.language
    else:
        raise SystemExit(f"unknown mode {mode}")
    for item in spec["files"]:
        path, language = item["path"], item.get("hint")
        texts, seconds, segments, detected = [], [], None, None
        for _ in range(spec.get("repeats", 1)):
            t0 = time.perf_counter()
            text, segments, detected = transcribe(path, language)
            seconds.append(time.perf_counter() - t0)
            texts.append(text)
        results.append({"path": path, "texts": texts, "seconds": seconds, "segments": segments, "language": detected})
    out = {"results": results, "peak_rss_mb": _peak_rss_mb(), "load_seconds": load_seconds,
           "device": loaded.device, "compute_type": loaded.compute_type}
    if mode == "ours":
        out["timings"] = timings
    return out


def _demucs_cli_vocals(path: str) -> Path:
    """``demucs --two-stems vocals`` with its defaults into a temporary directory (kept until exit)."""
    import subprocess
    import tempfile

    from models import ModelStore, default_store_dir, find_demucs

    found = find_demucs("htdemucs", ModelStore(default_store_dir()))
    if found is None:
        raise SystemExit("demucs_then_raw needs htdemucs weights (tft models pull htdemucs)")
    out = Path(tempfile.mkdtemp(prefix="tft-demucs-cli-"))
    subprocess.run([sys.executable, "-m", "demucs.separate", "-n", found.name, "--repo", str(found.path),
                    "--two-stems", "vocals", "-o", str(out), path], check=True, capture_output=True)
    return next(out.rglob("vocals.wav"))


def _cold(spec: dict, resolved) -> dict:
    """One file, from no model to text; wall and CPU seconds of the whole."""
    import faster_whisper  # noqa: F401  (imports are not what is measured, for either side)

    from engine.pipeline import PipelineOptions, Resources, run as pipeline_run
    from engine.transcription import load_model

    item = spec["files"][0]
    path, language = item["path"], item.get("hint")
    cpu0, t0 = time.process_time(), time.perf_counter()
    load_seconds = None
    if spec["mode"] == "ours":
        options = PipelineOptions(beam_size=spec.get("beam_size", 5), language=language, **spec.get("options", {}))
        t = pipeline_run(path, options, Resources(resolved.name, resolved.path))
        text, segments, detected = t.text, [(s.start, s.end, s.text) for s in t.segments], t.language
        device, compute_type = t.device, t.compute_type
    else:
        loaded = load_model(resolved.name, resolved.path, lanes=1)  # one model, as a user calling the library
        load_seconds = time.perf_counter() - t0
        if spec["mode"] == "raw":
            raw, info = loaded.whisper.transcribe(path, beam_size=spec.get("beam_size", 5), language=language)
        else:
            from faster_whisper import BatchedInferencePipeline

            raw, info = BatchedInferencePipeline(loaded.whisper).transcribe(
                path, beam_size=spec.get("beam_size", 5), language=language, batch_size=8)
        raw = list(raw)
        text, segments, detected = (" ".join(s.text.strip() for s in raw), [(s.start, s.end, s.text) for s in raw],
                                    info.language)
        device, compute_type = loaded.device, loaded.compute_type
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"results": [{"path": path, "texts": [text], "seconds": [seconds], "cpu_seconds": [cpu],
                         "segments": segments, "language": detected}],
            "peak_rss_mb": _peak_rss_mb(), "load_seconds": load_seconds, "device": device,
            "compute_type": compute_type, "cold": True}


def _with_language(options, language):
    from dataclasses import replace

    return replace(options, language=language)


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = run(spec)
    Path(sys.argv[2]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
