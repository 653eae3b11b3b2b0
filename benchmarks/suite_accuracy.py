"""Suite 1: accuracy and speed against raw faster-whisper, same model, beam and machine, same run."""

from __future__ import annotations

from .common import data_dir, Plan, audio_seconds, log, median_spread, run_in_process
from .metrics import UNSEGMENTED, corpus_rate


def _score(result: dict, references: list[tuple[str, str]]) -> dict:
    """Pool errors over files for each repeat (transcripts of repeats are identical; times differ)."""
    hyps = [r["texts"][0] for r in result["results"]]
    pairs = [(ref, hyp, lang) for (ref, lang), hyp in zip(references, hyps)]
    per_language: dict[str, list] = {}
    for ref, hyp, lang in pairs:
        per_language.setdefault(lang, []).append((ref, hyp, lang))
    repeats = len(result["results"][0]["seconds"])
    totals = [sum(r["seconds"][i] for r in result["results"]) for i in range(repeats)]
    return {
        "wer": corpus_rate(pairs),
        "cer": corpus_rate(pairs, unit="char"),
        "wer_by_language": {lang: corpus_rate(p) for lang, p in sorted(per_language.items())},
        "seconds": totals,
        "peak_rss_mb": result["peak_rss_mb"],
        "hypotheses": hyps,
    }


def run(plan: Plan, models: list[str]) -> dict:
    from corpus.speech import audioeval_clips, long_form
    from models import get_spec

    clips = [c for c in audioeval_clips() if plan.clip_languages is None or c.language in plan.clip_languages]
    paragraphs = plan.long_form_paragraphs
    long_path, long_ref = long_form(data_dir() / f"longform_{paragraphs}p_125wpm.wav", paragraphs=paragraphs,
                                    words_per_minute=125)
    long_seconds = audio_seconds(long_path)
    out: dict = {"long_form": {"path": str(long_path), "seconds": long_seconds, "words": len(long_ref.split())},
                 "models": {}}
    for model in models:
        english_only = not get_spec(model).multilingual
        short = [c for c in clips if c.language == "en" or not english_only]
        short_seconds = sum(audio_seconds(c.path) for c in short)
        files = [{"path": str(c.path)} for c in short]
        refs = [(c.text, c.language) for c in short]
        short_configs = {
            "raw faster-whisper": {"mode": "raw"},
            "ours (default)": {"mode": "ours", "options": {}},
        }
        if plan.short_batched:
            short_configs["ours, batched (forced)"] = {"mode": "ours", "options": {"batch_size": 8}}
        long_configs = {
            "raw faster-whisper": {"mode": "raw"},
            "raw BatchedInferencePipeline b=8": {"mode": "raw_batched"},
            "ours, sequential": {"mode": "ours", "options": {"batch_size": 1}},
            "ours, VAD-batched b=8": {"mode": "ours", "options": {"batch_size": 8}},
            "ours (default)": {"mode": "ours", "options": {}},
        }
        result = {"short": {"clips": len(short), "seconds_audio": short_seconds, "configs": {}},
                  "long": {"seconds_audio": long_seconds, "configs": {}}}
        for name, cfg in short_configs.items():
            log(f"accuracy: {model} short clips, {name}")
            raw = run_in_process({"model": model, "files": files, "repeats": plan.repeats, **cfg})
            scored = _score(raw, refs)
            scored["rtf"] = [s / short_seconds for s in scored["seconds"]]
            result["short"]["configs"][name] = scored
        for name, cfg in long_configs.items():
            log(f"accuracy: {model} long-form {long_seconds:.0f} s, {name}")
            raw = run_in_process({"model": model, "files": [{"path": str(long_path), "hint": None}],
                                  "repeats": plan.repeats, **cfg})
            scored = _score(raw, [(long_ref, "en")])
            scored["rtf"] = [s / long_seconds for s in scored["seconds"]]
            result["long"]["configs"][name] = scored
        for part in ("short", "long"):
            configs = result[part]["configs"]
            raw_t = median_spread(configs["raw faster-whisper"]["seconds"])[0]
            ours_t = median_spread(configs["ours (default)"]["seconds"])[0]
            result[part]["speedup_vs_raw"] = raw_t / ours_t if ours_t else float("nan")
            result[part]["time_ratio_ours_over_raw"] = ours_t / raw_t if raw_t else float("nan")
            result[part]["wer_at_or_below_raw"] = (configs["ours (default)"]["wer"]
                                                   <= configs["raw faster-whisper"]["wer"] + 1e-9)
        out["models"][model] = result
    out["unsegmented_languages"] = sorted(UNSEGMENTED)
    return out
