"""Poll-latency under load: N clients polling one job's status while transcription runs.

wrk (C, from Debian's packages) is used when installed: a Python load generator on the same
2 cores would measure its own scheduling as much as the server. Each of 50 connections
polls, waits 50 ms (wrk's ``delay()``), and polls again. Without wrk, an asyncio client
does the same, and the report says which tool measured.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time

LUA = """
token = os.getenv("TFT_TOKEN")
wrk.headers["Authorization"] = "Bearer " .. token
function delay() return %(delay)d end
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%%d non2xx=%%d connect=%%d read=%%d write=%%d timeout=%%d\\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
  for _, p in pairs({50, 90, 99, 99.9}) do
    io.write(string.format("PCT %%s %%.3f\\n", p, latency:percentile(p) / 1000))
  end
end
"""


def poll_latency(url: str, token: str, *, seconds: int, clients: int = 50, delay_ms: int = 50) -> dict:
    if shutil.which("wrk"):
        return _wrk(url, token, seconds, clients, delay_ms)
    return asyncio.run(_python(url, token, seconds, clients, delay_ms))


def _wrk(url: str, token: str, seconds: int, clients: int, delay_ms: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(LUA % {"delay": delay_ms})
        script = fh.name
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
                             env={**os.environ, "TFT_TOKEN": token}, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    counts = dict(re.findall(r"(\w+)=(\d+)", re.search(r"RESULT (.*)", out)[1]))
    pct = {p: float(v) for p, v in re.findall(r"PCT ([\d.]+) ([\d.]+)", out)}
    errors = sum(int(counts[k]) for k in ("non2xx", "connect", "read", "write", "timeout"))
    return {"tool": "wrk", "clients": clients, "seconds": seconds, "requests": int(counts["requests"]),
            "errors": errors, "p50_ms": pct["50"], "p90_ms": pct["90"], "p99_ms": pct["99"], "p999_ms": pct["99.9"]}


async def _python(url: str, token: str, seconds: int, clients: int, delay_ms: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def one() -> None:
        nonlocal errors
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    r = await c.get(url)
                    errors += r.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(delay_ms / 1000)

    await asyncio.gather(*[one() for _ in range(clients)])
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] if latencies else float("nan")

    return {"tool": "python asyncio (httpx)", "clients": clients, "seconds": seconds, "requests": len(latencies),
            "errors": errors, "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "p999_ms": pct(99.9)}
