"""Durable state: users, tokens, jobs, credits, webhooks and their deliveries.

``JobStore`` (protocol.py) is the interface; ``SQLiteStore`` (sqlite.py) implements it on one
SQLite file; the records (records.py) are what both hand out.
"""

from .protocol import JobStore
from .records import VISIBLE_STATUSES, Delivery, Job, JobStatus, JobVersion, LeaseState, User, Webhook
from .sqlite import SCHEMA_VERSION, SQLiteStore

__all__ = ["JobStore", "SQLiteStore", "SCHEMA_VERSION", "VISIBLE_STATUSES", "Delivery", "Job", "JobStatus",
           "JobVersion", "LeaseState", "User", "Webhook"]
