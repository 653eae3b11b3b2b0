"""Shared pieces of the benchmark suites: the plan (quick/full), running a configuration in
its own process, and medians with their spread."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


def data_dir() -> Path:
    """Where the suites write generated material (see ``corpus.locations``)."""
    from corpus.locations import generated_dir

    return generated_dir()


@dataclass(frozen=True)
class Plan:
    """How much work each suite does. ``tiny`` exists for the test suite only."""

    name: str
    repeats: int
    long_form_paragraphs: int  # of the 20 in corpus.speech (all 20 at 125 wpm: 305 s)
    short_batched: bool  # also time forced batching on short clips
    nonspeech_seconds: float  # per kind (silence, noise, hum, instrumental)
    timing_tracks: int
    separation_seconds: float
    separation_full_architecture: bool
    server_jobs: int
    load_seconds: int
    clip_languages: tuple[str, ...] | None = None  # None: all nine
    multilingual_paragraphs: int = 0  # of the 7 per language in corpus.texts.FLOOD; 0 skips the suite
    align_songs: str = "quick"  # the align suite's songs: "quick" (corpus_specs(quick=True)) or "full"


PLANS = {
    "full": Plan("full", 3, 20, True, 75.0, 3, 60.0, True, 12, 60, multilingual_paragraphs=7, align_songs="full"),
    "quick": Plan("quick", 2, 10, False, 30.0, 2, 20.0, False, 6, 15, multilingual_paragraphs=2),
    "tiny": Plan("tiny", 1, 2, False, 10.0, 1, 6.0, False, 2, 3, ("en", "fr")),
}


def median_spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max): every figure in the report is a median with its range."""
    if not values:
        return (float("nan"),) * 3
    return statistics.median(values), min(values), max(values)


def fmt(values: list[float], digits: int = 2, unit: str = "") -> str:
    med, lo, hi = median_spread(values)
    if len(values) <= 1 or lo == hi:
        return f"{med:.{digits}f}{unit}"
    return f"{med:.{digits}f}{unit} ({lo:.{digits}f}–{hi:.{digits}f})"


def run_in_process(spec: dict, timeout: float = 3600) -> dict:
    """Run benchmarks.runner (or another module given as spec['module']) in a child process
    of the same interpreter: the installed packages, whatever the working directory."""
    module = spec.get("module", "benchmarks.runner")
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.run([sys.executable, "-m", module, str(spec_path), str(out_path)], cwd=tmp,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{module} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(out_path.read_text())


def audio_seconds(path: str | Path) -> float:
    from engine.audio import probe

    return probe(path).duration


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
