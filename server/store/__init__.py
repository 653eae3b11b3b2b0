"""Durable state: users, tokens, jobs, credits, webhooks and their deliveries.

``JobStore`` (protocol.py) is the interface; the logic is SQL both databases speak (sql.py);
``SQLiteStore`` (sqlite.py) keeps it in one file, the embedded default; ``PostgresStore``
(postgres.py, ``TFT_DATABASE_URL=postgresql://...``) lets many machines share it. The
records (records.py) are what both hand out; ``open_store`` picks one from the settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .protocol import JobStore
from .records import VISIBLE_STATUSES, Delivery, Job, JobStatus, JobVersion, LeaseState, User, Webhook
from .sqlite import SCHEMA_VERSION, SQLiteStore

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["JobStore", "SQLiteStore", "SCHEMA_VERSION", "VISIBLE_STATUSES", "Delivery", "Job", "JobStatus",
           "JobVersion", "LeaseState", "User", "Webhook", "open_store"]


def open_store(settings: "Settings", *, listen: bool = True) -> JobStore:
    """PostgreSQL when ``TFT_DATABASE_URL`` names one, else the SQLite file in the data dir.
    Either way the schema is brought up to date before this returns."""
    if settings.database_url:
        from .postgres import PostgresStore

        return PostgresStore(settings.database_url, listen=listen)
    return SQLiteStore(settings.database)
