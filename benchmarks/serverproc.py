"""A real `tft serve` (or `tft worker`) subprocess on a loopback port, with its own data dir.

Used by the server benchmark and by the tests (tests/harness.py re-exports it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CLI = ("-m", "cli")  # the installed command-line module, from any working directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    logs: list[Path] = []  # every server log of this process, for a suite-wide check (no 500s)

    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None, workers: int = 1,
                 model: str = "tiny.en", port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.env = dict(os.environ)
        self.env.update({
            "TFT_DATA_DIR": str(self.data_dir),
            "TFT_MODEL": model,
            "TFT_WORKERS": str(workers),
            "TFT_PORT": str(self.port),
            "TFT_LEASE_SECONDS": "6",
            "TFT_SHUTDOWN_GRACE_SECONDS": "10",
            "PYTHONUNBUFFERED": "1",
        })
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / f"server-{self.port}.log"
        Server.logs.append(self.log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, user: str = "alice", credits: int | None = None) -> str:
        args = [sys.executable, *CLI, "token", "create", "--user", user]
        if credits is not None:
            args += ["--credits", str(credits)]
        out = subprocess.run(args, env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def start(self, *command: str, wait: bool = True) -> "Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        cmd = command or ("serve",)
        self.proc = subprocess.Popen([sys.executable, *CLI, *cmd], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait and cmd[0] == "serve":
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def client(server: Server, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30.0)


def upload(http: httpx.Client, path: Path, **fields) -> httpx.Response:
    with open(path, "rb") as fh:
        return http.post("/api/v1/transcriptions", files={"file": (Path(path).name, fh, "application/octet-stream")},
                         data={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()})


def wait_for(http: httpx.Client, job_id: str, statuses=("done", "error"), timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http.get(f"/api/v1/transcriptions/{job_id}").json()
        if body.get("status") in statuses:
            return body
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not in {statuses} after {timeout} s: {body}")
