"""Long-running threads (workers, the webhook dispatcher, the janitor) and the supervisor
that notices when one dies.

Each thread catches what it can handle inside its loop, so an exception there is one failed
job or delivery, never a dead thread. Whatever still escapes (a bug, ``SystemExit`` from a
native library) ends the thread: it is logged at CRITICAL with the traceback, ``/healthz``
answers 503 while the thread is down, and the supervisor starts a fresh one, at most
``restart_limit`` times in ``window`` seconds per thread. Past that it stops restarting and
says so, and ``/healthz`` stays 503 until the process is restarted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("tft.supervisor")


class ServiceThread(threading.Thread):
    """A daemon thread running ``serve()`` until ``stop()``; records how it died."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()
        self.failure: BaseException | None = None

    def serve(self) -> None:  # pragma: no cover - subclasses implement it
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        try:
            self.serve()
        except BaseException as exc:  # noqa: BLE001 - recorded for the supervisor and /healthz
            self.failure = exc
            log.critical("thread %s died: %s: %s", self.name, type(exc).__name__, exc, exc_info=exc)


@dataclass
class _Slot:
    factory: Callable[[], ServiceThread]
    thread: ServiceThread
    deaths: deque = field(default_factory=deque)
    restarts: int = 0
    given_up: bool = False
    retired: bool = False  # stopped on purpose: not restarted, not unhealthy


class Supervisor(ServiceThread):
    """Starts named threads from factories and restarts them when they die."""

    def __init__(self, *, restart_limit: int = 5, window: float = 600.0, interval: float = 1.0) -> None:
        super().__init__("supervisor")
        self.restart_limit = restart_limit
        self.window = window
        self.interval = interval
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    def watch(self, factory: Callable[[], ServiceThread]) -> ServiceThread:
        """Create a thread with ``factory``, start it, and keep it running."""
        thread = factory()
        with self._lock:
            self._slots[thread.name] = _Slot(factory, thread)
        thread.start()
        return thread

    def current(self, name: str) -> ServiceThread:
        with self._lock:
            return self._slots[name].thread

    def retire(self, names: list[str]) -> None:
        """These threads are being stopped on purpose: leave them down."""
        with self._lock:
            for name in names:
                self._slots[name].retired = True

    def serve(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.check()
            except Exception:  # the supervisor itself must not die of a logging error
                log.exception("supervisor check failed")

    def check(self) -> None:
        now = time.monotonic()
        with self._lock:
            slots = list(self._slots.items())
        for name, slot in slots:
            thread = slot.thread
            if slot.retired or slot.given_up or thread.is_alive() or not thread.ident:
                continue
            slot.deaths.append(now)
            while slot.deaths and now - slot.deaths[0] > self.window:
                slot.deaths.popleft()
            reason = f"{type(thread.failure).__name__}: {thread.failure}" if thread.failure else "it returned"
            if len(slot.deaths) > self.restart_limit:
                slot.given_up = True
                log.critical("thread %s died again (%s): %d deaths in %.0f s, more than TFT_THREAD_RESTART_LIMIT=%d; "
                             "not restarting it. /healthz reports unhealthy until the server is restarted",
                             name, reason, len(slot.deaths), self.window, self.restart_limit)
                continue
            log.error("thread %s died (%s); starting a new one (restart %d)", name, reason, slot.restarts + 1)
            fresh = slot.factory()
            with self._lock:
                slot.thread = fresh
                slot.restarts += 1
            fresh.start()

    def health(self) -> tuple[bool, dict]:
        """(healthy, details): unhealthy while any watched thread is down, or the supervisor is."""
        threads, healthy = {}, self.is_alive() or not self.ident
        with self._lock:
            slots = list(self._slots.items())
        for name, slot in slots:
            alive = slot.thread.is_alive()
            state = "alive" if alive else ("stopped" if slot.retired else "dead")
            if state == "dead":
                healthy = False
            threads[name] = {"state": state, "restarts": slot.restarts}
            if slot.thread.failure is not None and not alive:
                threads[name]["error"] = f"{type(slot.thread.failure).__name__}: {slot.thread.failure}"[:300]
            if slot.given_up:
                threads[name]["restarting"] = False
        if self.ident and not self.is_alive():
            threads["supervisor"] = {"state": "dead", "restarts": 0}
        return healthy, threads

    def stop_all(self, timeout: float = 10.0) -> None:
        self.stop()
        with self._lock:
            slots = list(self._slots.values())
            for slot in slots:
                slot.retired = True
        for slot in slots:
            slot.thread.stop()
        deadline = time.monotonic() + timeout
        for slot in slots:
            slot.thread.join(timeout=max(0.0, deadline - time.monotonic()))
