"""Personal access tokens: ``tft_pat_`` + 43 URL-safe characters, stored only as a hash.

A token carries 256 bits of randomness, so a plain SHA-256 (not a slow password hash) is
the right digest: nothing to brute-force. Lookup is by digest, and the digest found is
compared again with ``hmac.compare_digest`` so no comparison leaks timing. Repeated bad
tokens from one client address are answered 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque

from .errors import RateLimited, Unauthorized
from .store import SQLiteStore, User

PREFIX = "tft_pat_"
TOKEN_RE = re.compile(r"^tft_pat_[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)  # 32 bytes -> 43 characters


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def redact(token: str) -> str:
    """What may appear in a log: the prefix and four characters."""
    return token[: len(PREFIX) + 4] + "…" if token.startswith(PREFIX) else "…"


def issue(store: SQLiteStore, user: User, *, label: str = "") -> str:
    token = new_token()
    store.add_token(user.id, digest(token), label=label, prefix=redact(token))
    return token


class FailureLimiter:
    """Sliding one-minute window of authentication failures per client address."""

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and now - q[0] > self.window:
            q.popleft()

    def check(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._failures.get(client)
            if q is None:
                return
            self._trim(q, now)
            if len(q) >= self.per_minute:
                retry = max(1, int(self.window - (now - q[0])) + 1)
                raise RateLimited(f"too many failed authentication attempts; retry in {retry} s", retry_after=retry)

    def fail(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._failures.setdefault(client, deque())
            self._trim(q, now)
            q.append(now)
            if len(self._failures) > 10_000:  # bound memory under a flood of addresses
                for key in [k for k, v in self._failures.items() if not v or now - v[-1] > self.window]:
                    del self._failures[key]


def bearer(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer tft_pat_...'")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <personal access token>'")
    return value.strip()


def authenticate(store: SQLiteStore, header: str | None) -> User:
    token = bearer(header)
    if not TOKEN_RE.match(token):
        raise Unauthorized("that is not a personal access token (expected tft_pat_ and 43 characters)")
    wanted = digest(token)
    found = store.user_for_token(wanted)
    # The lookup is by digest (an index probe on a hash of a 256-bit secret reveals nothing
    # an attacker can steer); the stored digest is then compared in constant time.
    if found is None or not hmac.compare_digest(found[1], wanted):
        raise Unauthorized("invalid or revoked token")
    return found[0]
