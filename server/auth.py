"""Personal access tokens: ``tft_pat_`` + 43 URL-safe characters, stored only as a hash.

A token carries 256 bits of randomness, so a plain SHA-256 (not a slow password hash) is
the right digest: nothing to brute-force. Lookup is by digest, and the digest found is
compared again with ``hmac.compare_digest`` so no comparison leaks timing. Repeated bad
tokens from one client address are answered 429 with Retry-After; the address is the
connection's own unless it comes from a trusted proxy.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from typing import Iterable

from .errors import RateLimited, Unauthorized
from .store import JobStore, User

PREFIX = "tft_pat_"
TOKEN_RE = re.compile(r"^tft_pat_[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)  # 32 bytes -> 43 characters


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def redact(token: str) -> str:
    """What may appear in a log: the prefix and four characters."""
    return token[: len(PREFIX) + 4] + "…" if token.startswith(PREFIX) else "…"


def issue(store: JobStore, user: User, *, label: str = "") -> str:
    token = new_token()
    store.add_token(user.id, digest(token), label=label, prefix=redact(token))
    return token


def client_address(peer: str | None, forwarded_for: str | None, trusted: Iterable = ()) -> str:
    """The address a request comes from, for rate limiting.

    ``X-Forwarded-For`` is believed only when the connection itself comes from a trusted
    proxy (``TFT_TRUSTED_PROXIES``); then the client is the right-most address not itself a
    trusted proxy. With no trusted proxies (the default) the header is ignored, so a client
    cannot pick its own address, nor lock someone else's out.
    """
    networks = tuple(trusted)
    if not peer:
        return "unknown"
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain: believe only the connection
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in networks)


def limiter_key(address: str) -> str:
    """IPv6 clients are counted per /64 (one subscriber's prefix), so rotating the low bits
    of an address does not reset the count."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


class FailureLimiter:
    """Sliding window of authentication failures per client, in bounded memory and time.

    Each client keeps at most ``per_minute`` timestamps (only the oldest of the last
    ``per_minute`` failures decides a lock-out), and at most ``max_clients`` clients are
    remembered, least recently failing first out: every call costs O(1) amortised, whatever
    an attacker sends.
    """

    def __init__(self, per_minute: int, window: float = 60.0, *, max_clients: int = 50_000) -> None:
        self.per_minute = per_minute
        self.window = window
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._failures)

    def _trim(self, q: deque[float], now: float) -> None:
        while q and now - q[0] > self.window:
            q.popleft()

    def check(self, client: str) -> None:
        now = time.monotonic()
        key = limiter_key(client)
        with self._lock:
            q = self._failures.get(key)
            if q is None:
                return
            self._trim(q, now)
            if not q:
                del self._failures[key]
                return
            if len(q) >= self.per_minute:
                retry = max(1, int(self.window - (now - q[0])) + 1)
                raise RateLimited(f"too many failed authentication attempts; retry in {retry} s", retry_after=retry)

    def fail(self, client: str) -> None:
        now = time.monotonic()
        key = limiter_key(client)
        with self._lock:
            q = self._failures.get(key)
            if q is None:
                q = self._failures[key] = deque(maxlen=self.per_minute)
            else:
                self._failures.move_to_end(key)
            self._trim(q, now)
            q.append(now)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)


def bearer(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer tft_pat_...'")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <personal access token>'")
    return value.strip()


def authenticate(store: JobStore, header: str | None) -> User:
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
