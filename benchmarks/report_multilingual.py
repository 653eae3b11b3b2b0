"""The multilingual section of the bench report: per-language error rates on long-form
speech, ours against raw in the same run, language detection without a hint, the audioeval
clips' per-language figures beside them, and a bar plot."""

from __future__ import annotations

from pathlib import Path


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def section(ml: dict, accuracy: dict | None) -> list[str]:
    seconds = {f["language"]: f["seconds"] for f in ml["files"]}
    lines = ["## 6. Multilingual accuracy", "",
             "Long-form espeak-ng speech per language (the flood story's opening; zh scored per character), "
             "numbers normalised on both sides (digits spelled out in the language). Raw and ours are given the "
             "language; the last columns are ours without a hint. Audioeval: the real clips of the accuracy suite, "
             "per language.", ""]
    for model, res in ml["models"].items():
        configs = res["configs"]
        clips = (accuracy or {}).get("models", {}).get(model, {}).get("short", {}).get("configs", {})
        ours_clips = clips.get("ours (default)", {}).get("wer_by_language", {})
        raw_clips = clips.get("raw faster-whisper", {}).get("wer_by_language", {})
        lines += [f"### {model}: detection without a hint {_pct(res['detection_accuracy'])} correct", "",
                  "| language | audio (s) | unit | ours | raw | ours, no hint | detected | audioeval ours | audioeval raw |",
                  "|---|---:|---|---:|---:|---:|---|---:|---:|"]
        for lang, row in configs["ours (default)"].items():
            raw = configs["raw faster-whisper"][lang]
            free = configs["ours, no language hint"][lang]
            a_ours = _pct(ours_clips[lang]) if lang in ours_clips else "–"
            a_raw = _pct(raw_clips[lang]) if lang in raw_clips else "–"
            lines.append(f"| {lang} | {seconds[lang]:.0f} | {row['unit']} | {_pct(row['error_rate'])} | "
                         f"{_pct(raw['error_rate'])} | {_pct(free['error_rate'])} | {free['detected']} | {a_ours} | {a_raw} |")
        lines.append("")
    return lines


def plot(ml: dict, out: Path) -> str | None:
    import matplotlib.pyplot as plt
    import numpy as np

    if not ml["models"]:
        return None
    model, res = next(iter(ml["models"].items()))
    configs = res["configs"]
    languages = list(configs["ours (default)"])
    x = np.arange(len(languages))
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for k, name in enumerate(("raw faster-whisper", "ours (default)", "ours, no language hint")):
        values = [100 * configs[name][lang]["error_rate"] for lang in languages]
        ax.bar(x + (k - 1) * 0.27, values, 0.27, label=name)
    ax.set_xticks(x, [f"{lang} ({configs['ours (default)'][lang]['unit']})" for lang in languages])
    ax.set_ylabel("error rate %")
    ax.set_title(f"{model}: long-form speech per language")
    ax.legend(fontsize=8)
    fig.tight_layout()
    filename = "multilingual.png"
    fig.savefig(out / filename, dpi=120)
    plt.close(fig)
    return filename
