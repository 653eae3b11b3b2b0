"""Lock order in the webhook outbox, on a real PostgreSQL: an endpoint's row before its
deliveries' rows in every transaction that changes both, so deleting (or disabling) an
endpoint while a dispatcher records an attempt never deadlocks (a deadlock is answered 503).

The interleaving is forced, not hoped for: each transaction pauses after its first statement
until the other one has run its own first statement, which is the order in which the old
code (delivery row first, endpoint row second) deadlocked every time."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest

from server.store.postgres import PostgresStore

PAUSE_SECONDS = 0.3  # long enough that both first statements have run before either goes on


class PausingStore(PostgresStore):
    """Each write transaction of a thread in ``pausing`` sleeps after its first statement."""

    pausing: set[int] = set()

    @contextmanager
    def _write(self):
        with super()._write() as conn:
            if threading.get_ident() not in self.pausing:
                yield conn
                return
            yield _PauseAfterFirst(conn)


class _PauseAfterFirst:
    def __init__(self, conn) -> None:
        self.conn, self.first = conn, True

    def execute(self, sql: str, params: tuple = ()):
        cursor = self.conn.execute(sql, params)
        if self.first:
            self.first = False
            time.sleep(PAUSE_SECONDS)
        return cursor


@pytest.fixture
def store(pg_url):
    store = PausingStore(pg_url, listen=False)
    yield store
    store.close()


def _delivery(store, user, hook_id: str, n: int):
    store.create_job(job_id=f"job-{hook_id}-{n}", user=user, filename="a.wav", upload_path="/x", options={}, price=0,
                     audio_duration=1.0, top_up_url=None)
    job = store.claim_job("w", lease_seconds=60, max_attempts=3)
    store.complete_job(job.id, job.attempt_token, result={}, exports_dir="/e", expires_at=0)  # its job.done outbox row


def _together(*calls):
    """Run the calls at once, each pausing after its first statement; their results or errors."""
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i, call):
        PausingStore.pausing.add(threading.get_ident())
        barrier.wait()
        time.sleep(0.05 * i)  # the first call's first statement goes first: the old deadlocking order
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 (the assertion below names it)
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_deleting_an_endpoint_while_a_failed_attempt_is_recorded(store):
    user = store.ensure_user("hooked", None)
    hook = store.add_webhook(user_id=user.id, url="http://127.0.0.1:9/hook", secret="s", events=["job.done"], limit=5)
    _delivery(store, user, hook.id, 0)
    delivery = store.claim_delivery("dispatcher", lease_seconds=60)
    failed, deleted = _together(
        lambda: store.delivery_failed(delivery, error="connection refused", status_code=None,
                                      next_attempt_at=time.time() + 60, disable_after=3600),
        lambda: store.delete_webhook(hook.id, user.id))
    assert failed is False and deleted is True, (failed, deleted)
    row = store._read("SELECT status, attempts FROM deliveries WHERE id = ?", (delivery.id,))[0]
    assert row["attempts"] == 1 and row["status"] == "abandoned"  # recorded, then abandoned with its endpoint


def test_deleting_an_endpoint_while_a_successful_attempt_is_recorded(store):
    user = store.ensure_user("hooked", None)
    hook = store.add_webhook(user_id=user.id, url="http://127.0.0.1:9/hook", secret="s", events=["job.done"], limit=5)
    _delivery(store, user, hook.id, 0)
    delivery = store.claim_delivery("dispatcher", lease_seconds=60)
    succeeded, deleted = _together(lambda: store.delivery_succeeded(delivery, 204),
                                   lambda: store.delete_webhook(hook.id, user.id))
    assert succeeded is True and deleted is True, (succeeded, deleted)


def test_two_failures_that_disable_the_endpoint_together(store):
    """Each failure may disable the endpoint, which abandons every pending delivery of it,
    the other one's included."""
    user = store.ensure_user("hooked", None)
    hook = store.add_webhook(user_id=user.id, url="http://127.0.0.1:9/hook", secret="s", events=["job.done"], limit=5)
    _delivery(store, user, hook.id, 0)
    _delivery(store, user, hook.id, 1)
    first = store.claim_delivery("d1", lease_seconds=60)
    second = store.claim_delivery("d2", lease_seconds=60)
    results = _together(*[lambda d=d: store.delivery_failed(d, error="HTTP 500", status_code=500,
                                                            next_attempt_at=time.time() + 60, disable_after=0)
                          for d in (first, second)])
    assert not any(isinstance(r, Exception) for r in results), results
    assert results.count(True) == 1  # one of them disabled it
    assert store.list_webhooks(user.id)[0].disabled_at is not None
