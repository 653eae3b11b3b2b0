"""Webhook deliveries: signed, retried for two days, stored rather than held in memory,
and never a way into the internal network.

Signatures (the secret is shown once, at registration):

* ``X-TFT-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body (the contract's header);
* ``X-TFT-Timestamp: <unix seconds>`` and
  ``X-TFT-Signature-Timestamped: t=<ts>,sha256=<hex>``: HMAC of ``"<ts>.<body>"``, so a
  receiver can refuse a replayed delivery whose timestamp is stale;
* ``X-TFT-Event-Id``: the same on every retry of one event, for de-duplication.

Retries (``dispatcher.py``): after a failure the next attempt waits 30 s, 2 min, 10 min,
30 min, 1 h, 3 h, 6 h, 12 h, 24 h (each +-20% jitter): 10 attempts over about 48 hours. Each
attempt has one overall deadline (``TFT_WEBHOOK_TIMEOUT_SECONDS``, 10 s) covering DNS,
connecting, sending and the answer, of which at most ``RESPONSE_BYTES`` are read; redirects
count as failures and are not followed. An endpoint whose deliveries have all failed for
``TFT_WEBHOOK_DISABLE_AFTER_SECONDS`` (3 days) is disabled, which ``GET /api/v1/webhooks``
shows.

SSRF guard: the URL's host is resolved here, every address is checked, and the request is
sent to a checked address itself (Host header and TLS SNI carry the name), so DNS rebinding
between check and connect is impossible. Each vetted address is tried in turn until one
accepts the connection. Loopback, private, link-local (169.254.169.254 included),
unique-local, shared (CGNAT), multicast, reserved and IPv4-mapped forms of those are
refused unless ``TFT_WEBHOOK_ALLOW_NETWORKS`` lists them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urlsplit

USER_AGENT = "textfromtrack-local-webhooks/0.1"
RESPONSE_BYTES = 4096  # of a receiver's answer, at most; only its status matters

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
    addresses: tuple[str, ...]  # every address the host resolved to, each vetted; tried in order


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
    return Target(scheme, host, port, path, tuple(dict.fromkeys(a.split("%", 1)[0] for a in addresses)))


async def deliver(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """POST to each vetted address in turn until one accepts the connection; return the
    status. Reads at most RESPONSE_BYTES of the answer. The caller bounds the whole call
    with its deadline; ``timeout`` caps each network step."""
    import httpx

    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    last: Exception | None = None
    for ip in target.addresses:
        netloc = f"[{ip}]" if ":" in ip else ip
        url = f"{target.scheme}://{netloc}:{target.port}{target.path}"
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            try:
                async with client.stream("POST", url, content=body, headers={**headers, "Host": host_header},
                                         extensions=extensions) as response:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= RESPONSE_BYTES:
                            break
                    return response.status_code
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = exc  # this address does not answer: try the next one
    assert last is not None
    raise last


def send(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """``deliver`` with an overall deadline, for callers outside an event loop."""

    async def bounded() -> int:
        return await asyncio.wait_for(deliver(target, body, headers, timeout=timeout), timeout)

    return asyncio.run(bounded())
