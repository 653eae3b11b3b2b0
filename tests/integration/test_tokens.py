"""Personal access tokens: hashed at rest, compared in constant time, rate-limited, never logged."""

import hashlib
import sqlite3

import pytest

from harness import Server, client
from server import auth
from server.store import SQLiteStore

pytestmark = [pytest.mark.slow]


def test_only_the_hash_is_stored(tmp_path):
    with Server(tmp_path / "dump", workers=0).start() as srv:
        token = srv.token("ida")
        assert auth.TOKEN_RE.match(token) and len(token) == len("tft_pat_") + 43
        assert client(srv, token).get("/api/v1/me").status_code == 200
        with sqlite3.connect(srv.data_dir / "tft.sqlite3") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            dump = "\n".join(conn.iterdump())
    assert token not in dump and token[8:] not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump
    for f in srv.data_dir.glob("tft.sqlite3*"):
        assert token.encode() not in f.read_bytes()


def test_comparison_is_constant_time(tmp_path, monkeypatch):
    store = SQLiteStore(tmp_path / "db.sqlite3")
    user = store.ensure_user("joe", None)
    token = auth.issue(store, user)
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert auth.authenticate(store, f"Bearer {token}").id == user.id
    assert calls == [(auth.digest(token), auth.digest(token))]
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(store, "Bearer tft_pat_" + "x" * 43)


def test_repeated_bad_tokens_get_429_with_retry_after(tmp_path):
    with Server(tmp_path / "limit", workers=0, env={"TFT_AUTH_FAILURES_PER_MINUTE": "5"}).start() as srv:
        good = srv.token("kai")
        bad = client(srv, "tft_pat_" + "B" * 43)
        assert [bad.get("/api/v1/me").status_code for _ in range(5)] == [401] * 5
        r = bad.get("/api/v1/me")
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 61
        assert "too many failed" in r.json()["detail"]
        # While locked out, this address is refused even with a good token (no oracle for guesses)...
        assert client(srv, good).get("/api/v1/me").status_code == 429
        # ...and a request that tries no token at all is still a plain 401.
        assert client(srv, None).get("/api/v1/me").status_code == 401


def test_tokens_never_appear_in_logs(tmp_path, clips):
    with Server(tmp_path / "logs").start() as srv:
        good = srv.token("lee")
        wrong = "tft_pat_" + "W" * 43
        http = client(srv, good)
        http.get("/api/v1/me")
        client(srv, wrong).get("/api/v1/me")
        http.get("/api/v1/transcriptions", params={"token": good})  # a client that leaks it in a URL
        http.get(f"/api/v1/transcriptions/{good}")
        http.get(f"/nowhere/{wrong}")
        clip = next(c for c in clips if c.name == "hello_world")
        with open(clip.path, "rb") as fh:
            http.post("/api/v1/transcriptions", files={"file": (f"{good}.wav", fh)})
        log = srv.log()
    assert "GET /api/v1/me" in log  # the access log is on, so this checks something
    assert good not in log and wrong not in log
    assert good[8:20] not in log and wrong[8:20] not in log
    assert "tft_pat_[redacted]" in log
