"""Deliveries go to a vetted address itself (each in turn), never follow redirects, end by one
overall deadline, run concurrently so one tenant's stalled receiver delays nobody else,
follow the retry schedule, and a dead endpoint is disabled. Hooks per user are capped."""

import asyncio
import ipaddress
import socket
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Server, client, upload, wait_for
from server.dispatcher import SCHEDULE_SECONDS, next_delay
from server.webhooks import Target, send, vet

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]

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

    target = vet(f"http://hooks.test:{receiver}/in", LOOPBACK, resolver)
    status = send(target, b"{}", {"Content-Type": "application/json"}, timeout=5)
    assert status == 204 and calls == ["hooks.test"]
    assert Recorder.hits == [("/in", f"hooks.test:{receiver}")]


def test_redirects_are_not_followed(receiver):
    Recorder.answer, Recorder.location = 302, f"http://127.0.0.1:{receiver}/redirected"
    status = send(Target("http", "127.0.0.1", receiver, "/first", ("127.0.0.1",)), b"{}", {}, timeout=5)
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


def test_every_resolved_address_is_tried_in_turn(receiver):
    """127.0.0.2 refuses the connection (the receiver listens on 127.0.0.1 only): the next
    vetted address gets the delivery."""
    target = vet(f"http://hooks.test:{receiver}/in", LOOPBACK, lambda host, port: ["127.0.0.2", "127.0.0.1"])
    assert target.addresses == ("127.0.0.2", "127.0.0.1")
    assert send(target, b"{}", {}, timeout=5) == 204
    assert Recorder.hits == [("/in", f"hooks.test:{receiver}")]


