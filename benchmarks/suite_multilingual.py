"""Suite 6: accuracy per language on long-form speech, ours against raw faster-whisper in the
same run, and language detection without a hint.

Material: the flood story's opening in eight languages (``corpus.texts.FLOOD``), read by
espeak-ng paragraph by paragraph; zh is scored per character (CER). Numbers are normalised
on both sides (``benchmarks.metrics``). English-only models are skipped. The audioeval clips'
per-language figures come from the accuracy suite and sit beside these in the report.
"""

from __future__ import annotations

from .common import Plan, audio_seconds, data_dir, log, run_in_process
from .metrics import UNSEGMENTED, corpus_rate

CONFIGS = {
    "raw faster-whisper": {"mode": "raw", "hint": True},
    "ours (default)": {"mode": "ours", "options": {}, "hint": True},
    "ours, no language hint": {"mode": "ours", "options": {}, "hint": False},
}


def material(plan: Plan) -> list[dict]:
    from corpus.speech import long_form
    from corpus.texts import FLOOD, VOICES

    out = []
    for language, paragraphs in FLOOD.items():
        n = min(plan.multilingual_paragraphs, len(paragraphs))
        path, reference = long_form(data_dir() / f"multilingual_{language}_{n}p.wav", paragraphs=n,
                                    words_per_minute=150, voice=VOICES[language], text=paragraphs)
        out.append({"language": language, "path": str(path), "reference": reference,
                    "seconds": audio_seconds(path)})
    return out


def run(plan: Plan, models: list[str]) -> dict:
    from models import get_spec

    files = material(plan)
    out: dict = {"files": [{k: f[k] for k in ("language", "path", "seconds")} for f in files], "models": {}}
    for model in models:
        if not get_spec(model).multilingual:
            log(f"multilingual: {model} is English-only, skipped")
            continue
        per: dict = {}
        for name, cfg in CONFIGS.items():
            log(f"multilingual: {model}, {name}")
            spec = {"model": model, "repeats": 1, **{k: v for k, v in cfg.items() if k != "hint"},
                    "files": [{"path": f["path"], "hint": f["language"] if cfg["hint"] else None} for f in files]}
            res = run_in_process(spec)
            rows = {}
            for f, r in zip(files, res["results"]):
                lang = f["language"]
                rows[lang] = {"error_rate": corpus_rate([(f["reference"], r["texts"][0], lang)]),
                              "unit": "CER" if lang in UNSEGMENTED else "WER",
                              "detected": r["language"], "seconds": r["seconds"][0], "text": r["texts"][0]}
            per[name] = rows
        no_hint = per["ours, no language hint"]
        out["models"][model] = {
            "configs": per,
            "detection_accuracy": sum(r["detected"] == lang for lang, r in no_hint.items()) / len(no_hint),
        }
    return out
