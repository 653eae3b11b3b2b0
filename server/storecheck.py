"""`tft store check`: what the janitor would remove (files no live job owns) and jobs that
no worker is moving (a lease long expired with nobody to reclaim it, a job pending for
long). It only reports; the janitor of any running node does the removing."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .settings import Settings
from .store import Job, JobStore

PENDING_TOO_LONG_SECONDS = 3600.0


@dataclass(frozen=True)
class Report:
    database: str
    schema_version: int
    shared_dir: str
    orphan_uploads: tuple[str, ...]
    orphan_exports: tuple[str, ...]
    orphan_cache: tuple[str, ...]
    stuck_jobs: tuple[tuple[str, str], ...]  # (job id, why)

    @property
    def clean(self) -> bool:
        return not (self.orphan_uploads or self.orphan_exports or self.orphan_cache or self.stuck_jobs)

    def as_dict(self) -> dict:
        return {"database": self.database, "schema_version": self.schema_version, "shared_dir": self.shared_dir,
                "orphan_uploads": list(self.orphan_uploads), "orphan_exports": list(self.orphan_exports),
                "orphan_cache": list(self.orphan_cache),
                "stuck_jobs": [{"job_id": j, "why": why} for j, why in self.stuck_jobs], "clean": self.clean}

    def text(self) -> str:
        lines = [f"database: {self.database} (schema version {self.schema_version})", f"files: {self.shared_dir}"]
        for title, items in (("orphaned uploads", self.orphan_uploads), ("orphaned exports", self.orphan_exports),
                             ("orphaned cache files", self.orphan_cache)):
            lines.append(f"{title}: {len(items)}")
            lines += [f"  {p}" for p in items[:50]]
        lines.append(f"stuck jobs: {len(self.stuck_jobs)}")
        lines += [f"  {job_id}: {why}" for job_id, why in self.stuck_jobs[:50]]
        lines.append("ok" if self.clean else "problems found")
        return "\n".join(lines)


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.lstat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def _why_stuck(job: Job, now: float, lease_seconds: float) -> str | None:
    if job.status.value == "processing" and job.lease_expires is not None and job.lease_expires < now - lease_seconds:
        return f"processing, lease expired {now - job.lease_expires:.0f} s ago and no worker reclaimed it"
    if job.status.value == "pending" and job.created_at < now - PENDING_TOO_LONG_SECONDS:
        return f"pending for {now - job.created_at:.0f} s: is any worker running?"
    return None


def check(store: JobStore, settings: Settings) -> Report:
    now = time.time()
    grace = max(60.0, 4 * settings.lease_seconds)
    uploads = settings.uploads_dir
    files = {p.name.split(".", 1)[0]: p for p in uploads.iterdir()} if uploads.is_dir() else {}
    live = store.unpurged_job_ids(files)
    orphan_uploads = sorted(str(p) for job_id, p in files.items() if job_id not in live and _older(p, now - grace))
    exports = settings.exports_dir
    live_exports = store.live_exports_dirs()
    orphan_exports = sorted(str(p) for p in (exports.iterdir() if exports.is_dir() else ())
                            if str(p) not in live_exports and _older(p, now - grace))
    oldest = store.oldest_running_claim()
    cutoff = now if oldest is None else oldest
    referenced = store.referenced_cache_files()
    orphan_cache = []
    if settings.cache_dir.is_dir():
        for root, _, names in os.walk(settings.cache_dir):
            orphan_cache += [str(Path(root) / n) for n in names
                             if str(Path(root) / n) not in referenced and _older(Path(root) / n, cutoff)]
    stuck = []
    for job in store.unfinished_jobs():
        why = _why_stuck(job, now, settings.lease_seconds)
        if why:
            stuck.append((job.id, why))
    return Report(store.describe(), store.schema_version(), str(settings.shared_dir), tuple(orphan_uploads),
                  tuple(orphan_exports), tuple(sorted(orphan_cache)), tuple(stuck))
