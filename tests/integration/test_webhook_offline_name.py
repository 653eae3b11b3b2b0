"""POST /api/v1/webhooks on a real server on this offline box: the name a cloud client
registers (which does not resolve here) is accepted; internal targets are not."""

import socket

import pytest

from harness import Server, client

pytestmark = pytest.mark.slow


def test_unresolvable_public_name_is_accepted_internal_targets_refused(tmp_path):
    with Server(tmp_path / "hooks", workers=0).start() as srv:
        http = client(srv, srv.token("hana"))
        try:
            resolved = socket.getaddrinfo("hooks.example.com", 443)
        except socket.gaierror:
            resolved = None  # the offline case the fix is for (on a connected machine it resolves publicly)
        r = http.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/tft", "events": ["job.done"]})
        assert r.status_code == 201, (resolved, r.text)
        assert r.json()["url"] == "https://hooks.example.com/tft" and r.json()["secret"].startswith("whsec_")
        for url, why in [("http://localhost:9/hook", "loopback"), ("http://127.1/hook", "loopback"),
                         ("http://10.0.0.5/hook", "private"), ("http://printer.local/hook", "local-network"),
                         ("http://169.254.169.254/latest", "link-local")]:
            r = http.post("/api/v1/webhooks", json={"url": url})
            assert r.status_code == 422 and why in r.json()["detail"][0]["msg"], (url, r.text)
            assert r.json()["detail"][0]["loc"] == ["body", "url"]
