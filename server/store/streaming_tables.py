"""The streaming half of the SQL stores: segments a running job publishes as they are
decoded, and waiting for a job to change without polling the API.

A segment is published only by the attempt that holds the job (its token), and only once
per position, so a retried attempt that decodes the same segments again does not duplicate
what a reader has already seen.
"""

from __future__ import annotations

import json
import time

from .records import JobVersion


class StreamingTables:
    """Mixed into SQLStore, whose subclasses provide ``_write()``, ``_read()`` and ``_changes`` /
    ``_generation`` (bumped and notified by every write this process commits)."""

    change_poll_seconds = 0.5  # how soon a waiter sees a change another process wrote

    def publish_segment(self, job_id: str, token: str, seq: int, segment: dict) -> bool:
        with self._write() as conn:
            return conn.execute(
                "INSERT INTO job_segments (job_id, seq, body, created_at) SELECT ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ? AND attempt_token = ? AND status = 'processing' "
                "AND cancel_requested = 0) "
                "AND NOT EXISTS (SELECT 1 FROM job_segments WHERE job_id = ? AND seq = ?)",
                (job_id, seq, json.dumps(segment, ensure_ascii=False), time.time(), job_id, token, job_id,
                 seq)).rowcount == 1

    def job_segments(self, job_id: str, *, after: int = -1) -> list[tuple[int, dict]]:
        rows = self._read("SELECT seq, body FROM job_segments WHERE job_id = ? AND seq > ? ORDER BY seq",
                          (job_id, after))
        return [(r["seq"], json.loads(r["body"])) for r in rows]

    def job_version(self, job_id: str) -> JobVersion | None:
        rows = self._read(
            "SELECT status, cancel_requested, deleted, "
            "(SELECT COUNT(*) FROM job_segments WHERE job_id = jobs.id) AS segments FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        r = rows[0]
        return JobVersion(r["status"], bool(r["cancel_requested"]), bool(r["deleted"]), r["segments"])

    def wait_for_change(self, job_id: str, since: JobVersion | None, timeout: float) -> JobVersion | None:
        """In-process writes wake the waiter at once (every commit notifies); writes by other
        processes (`tft worker`) are seen by a slow poll every ``change_poll_seconds``."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._changes:
                generation = self._generation
            current = self.job_version(job_id)
            remaining = deadline - time.monotonic()
            if current != since or current is None or remaining <= 0:
                return current
            with self._changes:
                if self._generation == generation:
                    self._changes.wait(min(remaining, self.change_poll_seconds))

    def prune_segments(self, *, finished_before: float) -> int:
        """Published segments of jobs that ended before ``finished_before`` (or are gone)."""
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM job_segments WHERE job_id IN (SELECT s.job_id FROM job_segments s LEFT JOIN jobs j "
                "ON j.id = s.job_id WHERE j.id IS NULL OR (j.finished_at IS NOT NULL AND j.finished_at < ?))",
                (finished_before,)).rowcount
