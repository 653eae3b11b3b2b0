"""Suite: align. Known lyrics in, synced lyrics out, on constructed songs whose line times are
measured and whose word times come from the synthesiser itself (``corpus.wordtimes``).

Side by side in one run, on the same songs and the same Whisper model:

* ``tft align`` (defaults), and variants: Whisper hearing the mix to find the lines, word
  alignment on the mix, no voice onsets from the stem;
* free transcription on the music path: the line starts a user gets without the lyrics;
* stable-ts's ``align`` with the same faster-whisper model, when it is installed.

Measured per song: line-onset error of every sung line (a line left unplaced counts against
the share within 0.3 s), word-onset error, whether the sheet's unsung line stayed unmatched,
whether the hook sung four times got four distinct, correct times, and seconds per audio minute.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from .common import Plan, data_dir, log, run_in_process

TOLERANCE_S = 0.3
OURS = "tft align (defaults)"
FREE = "free transcription (music path)"
STABLE = "stable-ts align"


def _selected(plan: Plan):
    """Which corpus songs: every English and Spanish song at 0 and -6 dB (each style, the
    recorded-clip and sung-like voices, the hook and long-break songs) and the French hook
    songs; the quick corpus otherwise (``Plan.align_songs``)."""
    from corpus.songs import corpus_specs

    if plan.align_songs != "full":
        specs = corpus_specs(quick=True)
        return [s for s in specs if s.language == "en"] if plan.name == "tiny" else specs
    return [s for s in corpus_specs(quick=False) if s.ratio_db in (0.0, -6.0)
            and (s.language in ("en", "es") or "hook" in s.name)]


def with_unsung(sheet: str, language: str, unsung: list[str]) -> tuple[str, list[str]]:
    """The sheet with one line that is never sung: the corpus's own where the song has one, else
    the language's unsung line opening the second stanza (next to the break, where a missed
    sung line and an unsung one compete for the same stretch of voice)."""
    from corpus.lyrics import LYRICS

    if unsung or language not in LYRICS:
        return sheet, unsung
    stanzas = sheet.strip().split("\n\n")
    extra = LYRICS[language].unsung
    at = 1 if len(stanzas) > 1 else 0
    stanzas[at] = extra + "\n" + stanzas[at]
    return "\n\n".join(stanzas) + "\n", [extra]


def material(plan: Plan) -> list[dict]:
    from corpus.songs import build_song
    from corpus.wordtimes import song_word_onsets

    out = []
    for spec in _selected(plan):
        song = build_song(spec, data_dir() / "songs")
        manifest = song.path.parent / "song.json"
        sheet, unsung = with_unsung(song.sheet, song.language, list(song.unsung_lines))
        out.append({"name": song.name, "path": str(song.path), "language": song.language, "ratio_db": song.ratio_db,
                    "sheet": sheet, "unsung": unsung,
                    "lines": [(l.start, l.end, l.text) for l in song.lines],
                    "words": song_word_onsets(manifest), "duration": _duration(song.path)})
    if plan.name == "full":
        out.append(long_track(out))
    return out


def long_track(songs: list[dict], count: int = 14) -> dict:
    """Several songs end to end as one track with one sheet: the windowed matching and the
    memory on a long input (an hour is out of reach on 2 CPU cores in a bench run)."""
    import hashlib
    import json

    import numpy as np
    import soundfile as sf

    picked = [s for s in songs if s["language"] == "en"][:count]  # about 17 minutes: two matching windows
    key = hashlib.sha256(json.dumps([s["path"] for s in picked]).encode()).hexdigest()[:10]
    path = data_dir() / "songs" / f"long-{key}.flac"
    offsets, at = [], 0.0
    for s in picked:
        offsets.append(at)
        at += s["duration"]
    if not path.is_file():
        audio = np.concatenate([sf.read(s["path"], dtype="int16", always_2d=True)[0] for s in picked])
        tmp = path.with_suffix(".tmp.flac")
        sf.write(tmp, audio, 44_100, subtype="PCM_16", format="FLAC")
        tmp.replace(path)
    lines = [(a + o, b + o, t) for s, o in zip(picked, offsets) for a, b, t in s["lines"]]
    words = [[None if w is None else w + o for w in ws] for s, o in zip(picked, offsets) for ws in (s["words"] or [])]
    return {"name": f"long track ({len(picked)} songs)", "path": str(path), "language": "en", "ratio_db": None,
            "sheet": "\n\n".join(s["sheet"].strip() for s in picked) + "\n",
            "unsung": sorted({u for s in picked for u in s["unsung"]}), "lines": lines,
            "words": words if all(s["words"] for s in picked) else None, "duration": _duration(path)}


def _duration(path) -> float:
    from engine.audio import probe

    return probe(path).duration


def stable_ts_status() -> str | None:
    """None when stable-ts imports here, else why not (it is a bench-only comparison)."""
    proc = subprocess.run([sys.executable, "-c", "import stable_whisper"], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
    return f"stable-ts does not import here ({last[:200]})"


def _configs(plan: Plan) -> dict[str, dict]:
    configs = {OURS: {"mode": "ours"}, FREE: {"mode": "free"}}
    if plan.name == "tiny":
        return configs
    if plan.name == "full":
        configs[OURS]["long"] = True  # the long track: windowed matching and memory, once
        configs["tft align, Whisper hears the vocal stem to find lines"] = {"mode": "ours",
                                                                          "options": {"anchor_source": "vocals"}}
        configs["tft align, words aligned on the mix"] = {"mode": "ours", "options": {"word_source": "mix"}}
        configs["tft align, no voice onsets or missed-line placement from the stem"] = {
            "mode": "ours", "options": {"onsets": False, "recover": False}}
    configs[STABLE] = {"mode": "stable-ts"}
    return configs


def _truth_index(song: dict) -> list[int | None]:
    """For each sheet line, the sung line it is (in order), or None for a line never sung."""
    from engine.lyrics import parse_sheet

    truth = [text for _, _, text in song["lines"]]
    out, k = [], 0
    for line in parse_sheet(song["sheet"]).lines:
        if k < len(truth) and line.text == truth[k]:
            out.append(k)
            k += 1
        else:
            out.append(None)
    return out


def score(song: dict, result: dict) -> dict:
    """Line and word errors of one song under one configuration."""
    if "error" in result:
        return {"error": result["error"], "line_errors": [None] * len(song["lines"]), "word_errors": [],
                "unsung_placed": None, "hook_ok": None, "seconds": result["seconds"]}
    if "segments" in result:  # free transcription: the nearest line start to each sung line
        starts = [s for s, _, text in result["segments"] if text.strip()]
        errors = [min((s - onset for s in starts), key=abs, default=None) for onset, _, _ in song["lines"]]
        return {"line_errors": errors, "word_errors": [], "unsung_placed": None, "hook_ok": None,
                "seconds": result["seconds"]}
    index = _truth_index(song)
    line_errors: list[float | None] = [None] * len(song["lines"])
    word_errors: list[float] = []
    unsung_placed = []
    for i, k in enumerate(index):
        placed = result["lines"][i] if i < len(result["lines"]) else None
        if k is None:
            unsung_placed.append(placed is not None)
            continue
        if placed is None:
            continue
        line_errors[k] = placed[0] - song["lines"][k][0]
        truth_words = song["words"][k] if song["words"] else None
        if truth_words and len(truth_words) == len(placed[2]):
            word_errors += [w - t for w, t in zip(placed[2], truth_words) if t is not None]
    return {"line_errors": line_errors, "word_errors": word_errors,
            "unsung_placed": unsung_placed if unsung_placed else None, "hook_ok": _hook(song, line_errors),
            "seconds": result["seconds"]}


def _hook(song: dict, errors: list[float | None]) -> dict | None:
    """The line sung most often (four times in the hook songs): distinct times, each within tolerance."""
    texts = [text for _, _, text in song["lines"]]
    hook = max(set(texts), key=texts.count)
    if texts.count(hook) < 4:
        return None
    ks = [k for k, t in enumerate(texts) if t == hook]
    times = [song["lines"][k][0] + errors[k] for k in ks if errors[k] is not None]  # type: ignore[operator]
    distinct = len(times) == len(ks) and all(b - a > 1.0 for a, b in zip(times, times[1:]))
    correct = all(errors[k] is not None and abs(errors[k]) <= TOLERANCE_S for k in ks)  # type: ignore[arg-type]
    return {"occurrences": len(ks), "placed": len(times), "distinct": distinct, "correct": correct,
            "errors": [errors[k] for k in ks]}


def summarise(songs: list[dict], rows: list[dict]) -> dict:
    groups: dict[str, list[int]] = {}
    for i, song in enumerate(songs):
        key = song["name"] if song["ratio_db"] is None else f"{song['language']} {song['ratio_db']:+g} dB"
        groups.setdefault(key, []).append(i)
        if song["ratio_db"] is not None:
            groups.setdefault("all", []).append(i)
    out = {}
    for key, idx in groups.items():
        errs = [e for i in idx for e in rows[i]["line_errors"]]
        placed = [abs(e) for e in errs if e is not None]
        words = [abs(e) for i in idx for e in rows[i]["word_errors"]]
        minutes = sum(songs[i]["duration"] for i in idx) / 60
        out[key] = {
            "lines": len(errs), "placed": len(placed),
            "line_mae": statistics.fmean(placed) if placed else None,
            "within": sum(e <= TOLERANCE_S for e in placed) / len(errs) if errs else None,
            "worst": max(placed) if placed else None,
            "word_mae": statistics.fmean(words) if words else None,
            "word_median": statistics.median(words) if words else None,
            "words_within": sum(e <= TOLERANCE_S for e in words) / len(words) if words else None,
            "words": len(words),
            "seconds_per_minute": sum(rows[i]["seconds"] for i in idx) / minutes if minutes else None,
        }
    return out


def run(plan: Plan, models: list[str]) -> dict:
    songs = material(plan)
    log(f"align: {len(songs)} songs, {sum(s['duration'] for s in songs) / 60:.1f} min")
    configs = _configs(plan)
    out: dict = {"songs": [{k: s[k] for k in ("name", "language", "ratio_db", "unsung")} for s in songs],
                 "tolerance_s": TOLERANCE_S, "models": {}, "notes": {}}
    if STABLE in configs and (reason := stable_ts_status()) is not None:
        del configs[STABLE]
        out["notes"][STABLE] = reason
    for model in models:
        per = {}
        for label, cfg in configs.items():
            log(f"align: {model}, {label}")
            usable = [s for s in songs if (not model.endswith(".en") or s["language"] == "en")
                      and (cfg.get("long") or not s["name"].startswith("long track"))]
            files = [{"path": s["path"], "sheet": s["sheet"], "language": s["language"]} for s in usable]
            spec = {k: v for k, v in cfg.items() if k != "long"}
            res = run_in_process({"module": "benchmarks.alignrun", "model": model, "files": files, **spec})
            rows = [dict(score(s, r), name=s["name"]) for s, r in zip(usable, res["results"])]
            per[label] = {"rows": rows, "summary": summarise(usable, rows), "peak_rss_mb": res["peak_rss_mb"]}
        out["models"][model] = per
    return out
