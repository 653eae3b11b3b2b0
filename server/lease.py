"""A worker's hold on one attempt of a job: heartbeats in a thread, and the checkpoint the
pipeline calls between steps.

The store answers each heartbeat with HELD, CANCELLED (the user deleted the job: stop, and
remove its files) or LOST (another worker reclaimed it: stop, and touch nothing). When the
store cannot be reached for longer than the lease, the attempt can no longer prove it holds
the job, and it counts as lost too.
"""

from __future__ import annotations

import logging
import threading
import time

from engine.errors import Cancelled

from .store import Job, JobStore, LeaseState

log = logging.getLogger("tft.worker")


class Lease:
    def __init__(self, store: JobStore, job: Job, *, lease_seconds: float, abandon: threading.Event) -> None:
        assert job.attempt_token, "a claimed job carries its attempt token"
        self.store, self.job, self.token = store, job, job.attempt_token
        self.lease_seconds = lease_seconds
        self.abandon = abandon
        self.state = LeaseState.HELD
        self.stage: str | None = None
        self.fraction = 0.0
        self._done = threading.Event()
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job.id[:8]}", daemon=True)
        self._thread.start()

    @property
    def held(self) -> bool:
        return self.state is LeaseState.HELD

    def _beat(self) -> None:
        interval = min(2.0, self.lease_seconds / 4)
        while not self._done.wait(interval):
            try:
                state = self.store.heartbeat(self.job.id, self.token, lease_seconds=self.lease_seconds,
                                             stage=self.stage, fraction=self.fraction)
            except Exception:
                log.exception("heartbeat failed for job %s", self.job.id)
                if time.monotonic() - self._last_ok > self.lease_seconds:
                    log.error("job %s: no heartbeat got through for %.0f s; the lease may have passed to another "
                              "worker, so this attempt stops without touching the job's files", self.job.id,
                              self.lease_seconds)
                    self.state = LeaseState.LOST
                    return
                continue
            self._last_ok = time.monotonic()
            if state is LeaseState.LOST or self.state is LeaseState.LOST:
                self.state = LeaseState.LOST
                return
            self.state = state  # CANCELLED: keep beating until the worker has cleaned up

    def checkpoint(self, progress) -> None:
        """The pipeline's progress callback: record progress, stop if the attempt must."""
        self.stage, self.fraction = progress.stage, progress.fraction
        if self.state is LeaseState.CANCELLED:
            raise Cancelled("the job was cancelled")
        if self.state is LeaseState.LOST:
            raise Cancelled("the job's lease was lost to another worker")
        if self.abandon.is_set():
            raise Cancelled("the worker is shutting down")

    def stop(self) -> None:
        self._done.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
