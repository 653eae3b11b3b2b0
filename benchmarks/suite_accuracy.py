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


# Long-form, timed cold: from no model to text, load included, each run its own process.
LONG_CONFIGS = {
    "raw faster-whisper": {"mode": "raw"},
    "raw BatchedInferencePipeline b=8": {"mode": "raw_batched"},
    "ours, sequential": {"mode": "ours", "options": {"batch_size": 1}},
    "ours (default)": {"mode": "ours", "options": {}},
    # what `tft transcribe` does for its default TXT output: no times,
    # so no word alignment; the same words
    "ours, text output": {"mode": "ours", "options": {"times_needed": False}},
    # the accuracy a user gives up for speed with --beam-size 1
    "ours, greedy (--beam-size 1)": {"mode": "ours", "beam_size": 1, "options": {}},
}
# Targets (issue L), as ratios in the same run: ours' WER <= raw sequential's, and ours' time
# <= this share of faster-whisper's BatchedInferencePipeline's, model load included.
BATCHED_TIME_TARGET = {"base": 0.9, "tiny.en": 1.0}


def long_texts(plan: Plan) -> dict[str, tuple]:
    """The bench's long-form English (flood story, en-us, 125 wpm) and a second text
    (lighthouse, British voice, 140 wpm): (path, reference) each, generated once."""
    from corpus.speech import long_form
    from corpus.texts import LIGHTHOUSE

    n = plan.long_form_paragraphs
    first = long_form(data_dir() / f"longform_{n}p_125wpm.wav", paragraphs=n, words_per_minute=125)
    second = long_form(data_dir() / f"longform_lighthouse_{n}p_en-gb.wav", paragraphs=min(n, len(LIGHTHOUSE)),
                       words_per_minute=140, voice="en-gb-x-rp", text=LIGHTHOUSE)
    return {"long": first, "long_second": second}


def _long(plan: Plan, model: str, path, reference: str) -> dict:
    seconds_audio = audio_seconds(path)
    runs: dict[str, list[dict]] = {name: [] for name in LONG_CONFIGS}
    for repeat in range(plan.repeats):  # interleaved, so drift on a shared machine hits all alike
        for name, cfg in LONG_CONFIGS.items():
            log(f"accuracy: {model} long-form {seconds_audio:.0f} s, {name} (cold, run {repeat + 1})")
            runs[name].append(run_in_process({"model": model, "files": [{"path": str(path), "hint": None}],
                                              "cold": True, **cfg}))
    configs = {}
    for name, results in runs.items():
        merged = {"results": [{**results[0]["results"][0],
                               "seconds": [r["results"][0]["seconds"][0] for r in results]}],
                  "peak_rss_mb": max(r["peak_rss_mb"] for r in results)}
        scored = _score(merged, [(reference, "en")])
        scored["rtf"] = [t / seconds_audio for t in scored["seconds"]]
        scored["cpu_seconds"] = [r["results"][0]["cpu_seconds"][0] for r in results]
        scored["load_seconds"] = [r["load_seconds"] for r in results if r["load_seconds"] is not None]
        configs[name] = scored
    med = {name: median_spread(c["seconds"])[0] for name, c in configs.items()}
    ours, raw, batched = med["ours (default)"], med["raw faster-whisper"], med["raw BatchedInferencePipeline b=8"]
    wer_ok = configs["ours (default)"]["wer"] <= configs["raw faster-whisper"]["wer"] + 1e-9
    ratio_batched = ours / batched if batched else float("nan")
    per_run = [o / b for o, b in zip(configs["ours (default)"]["seconds"],
                                     configs["raw BatchedInferencePipeline b=8"]["seconds"])]
    target = BATCHED_TIME_TARGET.get(model, 1.0)
    return {"seconds_audio": seconds_audio, "words": len(reference.split()), "path": str(path), "configs": configs,
            "timed": "cold: model load included",
            "speedup_vs_raw": raw / ours if ours else float("nan"),
            "time_ratio_ours_over_raw": ours / raw if raw else float("nan"),
            "time_ratio_ours_over_batched": ratio_batched, "time_ratio_ours_over_batched_per_run": per_run,
            "time_ratio_over_batched": {name: t / batched for name, t in med.items()} if batched else {},
            "batched_time_target": target, "wer_at_or_below_raw": wer_ok,
            "goal_met": wer_ok and ratio_batched <= target}


def run(plan: Plan, models: list[str]) -> dict:
    from corpus.speech import audioeval_clips
    from models import get_spec

    clips = [c for c in audioeval_clips() if plan.clip_languages is None or c.language in plan.clip_languages]
    texts = long_texts(plan)
    long_path, long_ref = texts["long"]
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
        result = {"short": {"clips": len(short), "seconds_audio": short_seconds, "configs": {}}}
        for name, cfg in short_configs.items():
            log(f"accuracy: {model} short clips, {name}")
            raw = run_in_process({"model": model, "files": files, "repeats": plan.repeats, **cfg})
            scored = _score(raw, refs)
            scored["rtf"] = [s / short_seconds for s in scored["seconds"]]
            result["short"]["configs"][name] = scored
        configs = result["short"]["configs"]
        raw_t = median_spread(configs["raw faster-whisper"]["seconds"])[0]
        ours_t = median_spread(configs["ours (default)"]["seconds"])[0]
        result["short"].update(speedup_vs_raw=raw_t / ours_t if ours_t else float("nan"),
                               time_ratio_ours_over_raw=ours_t / raw_t if raw_t else float("nan"),
                               wer_at_or_below_raw=configs["ours (default)"]["wer"]
                               <= configs["raw faster-whisper"]["wer"] + 1e-9)
        for part, (path, reference) in texts.items():
            result[part] = _long(plan, model, path, reference)
        out["models"][model] = result
    out["unsegmented_languages"] = sorted(UNSEGMENTED)
    return out
