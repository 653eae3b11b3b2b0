"""Deliveries go to the vetted address itself, never follow redirects, and a dead endpoint is disabled."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Server, client, upload, wait_for
from server.webhooks import Target, send, vet

pytestmark = [pytest.mark.model, pytest.mark.slow]


class Recorder(BaseHTTPRequestHandler):
    hits: list = []
    answer = 204
    location = None

    def do_POST(self):  # noqa: N802
        Recorder.hits.append((self.path, self.headers.get("Host")))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(Recorder.answer)
        if Recorder.location:
            self.send_header("Location", Recorder.location)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Recorder.hits, Recorder.answer, Recorder.location = [], 204, None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


def test_connects_to_the_vetted_ip_with_the_name_in_host(receiver):
    """DNS rebinding: the name is resolved once, checked, and never looked up again."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a rebinding resolver: safe first, internal after
    calls = []

    def resolver(host, port):
        calls.append(host)
        return next(answers)

    import ipaddress

    target = vet(f"http://hooks.test:{receiver}/in", [ipaddress.ip_network("127.0.0.0/8")], resolver)
    status = send(target, b"{}", {"Content-Type": "application/json"}, timeout=5)
    assert status == 204 and calls == ["hooks.test"]
    assert Recorder.hits == [("/in", f"hooks.test:{receiver}")]


def test_redirects_are_not_followed(receiver):
    Recorder.answer, Recorder.location = 302, f"http://127.0.0.1:{receiver}/redirected"
    status = send(Target("http", "127.0.0.1", receiver, "/first", "127.0.0.1"), b"{}", {}, timeout=5)
    assert status == 302
    assert [h[0] for h in Recorder.hits] == ["/first"]  # /redirected never requested


def test_failing_endpoint_is_disabled_and_shown(tmp_path, receiver, clips):
    Recorder.answer = 500
    env = {"TFT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8", "TFT_WEBHOOK_RETRY_SCALE": "0.01",
           "TFT_WEBHOOK_DISABLE_AFTER_SECONDS": "2"}
    with Server(tmp_path / "disable", env=env).start() as srv:
        http = client(srv, srv.token("hal"))
        hook = http.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:{receiver}/x"}).json()
        clip = next(c for c in clips if c.name == "hello_world")
        wait_for(http, upload(http, clip.path).json()["job_id"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listed = http.get("/api/v1/webhooks").json()["items"]
            if listed[0]["disabled"]:
                break
            time.sleep(0.2)
    assert listed[0]["id"] == hook["id"] and listed[0]["disabled"] and not listed[0]["active"]
    assert "every delivery failed" in listed[0]["disabled_reason"] and "HTTP 500" in listed[0]["disabled_reason"]
    assert len(Recorder.hits) >= 2
