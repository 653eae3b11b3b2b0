"""Registering a webhook on an offline box: a public name that does not resolve yet is
accepted (each delivery is checked again), internal addresses and local names are not."""

import socket

import pytest

from server.webhook_registration import check_registration, hostname_problem
from server.webhooks import UnsafeURL


def offline(host, port):
    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


def answers(*ips):
    return lambda host, port: list(ips)


@pytest.mark.parametrize("url", ["https://hooks.example.com/tft", "https://hooks.example.com:8443/tft?x=1",
                                 "http://receiver.my-company.co.uk/in", "https://bücher.example/hook"])
def test_public_names_that_do_not_resolve_are_accepted(url):
    check_registration(url, resolver=offline)


@pytest.mark.parametrize("url, why", [
    ("http://localhost/x", "local-network"),
    ("http://printer.local/x", "local-network"),
    ("http://db.internal/x", "local-network"),
    ("http://nas.home.arpa/x", "local-network"),
    ("http://buildbox/x", "single-label"),
    ("http://0x7f.1/x", "numeric"),
    ("http://bad_name.example.com/x", "not a valid host name"),
    ("http://-dash.example.com/x", "not a valid host name"),
])
def test_local_and_malformed_names_are_refused(url, why):
    with pytest.raises(UnsafeURL, match=why):
        check_registration(url, resolver=offline)


def test_literal_internal_addresses_and_names_resolving_to_them_are_refused():
    for url in ("http://127.0.0.1/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest"):
        with pytest.raises(UnsafeURL):
            check_registration(url, resolver=offline)
    with pytest.raises(UnsafeURL, match="private"):
        check_registration("https://hooks.example.com/tft", resolver=answers("93.184.216.34", "10.0.0.7"))
    check_registration("https://hooks.example.com/tft", resolver=answers("93.184.216.34"))
    # the real resolver: localhost and a short numeric form both resolve to loopback
    for url in ("http://localhost:9/x", "http://127.1/x"):
        with pytest.raises(UnsafeURL, match="loopback"):
            check_registration(url)


def test_allow_listed_lan_receivers_still_work():
    import ipaddress

    lan = [ipaddress.ip_network("192.168.1.0/24")]
    check_registration("http://intranet-box/hook", lan, resolver=answers("192.168.1.20"))
    with pytest.raises(UnsafeURL):
        check_registration("http://intranet-box/hook", lan, resolver=answers("192.168.2.20"))


def test_hostname_problem_accepts_plain_public_names():
    assert hostname_problem("hooks.example.com") is None and hostname_problem("example.com.") is None
