"""Personal access tokens: hashed at rest, compared with compare_digest, rate-limited per real
client address (X-Forwarded-For only from trusted proxies), never logged."""

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


def test_a_token_is_accepted_only_by_its_full_digest_through_compare_digest(tmp_path, monkeypatch):
    """What this checks is how the token is compared, not how long it takes: a timing test at
    the nanoseconds a string comparison differs by cannot pass or fail reliably through a
    database query. Each part fails on a real mistake: a lookup by a prefix of the digest, a
    comparison skipped, made against the computed value itself, or made with ``==``."""
    import ast
    import inspect
    import secrets

    store = SQLiteStore(tmp_path / "db.sqlite3")
    user = store.ensure_user("joe", None)
    token = auth.issue(store, user)
    wanted = auth.digest(token)
    # A different token whose digest shares its first 4 hex digits is refused.
    while not auth.digest(near := "tft_pat_" + secrets.token_urlsafe(32)).startswith(wanted[:4]):
        pass
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(store, f"Bearer {near}")
    # The stored digest decides: a store answering with another token's row is refused.

    class WrongRow:
        def user_for_token(self, token_hash):
            return user, auth.digest(near)

    with pytest.raises(auth.Unauthorized):
        auth.authenticate(WrongRow(), f"Bearer {token}")
    # The comparison is compare_digest(stored digest read from the database, computed digest).
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert auth.authenticate(store, f"Bearer {token}").id == user.id
    assert len(calls) == 1 and calls[0] == (wanted, wanted) and calls[0][0] is not calls[0][1]
    # Nothing in auth.py compares secrets with == or !=.
    tree = ast.parse(inspect.getsource(auth))
    secret_names = {"token", "wanted", "digest", "found", "header", "value"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert not names & secret_names, ast.unparse(node)


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


def test_rotating_x_forwarded_for_does_not_dodge_the_limit(tmp_path):
    """uvicorn used to believe X-Forwarded-For from 127.0.0.1: a local client rotating it
    dodged the bad-token limit, and could lock out any address it named."""
    with Server(tmp_path / "xff", workers=0, env={"TFT_AUTH_FAILURES_PER_MINUTE": "3"}).start() as srv:
        bad = client(srv, "tft_pat_" + "C" * 43)
        statuses = [bad.get("/api/v1/me", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(6)]
        assert statuses == [401, 401, 401, 429, 429, 429]
        assert "203.0.113." not in srv.log()  # the access log names the real peer too


def test_forwarded_for_is_believed_from_a_trusted_proxy_only(tmp_path):
    env = {"TFT_AUTH_FAILURES_PER_MINUTE": "3", "TFT_TRUSTED_PROXIES": "127.0.0.1/32"}
    with Server(tmp_path / "proxy", workers=0, env=env).start() as srv:
        good = srv.token("nia")
        bad = client(srv, "tft_pat_" + "D" * 43)
        behind = {"X-Forwarded-For": "198.51.100.7"}
        assert [bad.get("/api/v1/me", headers=behind).status_code for _ in range(4)] == [401, 401, 401, 429]
        # The client behind the proxy is locked out, even when it prepends a made-up hop...
        spoofed = {"X-Forwarded-For": "192.0.2.1, 198.51.100.7"}
        assert client(srv, good).get("/api/v1/me", headers=spoofed).status_code == 429
        # ...while another client of the same proxy, and the proxy itself, are not.
        assert client(srv, good).get("/api/v1/me", headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 200
        assert client(srv, good).get("/api/v1/me").status_code == 200


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
