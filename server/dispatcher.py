"""Delivers due webhook events, many at once, so no receiver can hold up another's.

One thread runs an event loop. It claims due deliveries from the store's outbox and starts
each as its own task, at most ``TFT_WEBHOOK_CONCURRENCY`` in flight, at most
``PER_ENDPOINT`` per endpoint and ``PER_USER`` per user: deliveries to a receiver that never
answers wait behind each other, not in front of another tenant's. Every attempt ends by its
deadline (``TFT_WEBHOOK_TIMEOUT_SECONDS``: DNS, connect, send, the status line and at most
a few KB of the answer), and its outcome is recorded only while this dispatcher still holds
the delivery's lease. Nothing an attempt raises reaches the loop: a bad payload, a store
error or a broken receiver is one failed attempt, retried on the schedule.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .settings import Settings
from .store import Delivery, JobStore
from .supervisor import ServiceThread
from .webhooks import USER_AGENT, Resolver, UnsafeURL, deliver, sign, sign_timestamped, system_resolver, vet

log = logging.getLogger("tft.webhooks")

SCHEDULE_SECONDS = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)
MAX_ATTEMPTS = len(SCHEDULE_SECONDS) + 1
PER_ENDPOINT = 2
PER_USER = 4
IDLE_POLL_SECONDS = 0.25


def next_delay(attempts_made: int, scale: float = 1.0, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` failed ones (None: give up)."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = SCHEDULE_SECONDS[min(attempts_made - 1, len(SCHEDULE_SECONDS) - 1)]
    return base * scale * (rng or random).uniform(0.8, 1.2)


class Dispatcher(ServiceThread):
    def __init__(self, store: JobStore, settings: Settings, payload_for: Callable[[Delivery], dict],
                 resolver: Resolver = system_resolver) -> None:
        super().__init__("webhooks")
        self.store = store
        self.settings = settings
        self.payload_for = payload_for
        self.resolver = resolver
        self.worker_id = f"webhooks-{uuid.uuid4().hex[:8]}"
        self.deadline = settings.webhook_timeout_seconds
        self._per_hook: Counter[str] = Counter()
        self._per_user: Counter[str] = Counter()
        self._tasks: set[asyncio.Task] = set()

    def next_delay(self, attempts_made: int) -> float | None:
        return next_delay(attempts_made, self.settings.webhook_retry_scale)

    def serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        # Store calls and DNS run in threads of their own, so a slow one delays only its attempt.
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=16, thread_name_prefix="webhooks-io"))
        while not self.stopping.is_set():
            try:
                started = await self._start_due()
            except Exception:
                log.exception("could not claim a webhook delivery")
                await asyncio.sleep(2.0)
                continue
            if not started:
                await asyncio.sleep(IDLE_POLL_SECONDS)
        if self._tasks:  # in-flight attempts get a moment; the rest are retried when their lease runs out
            await asyncio.wait(self._tasks, timeout=2.0)
            for task in self._tasks:
                task.cancel()

    async def _start_due(self) -> int:
        started = 0
        while len(self._tasks) < self.settings.webhook_concurrency and not self.stopping.is_set():
            busy_hooks = [h for h, n in self._per_hook.items() if n >= PER_ENDPOINT]
            busy_users = [u for u, n in self._per_user.items() if n >= PER_USER]
            delivery = await asyncio.to_thread(
                self.store.claim_delivery, self.worker_id, lease_seconds=self.deadline * 2 + 30,
                skip_webhooks=busy_hooks, skip_users=busy_users)
            if delivery is None:
                break
            _inject_faults(delivery)
            self._per_hook[delivery.webhook_id] += 1
            self._per_user[delivery.user_id] += 1
            task = asyncio.create_task(self._attempt(delivery), name=f"delivery-{delivery.id}")
            self._tasks.add(task)
            task.add_done_callback(lambda t, d=delivery: self._finished(t, d))
            started += 1
        return started

    def _finished(self, task: asyncio.Task, delivery: Delivery) -> None:
        self._tasks.discard(task)
        for counter, key in ((self._per_hook, delivery.webhook_id), (self._per_user, delivery.user_id)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    async def _attempt(self, delivery: Delivery) -> None:
        status, error = None, ""
        try:
            async with asyncio.timeout(self.deadline):
                status, error = await self._send(delivery)
        except TimeoutError:
            error = f"no complete answer within {self.deadline:g} s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bad payload, a store error, a receiver breaking the protocol
            log.warning("webhook %s %s: %s: %s", delivery.event, delivery.id, type(exc).__name__, exc)
            error = f"{type(exc).__name__}: {exc}"
        try:
            await asyncio.to_thread(self._record, delivery, status, error)
        except Exception:
            log.exception("could not record webhook delivery %s; it is retried when its lease runs out", delivery.id)

    async def _send(self, delivery: Delivery) -> tuple[int | None, str]:
        body = (await asyncio.to_thread(self._payload, delivery)).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-TFT-Event": delivery.event,
            "X-TFT-Event-Id": delivery.id,
            "X-TFT-Timestamp": str(timestamp),
            "X-TFT-Signature": sign(delivery.secret, body),
            "X-TFT-Signature-Timestamped": sign_timestamped(delivery.secret, timestamp, body),
            "X-TFT-Delivery-Attempt": str(delivery.attempts + 1),
        }
        try:
            target = await asyncio.to_thread(vet, delivery.url, self.settings.webhook_allow_networks, self.resolver)
        except UnsafeURL as exc:
            return None, f"refused: {exc}"
        try:
            status = await deliver(target, body, headers, timeout=self.deadline)
        except Exception as exc:  # refused connections, TLS errors, protocol errors
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= status < 300:
            return status, ""
        return status, f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")

    def _payload(self, delivery: Delivery) -> str:
        if delivery.payload is not None:
            return delivery.payload
        payload = json.dumps(self.payload_for(delivery), separators=(",", ":"), ensure_ascii=False)
        return self.store.freeze_payload(delivery.id, payload)

    def _record(self, delivery: Delivery, status: int | None, error: str) -> None:
        if status is not None and 200 <= status < 300:
            if self.store.delivery_succeeded(delivery, status):
                log.info("webhook %s %s delivered (HTTP %d)", delivery.event, delivery.id, status)
            return
        delay = self.next_delay(delivery.attempts + 1)
        disabled = self.store.delivery_failed(
            delivery, error=error, status_code=status, next_attempt_at=None if delay is None else time.time() + delay,
            disable_after=self.settings.webhook_disable_after_seconds)
        log.warning("webhook %s %s attempt %d failed: %s%s", delivery.event, delivery.id, delivery.attempts + 1, error,
                    "; endpoint disabled" if disabled else "")


def _inject_faults(delivery: Delivery) -> None:
    """Testing only: end the dispatcher thread on a delivery to a URL holding this text."""
    exit_on = os.environ.get("TFT_FAULT_EXIT_THREAD_ON")
    if exit_on and exit_on in delivery.url:
        raise SystemExit(f"TFT_FAULT_EXIT_THREAD_ON matched {delivery.url!r}")
