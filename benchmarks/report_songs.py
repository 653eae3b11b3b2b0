"""The songs suite in the report: the side-by-side table, the goals of issue F, the stem-or-mix
decision as the figures show it, and WER plotted against the voice-to-band ratio."""

from __future__ import annotations

from pathlib import Path

DEFAULTS = "ours (defaults)"
RAW = "raw faster-whisper"
STEM = "ours, Whisper hears the vocal stem"
BLEND = "ours, Whisper hears the blend"
MIX = "ours, Whisper hears the mix"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ratios(summary: dict) -> list[str]:
    keys = [k for k in summary if k.endswith("dB")]
    return sorted(keys, key=lambda k: -float(k.split()[0])) + [k for k in ("real", "all constructed") if k in summary]


def section(songs: dict) -> list[str]:
    lines = ["## Songs", "",
             f"{len(songs['songs'])} tracks: constructed songs (a band rendered from MIDI by fluidsynth with the "
             "FluidR3 GM soundfont; real speech lines on top at known voice-to-band ratios; intro, break and outro "
             "without voice) and a real sung excerpt. WER over the sung lines (pooled), words placed over "
             "instrumental stretches, line-onset mean absolute error (each sung line to the nearest line start), "
             "and separation seconds per audio minute.", ""]
    for model, configs in songs["models"].items():
        ratios = _ratios(next(iter(configs.values()))["summary"])
        lines += [f"### {model}: WER by voice-to-band ratio", "",
                  "| configuration | " + " | ".join(ratios) + " | instrumental words | onset MAE (s) | sep. s/min |",
                  "|---|" + "---:|" * (len(ratios) + 3)]
        for name, c in configs.items():
            s = c["summary"]
            allc = s.get("all constructed", {})
            sep = allc.get("separate_s_per_min")
            mae = allc.get("onset_mae")
            lines.append(f"| {name} | " + " | ".join(_pct(s[r]["wer"]) if r in s else "-" for r in ratios)
                         + f" | {sum(v['instrumental_words'] for k, v in s.items() if k != 'all constructed')} | "
                         + ("-" if mae is None else f"{mae:.2f}") + " | " + ("-" if sep is None else f"{sep:.1f}") + " |")
        lines.append("")
        lines += decision(configs)
    return lines


def decision(configs: dict) -> list[str]:
    """What Whisper should hear in music mode (each line's surest reading, blend, stem or mix),
    read off this run."""
    from engine.pipeline import DEFAULT_MUSIC_SOURCE

    heard = {DEFAULT_MUSIC_SOURCE: DEFAULTS, "blend": BLEND, "vocals": STEM, "mix": MIX}
    wers = {source: configs[name]["summary"]["all constructed"]["wer"] for source, name in heard.items()
            if name in configs}
    if len(wers) < 2:
        return []
    names = {"best": "surest reading of each line (stem or mix)", "blend": "blend of stem and mix",
             "vocals": "vocal stem", "mix": "mix"}
    best = names[min(wers, key=lambda k: wers[k])]
    listed = "; ".join(f"the {names[source]}: {_pct(w)}" for source, w in wers.items())
    return [f"What Whisper hears (voice activity comes from the stem either way), WER over the constructed songs: "
            f"{listed}. On this run **the {best}** is best; the default (`engine.pipeline.DEFAULT_MUSIC_SOURCE`, "
            f"now the {DEFAULT_MUSIC_SOURCE}) was chosen on the full corpus's songs (README, Music mode).", ""]


def goals(songs: dict) -> list[tuple[str, str, bool]]:
    out = []
    for model, configs in songs["models"].items():
        if DEFAULTS not in configs or RAW not in configs:
            continue
        ours, raw = configs[DEFAULTS]["summary"], configs[RAW]["summary"]
        ratios = [r for r in _ratios(ours) if r.endswith("dB")]
        worse = [r for r in ratios if ours[r]["wer"] > raw[r]["wer"]]
        out.append((f"{model} songs: WER ≤ raw faster-whisper (no VAD) at every ratio",
                    ", ".join(f"{r}: {_pct(ours[r]['wer'])} vs {_pct(raw[r]['wer'])}" for r in ratios), not worse))
        for ratio, target in (("+0 dB", 0.08), ("-6 dB", 0.20)):
            if ratio in ours and ours[ratio].get("wer_en") is not None:
                out.append((f"{model} songs, English at {ratio}: WER ≤ {target:.0%}", _pct(ours[ratio]["wer_en"]),
                            ours[ratio]["wer_en"] <= target))
        words = sum(v["instrumental_words"] for k, v in ours.items() if k != "all constructed")
        out.append((f"{model} songs: 0 words over instrumental stretches", str(words), words == 0))
        mae = ours["all constructed"]["onset_mae"]
        out.append((f"{model} songs: line-onset MAE ≤ 0.3 s", "-" if mae is None else f"{mae:.2f} s",
                    mae is not None and mae <= 0.3))
    return out


def plot(songs: dict, out: Path) -> str | None:
    import matplotlib.pyplot as plt

    model, configs = next(iter(songs["models"].items()))
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, c in configs.items():
        ratios = [r for r in _ratios(c["summary"]) if r.endswith("dB")]
        xs = [float(r.split()[0]) for r in ratios]
        ax.plot(xs, [100 * c["summary"][r]["wer"] for r in ratios], marker="o", label=name)
    ax.set_xlabel("voice-to-band ratio (dB)")
    ax.set_ylabel("WER %")
    ax.set_title(f"songs, {model}")
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "songs_wer.png", dpi=120)
    plt.close(fig)
    return "songs_wer.png"


def summary_rows(songs: dict) -> list[tuple[str, str, str]]:
    rows = []
    for model, configs in songs["models"].items():
        if DEFAULTS in configs and RAW in configs:
            ours = configs[DEFAULTS]["summary"]["all constructed"]
            raw = configs[RAW]["summary"]["all constructed"]
            rows.append(("songs", f"{model}: WER ours / raw", f"{_pct(ours['wer'])} / {_pct(raw['wer'])}"))
            rows.append(("songs", f"{model}: instrumental words ours / raw",
                         f"{ours['instrumental_words']} / {raw['instrumental_words']}"))
    return rows
