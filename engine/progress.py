"""Progress and stage timings of one pipeline run: per-stage progress becomes one overall
fraction over the stages that will run, and every stage is timed for the JSON."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator


@dataclass(frozen=True, slots=True)
class Progress:
    stage: str
    stage_fraction: float
    fraction: float
    audio_done_s: float
    audio_total_s: float


ProgressCallback = Callable[[Progress], None]

_STAGE_WEIGHTS = {"decode": 0.04, "restore": 0.03, "detect": 0.01, "separate": 0.3, "vad": 0.02,
                  "transcribe": 0.59, "filter": 0.01}


class _Reporter:
    """Turns per-stage progress into one overall fraction over the stages that will run."""

    def __init__(self, callback: ProgressCallback | None, stages: list[str]) -> None:
        self.callback = callback
        self.duration = 0.0
        self.set_stages(stages)

    def set_stages(self, stages: list[str]) -> None:
        total = sum(_STAGE_WEIGHTS[s] for s in stages)
        self.weights = {s: _STAGE_WEIGHTS[s] / total for s in stages}
        self.order = stages

    def __call__(self, stage: str, fraction: float) -> None:
        if self.callback is None:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        done = sum(self.weights[s] for s in self.order[: self.order.index(stage)]) if stage in self.order else 0.0
        overall = done + self.weights.get(stage, 0.0) * fraction
        self.callback(Progress(stage, fraction, overall, overall * self.duration, self.duration))


class Run:
    """One run's bookkeeping: progress, stage timings, and the JSON's ``extra`` details."""

    def __init__(self, stages: list[str], callback: ProgressCallback | None) -> None:
        self.report = _Reporter(callback, stages)
        self.timings: dict[str, float] = {}
        self.extra: dict = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.report(name, 0.0)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started
        self.report(name, 1.0)
