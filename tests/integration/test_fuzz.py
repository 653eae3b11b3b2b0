"""schemathesis against a real server: the seed contract and our own OpenAPI document.

Both runs include the stateful phase where the documents' links allow it (ours links list
and create responses to the per-job operations, and webhook registration to its delete).
Jobs exist before the run, so the per-job operations see real ids, not only 404s.

Checks: every schemathesis check, except
  * positive_data_acceptance (both documents): a schema can say "a file" but not "a
    decodable audio file", nor "a public URL"; random bytes and random URLs are rightly
    refused with the 422 both documents declare;
  * for the seed contract only, status_code_conformance and content_type_conformance: the
    seed (FastAPI's generated document) lists only 200/422 and application/json, while a
    real server must answer 404 for an unknown id and text/plain for an SRT file. Our own
    document declares every status and content type, and is held to both checks.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import Server, client, upload, wait_for

pytestmark = [pytest.mark.model, pytest.mark.slow]
SEED = Path(__file__).resolve().parents[2] / "server" / "textfromtrack-openapi.json"


def schemathesis(schema: str, server: Server, token: str, exclude: str, max_examples: int) -> tuple[int, str]:
    exe = Path(sys.executable).with_name("schemathesis")
    args = [str(exe), "run", schema, "--url", server.url, "-H", f"Authorization: Bearer {token}",
            "--checks", "all", "--exclude-checks", exclude, "--max-examples", str(max_examples),
            "--seed", "20261128", "--request-timeout", "30", "--workers", "1", "--warnings", "off"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, env={**os.environ, "NO_COLOR": "1"})
    output = result.stdout + result.stderr
    match = re.search(r"(\d+) generated", output)
    assert match, output[-3000:]
    return int(match[1]), output if result.returncode else ""


def test_fuzz_seed_and_own_document(tmp_path, clips):
    env = {"TFT_AUTH_FAILURES_PER_MINUTE": "1000000", "TFT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}
    with Server(tmp_path / "fuzz", env=env).start() as srv:
        token = srv.token("fuzzer")
        http = client(srv, token)
        for clip in [c for c in clips if c.language == "en"] * 2:
            wait_for(http, upload(http, clip.path).json()["job_id"])
        ours = tmp_path / "ours.json"
        ours.write_text(http.get("/api/v1/openapi.json").text)
        seed_cases, seed_failures = schemathesis(
            str(SEED), srv, token, "positive_data_acceptance,status_code_conformance,content_type_conformance", 60)
        own_cases, own_failures = schemathesis(str(ours), srv, token, "positive_data_acceptance", 60)
        log = srv.log()
    print(f"\nschemathesis: seed contract {seed_cases} cases, own document {own_cases} cases")
    assert not seed_failures, seed_failures[-4000:]
    assert not own_failures, own_failures[-4000:]
    assert seed_cases + own_cases >= 1000
    assert " 500 " not in log and "Traceback" not in log, log[-3000:]
