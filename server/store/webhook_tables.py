"""The webhook half of the SQL stores: endpoints, and deliveries leased to a dispatcher.

A delivery's result is recorded only by the dispatcher that holds its lease, so an attempt
that outlived its lease (and was taken over) cannot overwrite the newer attempt's outcome.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterable

from ..errors import TooManyWebhooks
from .records import Delivery, Webhook


def _now() -> float:
    return time.time()


def _placeholders(values: list[str]) -> str:
    return ", ".join("?" for _ in values)


class WebhookTables:
    """Mixed into SQLStore, whose subclasses provide ``_write()`` (a write transaction) and ``_read()``.

    A delivery is claimed as a job is: under a row lock that other dispatchers skip
    (PostgreSQL), so any node can deliver and each attempt is made by one dispatcher."""

    _skip_locked_deliveries = ""  # " FOR UPDATE OF d SKIP LOCKED" on PostgreSQL
    _lock_endpoint = ""  # " FOR NO KEY UPDATE" on PostgreSQL (see _hold_endpoint)

    def _hold_endpoint(self, conn: Any, hook_id: str) -> None:
        """Lock order: an endpoint's row before its deliveries' rows, in every transaction that
        changes both. Deleting an endpoint (or disabling it) locks the endpoint, then its
        pending deliveries; recording an attempt used to lock the delivery, then the endpoint,
        and the two deadlocked on PostgreSQL (answered 503). NO KEY UPDATE, the lock an UPDATE
        of the row takes anyway, leaves new deliveries free to reference the endpoint."""
        conn.execute(f"SELECT id FROM webhooks WHERE id = ?{self._lock_endpoint}", (hook_id,))

    def add_webhook(self, *, user_id: str, url: str, secret: str, events: list[str], limit: int) -> Webhook:
        hook_id = f"wh_{uuid.uuid4().hex}"
        with self._write() as conn:
            count = conn.execute("SELECT COUNT(*) FROM webhooks WHERE user_id = ? AND deleted = 0",
                                 (user_id,)).fetchone()[0]
            if count >= limit:
                raise TooManyWebhooks(f"you already have {count} webhooks, the most this server keeps per user; "
                                      "delete one (DELETE /api/v1/webhooks/{id}) before adding another")
            conn.execute("INSERT INTO webhooks (id, user_id, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (hook_id, user_id, url, secret, json.dumps(events), _now()))
            return Webhook.from_row(conn.execute("SELECT * FROM webhooks WHERE id = ?", (hook_id,)).fetchone())

    def list_webhooks(self, user_id: str) -> list[Webhook]:
        rows = self._read("SELECT * FROM webhooks WHERE user_id = ? AND deleted = 0 ORDER BY created_at", (user_id,))
        return [Webhook.from_row(r) for r in rows]

    def delete_webhook(self, hook_id: str, user_id: str) -> bool:
        with self._write() as conn:
            gone = conn.execute("UPDATE webhooks SET deleted = 1 WHERE id = ? AND user_id = ? AND deleted = 0",
                                (hook_id, user_id)).rowcount == 1
            if gone:
                conn.execute("UPDATE deliveries SET status = 'abandoned', last_error = 'endpoint deleted' "
                             "WHERE webhook_id = ? AND status = 'pending'", (hook_id,))
            return gone

    def _enqueue_events(self, conn: Any, *, user_id: str, job_id: str, event: str, now: float) -> int:
        hooks = conn.execute("SELECT id, events FROM webhooks WHERE user_id = ? AND deleted = 0 AND disabled_at IS NULL",
                             (user_id,)).fetchall()
        count = 0
        for hook in hooks:
            if event not in json.loads(hook["events"]):
                continue
            conn.execute(
                "INSERT INTO deliveries (id, webhook_id, job_id, event, status, next_attempt_at, created_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (f"evt_{uuid.uuid4().hex}", hook["id"], job_id, event, now, now))
            count += 1
        return count

    def claim_delivery(self, worker_id: str, *, lease_seconds: float, skip_webhooks: Iterable[str] = (),
                       skip_users: Iterable[str] = ()) -> Delivery | None:
        """The most overdue delivery, leaving out endpoints and users that already have as many
        attempts in flight as they may (so one slow receiver cannot hold up anyone else)."""
        now = _now()
        hooks, users = list(skip_webhooks), list(skip_users)
        where = ("d.status = 'pending' AND d.next_attempt_at <= ? AND (d.lease_expires IS NULL OR d.lease_expires < ?) "
                 "AND w.deleted = 0 AND w.disabled_at IS NULL")
        params: tuple = (now, now)
        if hooks:
            where += f" AND d.webhook_id NOT IN ({_placeholders(hooks)})"
            params += tuple(hooks)
        if users:
            where += f" AND w.user_id NOT IN ({_placeholders(users)})"
            params += tuple(users)
        with self._write() as conn:
            row = conn.execute(
                "SELECT d.*, w.url, w.secret, w.user_id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id "
                f"WHERE {where} ORDER BY d.next_attempt_at LIMIT 1{self._skip_locked_deliveries}", params).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE deliveries SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                         (worker_id, now + lease_seconds, row["id"]))
            return Delivery(row["id"], row["webhook_id"], row["job_id"], row["event"], row["payload"], row["attempts"],
                            row["created_at"], row["url"], row["secret"], row["user_id"], worker_id)

    def freeze_payload(self, delivery_id: str, payload: str) -> str:
        """Store the payload unless one is stored already; return the stored one (retries and
        a second dispatcher send the very same bytes)."""
        with self._write() as conn:
            conn.execute("UPDATE deliveries SET payload = COALESCE(payload, ?) WHERE id = ?", (payload, delivery_id))
            row = conn.execute("SELECT payload FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return row["payload"] if row and row["payload"] is not None else payload

    def delivery_succeeded(self, delivery: Delivery, status_code: int) -> bool:
        now = _now()
        with self._write() as conn:
            self._hold_endpoint(conn, delivery.webhook_id)
            done = conn.execute(
                "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_status = ?, "
                "delivered_at = ?, lease_owner = NULL, lease_expires = NULL, last_error = NULL "
                "WHERE id = ? AND lease_owner = ? AND status = 'pending'",
                (status_code, now, delivery.id, delivery.owner)).rowcount == 1
            if done:
                conn.execute("UPDATE webhooks SET failing_since = NULL WHERE id = ?", (delivery.webhook_id,))
            return done

    def delivery_failed(self, delivery: Delivery, *, error: str, status_code: int | None, next_attempt_at: float | None,
                        disable_after: float) -> bool:
        """Record a failed attempt; schedule the next or abandon. Returns True if the endpoint
        has now been failing for longer than ``disable_after`` seconds and was disabled."""
        now = _now()
        with self._write() as conn:
            self._hold_endpoint(conn, delivery.webhook_id)
            recorded = conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, last_status = ?, lease_owner = NULL, "
                "lease_expires = NULL, status = ?, next_attempt_at = COALESCE(?, next_attempt_at) "
                "WHERE id = ? AND lease_owner = ? AND status = 'pending'",
                (error[:500], status_code, "pending" if next_attempt_at is not None else "abandoned", next_attempt_at,
                 delivery.id, delivery.owner)).rowcount == 1
            if not recorded:
                return False
            conn.execute("UPDATE webhooks SET failing_since = COALESCE(failing_since, ?) WHERE id = ?",
                         (now, delivery.webhook_id))
            since = conn.execute("SELECT failing_since FROM webhooks WHERE id = ?", (delivery.webhook_id,)).fetchone()[0]
            if since is not None and now - since >= disable_after:
                conn.execute("UPDATE webhooks SET disabled_at = ?, disabled_reason = ? WHERE id = ? AND disabled_at IS NULL",
                             (now, f"every delivery failed for {int(now - since)} s (last error: {error[:200]})",
                              delivery.webhook_id))
                conn.execute("UPDATE deliveries SET status = 'abandoned' WHERE webhook_id = ? AND status = 'pending'",
                             (delivery.webhook_id,))
                return True
            return False
