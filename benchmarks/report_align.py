"""The align suite in the report: `tft align` per language and ratio, side by side with free
transcription and stable-ts, the repeated hook and the unsung line, and the goals of issue G."""

from __future__ import annotations

from .suite_align import FREE, OURS, STABLE


def _s(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _groups(summary: dict) -> list[str]:
    """Language and ratio groups (English first, louder voice first), then 'all', then single tracks."""
    ratio = [k for k in summary if k.endswith(" dB")]
    other = [k for k in summary if k != "all" and k not in ratio]
    ordered = sorted(ratio, key=lambda k: (k.split()[0] != "en", k.split()[0], -float(k.split()[1])))
    return ordered + (["all"] if "all" in summary else []) + other


def section(align: dict) -> list[str]:
    tol = align["tolerance_s"]
    lines = ["## Synced lyrics: `tft align`", "",
             f"{len(align['songs'])} constructed songs with their lyric sheets (one line on every sheet is never "
             "sung: the corpus's own on the pop and hook songs, else the language's unsung line opening the second "
             "stanza; the hook songs sing one line four times). Line onsets are where the voice "
             "sounds in the song; word onsets come from espeak-ng's own word events (`corpus.wordtimes`), so "
             "songs voiced by recorded clips have no word figures. An unplaced sung line counts as a miss in "
             f"the share within {tol} s.", ""]
    for note in align.get("notes", {}).values():
        lines += [f"Not run: {note}.", ""]
    for model, configs in align["models"].items():
        if OURS in configs:
            s = configs[OURS]["summary"]
            lines += [f"### {model}: `tft align` (defaults) by language and voice-to-band ratio", "",
                      "| songs | sung lines | placed | line-onset MAE (s) | within 0.3 s | worst (s) | word-onset MAE (s) "
                      "| words within 0.3 s | s per audio min |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for g in _groups(s):
                v = s[g]
                lines.append(f"| {g} | {v['lines']} | {v['placed']} | {_s(v['line_mae'], 3)} | {_pct(v['within'])} | "
                             f"{_s(v['worst'])} | {_s(v['word_mae'], 3)} | {_pct(v['words_within'])} | "
                             f"{_s(v['seconds_per_minute'], 1)} |")
            lines.append("")
        lines += [f"### {model}: side by side (all songs)", "",
                  "| configuration | placed | line-onset MAE (s) | within 0.3 s | word-onset MAE (s) | unsung line "
                  "left unmatched | hook: 4 distinct, correct | s per audio min | peak RSS (MB) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, c in configs.items():
            v = c["summary"]["all"]
            lines.append(f"| {name} | {v['placed']}/{v['lines']} | {_s(v['line_mae'], 3)} | {_pct(v['within'])} | "
                         f"{_s(v['word_mae'], 3)} | {_unsung(c['rows'])} | {_hooks(c['rows'])} | "
                         f"{_s(v['seconds_per_minute'], 1)} | {c['peak_rss_mb']:.0f} |")
        lines += ["", "Figures over the constructed songs (the long track, run by the defaults only, has its own row "
                      "above; its peak RSS is the defaults' column). Free transcription has no sheet: its figure is each sung line's distance to the nearest "
                      "transcript line start, and it cannot leave a line unmatched or tell repeats apart. stable-ts "
                      "places every sheet line, sung or not.", ""]
        lines += _hook_detail(configs)
        lines += _per_song(configs, tol)
    return lines


def _per_song(configs: dict, tol: float) -> list[str]:
    """`tft align` (defaults) song by song, beside free transcription's line onsets."""
    if OURS not in configs:
        return []
    free = {r["name"]: r for r in configs[FREE]["rows"]} if FREE in configs else {}
    out = ["Song by song, `tft align` (defaults) and free transcription:", "",
           f"| song | sung lines | placed | line-onset MAE (s) | within {tol} s | word-onset MAE (s) | unsung line "
           f"left unmatched | free: line-onset MAE (s) | free: within {tol} s |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in configs[OURS]["rows"]:
        v, f = _row_figures(r, tol), _row_figures(free[r["name"]], tol) if r["name"] in free else None
        flags = r.get("unsung_placed") or []
        unsung = f"{sum(not p for p in flags)}/{len(flags)}" if flags else "-"
        out.append(f"| {r['name']} | {v['lines']} | {v['placed']} | {_s(v['mae'], 3)} | {_pct(v['within'])} | "
                   f"{_s(v['word_mae'], 3)} | {unsung} | {_s(f and f['mae'], 3)} | {_pct(f and f['within'])} |")
    return out + [""]


def _row_figures(row: dict, tol: float) -> dict:
    errs = row["line_errors"]
    placed = [abs(e) for e in errs if e is not None]
    words = [abs(e) for e in row["word_errors"]]
    return {"lines": len(errs), "placed": len(placed), "mae": sum(placed) / len(placed) if placed else None,
            "within": sum(e <= tol for e in placed) / len(errs) if errs else None,
            "word_mae": sum(words) / len(words) if words else None}


def _unsung(rows: list[dict]) -> str:
    flags = [p for r in rows for p in (r.get("unsung_placed") or [])]
    return "-" if not flags else f"{sum(not p for p in flags)}/{len(flags)}"


def _hooks(rows: list[dict]) -> str:
    hooks = [r["hook_ok"] for r in rows if r.get("hook_ok")]
    return "-" if not hooks else f"{sum(h['distinct'] and h['correct'] for h in hooks)}/{len(hooks)}"


def _hook_detail(configs: dict) -> list[str]:
    if OURS not in configs:
        return []
    out = []
    for r in configs[OURS]["rows"]:
        h = r.get("hook_ok")
        if h:
            errs = ", ".join("unplaced" if e is None else f"{e:+.2f}" for e in h["errors"])
            out.append(f"- {r['name']}: the hook's {h['occurrences']} occurrences, onset errors {errs} s "
                       f"({'distinct and correct' if h['distinct'] and h['correct'] else 'NOT all distinct and correct'})")
    return (["The hook sung four times, `tft align` (defaults):", "", *out, ""]) if out else []


def goals(align: dict) -> list[tuple[str, str, bool]]:
    out = []
    for model, configs in align["models"].items():
        if OURS not in configs:
            continue
        s, rows = configs[OURS]["summary"], configs[OURS]["rows"]
        for g in _groups(s):
            if not g.endswith(" dB") or g.split()[1] not in ("+0", "-6"):
                continue
            v = s[g]
            out.append((f"{model} align, {g}: every line placed, line MAE ≤ 0.2 s, ≥ 95% within 0.3 s",
                        f"{v['placed']}/{v['lines']}, {_s(v['line_mae'], 3)} s, {_pct(v['within'])}",
                        v["placed"] == v["lines"] and v["line_mae"] is not None and v["line_mae"] <= 0.2
                        and v["within"] is not None and v["within"] >= 0.95))
        hooks = [r["hook_ok"] for r in rows if r.get("hook_ok")]
        if hooks:
            good = sum(h["distinct"] and h["correct"] for h in hooks)
            out.append((f"{model} align: a hook sung 4 times gets 4 distinct, correct times", f"{good}/{len(hooks)} songs",
                        good == len(hooks)))
        flags = [p for r in rows for p in (r.get("unsung_placed") or [])]
        if flags:
            out.append((f"{model} align: an unsung sheet line is left unmatched", f"{sum(not p for p in flags)}/{len(flags)}",
                        not any(flags)))
    return out


def summary_rows(align: dict) -> list[tuple[str, str, str]]:
    rows = []
    for model, configs in align["models"].items():
        parts = [(n, configs[n]["summary"]["all"]) for n in (OURS, FREE, STABLE) if n in configs]
        if parts:
            rows.append(("align", f"{model}: line-onset MAE " + " / ".join(n.split(" (")[0] for n, _ in parts),
                         " / ".join(f"{_s(v['line_mae'], 3)} s" for _, v in parts)))
    return rows
