"""The webhook SSRF guard: every internal address form refused, the vetted IP is the one used."""

import ipaddress

import pytest

from server.webhooks import UnsafeURL, forbidden_reason, parse_url, vet

REFUSED = [
    "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.10",
    "169.254.169.254", "169.254.0.1", "fe80::1", "fc00::1", "fd12:3456::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "::ffff:169.254.169.254", "0.0.0.0", "::", "100.64.0.1", "224.0.0.1", "ff02::1",
    "240.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "fec0::1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is not None
    with pytest.raises(UnsafeURL, match="internal addresses are refused"):
        vet(f"http://{'[' + address + ']' if ':' in address else address}/hook")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_names_are_resolved_and_every_address_checked():
    calls = []

    def resolver(host, port):
        calls.append(host)
        return {"hooks.example.com": ["93.184.216.34"], "sneaky.example.com": ["93.184.216.34", "10.0.0.5"],
                "meta.example.com": ["169.254.169.254"]}[host]

    target = vet("https://hooks.example.com:8443/tft?x=1", resolver=resolver)
    assert (target.addresses, target.host, target.port, target.path) == (("93.184.216.34",), "hooks.example.com", 8443, "/tft?x=1")
    with pytest.raises(UnsafeURL, match="private address 10.0.0.5"):
        vet("http://sneaky.example.com/", resolver=resolver)  # one bad answer is enough
    with pytest.raises(UnsafeURL, match="link-local"):
        vet("http://meta.example.com/", resolver=resolver)
    assert calls == ["hooks.example.com", "sneaky.example.com", "meta.example.com"]


def test_allow_list_opens_a_lan_receiver():
    lan = [ipaddress.ip_network("192.168.1.0/24")]
    assert vet("http://192.168.1.20:8080/hook", lan).addresses == ("192.168.1.20",)
    with pytest.raises(UnsafeURL):
        vet("http://192.168.2.20/hook", lan)


def test_url_shapes_refused():
    for url, message in [("ftp://example.com/x", "http:// or https://"), ("http://user:pw@example.com/", "user name"),
                         ("http:///path", "no host"), ("http://example.com:99999/", "invalid port")]:
        with pytest.raises(UnsafeURL, match=message):
            parse_url(url)


def test_unresolvable_host():
    def resolver(host, port):
        import socket

        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(UnsafeURL, match="does not resolve"):
        vet("http://nowhere.invalid/", resolver=resolver)
