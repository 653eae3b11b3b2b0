"""What this process's claims looked like, for /metrics: how long a claim takes, how long jobs
waited in the queue, and how many claims took over a job whose worker's lease ran out."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .records import Job


@dataclass
class ClaimStats:
    claims: int = 0  # claims that returned a job
    empty_claims: int = 0
    claim_seconds: float = 0.0  # summed over every claim call, empty or not
    queue_waits: int = 0
    queue_wait_seconds: float = 0.0  # first attempts only: queued -> claimed
    lease_expiries: int = 0  # claims that took over a job whose lease had run out
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, seconds: float, job: Job | None) -> None:
        with self._lock:
            self.claim_seconds += seconds
            if job is None:
                self.empty_claims += 1
                return
            self.claims += 1
            if job.attempts > 1:  # a release gives its attempt back, so only an expired lease counts here
                self.lease_expiries += 1
            elif job.claimed_at is not None:
                self.queue_waits += 1
                self.queue_wait_seconds += max(0.0, job.claimed_at - job.created_at)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {k: getattr(self, k) for k in ("claims", "empty_claims", "claim_seconds", "queue_waits",
                                                    "queue_wait_seconds", "lease_expiries")}
