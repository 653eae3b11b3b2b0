"""Webhook deliveries: signed, retried for two days, stored rather than held in memory,
and never a way into the internal network.

Signatures (the secret is shown once, at registration):

* ``X-TFT-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body (the contract's header);
* ``X-TFT-Timestamp: <unix seconds>`` and
  ``X-TFT-Signature-Timestamped: t=<ts>,sha256=<hex>``: HMAC of ``"<ts>.<body>"``, so a
  receiver can refuse a replayed delivery whose timestamp is stale;
* ``X-TFT-Event-Id``: the same on every retry of one event, for de-duplication.

Retries: after a failure the next attempt waits 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h,
12 h, 24 h (each +-20% jitter): 10 attempts over about 48 hours. Each attempt has a 10 s
timeout; redirects count as failures and are not followed. An endpoint whose deliveries
have all failed for ``TFT_WEBHOOK_DISABLE_AFTER_SECONDS`` (3 days) is disabled, which
``GET /api/v1/webhooks`` shows.

SSRF guard: the URL's host is resolved here, every address is checked, and the request is
sent to the checked address itself (Host header and TLS SNI carry the name), so DNS
rebinding between check and connect is impossible. Loopback, private, link-local
(169.254.169.254 included), unique-local, shared (CGNAT), multicast, reserved and
IPv4-mapped forms of those are refused unless ``TFT_WEBHOOK_ALLOW_NETWORKS`` lists them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urlsplit

from .settings import Settings
from .store import Delivery, SQLiteStore

log = logging.getLogger("tft.webhooks")

SCHEDULE_SECONDS = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)
MAX_ATTEMPTS = len(SCHEDULE_SECONDS) + 1
USER_AGENT = "textfromtrack-local-webhooks/0.1"

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """The URL may not be used as a webhook target; the message says why."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_timestamped(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},sha256={mac}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (as in the contract's example)."""
    return hmac.compare_digest(sign(secret, body), header)


def forbidden_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            inner = forbidden_reason(ip.ipv4_mapped)
            return f"IPv4-mapped {inner}" if inner else None
        if ip in _NAT64:
            inner = forbidden_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            return f"NAT64 {inner}" if inner else None
        if ip.sixtofour is not None:
            inner = forbidden_reason(ip.sixtofour)
            return f"6to4 {inner}" if inner else None
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("shared (CGNAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
        ("unique-local" if isinstance(ip, ipaddress.IPv6Address) else "private", ip.is_private),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("reserved", ip.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address {ip}"
    return None


def allowed(ip, networks: Iterable) -> bool:
    return any(ip in net for net in networks if ip.version == net.version)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the vetted IP the request goes to


def parse_url(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("webhook URLs must start with http:// or https://")
    if parts.username or parts.password:
        raise UnsafeURL("webhook URLs must not contain a user name or password")
    if not parts.hostname:
        raise UnsafeURL("the webhook URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("the webhook URL has an invalid port") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname.rstrip(".").lower(), port, path


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def vet(url: str, allow_networks: Iterable = (), resolver: Resolver = system_resolver) -> Target:
    """Resolve and check every address of the URL's host; return the address to connect to."""
    scheme, host, port, path = parse_url(url)
    allow = tuple(allow_networks)
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        addresses = [str(literal)]
    except ValueError:
        try:
            addresses = resolver(host, port)
        except (socket.gaierror, UnicodeError, OSError) as exc:
            raise UnsafeURL(f"the webhook host {host!r} does not resolve ({exc})") from None
    if not addresses:
        raise UnsafeURL(f"the webhook host {host!r} does not resolve")
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        reason = forbidden_reason(ip)
        if reason and not allowed(ip, allow):
            raise UnsafeURL(f"{host} resolves to a {reason}; internal addresses are refused "
                            "(list trusted networks in TFT_WEBHOOK_ALLOW_NETWORKS)")
    return Target(scheme, host, port, path, addresses[0].split("%", 1)[0])


def send(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST to the vetted address, naming the host only in Host and SNI. Returns the status."""
    import httpx

    ip = target.address
    netloc = f"[{ip}]" if ":" in ip else ip
    url = f"{target.scheme}://{netloc}:{target.port}{target.path}"
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        response = client.post(url, content=body, headers={**headers, "Host": host_header}, extensions=extensions)
        return response.status_code


class Dispatcher(threading.Thread):
    """Delivers due webhook events, one at a time, until stopped."""

    def __init__(self, store: SQLiteStore, settings: Settings, payload_for: Callable[[Delivery], dict],
                 resolver: Resolver = system_resolver) -> None:
        super().__init__(name="webhooks", daemon=True)
        self.store = store
        self.settings = settings
        self.payload_for = payload_for
        self.resolver = resolver
        self.worker_id = f"webhooks-{uuid.uuid4().hex[:8]}"
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                delivery = self.store.claim_delivery(self.worker_id, lease_seconds=self.settings.webhook_timeout_seconds * 3)
            except Exception:
                log.exception("could not claim a webhook delivery")
                self.stopping.wait(2.0)
                continue
            if delivery is None:
                self.stopping.wait(0.25)
                continue
            self.attempt(delivery)

    def next_delay(self, attempts_made: int) -> float | None:
        if attempts_made >= MAX_ATTEMPTS:
            return None
        base = SCHEDULE_SECONDS[min(attempts_made - 1, len(SCHEDULE_SECONDS) - 1)]
        return base * self.settings.webhook_retry_scale * random.uniform(0.8, 1.2)

    def attempt(self, delivery: Delivery) -> None:
        payload = delivery.payload
        if payload is None:
            payload = json.dumps(self.payload_for(delivery), separators=(",", ":"), ensure_ascii=False)
            self.store.freeze_payload(delivery.id, payload)
            payload = self.store.claim_payload(delivery.id) or payload
        body = payload.encode("utf-8")
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
        status = None
        try:
            target = vet(delivery.url, self.settings.webhook_allow_networks, self.resolver)
            status = send(target, body, headers, self.settings.webhook_timeout_seconds)
            if 200 <= status < 300:
                self.store.delivery_succeeded(delivery, status)
                log.info("webhook %s %s delivered (HTTP %d)", delivery.event, delivery.id, status)
                return
            error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        except UnsafeURL as exc:
            error = f"refused: {exc}"
        except Exception as exc:  # timeouts, refused connections, TLS errors
            error = f"{type(exc).__name__}: {exc}"
        delay = self.next_delay(delivery.attempts + 1)
        disabled = self.store.delivery_failed(
            delivery, error=error, status_code=status,
            next_attempt_at=None if delay is None else time.time() + delay,
            disable_after=self.settings.webhook_disable_after_seconds)
        log.warning("webhook %s %s attempt %d failed: %s%s", delivery.event, delivery.id, delivery.attempts + 1, error,
                    "; endpoint disabled" if disabled else "")
