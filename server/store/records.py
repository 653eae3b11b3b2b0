"""Immutable records the store hands out, built ``from_row`` of any mapping-like row
(``sqlite3.Row``, a dict from another driver), so storage stays out of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping


class JobStatus(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


VISIBLE_STATUSES = ("pending", "processing", "done", "error")


class LeaseState(str, Enum):
    """What the store says about a worker's hold on one attempt of a job.

    HELD: still this attempt's to run (or the step just asked for was done).
    CANCELLED: this attempt's, but the user cancelled: stop, and remove the job's files.
    LOST: no longer this attempt's (another worker reclaimed it, or it ended): stop and
    touch nothing, because the files now belong to whoever holds the job.
    """

    HELD = "held"
    CANCELLED = "cancelled"
    LOST = "lost"


@dataclass(frozen=True)
class User:
    id: str
    name: str
    credits: int | None
    created_at: float

    @property
    def unlimited(self) -> bool:
        return self.credits is None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "User":
        return cls(row["id"], row["name"], row["credits"], row["created_at"])


@dataclass(frozen=True)
class Job:
    id: str
    user_id: str
    status: JobStatus
    filename: str  # as the client named it, sanitised: metadata only, never a path
    upload_path: str
    options: dict
    audio_duration: float | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    progress_stage: str | None
    progress_fraction: float
    attempts: int
    lease_owner: str | None
    lease_expires: float | None
    error_code: str | None
    error_message: str | None
    result: dict | None
    exports_dir: str | None
    exports_expire_at: float | None
    exports_expired: bool
    credits_quoted: int
    credits_charged: int
    cancel_requested: bool
    deleted: bool
    attempt_token: str | None = None  # fresh per claim; every later step of the attempt names it
    claimed_at: float | None = None
    purged_at: float | None = None  # when the job's files (upload, exports, cache refs) were removed

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Job":
        data = dict(row)
        data["status"] = JobStatus(data["status"])
        data["options"] = json.loads(data["options"])
        data["result"] = json.loads(data["result"]) if data["result"] else None
        for flag in ("exports_expired", "cancel_requested", "deleted"):
            data[flag] = bool(data[flag])
        return cls(**data)


@dataclass(frozen=True)
class Webhook:
    id: str
    user_id: str
    url: str
    secret: str
    events: tuple[str, ...]
    created_at: float
    failing_since: float | None
    disabled_at: float | None
    disabled_reason: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Webhook":
        return cls(row["id"], row["user_id"], row["url"], row["secret"], tuple(json.loads(row["events"])),
                   row["created_at"], row["failing_since"], row["disabled_at"], row["disabled_reason"])


@dataclass(frozen=True)
class Delivery:
    id: str
    webhook_id: str
    job_id: str
    event: str
    payload: str | None
    attempts: int
    created_at: float
    url: str
    secret: str
    user_id: str
    owner: str = ""  # the dispatcher holding this attempt's lease; results are recorded only by it


@dataclass(frozen=True)
class JobVersion:
    """What a waiter compares: it changes when the job's status, its cancellation or its
    published segments change (progress heartbeats do not count)."""

    status: str
    cancel_requested: bool
    deleted: bool
    segments: int  # how many segments are published

    @property
    def finished(self) -> bool:
        return self.status in ("done", "error", "cancelled")
