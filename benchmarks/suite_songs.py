"""Suite: songs. Constructed songs (a band rendered from MIDI by fluidsynth, real speech lines on
top at known voice-to-band ratios) plus a real sung excerpt, transcribed side by side:

* ours, defaults (the auto separator), and ours with each separator present;
* ours with Whisper hearing the vocal stem instead of the mix (the stem-or-mix decision);
* ours with separation off (music mode must not gate on voice activity over the mix);
* raw faster-whisper with and without ``vad_filter``;
* the demucs command line's default separation, then raw faster-whisper (when htdemucs
  weights are installed: the recipe users are told to follow).

Measured per configuration and ratio: WER over the sung lines, words placed over
instrumental stretches (intro, break, outro), line-onset error, and separation seconds per
audio minute.
"""

from __future__ import annotations

from .common import data_dir, Plan, log, run_in_process
from .metrics import corpus_rate


def _configs(model: str) -> dict[str, dict]:
    from models import ModelStore, default_store_dir, resolve_separator

    store = ModelStore(default_store_dir())
    present = [c for c in ("spleeter", "htdemucs") if resolve_separator(c, store).model is not None]
    configs = {"ours (defaults)": {"mode": "ours", "options": {}}}
    for choice in present:
        configs[f"ours, {choice}"] = {"mode": "ours", "options": {"separator": choice}}
    configs["ours, Whisper hears the blend"] = {"mode": "ours", "options": {"music_source": "blend"}}
    configs["ours, Whisper hears the mix"] = {"mode": "ours", "options": {"music_source": "mix"}}
    configs["ours, Whisper hears the vocal stem"] = {"mode": "ours", "options": {"music_source": "vocals"}}
    configs["ours, no separation"] = {"mode": "ours", "options": {"separation": "never"}}
    configs["raw faster-whisper"] = {"mode": "raw"}
    configs["raw faster-whisper + vad_filter"] = {"mode": "raw", "vad_filter": True}
    if "htdemucs" in present:
        configs["demucs CLI default, then raw faster-whisper"] = {"mode": "demucs_then_raw"}
    return configs


def material(plan: Plan) -> list[dict]:
    """The corpus as plain records: path, language, ratio, lines (start, end, text), instrumental."""
    from corpus.songs import song_corpus
    from corpus.sung import SUNG, TEXT, real_sung_excerpt

    songs = [{"name": s.name, "path": str(s.path), "language": s.language, "ratio_db": s.ratio_db, "style": s.style,
              "lines": [(line.start, line.end, line.text) for line in s.lines],
              "instrumental": [list(r) for r in s.instrumental]}
             for s in song_corpus(data_dir() / "songs", quick=plan.name != "full")]
    sung = real_sung_excerpt(data_dir() / "sung")
    songs.append({"name": "real sung excerpt", "path": str(sung), "language": "en", "ratio_db": None,
                  "style": "real pop song", "lines": [(SUNG[0], SUNG[1], TEXT)], "instrumental": [[0.0, 1.8]]})
    from engine.audio import probe

    for song in songs:
        song["duration"] = probe(song["path"]).duration
    return songs


def words_over_instrumental(segments: list, regions: list) -> int:
    """Words of segments lying mostly (> 50%) inside instrumental stretches."""
    count = 0
    for start, end, text in segments:
        span = max(end - start, 1e-6)
        inside = sum(max(0.0, min(end, b) - max(start, a)) for a, b in regions)
        if inside / span > 0.5:
            count += len(text.split())
    return count


def onset_errors(lines: list, segments: list) -> list[float]:
    """For each sung line, the distance from its onset to the nearest transcript line start."""
    starts = [s for s, _, text in segments if text.strip()]
    return [min((abs(s - onset) for s in starts), default=float("inf")) for onset, _, _ in lines]


def _score(songs: list[dict], res: dict) -> list[dict]:
    rows = []
    for song, r, timing in zip(songs, res["results"], res.get("timings") or [None] * len(songs)):
        reference = " ".join(text for _, _, text in song["lines"])
        hypothesis = r["texts"][0]
        errors = onset_errors(song["lines"], r["segments"])
        minutes = song["duration"] / 60
        rows.append({
            "name": song["name"], "language": song["language"], "ratio_db": song["ratio_db"],
            "reference": reference, "hypothesis": hypothesis,
            "wer": corpus_rate([(reference, hypothesis, song["language"])]),
            "instrumental_words": words_over_instrumental(r["segments"], song["instrumental"]),
            "onset_errors": errors, "seconds": r["seconds"][0],
            "separate_seconds": (timing or {}).get("separate"), "separator": (timing or {}).get("separator"),
            "minutes": minutes,
        })
    return rows


def summarise(rows: list[dict]) -> dict:
    """Pooled figures per voice-to-band ratio (None: the real excerpt) and overall."""
    by_ratio: dict = {}
    for row in rows:
        by_ratio.setdefault("real" if row["ratio_db"] is None else f"{row['ratio_db']:+g} dB", []).append(row)
    by_ratio["all constructed"] = [r for r in rows if r["ratio_db"] is not None]
    out = {}
    for key, group in by_ratio.items():
        if not group:
            continue
        onsets = [e for r in group for e in r["onset_errors"] if e != float("inf")]
        missing = sum(1 for r in group for e in r["onset_errors"] if e == float("inf"))
        separated = [r for r in group if r["separate_seconds"]]
        out[key] = {
            "wer": corpus_rate([(r["reference"], r["hypothesis"], r["language"]) for r in group]),
            "wer_en": corpus_rate([(r["reference"], r["hypothesis"], r["language"]) for r in group
                                   if r["language"] == "en"]) if any(r["language"] == "en" for r in group) else None,
            "instrumental_words": sum(r["instrumental_words"] for r in group),
            "onset_mae": sum(onsets) / len(onsets) if onsets else None,
            "lines_without_onset": missing,
            "separate_s_per_min": (sum(r["separate_seconds"] for r in separated)
                                   / sum(r["minutes"] for r in separated)) if separated else None,
            "songs": len(group),
        }
    return out


def run(plan: Plan, models: list[str]) -> dict:
    songs = material(plan)
    log(f"songs: {len(songs)} tracks, {sum(s['duration'] for s in songs) / 60:.1f} min")
    out: dict = {"songs": [{k: s[k] for k in ("name", "language", "ratio_db", "style")} for s in songs], "models": {}}
    for model in models:
        multilingual = not model.endswith(".en")
        usable = [s for s in songs if multilingual or s["language"] == "en"]
        per = {}
        for label, cfg in _configs(model).items():
            log(f"songs: {model}, {label}")
            files = [{"path": s["path"], "hint": None} for s in usable]
            res = run_in_process({"model": model, "files": files, "repeats": 1, **cfg})
            rows = _score(usable, res)
            per[label] = {"rows": rows, "summary": summarise(rows)}
        out["models"][model] = per
    return out
