"""`tft bench` end to end on its smallest plan, through the installed console script from a
directory outside the checkout with no PYTHONPATH: the report exists and its numbers are sane."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.music]
REPO = Path(__file__).resolve().parents[2]
TFT = Path(sys.executable).parent / "tft"  # the console script `make install` put in the venv


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


def test_installed_bench_help_runs_anywhere(tmp_path):
    env = _clean_env(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("TFT_BENCH_DATA", None)
    proc = subprocess.run([str(TFT), "bench", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--models" in proc.stdout


def test_bench_tiny_plan_writes_a_sane_report(tmp_path):
    out = tmp_path / "bench"
    # Generated material is shared with the other tests (conftest sets TFT_BENCH_DATA to tests/data).
    proc = subprocess.run([str(TFT), "bench", "--tiny", "--models", "tiny.en", "--out", "bench"], cwd=tmp_path,
                          env=_clean_env(), capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "time ours / raw" in proc.stdout and "report:" in proc.stdout  # the summary table
    report = (out / "report.md").read_text()
    for heading in ("## Machine", "## 1. Accuracy", "## 2. Hallucination", "## 3. Line-onset timing",
                    "## 4. Separation", "## 5. Server", "shared and noisy"):
        assert heading in report
    for png in ("accuracy_speed.png", "hallucination.png", "timing.png", "separation_cpu.png"):
        assert (out / png).stat().st_size > 5000 and f"({png})" in report
    r = json.loads((out / "results.json").read_text())
    assert r["machine"]["cores"] >= 1 and r["machine"]["libraries"]["faster-whisper"] != "not installed"
    acc = r["accuracy"]["models"]["tiny.en"]
    for part in ("short", "long", "long_second"):
        for name, c in acc[part]["configs"].items():
            assert 0 <= c["wer"] <= 1 and 0 <= c["cer"] <= 1, (part, name)
            assert all(0 < t < 600 for t in c["seconds"]) and all(0 < x < 5 for x in c["rtf"])
            assert 100 < c["peak_rss_mb"] < 8000
        assert acc[part]["time_ratio_ours_over_raw"] > 0
    assert acc["short"]["configs"]["ours (default)"]["wer"] < 0.2
    for part in ("long", "long_second"):  # timed cold, against both of faster-whisper's paths
        assert acc[part]["timed"].startswith("cold") and acc[part]["time_ratio_ours_over_batched"] > 0
        assert all(t > 0 for t in acc[part]["configs"]["ours (default)"]["cpu_seconds"])
        configs = acc[part]["configs"]  # text output: the same words; greedy: its own row, its cost shown
        assert configs["ours, text output"]["wer"] == configs["ours (default)"]["wer"]
        assert set(acc[part]["time_ratio_over_batched"]) == set(configs)
    hal = r["hallucination"]["models"]["tiny.en"]
    assert hal["ours (default)"]["total"] == 0 and isinstance(hal["raw faster-whisper, no VAD"]["total"], int)
    timing = r["timing"]["models"]["tiny.en"]["ours (default)"]
    assert math.isfinite(timing["srt_mae"]) and timing["srt_mae"] < 0.5 and timing["lines"] == 6
    sep = r["separation"]["variants"]
    assert all(v["seconds_per_minute"][0] > 0 and v["peak_rss_mb"] > 0 for v in sep.values())
    assert sep["ours, batched streaming (in memory)"]["max_abs_diff"] < 1e-3
    align = r["align"]["models"]["tiny.en"]["tft align (defaults)"]["summary"]["all"]
    assert align["placed"] == align["lines"] > 0 and align["line_mae"] < 0.3, align
    assert "## Synced lyrics: `tft align`" in report
    srv = r["server"]
    assert all(t["jobs_per_minute"] > 0 for t in srv["throughput"].values())
    assert srv["latency"]["requests"] > 0 and srv["latency"]["errors"] == 0 and srv["latency"]["p99_ms"] > 0
    oa = srv["openai"]
    assert oa["answered"] == oa["requests"] == oa["jobs_done"] == 10 and oa["lost"] == 0 and not oa["errors"]
    assert oa["latency"]["requests"] > 0 and oa["latency"]["errors"] == 0 and "10 concurrent" in report


def test_the_gpu_scripts_dry_run_on_the_cpu(tmp_path, long_speech):
    """benchmarks/gpu.sh gets one device call when a GPU is lent: its two measuring scripts
    must not first break there. Each runs its CPU dry run and writes figures that add up."""
    from corpus.synth import write_wav
    from engine.audio import decode

    wav = write_wav(tmp_path / "speech.wav", decode(long_speech[0]))  # 16 kHz 16-bit, as gpu.sh --prepare writes
    env = _clean_env(PYTHONPATH=str(REPO))
    whisper = subprocess.run([sys.executable, "-m", "benchmarks.gpu_whisper", "--device", "cpu", "--models",
                              "tiny.en", "--compute", "int8", "--seconds", "40", "--audio", str(wav),
                              "--out", str(tmp_path / "whisper.json")],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert whisper.returncode == 0, whisper.stderr[-3000:]
    setups = json.loads((tmp_path / "whisper.json").read_text())["setups"]
    assert [s["path"] for s in setups] == ["packed", "sequential", "raw batched"]
    assert all(0 < s["rtf"] < 1 and s["load_seconds"] > 0 for s in setups)
    separation = subprocess.run([sys.executable, "-m", "benchmarks.gpu_separation", "--device", "cpu", "--tiny",
                                 "--seconds", "20", "--repeats", "1", "--out", str(tmp_path / "sep.json")],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert separation.returncode == 0, separation.stderr[-3000:]
    sep = json.loads((tmp_path / "sep.json").read_text())
    assert {"apply_model default (shifts=1)", "ours fp32, batch 48"} <= set(sep["variants"])
    assert len(sep["spleeter"]) == 3 and not sep["failed_or_skipped"]
    assert sep["check"]["max_abs_diff_fp32_vs_apply_model"] < 1e-4 * max(sep["check"]["reference_peak"], 1e-3)
