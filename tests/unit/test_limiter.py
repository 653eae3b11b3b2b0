"""The bad-token limiter: bounded memory and O(1) work per call whatever an attacker sends,
and the client address taken from X-Forwarded-For only behind a trusted proxy."""

import ipaddress

import pytest

from server.auth import FailureLimiter, client_address, limiter_key
from server.errors import RateLimited


def test_memory_is_bounded_by_clients_and_by_failures_per_client():
    limiter = FailureLimiter(5, max_clients=1000)
    for i in range(50_000):
        limiter.fail(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(limiter) == 1000
    for _ in range(10_000):
        limiter.fail("192.0.2.1")
    assert all(len(q) <= 5 for q in limiter._failures.values())
    with pytest.raises(RateLimited):
        limiter.check("192.0.2.1")  # the most recent offenders are the ones remembered


def test_a_client_is_locked_out_after_per_minute_failures_and_only_that_client():
    limiter = FailureLimiter(3)
    for _ in range(3):
        limiter.check("198.51.100.1")
        limiter.fail("198.51.100.1")
    with pytest.raises(RateLimited) as refused:
        limiter.check("198.51.100.1")
    assert 1 <= refused.value.retry_after <= 61
    limiter.check("198.51.100.2")


def test_ipv6_clients_are_counted_per_64():
    limiter = FailureLimiter(3)
    for i in range(3):
        limiter.fail(f"2001:db8:1:2::{i + 1:x}")
    with pytest.raises(RateLimited):
        limiter.check("2001:db8:1:2:ffff::9")
    limiter.check("2001:db8:1:3::1")
    assert limiter_key("::ffff:192.0.2.5") == "192.0.2.5"


def test_forwarded_for_only_from_trusted_proxies():
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_address("127.0.0.1", "203.0.113.9", ()) == "127.0.0.1"  # default: the header is ignored
    assert client_address("192.0.2.1", "203.0.113.9", proxies) == "192.0.2.1"  # not from a proxy
    assert client_address("10.0.0.2", "203.0.113.9", proxies) == "203.0.113.9"
    assert client_address("10.0.0.2", "1.2.3.4, 203.0.113.9, 10.0.0.7", proxies) == "203.0.113.9"
    assert client_address("10.0.0.2", "not-an-ip", proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", "10.0.0.5", proxies) == "10.0.0.5"
    assert client_address(None, "203.0.113.9", proxies) == "unknown"