def _raw_server(handle) -> tuple[int, threading.Event]:
    """A TCP server whose every connection is handed to ``handle(conn)`` in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn, stop), daemon=True).start()
        listener.close()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], stop


def test_one_deadline_covers_the_whole_attempt_and_only_a_little_of_the_answer_is_read():
    def endless(conn, stop):  # a 200 followed by a body that never ends
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        try:
            while not stop.is_set():
                conn.sendall(b"x" * 65536)
        except OSError:
            pass

    def dribble(conn, stop):  # a byte every 0.2 s: no single read ever times out
        conn.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                if stop.wait(0.2):
                    break
                conn.sendall(bytes([byte]))
        except OSError:
            pass

    endless_port, stop_endless = _raw_server(endless)
    dribble_port, stop_dribble = _raw_server(dribble)
    try:
        started = time.monotonic()
        assert send(Target("http", "127.0.0.1", endless_port, "/", ("127.0.0.1",)), b"{}", {}, timeout=5) == 200
        endless_s = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises((TimeoutError, asyncio.TimeoutError)):
            send(Target("http", "127.0.0.1", dribble_port, "/", ("127.0.0.1",)), b"{}", {}, timeout=1.5)
        dribble_s = time.monotonic() - started
    finally:
        stop_endless.set()
        stop_dribble.set()
    print(f"\nendless answer: status after {endless_s:.2f} s; dribbled answer cut at {dribble_s:.2f} s (deadline 1.5 s)")
    assert endless_s < 2.0 and 1.4 < dribble_s < 3.0


def test_the_retry_schedule_and_its_jitter():
    assert [next_delay(n, 1.0, _Fixed(1.0)) for n in range(1, 10)] == list(SCHEDULE_SECONDS)
    assert next_delay(10) is None and next_delay(11) is None
    import random

    rng = random.Random(7)
    for n, base in enumerate(SCHEDULE_SECONDS, start=1):
        for _ in range(50):
            assert 0.8 * base * 0.5 <= next_delay(n, 0.5, rng) <= 1.2 * base * 0.5
    total = sum(SCHEDULE_SECONDS) / 3600
    assert 45 < total < 50  # ten attempts over about two days


class _Fixed:
    def __init__(self, value):
        self.value = value

    def uniform(self, a, b):
        return self.value


# -- against a real server: one module server, several tenants -----------------------------

SCALE = 0.005
DEADLINE = 4.0


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    env = {"TFT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8", "TFT_WEBHOOK_RETRY_SCALE": str(SCALE),
           "TFT_WEBHOOK_TIMEOUT_SECONDS": str(DEADLINE), "TFT_MAX_WEBHOOKS_PER_USER": "6"}
    srv = Server(tmp_path_factory.mktemp("hub"), env=env).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def fox_path(clips):
    return next(c for c in clips if c.name == "quick_brown_fox").path


def test_hooks_per_user_are_capped(hub):
    http = client(hub, hub.token("max"))
    made = [http.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:9/{i}"}) for i in range(6)]
    assert [r.status_code for r in made] == [201] * 6
    refused = http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/7"})
    assert refused.status_code == 409 and "6 webhooks" in refused.json()["detail"]
    assert http.delete(f"/api/v1/webhooks/{made[0].json()['id']}").status_code == 204
    assert http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/7"}).status_code == 201


def test_a_stalled_receiver_does_not_delay_another_tenant(hub, receiver, fox_path):
    """Tenant S points six hooks at a receiver that accepts connections and never answers;
    tenant F's delivery must not wait behind them (it waited 60 s behind one before)."""
    held = []

    def stall(conn, stop):
        held.append(conn)
        stop.wait(60)
        conn.close()

    stall_port, stop_stall = _raw_server(stall)
    try:
        slow, fast = client(hub, hub.token("stella")), client(hub, hub.token("fred"))
        for i in range(6):
            assert slow.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:{stall_port}/{i}"}).status_code == 201
        assert fast.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:{receiver}/fast"}).status_code == 201
        wait_for(slow, upload(slow, fox_path).json()["job_id"])
        deadline = time.monotonic() + 10
        while len(held) < 4 and time.monotonic() < deadline:  # S's deliveries are now stuck in flight
            time.sleep(0.05)
        job = wait_for(fast, upload(fast, fox_path).json()["job_id"])
        finished = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00")).timestamp()
        deadline = time.monotonic() + 30
        while not any(path == "/fast" for path, _ in Recorder.hits) and time.monotonic() < deadline:
            time.sleep(0.01)
        delay = time.time() - finished
        in_flight = len(held)
    finally:
        stop_stall.set()
    print(f"\nstalled receiver holding {in_flight} connections (deadline {DEADLINE:g} s): the other tenant's "
          f"delivery arrived {delay:.2f} s after its job finished")
    assert any(path == "/fast" for path, _ in Recorder.hits)
    assert 4 <= in_flight and delay < 1.5


def test_retries_follow_the_schedule_with_the_same_event(hub, fox_path):
    arrivals = []

    class Flaky(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrivals.append((time.monotonic(), self.headers["X-TFT-Event-Id"], self.headers["X-TFT-Delivery-Attempt"], body))
            self.send_response(503 if len(arrivals) <= 3 else 204)
            self.end_headers()

        def log_message(self, *args):
            pass

    flaky = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=flaky.serve_forever, daemon=True).start()
    try:
        http = client(hub, hub.token("rita"))
        assert http.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:{flaky.server_address[1]}/"}).status_code == 201
        wait_for(http, upload(http, fox_path).json()["job_id"])
        deadline = time.monotonic() + 30
        while len(arrivals) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        flaky.shutdown()
    assert len(arrivals) == 4
    assert len({a[1] for a in arrivals}) == 1 and len({a[3] for a in arrivals}) == 1  # one event, the same bytes
    assert [a[2] for a in arrivals] == ["1", "2", "3", "4"]
    gaps = [b[0] - a[0] for a, b in zip(arrivals, arrivals[1:])]
    expected = [SCHEDULE_SECONDS[i] * SCALE for i in range(3)]
    print("\nretry gaps " + ", ".join(f"{g:.2f} s (schedule {e:.2f} s)" for g, e in zip(gaps, expected)))
    for gap, want in zip(gaps, expected):
        assert 0.8 * want - 0.05 <= gap <= 1.2 * want + 0.6, (gaps, expected)
