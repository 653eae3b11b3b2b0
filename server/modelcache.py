"""Whisper models kept in memory between jobs, as many as a memory budget allows.

A job names its model (``/v1`` requests may ask for ``base`` on a box whose default is
``tiny.en``), so a worker may need several. Loading costs seconds, so models stay loaded
after a job; one idle for ``ttl_seconds`` is unloaded (``TFT_MODEL_TTL_SECONDS``: -1 never,
0 right after each job), and when the models loaded together would exceed the budget
(``TFT_MODEL_MEMORY_MB``) the least recently used idle one is unloaded first. A model in use
is never unloaded: the budget may be exceeded for as long as jobs need both.

The size of a model is estimated from its weights on disk (``model.bin``): CTranslate2
holds them in memory at that size or smaller (int8 on CPU quantises float16 weights).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Iterator, TypeVar

log = logging.getLogger("tft.models")

M = TypeVar("M")


def weights_bytes(model_dir: str | Path) -> int:
    """On-disk size of a CTranslate2 model's weights (the memory estimate)."""
    path = Path(model_dir)
    weights = path / "model.bin"
    if weights.is_file():
        return weights.stat().st_size
    return sum(p.stat().st_size for p in path.glob("*") if p.is_file()) if path.is_dir() else 0


@dataclass
class _Entry(Generic[M]):
    model: M
    size: int
    last_used: float
    users: int = 0


class ModelCache(Generic[M]):
    """Loaded models by name, with reference counts, an idle TTL and an LRU memory budget."""

    def __init__(self, load: Callable[[str], tuple[M, int]], *, ttl_seconds: float, budget_bytes: int,
                 unload: Callable[[M], None] = lambda m: None, clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load  # name -> (model, estimated bytes)
        self._unload = unload
        self.ttl_seconds = ttl_seconds
        self.budget_bytes = budget_bytes
        self._clock = clock
        self._entries: dict[str, _Entry[M]] = {}
        self._lock = threading.Lock()  # guards _entries; never held while loading
        self._loading = threading.Lock()  # one load at a time: two loads would blow the budget together

    @contextmanager
    def use(self, name: str) -> Iterator[M]:
        """The model, loaded if needed, held (not unloadable) until the block ends."""
        model = self._acquire(name)
        try:
            yield model
        finally:
            self._release(name)

    def _acquire(self, name: str) -> M:
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                entry.users += 1
                entry.last_used = self._clock()
                return entry.model
        with self._loading:
            with self._lock:
                entry = self._entries.get(name)
                if entry is not None:  # another thread loaded it while we waited
                    entry.users += 1
                    entry.last_used = self._clock()
                    return entry.model
            started = time.monotonic()
            model, size = self._load(name)
            with self._lock:
                self._entries[name] = _Entry(model, size, self._clock(), users=1)
                evicted = self._over_budget(keep=name)
            log.info("model %s loaded in %.1f s (~%d MB)", name, time.monotonic() - started, size // 2**20)
        self._drop(evicted, "over the memory budget")
        return model

    def _release(self, name: str) -> None:
        with self._lock:
            entry = self._entries[name]
            entry.users -= 1
            entry.last_used = self._clock()
            evicted = self._over_budget(keep=None)
            if self.ttl_seconds == 0 and entry.users == 0 and name not in evicted:
                evicted[name] = self._entries.pop(name)
        self._drop(evicted, "after use (TTL 0)" if self.ttl_seconds == 0 else "over the memory budget")

    def _over_budget(self, keep: str | None) -> dict[str, _Entry[M]]:
        """Idle entries to unload, least recently used first, until the rest fit (lock held)."""
        evicted: dict[str, _Entry[M]] = {}
        total = sum(e.size for e in self._entries.values())
        for name, entry in sorted(self._entries.items(), key=lambda kv: kv[1].last_used):
            if total <= self.budget_bytes:
                break
            if entry.users == 0 and name != keep:
                evicted[name] = self._entries.pop(name)
                total -= entry.size
        return evicted

    def sweep(self) -> list[str]:
        """Unload models idle for longer than the TTL; returns their names."""
        if self.ttl_seconds < 0:
            return []
        now = self._clock()
        with self._lock:
            idle = {n: e for n, e in self._entries.items() if e.users == 0 and now - e.last_used >= self.ttl_seconds}
            for name in idle:
                del self._entries[name]
        self._drop(idle, f"idle for {self.ttl_seconds:g} s")
        return list(idle)

    def _drop(self, entries: dict[str, _Entry[M]], why: str) -> None:
        for name, entry in entries.items():
            try:
                self._unload(entry.model)
            except Exception:  # freeing memory must not fail a job
                log.exception("unloading model %s failed", name)
            log.info("model %s unloaded (%s)", name, why)

    def loaded(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def clear(self) -> None:
        with self._lock:
            entries, self._entries = {n: e for n, e in self._entries.items() if e.users == 0}, {
                n: e for n, e in self._entries.items() if e.users > 0}
        self._drop(entries, "shutdown")
