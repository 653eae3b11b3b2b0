"""Suite 2: words produced on generated non-speech (silence, noise, hum, instrumental)."""

from __future__ import annotations

from .common import data_dir, Plan, log, run_in_process


def material(seconds: float) -> dict[str, str]:
    from corpus import synth

    kinds = {
        "silence": synth.silence(seconds),
        "white noise": synth.white_noise(seconds, level=0.1, seed=21),
        "50 Hz hum": synth.hum(seconds, base_hz=50.0),
        "instrumental": synth.instrumental(seconds, bpm=100, seed=3),
    }
    paths = {}
    for name, audio in kinds.items():
        path = data_dir() / f"bench_nonspeech_{name.replace(' ', '_')}_{int(seconds)}s.wav"
        if not path.exists():
            synth.write_wav(path, audio)
        paths[name] = str(path)
    return paths


def run(plan: Plan, models: list[str]) -> dict:
    files = material(plan.nonspeech_seconds)
    configs = {
        "raw faster-whisper, no VAD": {"mode": "raw", "vad_filter": False},
        "raw faster-whisper, vad_filter=True": {"mode": "raw", "vad_filter": True},
        "ours (default)": {"mode": "ours", "options": {}},
    }
    out = {"seconds_per_kind": plan.nonspeech_seconds, "total_seconds": plan.nonspeech_seconds * len(files),
           "models": {}}
    for model in models:
        out["models"][model] = {}
        for name, cfg in configs.items():
            log(f"hallucination: {model}, {name}")
            res = run_in_process({"model": model, "files": [{"path": p} for p in files.values()], "repeats": 1, **cfg})
            words = {kind: len(r["texts"][0].split()) for kind, r in zip(files, res["results"])}
            samples = {kind: r["texts"][0][:80] for kind, r in zip(files, res["results"]) if r["texts"][0].strip()}
            out["models"][model][name] = {"words": words, "total": sum(words.values()), "examples": samples}
    return out
