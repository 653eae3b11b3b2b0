"""`tft store check`: what the janitor would remove (files no live job owns) and jobs that
no worker is moving (a lease long expired with nobody to reclaim it, a job pending for
long). It only reports; the janitor of any running node does the removing."""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import orphans
from .blobs import blob_store
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


def _why_stuck(job: Job, now: float, lease_seconds: float) -> str | None:
    if job.status.value == "processing" and job.lease_expires is not None and job.lease_expires < now - lease_seconds:
        return f"processing, lease expired {now - job.lease_expires:.0f} s ago and no worker reclaimed it"
    if job.status.value == "pending" and job.created_at < now - PENDING_TOO_LONG_SECONDS:
        return f"pending for {now - job.created_at:.0f} s: is any worker running?"
    return None


def check(store: JobStore, settings: Settings) -> Report:
    now = time.time()
    grace = max(60.0, 4 * settings.lease_seconds)
    blobs = blob_store(settings)
    found = orphans.find(store, settings, upload_age=grace, export_age=grace)
    stuck = []
    for job in store.unfinished_jobs():
        why = _why_stuck(job, now, settings.lease_seconds)
        if why:
            stuck.append((job.id, why))
    return Report(store.describe(), store.schema_version(), blobs.describe().removeprefix("directory:"),
                  tuple(blobs.location(k) for k in found.uploads), tuple(blobs.location(k) for k in found.exports),
                  tuple(str(p) for p in found.cache) + tuple(blobs.location(k) for k in found.shared_cache),
                  tuple(stuck))
